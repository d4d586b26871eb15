"""The snapshot as the loop's views ask for it: JSON rendered in slices, one render at a
time, and a cheap marker that says whether the state it shows may have changed.

    SnapshotSource(state, config, clock)
        source()             the snapshot as a dict, in one go (for callers off the loop)
        await source.json()  compact JSON, built in slices (slices.py); requests that find
                             a build for the same number of events under way share it
        await source.marker()  a number that changes when anything the snapshot shows
                             changes (apart from the times relative to now)

The marker is what the web panel's live feed polls: hashing the rows the snapshot reads
costs a fraction of building and encoding the snapshot (2,000 services and interfaces:
about 12 ms against about 55, both in slices; bench/bench_views.py), so an unchanged
state costs no build at all. It hashes
the rows' fields, not a version counter, because some writers change rows in place
(a service's row is updated by its monitor without a `put`); a new event adds a row to the
history, which the marker counts. `MARKED` lists the state's parts that the snapshot (and
its health judgement) reads; a unit test checks it against what a snapshot really reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.state import State, Table
from haoscar_snmp.views.slices import CHUNK, Pacer, Shared, Work, rows
from haoscar_snmp.views.snapshot import DEFAULT_EVENTS, build_json, snapshot

# The parts of `State` that a snapshot reads; `events` is counted (its rows never change).
MARKED = ("cluster", "heads", "hb_paths", "peer", "links", "hb_fenced", "hb_process", "quorum", "alias_claims",
          "lan_ifs", "public_targets", "public_reach", "lans", "aliases", "services", "alarms",
          "accounting", "acct_windows", "acct_headline", "perf_durations", "perf_hb_paths", "loop",
          "config_sync", "service_unfit", "peer_lans_down",
          "membership", "cluster_nodes", "cluster_links", "resources")
# Read but marked otherwise: the history's length and last index; of the jobs, only when
# the service checks last ran.
COUNTED = ("events", "event_last_index", "jobs")


def _row(row: Any) -> int:
    """A row's fields as one hash (a row with an unhashable field: its text's)."""
    fields = getattr(row, "__dict__", None)
    try:
        return hash(tuple(fields.values()) if fields is not None else row)
    except TypeError:
        return hash(repr(row))


def mark(state: State, config: Config) -> Work[int]:
    """The marker, in pieces of `CHUNK` rows."""
    checked = tuple(row.last_run for row in state.jobs.values() if row.name == "services")
    parts: list[int] = [id(config), len(state.events), state.event_last_index, hash(checked)]
    for name in MARKED:
        value = getattr(state, name)
        if isinstance(value, Table):
            parts.append(len(value))
            for part in rows(value, CHUNK * 4):
                parts.append(hash(tuple([hash(key) ^ _row(row) for key, row in part])))
                yield
        elif isinstance(value, dict):
            parts.append(hash(tuple((key, _row(row)) for key, row in value.items())))
        else:
            parts.append(_row(value))
    return hash(tuple(parts))


class SnapshotSource:
    def __init__(self, state: State, config: Callable[[], Config], clock: Clock, pacer: Pacer | None = None) -> None:
        self.state = state
        self.config = config
        self.clock = clock
        self.pacer = pacer or Pacer()
        self._json: Shared[str] = Shared()
        self._marks: Shared[int] = Shared()

    def __call__(self) -> dict[str, Any]:
        return snapshot(self.state, self.config(), self.clock)

    async def json(self, events: int = DEFAULT_EVENTS) -> str:
        """Raises ValueError for a bad `events` (0..500), before any work."""
        work = build_json(self.state, self.config(), self.clock, events=events)
        return await self._json.get(events, lambda: self.pacer.run(work))

    async def marker(self) -> int:
        return await self._marks.get(None, lambda: self.pacer.run(mark(self.state, self.config())))


__all__ = ["COUNTED", "MARKED", "SnapshotSource", "mark"]
