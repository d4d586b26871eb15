"""Time sources, injected everywhere so that logic can be tested on a fake clock.

Two clocks matter: the monotonic clock measures intervals (dead times, durations) and
never jumps; the wall clock stamps events for humans and the NMS (DateAndTime).

A component given a `Clock` reads time only from it and also waits only on it: its
timers (`call_at`, `call_later`) and its sleeps (`sleep`) go through the same object.
A due time computed from `monotonic()` is therefore always handed back to the clock it
came from, never to the event loop, whose clock may be another one (a test's fake clock
starts wherever the test says; the loop's starts near the machine's boot). Timeouts
that bound real I/O (a subprocess, a socket, a worker thread) are the exception: they
stay on the loop's clock, as durations, because only real time makes real work finish.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Protocol


class Timer(Protocol):
    """A timer armed on a clock: what its owner needs to call it off."""

    def cancel(self) -> None:
        """Do not run the callback (nothing happens if it already ran)."""

    def cancelled(self) -> bool:
        """Whether `cancel` was called."""


class Clock(Protocol):
    """What every component that reads time, or waits for it, depends on."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def time(self) -> float:
        """Seconds since the epoch (wall clock)."""

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Run `callback(*args)` on the running event loop once `monotonic()` reaches
        `when` (at once, in the loop's next pass, if it already has)."""

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Run `callback(*args)` on the running event loop `delay` seconds from now."""

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""


class SystemClock:
    """The real clocks of this machine; timers on the running asyncio loop."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        # The loop keeps its own time (time.monotonic() for CPython's loops, but that is
        # the loop's business): hand it the same instant on its own scale. Reading our
        # clock first and the loop's second errs late by the nanoseconds between the two
        # reads, so a callback never finds monotonic() still short of `when`.
        delay = when - self.monotonic()
        return loop.call_at(loop.time() + delay, callback, *args)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
