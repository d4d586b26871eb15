"""The daemon's state as one plain dict: what the console, the status socket and a web
page show, and what `haoscar-snmp status --json` prints.

Rules of the shape (`SCHEMA_VERSION` counts its incompatible changes; adding a key is
compatible, renaming or removing one is not):

* only JSON types: dicts, lists, strings, numbers, booleans and None;
* enumerations as the MIB spells them (`active`, `lanA`, `notInService`);
* a time is `{"at": "<ISO 8601 UTC>", "ago_s": <seconds before the snapshot>}`, or None
  when it never happened; durations in seconds (`_s`) or milliseconds (`_ms`), as named;
* tables are lists in index order, each row with its MIB index (`index`);
* `health` is computed here (health.py), so every view judges the cluster alike;
* `membership` (a cluster past two heads: nodes, links, quorum, resources) is there only
  while the membership is watched (members.py).

Built in one pass over tables held in memory: no file, no network. `build` is that pass
as `Work` (slices.py): the big tables go `CHUNK` rows at a time, so a caller on the loop
(`SnapshotSource`, views/source.py) hands the loop back between pieces; `snapshot` runs
it in one go. With 2,000 services and 2,000 LAN interfaces the pass and its JSON take
about 55 ms, in stretches of a few ms on the loop (bench/bench_views.py).
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
from haoscar_snmp.views import members
from haoscar_snmp.views.health import judge
from haoscar_snmp.views.slices import Collect, Work, chunks, drain, encode, rows

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
    return drain(build(state, config, clock, events=events))


def build(state: State, config: Config, clock: Clock, *, events: int = DEFAULT_EVENTS) -> Work[dict[str, Any]]:
    """`snapshot` as work in pieces; raises ValueError at once for a bad `events`."""
    if not 0 <= events <= MAX_EVENTS:
        raise ValueError(f"events must be 0..{MAX_EVENTS}, not {events}")
    return _build(state, config, clock, events, text=False)


def build_json(state: State, config: Config, clock: Clock, *, events: int = DEFAULT_EVENTS) -> Work[str]:
    """The snapshot as compact JSON, in pieces: what `json.dumps(snapshot(...),
    separators=(",", ":"))` gives, but each piece of rows is encoded as soon as it is
    built, so the rows' dicts die young (a whole snapshot of dicts kept alive through a
    sliced build would reach the collector's oldest generation and make its full passes,
    each a stall of tens of milliseconds with thousands of rows, come often)."""
    if not 0 <= events <= MAX_EVENTS:
        raise ValueError(f"events must be 0..{MAX_EVENTS}, not {events}")
    return _json(state, config, clock, events)


def _json(state: State, config: Config, clock: Clock, events: int) -> Work[str]:
    whole = yield from _build(state, config, clock, events, text=True)
    return (yield from encode(whole))


def _build(state: State, config: Config, clock: Clock, events: int, *, text: bool) -> Work[dict[str, Any]]:
    now = clock.time()
    at = Times(now)
    holders = alias_holders(state)
    status, reasons = judge(state, config, holders)
    yield
    out = {
        "schema": SCHEMA_VERSION,
        "generated": {"at": iso(now), "ago_s": 0.0},
        "health": {"status": status, "reasons": reasons},
        "cluster": _cluster(state, config, at),
        "heads": _heads(state, at),
        "heartbeat_paths": _paths(state, at),
        "lans": _lans(state, at),
    }
    out["lan_interfaces"] = yield from _interfaces(state, at, Collect(text))
    out["aliases"] = yield from _aliases(state, holders, Collect(text))
    out["services"] = yield from _services(state, at, Collect(text))
    out["alarms"] = yield from _alarms(state, at, Collect(text))
    out["events"] = yield from _events(state, at, events, Collect(text))
    out["config_sync"] = _config_sync(state, config)
    out["quorum"] = _quorum(state, config, at)
    out["public_reach"] = _public(state, config, at)
    out["performance"] = _performance(state, at)
    yield
    membership = yield from members.part(state, clock, at, text)
    if membership is not None:          # a cluster past two heads (the corosync backend)
        out["membership"] = membership
    out["accounting"] = yield from _accounting(state, Collect(text))
    return out


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


def _interfaces(state: State, at: Times, out: Collect) -> Work[Any]:
    for part in rows(state.lan_ifs):
        out.add(_interface_rows(part, at))
        yield
    return out.result()


def _interface_rows(part: Any, at: Times) -> list[dict[str, Any]]:
    return [{
        "index": index, "node": row.node, "lan": label(row.lan), "name": row.name,
        "address": row.address, "state": label(row.status), "carrier": label(row.carrier),
        "rtt_ms": _ms(row.rtt_us) if row.rtt_us else None,
        "probes_sent": row.probes_sent, "replies": row.replies, "probe_errors": row.probe_errors,
        "last_error": row.last_error, "last_change": at(row.last_change), "source": label(row.source),
    } for (index,), row in part]


def _aliases(state: State, holders: dict[int, str], out: Collect) -> Work[Any]:
    for part in rows(state.aliases):
        out.add([{
            "index": index, "address": row.address, "prefix_length": row.prefix_length,
            "interface": row.interface, "row_status": label(row.row_status),
            "state": label(row.status), "holder": holders.get(index, ""),
            "garp_sent": row.garp_sent, "claimed_by": claim.mac if claim else None,
        } for (index,), row in part for claim in (state.alias_claims.get(row.address),)])
        yield
    return out.result()


def _services(state: State, at: Times, out: Collect) -> Work[Any]:
    job = next((row for row in state.jobs.values() if row.name == "services"), None)
    last_check = at(job.last_run) if job else None
    for part in rows(state.services):
        out.add(_service_rows(part, at, last_check))
        yield
    return out.result()


def _service_rows(part: Any, at: Times, last_check: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [{
        "index": index, "name": row.name, "enabled": row.enabled, "row_status": label(row.row_status),
        "active_only": row.active_only, "check_type": label(row.check_type),
        "state": label(row.status), "rung": label(row.rung), "restarts": row.restarts,
        "restarts_in_window": row.restarts_in_window, "consecutive_failures": row.consec_failures,
        "last_failure": at(row.last_failure), "last_action": label(row.last_action),
        "last_action_time": at(row.last_action_time), "last_reason": row.last_reason,
        "last_check": last_check,
    } for (index,), row in part]


def _alarms(state: State, at: Times, out: Collect) -> Work[Any]:
    for part in rows(state.alarms):
        out.add([{
            "index": index, "severity": enum_label(Severity, row.severity),
            "cause": enum_label(ProbableCause, row.probable_cause),
            "type": enum_label(AlarmType, row.alarm_type), "object": row.subject, "text": row.text,
            "raised": at(row.raised_time), "updated": at(row.last_updated),
        } for (index,), row in part])
        yield
    return out.result()


def _events(state: State, at: Times, count: int, out: Collect) -> Work[Any]:
    """The latest `count` events, newest first."""
    keys = state.events.keys()
    latest = keys[len(keys) - count:][::-1] if count else []
    for part in chunks(latest):
        out.add([{"index": key[0], "time": at(row.time), "type": enum_label(EventType, row.type),
                  "severity": enum_label(Severity, row.severity), "subject": row.subject, "text": row.text}
                 for key in part for row in (state.events[key],)])
        yield
    return out.result()


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


def _accounting(state: State, out: Collect) -> Work[dict[str, Any]]:
    """The headline over the longest window, then each subject's figures: one list per
    figure, aligned with `windows` (compact: thousands of subjects times the windows).
    A subject's rows are consecutive (keys in index order), so each piece of rows hands
    on the subjects it completed."""
    h = state.acct_headline
    windows = state.acct_windows.keys()
    column = {key[0]: n for n, key in enumerate(windows)}
    width = len(windows)
    entry: dict[str, Any] | None = None
    done: list[dict[str, Any]] = []
    for part in rows(state.accounting):
        for (subject, window), row in part:
            if entry is None or entry["index"] != subject:
                entry = {"index": subject, "kind": enum_label(AcctKind, row.kind), "subject": row.subject,
                         "in_outage": row.in_outage, **{name: [None] * width for name in ACCT_FIGURES}}
                done.append(entry)
            at = column.get(window)
            if at is not None:
                entry["availability_ppm"][at] = row.availability_ppm
                entry["mttr_s"][at] = row.mttr_s
                entry["mtbf_s"][at] = row.mtbf_s
                entry["outages"][at] = row.outages
                entry["downtime_s"][at] = row.downtime_s
        out.add(done[:-1])          # the last one may go on in the next piece
        done = done[-1:]
        yield
    out.add(done)
    yield
    return {"headline": {"window": h.window, "availability_ppm": h.availability_ppm,
                         "mttr_s": h.mttr_s, "mtbf_s": h.mtbf_s},
            "windows": [{"name": row.name, "length_s": row.length_s} for row in state.acct_windows.values()],
            "subjects": out.result()}


__all__ = ["DEFAULT_EVENTS", "MAX_EVENTS", "SCHEMA_VERSION", "alias_holders", "build", "build_json", "enum_label", "iso", "label",
           "role_of", "snapshot"]
