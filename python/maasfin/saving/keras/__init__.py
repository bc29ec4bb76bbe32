"""Keras 3 files: reading `.keras`/`.h5` models (read, translate, h5) and writing them (write, config)."""
