"""ModelMesh's model-runtime SPI (mmesh.ModelRuntime), served natively on the management endpoint."""
