"""Scheduled jobs: one job per file in fcaps/, run here, timed, and logged (STYLE rules 1, 2, 6).

A job's cycle returns one sentence saying what it saw or did; the scheduler logs it once
for as long as it repeats. A job that raises is logged with its traceback and the marker
`please report it as a BUG`, which scenario tests look for, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .clock import Clock
from .state import JobRow, Table

log = logging.getLogger(__name__)

BUG_MARKER = "please report it as a BUG"


class Job(Protocol):
    """What a job offers: a name, its current interval, and one cycle."""

    name: str

    def interval(self) -> float:
        """Seconds between cycles, read from the live config at each (re)schedule."""

    async def run_cycle(self) -> str:
        """Do one cycle; return one sentence describing the outcome."""


class JobRunner:
    """Runs one job's cycles with the timing, logging and catch-all every job needs."""

    def __init__(self, job: Job, row: JobRow, clock: Clock) -> None:
        self.job = job
        self.row = row
        self.clock = clock
        self._last_sentence: str | None = None
        self._lock = asyncio.Lock()  # a wake-up never runs a cycle twice at once

    async def run(self) -> None:
        if self._lock.locked():
            return
        async with self._lock:
            start = self.clock.monotonic()
            self.row.last_run = self.clock.time()
            self.row.runs += 1
            try:
                sentence = await self.job.run_cycle()
            except Exception:  # the one catch-all, at the loop's edge
                self.row.failures += 1
                sentence = "cycle raised"
                log.exception("job %s raised; %s", self.job.name, BUG_MARKER)
            finally:
                took = int((self.clock.monotonic() - start) * 1_000_000)
                self.row.last_duration_us = took
                self.row.max_duration_us = max(self.row.max_duration_us, took)
            self.row.last_result = sentence[:255]
            if sentence != self._last_sentence:
                log.info("%s: %s", self.job.name, sentence)
                self._last_sentence = sentence
            else:
                log.debug("%s: %s", self.job.name, sentence)


class Scheduler:
    """APScheduler (asyncio flavour) plus the job table the MIB publishes."""

    def __init__(self, jobs_table: Table[tuple[int], JobRow], clock: Clock) -> None:
        self._aps = AsyncIOScheduler(job_defaults={
            "coalesce": True,        # a late job runs once, not once per missed tick
            "max_instances": 1,
            "misfire_grace_time": None,
        })
        self._table = jobs_table
        self._clock = clock
        self._jobs: dict[str, tuple[Job, JobRunner]] = {}

    def add(self, job: Job) -> None:
        if job.name in self._jobs:
            raise ValueError(f"job {job.name} registered twice")
        row = JobRow(name=job.name)
        self._table.put((len(self._jobs) + 1,), row)
        runner = JobRunner(job, row, self._clock)
        self._jobs[job.name] = (job, runner)
        self._aps.add_job(runner.run, IntervalTrigger(seconds=job.interval()), id=job.name,
                          name=job.name, next_run_time=datetime.now())

    def start(self) -> None:
        self._aps.start()

    def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)

    def wakeup(self, name: str) -> None:
        """Run a job now (e.g. after a SET changed what it watches); the schedule goes on."""
        if name in self._jobs:
            self._aps.modify_job(name, next_run_time=datetime.now())

    def reschedule(self) -> None:
        """Re-read every job's interval (after a config change) and apply what changed."""
        for name, (job, _runner) in self._jobs.items():
            aps_job = self._aps.get_job(name)
            if aps_job is None:
                continue
            wanted = timedelta(seconds=job.interval())
            if aps_job.trigger.interval != wanted:
                self._aps.reschedule_job(name, trigger=IntervalTrigger(seconds=job.interval()))
                log.info("job %s now runs every %.3fs", name, job.interval())

    def runner(self, name: str) -> Callable[[], Awaitable[None]]:
        return self._jobs[name][1].run
