"""Performance figures that follow from events: failover durations (last, min, max, mean).

An event-bus subscriber, so the role state machine only reports a completed failover and
this module alone turns it into figures. Sole writer of the failover fields of
`state.perf` (the heartbeat thread writes the round-trip fields).
"""

from __future__ import annotations

from haoscar_snmp.core.events import Event, EventType
from haoscar_snmp.core.state import PerfState, State


class FailoverFigures:
    def __init__(self, state: State) -> None:
        self.perf: PerfState = state.perf
        self.count = 0

    def __call__(self, event: Event) -> None:
        if event.type != EventType.FAILOVER_COMPLETED or "duration_ms" not in event.data:
            return
        ms = int(event.data["duration_ms"])
        p = self.perf
        self.count += 1
        p.failover_last_ms = ms
        p.failover_min_ms = ms if self.count == 1 else min(p.failover_min_ms, ms)
        p.failover_max_ms = max(p.failover_max_ms, ms)
        p.failover_mean_ms = int(p.failover_mean_ms + (ms - p.failover_mean_ms) / self.count)
