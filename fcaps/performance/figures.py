"""Takeover durations, from events: failover and failback, last, min, max, mean, count,
and how many fell in each of a fixed set of buckets (a distribution an NMS can draw).

What a duration measures is decided where the takeover runs (fcaps/fault/role/effects.py),
on the daemon's monotonic clock, and carried by the event as `duration_ms`:

* a **failover** (FAILOVER_COMPLETED) runs from the moment this head's heartbeat process
  declared the peer silent (the peer's dead time ran out on every path) to the moment
  the first announcement burst (gratuitous ARP, unsolicited neighbour advertisements)
  for every alias has been sent; the dead time itself is not part of it;
* a **failback** (FAILBACK_COMPLETED) runs from this head's decision to take back the
  aliases the standby handed over to the end of the same first burst.

An event-bus subscriber, so the role state machine only reports a completed takeover
and this module alone turns it into figures. Sole writer of `state.perf_durations`,
`state.perf_buckets` and the failover fields of `state.perf`.
"""

from __future__ import annotations

from haoscar_snmp.core.events import Event, EventType, is_counter_reset
from haoscar_snmp.core.state import BucketRow, DurationKind, DurationRow, State

# Upper bounds of the buckets, in milliseconds; the last bucket has none (shown as the
# largest Unsigned32). Fixed: an NMS compares distributions across heads and releases.
BUCKET_BOUNDS_MS = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)
NO_BOUND = 4294967295

KINDS = {EventType.FAILOVER_COMPLETED: DurationKind.FAILOVER,
         EventType.FAILBACK_COMPLETED: DurationKind.FAILBACK}


def bucket_of(ms: int) -> int:
    """The bucket number (from 1) of a duration: the first whose upper bound is >= it."""
    for number, upper in enumerate(BUCKET_BOUNDS_MS, start=1):
        if ms <= upper:
            return number
    return len(BUCKET_BOUNDS_MS) + 1


class DurationFigures:
    """The event subscriber; the rows of both kinds and all buckets exist from the start."""

    def __init__(self, state: State) -> None:
        self.state = state
        for kind in DurationKind:
            state.perf_durations.put((int(kind),), DurationRow())
            lower = 0
            for number, upper in enumerate((*BUCKET_BOUNDS_MS, NO_BOUND), start=1):
                state.perf_buckets.put((int(kind), number), BucketRow(lower, upper))
                lower = upper

    def __call__(self, event: Event) -> None:
        if is_counter_reset(event):
            self._reset()
            return
        kind = KINDS.get(event.type)
        if kind is None or "duration_ms" not in event.data:
            return
        ms = max(int(event.data["duration_ms"]), 0)
        row = self.state.perf_durations[(int(kind),)]
        row.count += 1
        row.last_ms = ms
        row.min_ms = ms if row.count == 1 else min(row.min_ms, ms)
        row.max_ms = max(row.max_ms, ms)
        row.total_ms += ms
        row.mean_ms = round(row.total_ms / row.count)
        self.state.perf_buckets[(int(kind), bucket_of(ms))].count += 1
        if kind == DurationKind.FAILOVER:
            p = self.state.perf
            p.failover_last_ms, p.failover_min_ms = row.last_ms, row.min_ms
            p.failover_max_ms, p.failover_mean_ms = row.max_ms, row.mean_ms

    def _reset(self) -> None:
        for row in self.state.perf_durations.values():
            row.count = row.last_ms = row.min_ms = row.max_ms = row.mean_ms = row.total_ms = 0
        for bucket in self.state.perf_buckets.values():
            bucket.count = 0
        p = self.state.perf
        p.failover_last_ms = p.failover_min_ms = p.failover_max_ms = p.failover_mean_ms = 0
