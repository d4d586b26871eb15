"""The one writer of the figures that come through the measurement channel
(haoscar_snmp/core/measure.py): SNMP requests per front end, job cycles, heartbeat
round trips per path and the heartbeat process's own send lag.

Samples (a job's cycle, a heartbeat report) are folded in as they come. Meters (the
SNMP front ends, which count every request at their source) are taken once every
`COLLECT_S` on the daemon's clock: a request costs its front end a few attribute
updates, and this module one fold per second. resetCounters zeroes every counter and
worst figure kept here; the heartbeat process zeroes its own on the same action.
"""

from __future__ import annotations

from collections import deque

from haoscar_snmp.core.clock import Clock, Timer
from haoscar_snmp.core.events import Event, is_counter_reset
from haoscar_snmp.core.measure import (HbPathSample, HbSendSample, JobSample, Measurements,
                                       MeterSample, Sample)
from haoscar_snmp.core.state import FrontEnd, HbPathPerfRow, JobPerfRow, RequestPerfRow, State

COLLECT_S = 1.0
RECENT_S = 10          # the "recent" worst handling time: over this many collections

# Meter name -> the front end whose row it feeds (the names the producers use).
FRONT_ENDS = {"snmp.standalone": FrontEnd.STANDALONE, "snmp.agentx": FrontEnd.AGENTX}


class PerfCollector:
    """Sole writer of `state.perf_requests`, `perf_jobs`, `perf_hb_paths`, `perf_hb_send`."""

    def __init__(self, state: State, channel: Measurements, clock: Clock) -> None:
        self.state = state
        self.channel = channel
        self.clock = clock
        self._recent: dict[int, deque[int]] = {}    # front end -> worst of each recent period
        self._timer: Timer | None = None
        channel.subscribe(self.on_sample)

    def start(self) -> None:
        self.collect()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- meters: once a period --------------------------------------------------------------

    def collect(self) -> None:
        """Fold every meter in, then wait for the next period (on the daemon's clock)."""
        for sample in self.channel.take():
            front_end = FRONT_ENDS.get(sample.name)
            if front_end is not None:
                self._requests(front_end, sample)
        self._timer = self.clock.call_later(COLLECT_S, self.collect)

    def _requests(self, front_end: FrontEnd, sample: MeterSample) -> None:
        key = (int(front_end),)
        row = self.state.perf_requests.get(key)
        if row is None:
            row = RequestPerfRow()
            self.state.perf_requests.put(key, row)
        recent = self._recent.setdefault(int(front_end), deque(maxlen=RECENT_S))
        recent.append(sample.max_us)
        row.served += sample.count
        row.dropped += sample.dropped
        row.total_us += sample.total_us
        row.mean_us = row.total_us // row.served if row.served else 0
        row.recent_max_us = max(recent)
        row.max_us = max(row.max_us, sample.max_us)

    # -- samples: as they come --------------------------------------------------------------

    def on_sample(self, sample: Sample) -> None:
        if isinstance(sample, JobSample):
            self._job(sample)
        elif isinstance(sample, HbPathSample):
            self._hb_path(sample)
        elif isinstance(sample, HbSendSample):
            figures = self.state.perf_hb_send
            figures.lag_us, figures.lag_max_us = sample.lag_us, sample.lag_max_us

    def _job(self, sample: JobSample) -> None:
        key = (sample.index,)
        row = self.state.perf_jobs.get(key)
        if row is None:
            row = JobPerfRow()
            self.state.perf_jobs.put(key, row)
        row.cycles += 1
        row.total_us += sample.duration_us
        row.mean_us = row.total_us // row.cycles
        if sample.interval_us and sample.duration_us > sample.interval_us:
            row.overruns += 1

    def _hb_path(self, sample: HbPathSample) -> None:
        key = (sample.head_index, sample.lan)
        row = self.state.perf_hb_paths.get(key)
        if row is None:
            row = HbPathPerfRow()
            self.state.perf_hb_paths.put(key, row)
        row.rtt_us, row.rtt_min_us, row.rtt_max_us = sample.rtt_us, sample.rtt_min_us, sample.rtt_max_us
        row.rtt_mean_us, row.jitter_us, row.replies = sample.rtt_mean_us, sample.jitter_us, sample.replies

    # -- resetCounters --------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if not is_counter_reset(event):
            return
        self.channel.take()      # what accumulated before the action is not counted after it
        for row in self.state.perf_requests.values():
            row.served = row.dropped = row.total_us = row.mean_us = row.recent_max_us = row.max_us = 0
        for recent in self._recent.values():
            recent.clear()
        for job in self.state.perf_jobs.values():
            job.cycles = job.total_us = job.mean_us = job.overruns = 0
        self.state.perf_hb_send.lag_max_us = 0
