"""Reload is a diff: what changed between two configurations, and what needs a restart.

The daemon applies a reload item by item so that unchanged services and aliases keep
their counters and history, and refuses the reload loudly when a restart-only key
changed (sockets, identities and the state directory cannot be swapped under a running
agent). Which keys those are is declared in the schema, next to each key (keys.py).
Tables are compared by identity, not position: services by name, aliases by address,
heads by name, so inserting a row is one addition rather than a change to every row
below it. Secrets are compared by digest and only their
keys are ever reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel

from haoscar_snmp.config.keys import Reload
from haoscar_snmp.config.schema import KEYS, Config

def classify(key: str) -> Reload | None:
    """Reload.RESTART ("restart") or Reload.LIVE ("live") for a dotted key, table rows in
    brackets or not, as the schema declares it next to the key (keys.py): a row or a
    section needs a restart when any key in it does. None for an unknown key or an
    unclassified one (a test walks the schema so that no key is unclassified).

    Restart-only: sockets, identities, the state directory, and the SNMP engine's own
    set-up (listeners, engine ID, system group, the AgentX session). Live: the SNMP
    credentials (the agent replaces them in the running engine, `Agent.reconfigure`),
    tables mirrored into the state, timings read at every cycle, commands read at use,
    the heartbeat key (rotated), logging (set up again)."""
    return KEYS.reload(key)


@dataclass(frozen=True)
class ConfigDiff:
    """Changes from an old to a new configuration; keys are dotted, table rows by identity."""

    changed_keys: list[str] = field(default_factory=list)
    services_added: list[str] = field(default_factory=list)
    services_removed: list[str] = field(default_factory=list)
    services_changed: list[str] = field(default_factory=list)
    aliases_added: list[str] = field(default_factory=list)
    aliases_removed: list[str] = field(default_factory=list)
    aliases_changed: list[str] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed_keys)

    def summary(self) -> str:
        """One sentence for the log, e.g. "2 keys changed: services added nfs; timing.garp_count changed"."""
        if not self.changed_keys:
            return "configuration unchanged"
        parts = []
        for table in ("services", "aliases"):
            for verb in ("added", "removed", "changed"):
                names = getattr(self, f"{table}_{verb}")
                if names:
                    parts.append(f"{table} {verb} {', '.join(names)}")
        other = [key for key in self.changed_keys if not key.startswith(("services[", "aliases["))]
        if other:
            parts.append(f"{', '.join(other)} changed")
        count = len(self.changed_keys)
        sentence = f"{count} key{'s' if count != 1 else ''} changed: {'; '.join(parts)}"
        if self.restart_required:
            sentence += f"; restart required for {', '.join(self.restart_required)}"
        return sentence


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """What a reload from `old` to `new` changes."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    changed: list[str] = []
    rows: dict[str, dict[str, list[str]]] = {"services": _verbs(), "aliases": _verbs()}
    old_rows, new_rows = _rows_in(old_flat), _rows_in(new_flat)
    seen_rows: set[str] = set()
    for key in [*new_flat, *(k for k in old_flat if k not in new_flat)]:
        if old_flat.get(key, _MISSING) == new_flat.get(key, _MISSING):
            continue
        row = _row_of(key)
        if row is not None and (row not in old_rows or row not in new_rows):
            # A whole row came or went: report the row once, not each of its keys.
            if row not in seen_rows:
                seen_rows.add(row)
                changed.append(row)
                _record(rows, row, "added" if row in new_rows else "removed")
            continue
        changed.append(key)
        if row is not None:
            _record(rows, row, "changed")
    restart = [key for key in changed if classify(key) is Reload.RESTART]
    return ConfigDiff(
        changed_keys=changed,
        services_added=rows["services"]["added"], services_removed=rows["services"]["removed"],
        services_changed=rows["services"]["changed"], aliases_added=rows["aliases"]["added"],
        aliases_removed=rows["aliases"]["removed"], aliases_changed=rows["aliases"]["changed"],
        restart_required=restart,
    )


_MISSING = object()


def _verbs() -> dict[str, list[str]]:
    return {"added": [], "removed": [], "changed": []}


def _record(rows: dict[str, dict[str, list[str]]], row: str, verb: str) -> None:
    table, _, name = row.partition("[")
    names = rows.get(table, {}).get(verb)
    if names is not None and name[:-1] not in names:  # name[:-1]: drop the closing "]"
        names.append(name[:-1])


def _row_of(key: str) -> str | None:
    """"services[pbs].check" -> "services[pbs]"; None for keys outside the tables."""
    for table in _TABLES:
        if key.startswith(table + "["):
            end = key.find("].", len(table))
            return key if end < 0 else key[: end + 1]
    return None


def _rows_in(flat: dict[str, Any]) -> set[str]:
    return {row for key in flat if (row := _row_of(key)) is not None}


def _digest(secret: str | bytes | None) -> str | None:
    if secret is None:
        return None
    data = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(data).hexdigest()


# Table -> how a row is identified. Communities have no name that is not a secret.
_IDENTITY: dict[str, Callable[[Any], str]] = {
    "heads": lambda h: h.name,
    "interfaces": lambda i: f"{i.node}/{i.name}",
    "nodes": lambda n: n.name,
    "services": lambda s: s.name,
    "aliases": lambda a: str(a.address),
    "snmp.users": lambda u: u.name,
    "snmp.targets": lambda t: t.name,
}
_TABLES = (*_IDENTITY, "snmp.communities")


def _flatten(config: Config) -> dict[str, Any]:
    """Dotted key -> comparable value, for every leaf of the configuration."""
    flat: dict[str, Any] = {}
    for section in ("cluster", "timing", "lan", "heartbeat", "failover", "notify", "log", "web", "membership"):
        _walk(section, getattr(config, section).model_dump(by_alias=True), flat)
    flat["heartbeat.key"] = _digest(config.heartbeat.key)
    snmp = config.snmp.model_dump(by_alias=True, exclude={"communities", "users", "targets"})
    _walk("snmp", snmp, flat)
    for table in ("heads", "interfaces", "nodes", "services", "aliases"):
        _rows(table, getattr(config, table), flat)
    _rows("snmp.users", config.snmp.users, flat,
          lambda u: {"auth_key": _digest(u.auth_key), "priv_key": _digest(u.priv_key)})
    _rows("snmp.targets", config.snmp.targets, flat, lambda t: {"community": _digest(t.community)})
    for i, community in enumerate(config.snmp.communities):
        _walk(f"snmp.communities[{i}]", community.model_dump(by_alias=True), flat)
        flat[f"snmp.communities[{i}].name"] = _digest(community.secret)
    return flat


def _rows(table: str, rows: tuple[BaseModel, ...], flat: dict[str, Any],
          secrets: Callable[[Any], dict[str, Any]] | None = None) -> None:
    identity = _IDENTITY[table]
    for row in rows:
        data = row.model_dump(by_alias=True)
        if secrets is not None:
            data.update(secrets(row))
        _walk(f"{table}[{identity(row)}]", data, flat)


def _walk(prefix: str, value: Any, flat: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(f"{prefix}.{key}", item, flat)
    else:
        flat[prefix] = tuple(value) if isinstance(value, list) else value
