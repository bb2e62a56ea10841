"""Atomic I/O: results, checkpoints and exports are written to a temporary file and renamed."""

from ._io import (atomic_path, remove_temporaries, save_torch, write_bytes, write_json, write_text,
                  write_with)

__all__ = ["atomic_path", "write_bytes", "write_text", "write_json", "save_torch", "write_with",
           "remove_temporaries"]
