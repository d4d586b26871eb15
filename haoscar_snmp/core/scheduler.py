"""Scheduled jobs: one job per file in fcaps/, run here, timed, and logged.

A job's cycle returns one sentence saying what it saw or did; the scheduler logs it once
for as long as it repeats. A job that raises is logged with its traceback and the marker
`please report it as a BUG`, which scenario tests look for, and the loop goes on.

Two kinds of schedule, because two kinds of lateness exist:

* **Steady jobs** (`add_steady`) run on timers of the scheduler's clock, timed by its
  monotonic clock: the role state machine, alias announcements, anything whose lateness
  can move the alias. Neither a step of the wall clock nor a slow APScheduler
  computation can delay them.
* **Periodic jobs** (`add`) run under APScheduler: service checks, polling, roll-ups,
  where a late cycle is harmless. APScheduler 3 plans in wall-clock time, so two guards
  keep a clock step from stalling or bunching them: a trigger that never iterates over
  missed run times, and a watch on the monotonic clock that moves every job's next run
  by the size of a step as soon as one is seen. (APScheduler reads the machine's wall
  clock and arms its own loop timers: the one part of the scheduler that the injected
  clock does not drive.)

Wake-ups (`wake`) coalesce: a wake-up that arrives while the job runs gives exactly one
more cycle after it, never a lost one and never two at once. Every cycle, scheduled or
woken, goes through the same catch-all, timing and job row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Coroutine, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from .bug import BUG_MARKER
from .clock import Clock, Timer
from .measure import JobSample, Measurements
from .state import JobRow, Table

log = logging.getLogger(__name__)


# A change of (wall - monotonic) larger than this between two looks is a step of the
# wall clock (NTP slews at most 0.5 ms/s, far below it).
STEP_TOLERANCE_S = 0.5
# How often the step watch looks, at most (it looks at least every shortest interval).
STEP_WATCH_MAX_S = 1.0


class Job(Protocol):
    """What a job offers: a name, its current interval, and one cycle."""

    name: str

    def interval(self) -> float:
        """Seconds between cycles, read from the live config at each (re)schedule."""

    async def run_cycle(self) -> str:
        """Do one cycle; return one sentence describing the outcome."""


class JobRunner:
    """Runs one job's cycles with the timing, logging and catch-all every job needs."""

    def __init__(self, job: Job, row: JobRow, clock: Clock, index: int = 0,
                 channel: Measurements | None = None) -> None:
        self.job = job
        self.row = row
        self.clock = clock
        self.index = index
        # Each cycle's duration goes to the performance area too (means, overruns).
        self.channel = channel or Measurements()
        self._last_sentence: str | None = None
        self._running = False
        self._again = False

    async def run(self) -> None:
        """Run a cycle now; if one is running, run exactly one more once it is over."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            again = True
            while again:
                self._again = False
                await self._cycle()
                again = self._again
        finally:
            self._running = False
            self._again = False

    async def _cycle(self) -> None:
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
            self.channel.publish(JobSample(self.index, self.job.name, took,
                                           int(self.job.interval() * 1_000_000)))
        self.row.last_result = sentence[:255]
        if sentence != self._last_sentence:
            log.info("%s: %s", self.job.name, sentence)
            self._last_sentence = sentence
        else:
            log.debug("%s: %s", self.job.name, sentence)


def next_due(due: float, interval: float, now: float) -> float:
    """The next run after one planned at `due`: in phase, but never a burst of catch-ups."""
    following = due + interval
    return following if following > now else now + interval


class SteadyInterval(BaseTrigger):
    """APScheduler trigger: every `seconds`, in phase, without iterating over missed runs.

    APScheduler's own interval trigger answers a late job with every run time it missed
    (after a one-hour step forward, 180,000 of them at 20 ms), computed inside the loop.
    This one answers "now plus one interval" when the planned time has already passed.
    """

    def __init__(self, seconds: float) -> None:
        self.interval = timedelta(seconds=seconds)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        if previous_fire_time is None:
            return now
        following = previous_fire_time + self.interval
        return following if following > now else now + self.interval

    def __str__(self) -> str:
        return f"steady interval {self.interval.total_seconds()}s"


class _Ticker:
    """One steady job: a timer on the scheduler's clock, re-armed in phase."""

    def __init__(self, job: Job, runner: JobRunner, spawn: Callable[[Coroutine[Any, Any, None]], None],
                 clock: Clock) -> None:
        self.job = job
        self.runner = runner
        self.spawn = spawn
        self.clock = clock
        self._handle: Timer | None = None
        self._due = 0.0

    def start(self) -> None:
        # Due times are read from the clock the timers run on: the job's clock, not the loop's.
        self._due = self.clock.monotonic()
        self._handle = self.clock.call_at(self._due, self._fire)

    def _fire(self) -> None:
        self._due = next_due(self._due, self.job.interval(), self.clock.monotonic())
        self._handle = self.clock.call_at(self._due, self._fire)
        self.spawn(self.runner.run())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Scheduler:
    """Steady (monotonic) and periodic (APScheduler) jobs, plus the job table the MIB shows."""

    def __init__(self, jobs_table: Table[tuple[int], JobRow], clock: Clock,
                 channel: Measurements | None = None) -> None:
        self._aps = AsyncIOScheduler(job_defaults={
            "coalesce": True,        # a late job runs once, not once per missed tick
            "max_instances": 1,
            "misfire_grace_time": None,
        })
        self._table = jobs_table
        self._clock = clock
        self._channel = channel or Measurements()
        self._jobs: dict[str, tuple[Job, JobRunner]] = {}
        self._tickers: dict[str, _Ticker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._watch: Timer | None = None
        self._offset = 0.0
        self._running = False
        self.steps_seen = 0

    # -- registration --------------------------------------------------------------------

    def _register(self, job: Job) -> JobRunner:
        if job.name in self._jobs or any(row.name == job.name for row in self._table.values()):
            raise ValueError(f"job {job.name} registered twice")
        row = JobRow(name=job.name)
        index = len(self._table) + 1
        self._table.put((index,), row)
        runner = JobRunner(job, row, self._clock, index, self._channel)
        self._jobs[job.name] = (job, runner)
        return runner

    def external(self, name: str) -> JobRow:
        """A row in the job table for work that keeps its own time (the heartbeat thread)."""
        if name in self._jobs or any(row.name == name for row in self._table.values()):
            raise ValueError(f"job {name} registered twice")
        row = JobRow(name=name)
        self._table.put((len(self._table) + 1,), row)
        return row

    def add(self, job: Job) -> None:
        """A periodic job under APScheduler: lateness is harmless."""
        self._register(job)
        self._aps.add_job(self._kick, SteadyInterval(job.interval()), args=(job.name,), id=job.name,
                          name=job.name, next_run_time=datetime.now().astimezone())

    def add_steady(self, job: Job) -> None:
        """A job on the monotonic clock's timers: for work whose lateness can move the alias."""
        runner = self._register(job)
        self._tickers[job.name] = _Ticker(job, runner, self._spawn, self._clock)

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        for ticker in self._tickers.values():
            ticker.start()
        self._aps.start()
        self._offset = self._clock.time() - self._clock.monotonic()
        self._arm_watch()

    async def stop(self) -> None:
        """Stop every schedule, cancel running cycles quietly, and wait for them."""
        self._running = False
        if self._watch is not None:
            self._watch.cancel()
        for ticker in self._tickers.values():
            ticker.stop()
        if self._aps.running:
            self._aps.shutdown(wait=False)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self, name: str) -> None:
        """Run a job now (e.g. after a SET or a heartbeat changed what it watches)."""
        if not self._running or name not in self._jobs:
            return
        self._spawn(self._jobs[name][1].run())

    def waker(self, name: str) -> Callable[[], None]:
        """A callable that wakes one job: what a producer is given instead of the job."""
        return lambda: self.wake(name)

    def reschedule(self) -> None:
        """Re-read every periodic job's interval (after a config change); steady jobs read
        theirs at every cycle."""
        for name, (job, _runner) in self._jobs.items():
            aps_job = self._aps.get_job(name)
            if aps_job is None:
                continue
            wanted = timedelta(seconds=job.interval())
            if aps_job.trigger.interval != wanted:
                self._aps.reschedule_job(name, trigger=SteadyInterval(job.interval()))
                log.info("job %s now runs every %.3fs", name, job.interval())

    def reset_counters(self) -> None:
        """Zero the job table's counters (resetCounters; the daemon calls it on the event)."""
        for row in self._table.values():
            row.runs = row.failures = row.max_duration_us = 0

    def runner(self, name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        return self._jobs[name][1].run

    async def _kick(self, name: str) -> None:
        # APScheduler only starts the cycle; the cycle runs as our own task, so that
        # APScheduler's shutdown never cancels one half-way and logs it as an error.
        self._spawn(self._jobs[name][1].run())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- wall-clock steps ----------------------------------------------------------------

    def _arm_watch(self) -> None:
        # Only the periodic jobs plan in wall-clock time; the steady ones (on the monotonic
        # clock) need no watch, and looking at every fast heartbeat would cost for nothing.
        periods = [job.interval() for name, (job, _) in self._jobs.items() if name not in self._tickers]
        periods.append(STEP_WATCH_MAX_S)
        self._watch = self._clock.call_later(max(min(periods), 0.01), self._look_for_step)

    def _look_for_step(self) -> None:
        offset = self._clock.time() - self._clock.monotonic()
        step = offset - self._offset
        self._offset = offset
        if abs(step) > STEP_TOLERANCE_S:
            self.steps_seen += 1
            self._rebase(step)
        self._arm_watch()

    def _rebase(self, step: float) -> None:
        """Keep every periodic job due after the same monotonic time it was due after before
        the step. APScheduler wakes on its own timer and may already have replanned a job
        from the new wall time (a job it found late by the step, after a step forward): a
        plan that is plausible now, within one interval of the new wall time, is kept; a
        job moved by the step is taken only if that lands it there; anything else runs now."""
        log.warning("the wall clock stepped by %+.3f s; periodic jobs keep their pace", step)
        now = datetime.fromtimestamp(self._clock.time()).astimezone()
        slack = timedelta(seconds=STEP_TOLERANCE_S)
        for aps_job in self._aps.get_jobs():
            planned = aps_job.next_run_time
            if planned is None:
                continue
            interval = getattr(aps_job.trigger, "interval", timedelta(0))

            def plausible(when: datetime) -> bool:
                return now - slack <= when <= now + interval + slack

            moved = planned + timedelta(seconds=step)
            if plausible(moved):
                wanted = moved
            elif plausible(planned):
                continue
            else:
                wanted = now
            self._aps.modify_job(aps_job.id, next_run_time=wanted)
