"""Keeping the collector's full passes short: the long-lived heap moved out of its way.

A full (generation 2) collection walks every tracked object that is not frozen, holding
the event loop for as long (role decisions, takeovers, the answers to the heartbeat
process wait). The objects that live as long as the daemon (MIB trees, models, the rows
of thousands of services and LAN interfaces, the accounting rows) are built at start-up
and by the first cycles of the jobs, and again after a reload. `HeapSettler` collects and
then freezes them (`gc.freeze`) at those moments, so that a full collection walks only
what was made since.

Rules:

* `settle_now` at start; `HeapSettler.start` arms one more pass SETTLE_S later on the
  daemon's clock (the jobs' first cycles have then built their rows); a reload arms it
  again (the new configuration's rows are built by the next cycles).
* Collect before freezing: garbage found then is freed, not frozen.
* Frozen objects are still freed by reference counting; only frozen *cyclic* garbage
  stays. A reload can turn rows made for the old configuration into such garbage, so
  the pass after a reload unfreezes everything first and collects the whole heap once
  (one pause of a start-up collection's length, SETTLE_S after the last configuration
  change, a reload or a SET: about 40 to 50 ms for 84,000 objects with 2,000 services
  and 2,000 interfaces in one process here; the heartbeat process's watchdog waits 1 s):
  what the old configuration left in cycles is freed, and the frozen part does not grow
  from reload to reload.
* A pass is logged at DEBUG only (its duration and counts).
"""

from __future__ import annotations

import gc
import logging
import time

from .clock import Clock, Timer

log = logging.getLogger(__name__)

SETTLE_S = 30.0     # after start or a reload: the jobs' first cycles have built their rows


def settle_now(why: str, *, unfreeze: bool = False) -> int:
    """Collect, then freeze what is left (after unfreezing everything, if asked).
    Returns the number of frozen objects."""
    started = time.perf_counter()
    if unfreeze:
        gc.unfreeze()
    collected = gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("heap settled (%s): %d collected, %d frozen, in %.1f ms", why, collected, frozen,
              (time.perf_counter() - started) * 1000)
    return frozen


class HeapSettler:
    """One settling pass SETTLE_S after start and after every reload (the latest wins)."""

    def __init__(self, clock: Clock, delay: float = SETTLE_S) -> None:
        self.clock = clock
        self.delay = delay
        self.passes = 0
        self._timer: Timer | None = None
        self._unfreeze = False

    def start(self) -> None:
        self._arm(unfreeze=False)

    def reloaded(self, _config: object = None) -> None:
        """A store.on_change callback: the reload's rows are built by the next cycles."""
        self._arm(unfreeze=True)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, unfreeze: bool) -> None:
        self.stop()
        self._unfreeze = self._unfreeze or unfreeze     # a pending reload's unfreeze is kept
        self._timer = self.clock.call_later(self.delay, self._settle)

    def _settle(self) -> None:
        self._timer = None
        unfreeze, self._unfreeze = self._unfreeze, False
        settle_now("reloaded" if unfreeze else "settled after start", unfreeze=unfreeze)
        self.passes += 1
