"""A token bucket on the injected monotonic clock, counting what it refuses.

Used wherever an attacker sets the pace: a forged packet, a guessed community. The
first few of a burst go through at once (an operator sees the attack start), then one
per `period_s`; what was refused in between is counted and handed to the next one let
through, so nothing is lost from the account, only from the detail.
"""

from __future__ import annotations

from haoscar_snmp.core.clock import Clock


class RateLimiter:
    def __init__(self, clock: Clock, burst: int, period_s: float) -> None:
        if burst < 1 or period_s <= 0:
            raise ValueError("burst must be >= 1 and period_s > 0")
        self.clock = clock
        self.burst = burst
        self.period_s = period_s
        self._tokens = float(burst)
        self._last: float | None = None   # monotonic time of the last refill; None = never
        self.suppressed = 0               # refused since the last one let through

    def _refill(self) -> None:
        now = self.clock.monotonic()
        if self._last is not None:
            # A monotonic clock never goes back; max() keeps a confused fake from minting tokens.
            self._tokens = min(float(self.burst), self._tokens + max(now - self._last, 0.0) / self.period_s)
        self._last = now

    def allow(self) -> bool:
        """Whether one more may go through now; a refusal is counted in `suppressed`."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.suppressed += 1
        return False

    def ready(self) -> bool:
        """Whether `allow` would let one through now (without taking it)."""
        self._refill()
        return self._tokens >= 1.0

    def take_suppressed(self) -> int:
        """The count refused since the last call; reset to zero."""
        count, self.suppressed = self.suppressed, 0
        return count
