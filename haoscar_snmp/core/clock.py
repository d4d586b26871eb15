"""Time sources, injected everywhere so that logic can be tested on a fake clock.

Two clocks matter: the monotonic clock measures intervals (dead times, durations) and
never jumps; the wall clock stamps events for humans and the NMS (DateAndTime).
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What every component that reads time depends on."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def time(self) -> float:
        """Seconds since the epoch (wall clock)."""


class SystemClock:
    """The real clocks of this machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when a test says so; its wall clock can also be stepped
    (as NTP or an operator would) while the monotonic clock goes on undisturbed."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 1000.0

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._mono += seconds
        self._wall += seconds

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock only, forward or back; the monotonic clock does not move."""
        self._wall += seconds
