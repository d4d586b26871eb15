"""The values changed over SNMP, kept apart from the operator's file.

`OverrideStore` keeps them in `<state_dir>/overrides.json`, written with
`haoscar_snmp.core.files.atomic_write` like every state file; the operator's file is
never rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from haoscar_snmp.config.errors import ConfigError, Problem
from haoscar_snmp.core.files import atomic_write

__all__ = ["OVERRIDES_FILE", "OverrideStore", "atomic_write", "ensure_state_dir"]

OVERRIDES_FILE = "overrides.json"


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
