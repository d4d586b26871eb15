"""Probe a list of targets once per interval, spread evenly across it.

`Sweep` sends in batches of at most BATCH (one `loop.call_at` callback each), so 2,000
targets do not leave in one burst that holds the event loop and queues 2,000 replies at
once. It only asks a prober (fault/lan/icmp.py) to `probe(address)`; what comes of the
probes is the prober's.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Protocol

from haoscar_snmp.core.bug import BUG_MARKER

log = logging.getLogger("fcaps.fault.lan.icmp")     # it logs as the ICMP prober it drives


class Probe(Protocol):
    """What a sweep needs of a prober."""

    def probe(self, address: str) -> None: ...


BATCH = 10      # probes per callback: a send costs 5 to 40 us, so a batch stays well under 1 ms


def batches(count: int) -> int:
    """How many callbacks one interval's `count` probes are spread over: as few as keep
    each at BATCH probes or fewer (every wake-up of the loop costs, too)."""
    return max(1, math.ceil(count / BATCH))


class Sweep:
    """Probe every target once per interval, spread evenly across it.

    Batch k of a cycle is due at cycle start + k * interval / batches, on the loop's
    monotonic clock; each batch is one callback. A loop that runs late sends the batches
    that are due one per callback, not all at once; one that fell a whole interval behind
    starts the next cycle afresh (counted in `restarts`) instead of catching up in a burst.
    A new list of targets takes effect at the next cycle.
    """

    def __init__(self, prober: Probe, interval: float, targets: Sequence[str] = ()) -> None:
        if interval <= 0:
            raise ValueError("a sweep needs a positive interval")
        self.prober = prober
        self.interval = interval
        self.cycles = 0
        self.restarts = 0
        self._targets = list(targets)
        self._next: list[str] | None = None
        self._batches = batches(len(self._targets))
        self._index = 0
        self._start = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def set_targets(self, targets: Sequence[str]) -> None:
        self._next = list(targets)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._index = 0
        self._handle = self._loop.call_at(self._start, self._run)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        assert self._loop is not None
        count = len(self._targets)
        first = self._index * count // self._batches
        last = (self._index + 1) * count // self._batches
        for address in self._targets[first:last]:
            try:
                self.prober.probe(address)
            except Exception:       # one address's trouble is not the others'
                log.exception("the ICMP sweep failed on %s; %s", address, BUG_MARKER)
        self._index += 1
        if self._index >= self._batches:
            self._next_cycle(self._loop.time())
        self._handle = self._loop.call_at(
            self._start + self._index * self.interval / self._batches, self._run)

    def _next_cycle(self, now: float) -> None:
        self.cycles += 1
        self._index = 0
        self._start += self.interval
        if self._next is not None:
            self._targets, self._next = self._next, None
            self._batches = batches(len(self._targets))
        if now - self._start > self.interval:
            self._start = now
            self.restarts += 1
