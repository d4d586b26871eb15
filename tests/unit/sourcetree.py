"""The project's own modules, by dotted name, for the tests that read the source."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def modules() -> dict[str, Path]:
    """Every module of the shipped packages: dotted name -> file."""
    found = {}
    for package in ("haoscar_snmp", "fcaps"):
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found
