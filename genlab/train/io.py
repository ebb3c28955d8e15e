"""Kept for old imports: the file helpers live in :mod:`genlab.io`, below the training harness."""

from genlab.io import atomic_path, load_weights, read_weights_metadata, save_weights, sha256_file, write_text_atomic

__all__ = ["atomic_path", "load_weights", "read_weights_metadata", "save_weights", "sha256_file", "write_text_atomic"]
