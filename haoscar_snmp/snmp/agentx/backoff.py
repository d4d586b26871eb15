"""Reconnect delays: 0.5 s doubling to 30 s, each spread by +-25% jitter so that several
subagents restarted with snmpd do not knock on its socket in step."""

from __future__ import annotations

import random
from collections.abc import Callable

FIRST_S = 0.5
MAX_S = 30.0
JITTER = 0.25


class Backoff:
    """`next()` gives the delay before the next attempt; `reset()` after a success."""

    def __init__(self, first: float = FIRST_S, maximum: float = MAX_S, jitter: float = JITTER,
                 rand: Callable[[], float] = random.random) -> None:
        self.first = first
        self.maximum = maximum
        self.jitter = jitter
        self._rand = rand
        self._base = first

    def next(self) -> float:
        base = self._base
        self._base = min(base * 2, self.maximum)
        return base * (1 + self.jitter * (2 * self._rand() - 1))

    def reset(self) -> None:
        self._base = self.first
