"""JSON app schemas, one module per app (Sensor Logger, HyperIMU, named fields), registered in :mod:`.registry`."""
