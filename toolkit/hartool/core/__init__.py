"""Core: the bundle manifest, preprocessing and errors shared by training and the device (numpy only)."""
