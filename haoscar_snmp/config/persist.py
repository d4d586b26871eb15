"""Writing state files: the one module that does, and it does so atomically.

A head can lose power in the middle of a write. Readers must then see either the old
file or the new one, never a torn mix, so every state file goes through
`atomic_write` (same-directory temp file, fsync, rename, fsync the directory, as
Patroni's `Config.save_cache`). `OverrideStore` keeps the values changed over SNMP in
`<state_dir>/overrides.json`, apart from the operator's file, which is never rewritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from haoscar_snmp.config.errors import ConfigError, Problem

OVERRIDES_FILE = "overrides.json"


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


def ensure_state_dir(state_dir: Path) -> None:
    """Create the state directory (mode 0700: it holds operator data) if it is missing."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


class OverrideStore:
    """The SNMP-set values, as a JSON object in `<state_dir>/overrides.json`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / OVERRIDES_FILE

    def load(self) -> dict[str, Any]:
        """The saved overrides; {} if none were saved yet.

        A corrupt file is an error, never an empty dict: silently dropping what an
        operator set over SNMP would undo their changes behind their back.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError([Problem(str(self.path), "(file)", f"cannot read: {error}")]) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError([Problem(str(self.path), f"line {error.lineno}, column {error.colno}",
                                       f"corrupt JSON: {error.msg}; fix or remove the file")]) from None
        if not isinstance(data, dict):
            raise ConfigError([Problem(str(self.path), "(top level)",
                                       f"must be a JSON object, not {type(data).__name__}")])
        return data

    def save(self, overrides: dict[str, Any]) -> None:
        """Persist `overrides` atomically (sorted keys, so diffs of the file stay readable)."""
        ensure_state_dir(self.state_dir)
        text = json.dumps(overrides, sort_keys=True, indent=2) + "\n"
        atomic_write(self.path, text.encode("utf-8"))
