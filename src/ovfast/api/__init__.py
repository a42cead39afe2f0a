"""APIs: one transport-independent DataPlane behind thin gRPC and REST transports."""
