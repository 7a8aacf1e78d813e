"""The base layer: what every other layer reads and that imports nothing of shared_core above it."""
