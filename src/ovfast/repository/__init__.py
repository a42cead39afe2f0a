"""Model repository: version folders, model files, version policy, registry."""
