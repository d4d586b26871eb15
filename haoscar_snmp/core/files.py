"""Writing state files: every state file is written here, and atomically.

A head can lose power in the middle of a write. Readers must then see either the old
file or the new one, never a torn mix, so every state file goes through
`atomic_write` (same-directory temp file, fsync, rename, fsync the directory, as
Patroni's `Config.save_cache`). It lives in `core` so that the heartbeat process, which
imports no configuration code, writes its boot counter the same way. `DirectoryLock`
keeps a second daemon out of a state directory that one already uses.
"""

from __future__ import annotations

import fcntl
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


class DirectoryInUse(Exception):
    """Another process holds the lock of a directory."""


class DirectoryLock:
    """An exclusive lock on a directory (`flock` on `DIR/lock`), held for the life of the
    process and released by the kernel when it ends, however it ends. Two daemons must
    never share a state directory: they would write each other's files."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DirectoryInUse(f"{self.path.parent} is in use by another haoscar-snmp (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
