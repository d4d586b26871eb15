"""The measurement channel: what producers measure, on its way to the one writer of the
performance figures (fcaps/performance/collector.py).

Producers never write figures into the state. Two ways in, by rate:

* A **meter** (`Measurements.meter(name)`) for what happens at a high rate (every SNMP
  request): the producer aggregates at its source, a count, a sum and a worst duration,
  and a count of what it dropped, a few attribute updates per event; the collector takes
  what accumulated, once a second, and zeroes the meter (`take`).
* A **sample** (`Measurements.publish`) for what happens at most a few times a second
  (a job's cycle, a heartbeat snapshot): handed to the subscriber at once.

Everything runs on the daemon's one event loop, so taking a meter needs no lock. A
channel with no subscriber drops samples, and its meters simply accumulate: producers
built without a collector (tests, tools) need nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


class Meter:
    """Counts and times one kind of work at its source, cheaply."""

    __slots__ = ("count", "total_us", "max_us", "dropped")

    def __init__(self) -> None:
        self.count = 0
        self.total_us = 0
        self.max_us = 0
        self.dropped = 0

    def add(self, us: int) -> None:
        """One piece of work done, which took `us` microseconds."""
        self.count += 1
        self.total_us += us
        if us > self.max_us:
            self.max_us = us

    def drop(self) -> None:
        """One piece of work not done (a request left unanswered)."""
        self.dropped += 1

    def take(self, name: str) -> MeterSample:
        """What accumulated since the last take; the meter starts again from zero."""
        sample = MeterSample(name, self.count, self.total_us, self.max_us, self.dropped)
        self.count = self.total_us = self.max_us = self.dropped = 0
        return sample


@dataclass(frozen=True)
class MeterSample:
    """A meter's content over one collection period."""

    name: str
    count: int
    total_us: int
    max_us: int
    dropped: int


@dataclass(frozen=True)
class JobSample:
    """One cycle of a job (core/scheduler.py): how long it took and the job's interval
    then (0: a job that keeps its own time)."""

    index: int
    name: str
    duration_us: int
    interval_us: int


@dataclass(frozen=True)
class HbPathSample:
    """One heartbeat path's round-trip figures as the heartbeat process measured them
    (all in microseconds; `replies` counts the round trips measured so far)."""

    head_index: int
    lan: int
    rtt_us: int
    rtt_min_us: int
    rtt_max_us: int
    rtt_mean_us: int
    jitter_us: int
    replies: int


@dataclass(frozen=True)
class HbSendSample:
    """The heartbeat process's own timing: how late it sent its heartbeats (worst of the
    last report period, and worst since it started or was last reset)."""

    lag_us: int
    lag_max_us: int


Sample = JobSample | HbPathSample | HbSendSample


class Measurements:
    """The channel: named meters, and samples for one subscriber."""

    def __init__(self) -> None:
        self._meters: dict[str, Meter] = {}
        self._subscriber: Callable[[Sample], None] | None = None

    def meter(self, name: str) -> Meter:
        """The meter of this name, made on first use (producers hold on to it)."""
        meter = self._meters.get(name)
        if meter is None:
            meter = self._meters[name] = Meter()
        return meter

    def take(self) -> list[MeterSample]:
        """Every meter's content since the last take, zeroing them."""
        return [meter.take(name) for name, meter in self._meters.items()]

    def subscribe(self, callback: Callable[[Sample], None]) -> None:
        if self._subscriber is not None:
            raise ValueError("the measurement channel has one subscriber")
        self._subscriber = callback

    def publish(self, sample: Sample) -> None:
        if self._subscriber is not None:
            self._subscriber(sample)
