"""How late the daemon's event loop runs its timers: the one figure that says whether
the agent keeps up (SNMP requests, role decisions and takeovers, service checks all
share the loop; the heartbeats run in a process of their own).

A timer is armed every `PERIOD_S` on the loop's monotonic clock; the lag is how long
after its due time it runs. `state.loop.lag_us` is the worst lag of the last
`WINDOW_S` seconds (kept per second, so an old spike ages out), `lag_max_us` the worst
since the start or the last resetCounters.
"""

from __future__ import annotations

import asyncio
from collections import deque

from haoscar_snmp.core.events import Event, is_counter_reset
from haoscar_snmp.core.state import State

PERIOD_S = 0.1
WINDOW_S = 10


class LoopLag:
    """Sole writer of `state.loop`."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._seconds: deque[int] = deque([0], maxlen=WINDOW_S)   # worst lag of each recent second
        self._ticks = 0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + PERIOD_S
        self._handle = loop.call_at(self._due, self._tick, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def on_event(self, event: Event) -> None:
        if is_counter_reset(event):
            self.state.loop.lag_max_us = 0

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        lag = max(0, int((now - self._due) * 1_000_000))
        self._seconds[-1] = max(self._seconds[-1], lag)
        self._ticks += 1
        if self._ticks % round(1 / PERIOD_S) == 0:
            self._seconds.append(0)
        figures = self.state.loop
        figures.lag_us = max(self._seconds)
        figures.lag_max_us = max(figures.lag_max_us, lag)
        self._due = now + PERIOD_S          # from now: a stall is measured once, not repaid
        self._handle = loop.call_at(self._due, self._tick, loop)
