"""One configuration for the settings both heads must share: what they are, and how to compare them.

Two heads that disagree on a cluster-wide setting misbehave together even when each is
valid alone: a head that beats every 5 s next to one that declares a peer dead after 3 s
fails over for nothing. This module is the pure layer of the replicated configuration:

    scope(key)                          -> Scope        (every key: cluster-wide or per-head,
                                                         as the schema declares it, keys.py)
    cluster_wide(config)                -> settings     (plain JSON data, canonical order, no secrets)
    digest(settings), fingerprint(hex)  -> str, int     (what the heartbeats advertise)
    differences(a, b)                   -> dotted keys  (what the drift alarm names)
    apply_cluster_wide(file, overrides, peer)           (adopting the peer's, as SNMP-style overrides)
    after_adoption(peer, settings)      -> settings     (what the peer holds once it took ours)

Versions, the merge rule, what is dangerous while the heads differ and the drift
tracker are in `clustersync.py`. Nothing here does I/O; the exchange between the heads
and the daemon's wiring are built elsewhere.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from haoscar_snmp.config.keys import Scope, strip_rows
from haoscar_snmp.config.schema import KEYS, AliasConfig, Config, ServiceConfig, TimingConfig

# Bumped when the shape of `cluster_wide()` changes, so heads running different releases
# do not take each other's settings for their own (apply_cluster_wide refuses another format).
SETTINGS_FORMAT = 1


def scope(key: str) -> Scope:
    """The scope of a dotted key ("timing.garp_count", "services[pbs].check" or
    "services"), as the schema declares it next to the key (keys.py). Raises KeyError
    for an unknown key, an unclassified one, or one above keys of both scopes."""
    found = KEYS.scope(key)
    if found is None:
        raise KeyError(f"{key}: not classified as cluster-wide or per-head (the schema declares each "
                       f"key's scope next to it: haoscar_snmp/config/schema_*.py)")
    return found


# ---------------------------------------------------------------------------------------
# The settings, their digest and their differences

# How a row is named in differences (as diff.py names them), and the order rows are kept
# in: services and aliases by their MIB index, which both heads must use alike.
_IDENTITY: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "heads": lambda row: str(row.get("name")),
    "interfaces": lambda row: f"{row.get('node')}/{row.get('name')}",
    "nodes": lambda row: str(row.get("name")),
    "services": lambda row: str(row.get("name")),
    "aliases": lambda row: str(row.get("address")),
}
_ORDER: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "heads": lambda row: row["name"],
    "interfaces": lambda row: (row["node"], row["lan"], row["name"]),
    "nodes": lambda row: row["name"],
    "services": lambda row: row["index"],
    "aliases": lambda row: row["index"],
}


def cluster_wide(config: Config) -> dict[str, Any]:
    """The cluster-wide settings of an effective configuration (the file with the SNMP
    overrides applied), as plain JSON data: keys sorted, table rows in a fixed order,
    only cluster-wide keys (so no secret and no path), plus `"format"`."""
    settings = _select("", config.model_dump(mode="json", by_alias=True))
    assert isinstance(settings, dict)
    settings["format"] = SETTINGS_FORMAT
    return dict(sorted(settings.items()))


def _select(prefix: str, value: Any) -> Any:
    """The cluster-wide part of `value` (found at `prefix`), or _NOTHING."""
    if isinstance(value, dict):
        kept = {}
        for key in sorted(value):
            part = _select(f"{prefix}.{key}" if prefix else key, value[key])
            if part is not _NOTHING:
                kept[key] = part
        return kept or _NOTHING
    if prefix in _ORDER:
        rows = [_select(prefix, row) for row in sorted(value, key=_ORDER[prefix])]
        return [row for row in rows if row is not _NOTHING] if scope(prefix) is Scope.CLUSTER_WIDE else _NOTHING
    return value if scope(prefix) is Scope.CLUSTER_WIDE else _NOTHING


_NOTHING = object()


def canonical_json(settings: Mapping[str, Any]) -> bytes:
    """The bytes the digest is taken over: sorted keys, no spaces, ASCII only."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def digest(settings: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of `settings`, in hex."""
    return hashlib.sha256(canonical_json(settings)).hexdigest()


def fingerprint(hex_digest: str) -> int:
    """The digest's first 64 bits as an unsigned integer: what a heartbeat carries.

    Enough to notice a difference (a chance collision is 2**-64 per change); the full
    digest and the settings travel only when the fingerprints differ."""
    return int(hex_digest[:16], 16)


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two settings: rows by identity
    ("services[pbs].check"), a row on one side only once ("aliases[192.0.2.100]")."""
    out: list[str] = []
    _compare("", a, b, out)
    return out


def _compare(prefix: str, a: Any, b: Any, out: list[str]) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key in a and key in b:
                _compare(path, a[key], b[key], out)
            else:
                out.append(path)
    elif prefix in _IDENTITY and isinstance(a, list) and isinstance(b, list):
        identity = _IDENTITY[prefix]
        rows_a = {identity(row): row for row in a if isinstance(row, Mapping)}
        rows_b = {identity(row): row for row in b if isinstance(row, Mapping)}
        for name in sorted(set(rows_a) | set(rows_b)):
            path = f"{prefix}[{name}]"
            if name in rows_a and name in rows_b:
                _compare(path, rows_a[name], rows_b[name], out)
            else:
                out.append(path)
    elif a != b:
        out.append(prefix)


def section(settings: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = settings.get(name)
    return value if isinstance(value, Mapping) else {}


# ---------------------------------------------------------------------------------------
# Adopting the peer's settings


@dataclass(frozen=True)
class Adoption:
    """What adopting the peer's cluster-wide settings means for this head's state directory.

    `overrides` and `pending` have the shapes `fcaps/configuration/store.py` keeps (see
    `fcaps/configuration/overrides.py`); `not_expressible` lists the keys where the
    peer's value differs and the overrides cannot carry it (they stay this head's file
    values, and the drift alarm goes on naming them until the operator edits the file).
    """

    overrides: dict[str, Any]
    pending: dict[str, dict[int, dict[str, Any]]]
    not_expressible: list[str] = field(default_factory=list)


# What the overrides can carry (fcaps/configuration/overrides.py, OVERRIDE_KEYS): every
# timing, the service and alias rows by index (changed, created or deleted), and the
# recipients as one address or none. Everything else cluster-wide is the file's alone.
_EXPRESSIBLE = ("timing", "services", "aliases", "notify.email.to")


def apply_cluster_wide(file_config: Config, overrides: Mapping[str, Any], peer: Mapping[str, Any],
                       pending: Mapping[str, Mapping[int, Mapping[str, Any]]] | None = None) -> Adoption:
    """The overrides that make this head's effective configuration carry the peer's
    cluster-wide settings, given this head's file and its current overrides.

    The operator's file is never rewritten: the peer's values become overrides, as if
    set over SNMP. They are minimal: a timing or a row field equal to the file's has no
    override (so none is left once the two files agree), a file row the peer lacks is
    `{"deleted": true}`, a row only the peer has (even one from the peer's file) is
    created in full. Rows are matched by index, as the MIB matches them; a notReady row
    this head is building over SNMP at an index the peer uses is dropped from `pending`.

    What the overrides cannot express stays as the file says and is listed in
    `not_expressible`: the heads, interfaces, nodes, [lan], the cluster name, the
    heartbeat port and public path, failover.lan_failure_is_head_failure,
    notify.email.enabled, more than one recipient, and any key this release does not
    know. The caller still validates the result (apply_overrides): a value the peer
    accepted may break a rule here, and then nothing is adopted.

    Raises ValueError for settings of another `SETTINGS_FORMAT`.
    """
    if peer.get("format") != SETTINGS_FORMAT:
        raise ValueError(f"the peer's settings are format {peer.get('format')!r}, this head reads "
                         f"format {SETTINGS_FORMAT}")
    mine = cluster_wide(file_config)
    new = copy.deepcopy(dict(overrides))
    new_pending = {table: {int(i): dict(row) for i, row in rows.items()} for table, rows in (pending or {}).items()}
    not_expressible = [key for key in differences(mine, peer)
                       if not any(_under(strip_rows(key), prefix) for prefix in _EXPRESSIBLE)]

    if "timing" in peer:
        patch, unknown = _patch(section(mine, "timing"), section(peer, "timing"), TimingConfig)
        not_expressible += [f"timing.{key}" for key in unknown]
        _put(new, "timing", patch)

    email = section(section(peer, "notify"), "email")
    if "to" in email:
        to = list(email["to"])
        if to == list(file_config.notify.email.to):
            new.pop("notify_email", None)
        elif len(to) <= 1:
            new["notify_email"] = to[0] if to else ""
        else:
            not_expressible.append("notify.email.to")  # haoscarNotifyEmail holds one address

    for table in ("services", "aliases"):
        if table in peer:
            rows, unknown = _rows(mine.get(table, []), peer[table], table)
            not_expressible += unknown
            _put(new, table, rows)
            for index in {row.get("index") for row in peer[table] if isinstance(row, Mapping)}:
                new_pending.get(table, {}).pop(index, None)
    new_pending = {table: rows for table, rows in new_pending.items() if rows}
    return Adoption(overrides=new, pending=new_pending, not_expressible=sorted(set(not_expressible)))


def after_adoption(peer: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The peer's cluster-wide settings once it has adopted `settings` (a change this head
    proposes): what the overrides carry (every timing, the service and alias rows, one
    recipient or none) becomes `settings`'s, the rest stays the peer's (its file's)."""
    out = copy.deepcopy(dict(peer))
    for key in ("timing", "services", "aliases"):
        if key in settings:
            out[key] = copy.deepcopy(settings[key])
    to = section(section(settings, "notify"), "email").get("to")
    if isinstance(to, list) and len(to) <= 1 and isinstance(out.get("notify"), dict) \
            and isinstance(out["notify"].get("email"), dict):
        out["notify"]["email"]["to"] = list(to)
    return out


def _patch(mine: Mapping[str, Any], theirs: Mapping[str, Any], model: type) -> tuple[dict[str, Any], list[str]]:
    """The peer's values that differ from `mine`, and the keys `model` does not know."""
    known = set(model.model_fields)
    patch = {k: v for k, v in theirs.items() if k in known and k != "index" and mine.get(k, _NOTHING) != v}
    return patch, sorted(k for k in theirs if k not in known)


def _rows(mine: list[dict[str, Any]], theirs: list[Any], table: str) -> tuple[dict[str, Any], list[str]]:
    """Row overrides keyed by index (as strings, as overrides.json keeps them)."""
    model = ServiceConfig if table == "services" else AliasConfig
    file_rows = {row["index"]: row for row in mine}
    peer_rows = {row["index"]: row for row in theirs if isinstance(row, Mapping) and "index" in row}
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for index in sorted(set(file_rows) | set(peer_rows)):
        if index not in peer_rows:
            out[str(index)] = {"deleted": True}
            continue
        patch, extra = _patch(file_rows.get(index, {}), peer_rows[index], model)
        unknown += [f"{table}[{_IDENTITY[table](peer_rows[index])}].{key}" for key in extra]
        if patch:
            out[str(index)] = patch
    return out, unknown


def _put(overrides: dict[str, Any], key: str, value: dict[str, Any]) -> None:
    if value:
        overrides[key] = value
    else:
        overrides.pop(key, None)


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")
