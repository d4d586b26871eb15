"""Writing state files: every state file is written here, and atomically.

A head can lose power in the middle of a write. Readers must then see either the old
file or the new one, never a torn mix, so every state file goes through
`atomic_write` (same-directory temp file, fsync, rename, fsync the directory, as
Patroni's `Config.save_cache`). It lives in `core` so that the heartbeat process, which
imports no configuration code, writes its boot counter the same way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new content."""
    directory = path.parent
    # Same directory: rename() is only atomic within one file system.
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # before the data goes in: secrets never sit world-readable
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    # The rename is only durable once the directory entry itself is on disk.
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
