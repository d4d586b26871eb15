"""The daemon's state as one plain dict: what the console, the status socket and a web
page show, and what `haoscar-snmp status --json` prints.

Rules of the shape (`SCHEMA_VERSION` counts its incompatible changes; adding a key is
compatible, renaming or removing one is not):

* only JSON types: dicts, lists, strings, numbers, booleans and None;
* enumerations as the MIB spells them (`active`, `lanA`, `notInService`);
* a time is `{"at": "<ISO 8601 UTC>", "ago_s": <seconds before the snapshot>}`, or None
  when it never happened; durations in seconds (`_s`) or milliseconds (`_ms`), as named;
* tables are lists in index order, each row with its MIB index (`index`);
* `health` is computed here (health.py), so every view judges the cluster alike.

Built in one pass over tables held in memory: no file, no network, no await. With 2,000
services and 2,000 LAN interfaces it takes a few milliseconds (bench/bench_views.py).
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from fcaps.fault.alarms import AlarmType, ProbableCause
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import EventType, Severity
from haoscar_snmp.core.state import (
    AcctKind,
    AliasStatus,
    DurationKind,
    HeadStatus,
    Lan,
    State,
    camel,
)
from haoscar_snmp.views.health import judge

SCHEMA_VERSION = 1
DEFAULT_EVENTS = 20     # the last events a snapshot carries
MAX_EVENTS = 500        # at most (the history table keeps more; `report` reads it all)


# Enumeration member -> its MIB spelling, one dict per enumeration (IntEnum members of
# different enumerations compare equal when their values are: they must not share a dict).
_LABELS: dict[type, dict[int, str]] = {}


def label(member: Any) -> str:
    """An enumeration member as the MIB spelling (LAN_A -> lanA); unknown ints as text."""
    names = _LABELS.get(type(member))
    if names is None:
        if not isinstance(member, enum.Enum):
            return str(member)
        names = _LABELS[type(member)] = {int(m): camel(m.name) for m in type(member)}
    return names[member]


def enum_label(kind: Any, value: int) -> str:
    """A value of enumeration `kind` as the MIB spells it; a value it lacks as text."""
    names = _LABELS.get(kind)
    if names is None:
        names = _LABELS[kind] = {int(m): camel(m.name) for m in kind}
    return names.get(value) or str(value)


class Times:
    """Turns the state's wall-clock stamps into {"at", "ago_s"} relative to one `now`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self, when: float) -> dict[str, Any] | None:
        if not when:
            return None
        return {"at": iso(when), "ago_s": round(max(0.0, self.now - when), 3)}


def iso(when: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with milliseconds: 2026-12-07T21:40:42.123Z."""
    return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(us: int) -> float:
    return round(us / 1000.0, 3)


def snapshot(state: State, config: Config, clock: Clock, *, events: int = DEFAULT_EVENTS) -> dict[str, Any]:
    """The whole picture at `clock.time()`. `events`: how many of the latest events (0..500)."""
    if not 0 <= events <= MAX_EVENTS:
        raise ValueError(f"events must be 0..{MAX_EVENTS}, not {events}")
    now = clock.time()
    at = Times(now)
    holders = alias_holders(state)
    status, reasons = judge(state, config, holders)
    return {
        "schema": SCHEMA_VERSION,
        "generated": {"at": iso(now), "ago_s": 0.0},
        "health": {"status": status, "reasons": reasons},
        "cluster": _cluster(state, config, at),
        "heads": _heads(state, at),
        "heartbeat_paths": _paths(state, at),
        "lans": _lans(state, at),
        "lan_interfaces": _interfaces(state, at),
        "aliases": _aliases(state, holders),
        "services": _services(state, at),
        "alarms": _alarms(state, at),
        "events": _events(state, at, events),
        "config_sync": _config_sync(state, config),
        "quorum": _quorum(state, config, at),
        "public_reach": _public(state, config, at),
        "performance": _performance(state, at),
        "accounting": _accounting(state),
    }


def alias_holders(state: State) -> dict[int, str]:
    """Alias index -> the head that holds it ("" = none): this head's rows say what it
    holds; the peer's heartbeats say what the peer holds (so the standby knows too)."""
    peer = state.peer
    peer_holds = set(peer.aliases) if peer is not None and peer.heard else set()
    out: dict[int, str] = {}
    for (index,), row in state.aliases.items():
        if row.status == AliasStatus.HELD and row.owner:
            out[index] = row.owner
        elif peer is not None and row.address in peer_holds:
            out[index] = peer.name
        else:
            out[index] = ""
    return out


def _cluster(state: State, config: Config, at: Times) -> dict[str, Any]:
    c = state.cluster
    local = next((row for row in state.heads.values() if row.is_local), None)
    started = c.agent_start_time
    return {
        "name": c.name or config.cluster.name,
        "status": label(c.status),
        "this_head": c.local_head or config.cluster.local_head,
        "this_head_state": label(local.status) if local else "unknown",
        "this_head_role": role_of(local.status) if local else "unknown",
        "active_head": c.active_head,
        "agent_version": c.agent_version,
        "started": at(started),
        "uptime_s": round(max(0.0, at.now - started), 3) if started else 0.0,
        "lan_poller": c.lan_poller,
        "lan_state": c.lan_state,
    }


def role_of(status: HeadStatus) -> str:
    """What a head does now, in one word: active (it holds or takes the aliases),
    standby, failed or unknown (starting, not heard)."""
    if status in (HeadStatus.ACTIVE, HeadStatus.TAKING_OVER):
        return "active"
    if status in (HeadStatus.STANDBY, HeadStatus.RELEASING):
        return "standby"
    if status == HeadStatus.FAILED:
        return "failed"
    return "unknown"


def _heads(state: State, at: Times) -> list[dict[str, Any]]:
    return [{
        "index": index, "name": row.name, "this_head": row.is_local,
        "role": role_of(row.status), "state": label(row.status),
        "preferred_role": label(row.preferred_role),
        "last_heartbeat": None if row.is_local else at(row.last_heartbeat),
        "role_changes": row.role_changes,
        "public_state": label(row.public_state), "public_reached": row.public_reached,
    } for (index,), row in state.heads.items()]


def _paths(state: State, at: Times) -> list[dict[str, Any]]:
    heads = {index: row.name for (index,), row in state.heads.items()}
    out = []
    for key, row in state.hb_paths.items():
        perf = state.perf_hb_paths.get(key)
        out.append({
            "head": heads.get(key[0], str(key[0])), "lan": enum_label(Lan, key[1]),
            "state": label(row.status),
            "rtt_ms": _ms(row.rtt_us) if row.rtt_us else None,
            "rtt_mean_ms": _ms(perf.rtt_mean_us) if perf and perf.replies else None,
            "jitter_ms": _ms(perf.jitter_us) if perf and perf.replies else None,
            "sent": row.sent, "received": row.received, "lost": row.lost,
            "loss_ratio": round(row.lost / row.sent, 6) if row.sent else None,
            "rejected": row.rejected, "last_heard": at(row.last_heard),
        })
    return out


def _lans(state: State, at: Times) -> list[dict[str, Any]]:
    return [{"lan": enum_label(Lan, lan), "state": label(row.status), "interfaces": row.interfaces,
             "up": row.up, "down": row.down, "unknown": row.unknown, "last_change": at(row.last_change)}
            for (lan,), row in state.lans.items()]


def _interfaces(state: State, at: Times) -> list[dict[str, Any]]:
    return [{
        "index": index, "node": row.node, "lan": label(row.lan), "name": row.name,
        "address": row.address, "state": label(row.status), "carrier": label(row.carrier),
        "rtt_ms": _ms(row.rtt_us) if row.rtt_us else None,
        "probes_sent": row.probes_sent, "replies": row.replies, "probe_errors": row.probe_errors,
        "last_error": row.last_error, "last_change": at(row.last_change), "source": label(row.source),
    } for (index,), row in state.lan_ifs.items()]


def _aliases(state: State, holders: dict[int, str]) -> list[dict[str, Any]]:
    out = []
    for (index,), row in state.aliases.items():
        claim = state.alias_claims.get(row.address)
        out.append({
            "index": index, "address": row.address, "prefix_length": row.prefix_length,
            "interface": row.interface, "row_status": label(row.row_status),
            "state": label(row.status), "holder": holders.get(index, ""),
            "garp_sent": row.garp_sent, "claimed_by": claim.mac if claim else None,
        })
    return out


def _services(state: State, at: Times) -> list[dict[str, Any]]:
    job = next((row for row in state.jobs.values() if row.name == "services"), None)
    last_check = at(job.last_run) if job else None
    return [{
        "index": index, "name": row.name, "enabled": row.enabled, "row_status": label(row.row_status),
        "active_only": row.active_only, "check_type": label(row.check_type),
        "state": label(row.status), "rung": label(row.rung), "restarts": row.restarts,
        "restarts_in_window": row.restarts_in_window, "consecutive_failures": row.consec_failures,
        "last_failure": at(row.last_failure), "last_action": label(row.last_action),
        "last_action_time": at(row.last_action_time), "last_reason": row.last_reason,
        "last_check": last_check,
    } for (index,), row in state.services.items()]


def _alarms(state: State, at: Times) -> list[dict[str, Any]]:
    return [{
        "index": index, "severity": enum_label(Severity, row.severity),
        "cause": enum_label(ProbableCause, row.probable_cause),
        "type": enum_label(AlarmType, row.alarm_type), "object": row.subject, "text": row.text,
        "raised": at(row.raised_time), "updated": at(row.last_updated),
    } for (index,), row in state.alarms.items()]


def _events(state: State, at: Times, count: int) -> list[dict[str, Any]]:
    """The latest `count` events, newest first."""
    keys = state.events.keys()
    out = []
    for key in reversed(keys[len(keys) - count:] if count else []):
        row = state.events[key]
        out.append({"index": key[0], "time": at(row.time), "type": enum_label(EventType, row.type),
                    "severity": enum_label(Severity, row.severity), "subject": row.subject,
                    "text": row.text})
    return out


def _config_sync(state: State, config: Config) -> dict[str, Any]:
    s = state.config_sync
    return {"state": label(s.status), "peer": config.peer_head_config is not None,
            "version": s.version, "version_head": s.version_head, "digest": s.digest,
            "peer_version": s.peer_version, "peer_version_head": s.peer_version_head,
            "differing": s.differing, "pushes": s.pushes, "adoptions": s.adoptions,
            "refusals": s.refusals}


def _quorum(state: State, config: Config, at: Times) -> dict[str, Any]:
    q = state.quorum
    return {"configured": bool(config.failover.quorum_command), "ok": q.ok,
            "checked": at(q.checked), "failures": q.failures}


def _public(state: State, config: Config, at: Times) -> dict[str, Any]:
    p = state.public_reach
    return {"targets": [{"head_index": key[0], "index": key[1], "address": row.address,
                         "state": label(row.status), "rtt_ms": _ms(row.rtt_us) if row.rtt_us else None,
                         "last_change": at(row.last_change)}
                        for key, row in state.public_targets.items()],
            "watched": p.watched, "reached": p.reached, "lost": p.lost,
            "configured": len(config.failover.public_targets)}


def _performance(state: State, at: Times) -> dict[str, Any]:
    c = state.cluster
    durations = {}
    for (kind,), row in state.perf_durations.items():
        durations[enum_label(DurationKind, kind)] = {
            "count": row.count, "last_ms": row.last_ms, "min_ms": row.min_ms,
            "max_ms": row.max_ms, "mean_ms": row.mean_ms}
    return {"failovers": c.failover_count, "last_failover": at(c.last_failover_time),
            "last_failover_duration_ms": c.last_failover_duration_ms,
            "last_failover_reason": c.last_failover_reason, "durations": durations,
            "loop_lag_ms": _ms(state.loop.lag_us), "loop_lag_max_ms": _ms(state.loop.lag_max_us)}


ACCT_FIGURES = ("availability_ppm", "mttr_s", "mtbf_s", "outages", "downtime_s")


def _accounting(state: State) -> dict[str, Any]:
    """The headline over the longest window, then each subject's figures: one list per
    figure, aligned with `windows` (compact: thousands of subjects times the windows)."""
    h = state.acct_headline
    windows = state.acct_windows.keys()
    column = {key[0]: n for n, key in enumerate(windows)}
    width = len(windows)
    subjects: dict[int, dict[str, Any]] = {}
    for (subject, window), row in state.accounting.items():
        entry = subjects.get(subject)
        if entry is None:
            entry = subjects[subject] = {"index": subject, "kind": enum_label(AcctKind, row.kind),
                                         "subject": row.subject, "in_outage": row.in_outage,
                                         **{name: [None] * width for name in ACCT_FIGURES}}
        n = column.get(window)
        if n is not None:
            entry["availability_ppm"][n] = row.availability_ppm
            entry["mttr_s"][n] = row.mttr_s
            entry["mtbf_s"][n] = row.mtbf_s
            entry["outages"][n] = row.outages
            entry["downtime_s"][n] = row.downtime_s
    return {"headline": {"window": h.window, "availability_ppm": h.availability_ppm,
                         "mttr_s": h.mttr_s, "mtbf_s": h.mtbf_s},
            "windows": [{"name": row.name, "length_s": row.length_s} for row in state.acct_windows.values()],
            "subjects": list(subjects.values())}


__all__ = ["DEFAULT_EVENTS", "MAX_EVENTS", "SCHEMA_VERSION", "alias_holders", "enum_label", "iso", "label", "role_of",
           "snapshot"]
