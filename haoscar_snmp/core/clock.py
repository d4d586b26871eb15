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
