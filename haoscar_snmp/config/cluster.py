"""One configuration for the settings both heads must share: what they are, and how to compare them.

Two heads that disagree on a cluster-wide setting misbehave together even when each is
valid alone: a head that beats every 5 s next to one that declares a peer dead after 3 s
fails over for nothing. This module is the pure layer of the replicated configuration:

    scope(key)                          -> Scope        (every key: cluster-wide or per-head)
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
import enum
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from haoscar_snmp.config.schema import AliasConfig, Config, ServiceConfig, TimingConfig

# Bumped when the shape of `cluster_wide()` changes, so heads running different releases
# do not take each other's settings for their own (apply_cluster_wide refuses another format).
SETTINGS_FORMAT = 1


class Scope(enum.StrEnum):
    CLUSTER_WIDE = "cluster-wide"   # must be equal on both heads; exchanged, digested, adopted
    PER_HEAD = "per-head"           # this head's own; never leaves it


# Every configuration key is under exactly one entry of these two lists; the longest
# entry a key is under decides (a test walks the schema to keep it so). A table is
# listed by its name ("services"), its columns as "services.check".
CLUSTER_WIDE_KEYS = (
    # Both heads must belong to the same cluster and describe the same pair: the same
    # names, preferred roles and addresses (a head beats to the addresses its own file
    # gives for the other, and two files that each make their own head primary fight
    # over failback).
    "cluster.name",
    "heads",
    # What the LAN poller watches and how it judges: every head polls every interface,
    # and a role change hands the reporting to the other head, which must judge alike.
    "interfaces",
    "nodes",
    "lan",
    # What the active head holds and checks: after a failover the other head must hold
    # the same addresses and watch the same services with the same recovery policy. An
    # alias's interface is one name for both heads (the schema and haoscarAliasInterface
    # have one column), so both heads must name their public interface alike.
    "aliases",
    "services",
    # Every timing: heartbeat interval against the other head's dead time, failback
    # policy, gratuitous ARP, the LAN and service defaults. Differing timings are what
    # this module exists to prevent.
    "timing",
    # The heads must send to the port the other listens on, and both or neither on the
    # public LAN (one that hears the other there while the other does not hear it would
    # take over during a private-LAN partition).
    "heartbeat.port",
    "heartbeat.public_path",
    # The accusation rule is one decision taken by the pair: the standby accuses, the
    # active head hands over.
    "failover.lan_failure_is_head_failure",
    # The heads compare what each reaches of the same public targets, by position in the
    # list (the heartbeats carry a mask over it), and judge them alike.
    "failover.public_targets",
    "failover.public_probe_interval_ms",
    "failover.public_rise",
    "failover.public_fall",
    "failover.public_hold_down_ms",
    # Whether the operator is told, and who: mail goes from whichever head reports.
    "notify.email.enabled",
    "notify.email.to",
)
PER_HEAD_KEYS = (
    # Which head this is and where it keeps its state: local by definition.
    "cluster.local_head",
    "cluster.state_dir",
    # The heartbeat key's path is local. The key bytes must be equal, but they are never
    # exchanged, digested or hashed: every authenticated heartbeat already proves the
    # heads share a key (and during a rotation they legitimately hold two), and an
    # unkeyed hash of the key would give an eavesdropper something to guess against.
    "heartbeat.key_file",
    "heartbeat.key",
    # The fence command powers off the *other* head (its BMC), so it differs by nature;
    # the quorum command tests this head's own reachability; their timeout and interval
    # go with them.
    "failover.fence_command",
    "failover.quorum_command",
    "failover.command_timeout_ms",
    "failover.quorum_interval_ms",
    # The SNMP engine is each head's own: its listeners and engine ID must differ,
    # sysName/Contact/Location describe the machine, and access (communities, USM users,
    # v2c write) and notification targets may legitimately differ per head (keys are
    # rotated one head at a time; a head may reach the NMS by another route). All of it
    # is restart-only, so it could not be adopted at run time anyway.
    "snmp",
    # How this head's mail leaves it: its relay, credentials, CA file, sender, retries
    # and queue (a head may use a relay on itself).
    "notify.email.smtp_host",
    "notify.email.smtp_port",
    "notify.email.security",
    "notify.email.ca_file",
    "notify.email.username",
    "notify.email.password_file",
    "notify.email.from",
    "notify.email.timeout_ms",
    "notify.email.retries",
    "notify.email.retry_delay_ms",
    "notify.email.max_per_hour",
    "notify.email.queue_size",
    # How this head's informs to its own notification targets (per head, above) are
    # resynchronised after they were lost.
    "notify.inform_resync",
    "notify.resync_interval_ms",
    # Logging is about this machine's journal.
    "log",
    # Each head keeps its own outage ledger, from what it saw.
    "accounting",
    # The web panel is each head's own: its listener, certificate, users and sessions
    # (an operator may open one head's panel only, or give the heads other users).
    "web",
)


def scope(key: str) -> Scope:
    """The scope of a dotted key ("timing.garp_count", "services[pbs].check" or
    "services.check"). Raises KeyError for a key in neither list."""
    found = _scope_of(_strip_rows(key))
    if found is None:
        raise KeyError(f"{key}: not classified as cluster-wide or per-head (haoscar_snmp/config/cluster.py)")
    return found


@functools.cache
def _scope_of(bare: str) -> Scope | None:
    best: tuple[int, Scope] | None = None
    for kind, prefixes in ((Scope.CLUSTER_WIDE, CLUSTER_WIDE_KEYS), (Scope.PER_HEAD, PER_HEAD_KEYS)):
        for prefix in prefixes:
            if _under(bare, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), kind)
    return best[1] if best else None


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
                       if not any(_under(_strip_rows(key), prefix) for prefix in _EXPRESSIBLE)]

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


def _strip_rows(key: str) -> str:
    """"services[pbs].check" -> "services.check"."""
    while "[" in key:
        start, end = key.index("["), key.index("]")
        key = key[:start] + key[end + 1:]
    return key


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")
