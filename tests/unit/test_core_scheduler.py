"""core.scheduler: JobRunner times, counts and logs each cycle; Scheduler registers jobs.

Jobs are fakes that move a FakeClock to "take" a known time, so durations are exact and
nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
from fakes import FakeClock

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.scheduler import JobRunner, Scheduler, SteadyInterval
from haoscar_snmp.core.state import JobRow, Table

LOGGER = "haoscar_snmp.core.scheduler"


class ScriptedJob:
    """Each cycle takes the next (seconds, outcome) step: a sentence, or an exception to raise."""

    def __init__(self, clock: FakeClock, steps: list[tuple[float, object]], name: str = "probe",
                 interval: float = 1.0) -> None:
        self.name = name
        self.clock = clock
        self.steps = list(steps)
        self._interval = interval
        self.cycles = 0

    def interval(self) -> float:
        return self._interval

    async def run_cycle(self) -> str:
        self.cycles += 1
        seconds, outcome = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        self.clock.advance(seconds)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)


class BlockingJob:
    """A cycle that waits until the test releases it."""

    name = "slow"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cycles = 0

    def interval(self) -> float:
        return 1.0

    async def run_cycle(self) -> str:
        self.cycles += 1
        self.started.set()
        await self.release.wait()
        return "done"


def run_cycles(runner: JobRunner, n: int) -> None:
    async def go() -> None:
        for _ in range(n):
            await runner.run()
    asyncio.run(go())


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_runs_failures_durations_and_result_are_recorded() -> None:
    clock = FakeClock()
    job = ScriptedJob(clock, [(0.25, "peer alive"), (0.5, RuntimeError("boom")), (0.125, "peer lost")])
    row = JobRow(name="probe")
    runner = JobRunner(job, row, clock)

    run_cycles(runner, 1)
    assert (row.runs, row.failures) == (1, 0)
    assert row.last_duration_us == 250_000
    assert row.max_duration_us == 250_000
    assert row.last_result == "peer alive"

    run_cycles(runner, 1)
    assert (row.runs, row.failures) == (2, 1)
    assert row.last_duration_us == 500_000
    assert row.max_duration_us == 500_000
    assert row.last_result == "cycle raised"

    start_of_third = clock.time()
    run_cycles(runner, 1)
    assert (row.runs, row.failures) == (3, 1)
    assert row.last_duration_us == 125_000
    assert row.max_duration_us == 500_000  # the maximum is kept
    assert row.last_result == "peer lost"
    assert row.last_run == start_of_third  # wall clock at the start of the cycle


def test_a_long_sentence_is_cut_to_the_mib_size() -> None:
    clock = FakeClock()
    row = JobRow(name="probe")
    run_cycles(JobRunner(ScriptedJob(clock, [(0, "x" * 400)]), row, clock), 1)
    assert row.last_result == "x" * 255


def test_a_raising_job_is_logged_as_a_bug_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    job = ScriptedJob(clock, [(0, ValueError("parser broke")), (0, "recovered")])
    row = JobRow(name="probe")
    runner = JobRunner(job, row, clock)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        run_cycles(runner, 3)
    bugs = [r for r in caplog.records if BUG_MARKER in r.getMessage()]
    assert len(bugs) == 1
    assert bugs[0].levelno == logging.ERROR
    assert "probe" in bugs[0].getMessage()
    assert bugs[0].exc_info is not None and bugs[0].exc_info[0] is ValueError
    assert job.cycles == 3
    assert (row.runs, row.failures) == (3, 1)
    assert row.last_result == "recovered"


def test_the_bug_marker_is_the_one_scenario_tests_look_for() -> None:
    assert BUG_MARKER == "please report it as a BUG"  # the phrase tests and operators look for


def test_a_repeated_sentence_is_logged_at_info_once_then_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    job = ScriptedJob(clock, [(0, "all good"), (0, "all good"), (0, "all good"),
                              (0, "head2 lost"), (0, "all good")])
    runner = JobRunner(job, JobRow(name="probe"), clock)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        run_cycles(runner, 5)
    assert messages(caplog, logging.INFO) == ["probe: all good", "probe: head2 lost", "probe: all good"]
    assert messages(caplog, logging.DEBUG) == ["probe: all good", "probe: all good"]


def test_wake_ups_during_a_cycle_coalesce_into_exactly_one_more() -> None:
    clock = FakeClock()
    row = JobRow(name="slow")

    async def scenario() -> BlockingJob:
        job = BlockingJob()
        runner = JobRunner(job, row, clock)
        first = asyncio.create_task(runner.run())
        await job.started.wait()
        for _ in range(3):
            await runner.run()  # wake-ups arrive while the first cycle still runs
        assert row.runs == 1
        job.release.set()
        await first             # ... and are served by one follow-up cycle, not lost
        assert job.cycles == 2
        await runner.run()      # once idle, a call runs a cycle of its own
        return job

    job = asyncio.run(scenario())
    assert job.cycles == 3
    assert row.runs == 3


def test_scheduler_add_registers_rows_with_indexes_from_one() -> None:
    clock = FakeClock()
    jobs: Table = Table()
    scheduler = Scheduler(jobs, clock)
    for name in ("heartbeat", "lan", "services"):
        scheduler.add(ScriptedJob(clock, [(0, "ok")], name=name))
    assert jobs.keys() == [(1,), (2,), (3,)]
    assert [row.name for row in jobs.values()] == ["heartbeat", "lan", "services"]
    assert all(row.runs == 0 for row in jobs.values())


def test_scheduler_refuses_a_duplicate_name_and_keeps_its_table() -> None:
    clock = FakeClock()
    jobs: Table = Table()
    scheduler = Scheduler(jobs, clock)
    scheduler.add(ScriptedJob(clock, [(0, "ok")], name="lan"))
    with pytest.raises(ValueError, match="lan"):
        scheduler.add(ScriptedJob(clock, [(0, "ok")], name="lan"))
    assert len(jobs) == 1
    scheduler.add(ScriptedJob(clock, [(0, "ok")], name="services"))
    assert jobs.keys() == [(1,), (2,)]
    assert jobs[(2,)].name == "services"


def test_a_registered_runner_writes_its_own_row() -> None:
    clock = FakeClock()
    jobs: Table = Table()
    scheduler = Scheduler(jobs, clock)
    scheduler.add(ScriptedJob(clock, [(0, "a ok")], name="a"))
    scheduler.add(ScriptedJob(clock, [(0.5, "b ok")], name="b"))
    asyncio.run(scheduler.runner("b")())
    assert jobs[(1,)].runs == 0
    assert jobs[(2,)].runs == 1
    assert jobs[(2,)].last_result == "b ok"
    assert jobs[(2,)].last_duration_us == 500_000


class SteppedClock(SystemClock):
    """Real monotonic time and timers; a wall clock that a test can step (as NTP would)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


class CountingJob:
    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self._interval = interval
        self.cycles = 0

    def interval(self) -> float:
        return self._interval

    async def run_cycle(self) -> str:
        self.cycles += 1
        return "ok"


def test_steady_trigger_answers_a_late_job_with_one_run_not_every_missed_one() -> None:
    trigger = SteadyInterval(0.02)
    prev = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert trigger.get_next_fire_time(prev, prev + timedelta(seconds=0.005)) == prev + timedelta(seconds=0.02)
    late = prev + timedelta(hours=1)                # after a one-hour step forward
    assert trigger.get_next_fire_time(prev, late) == late + timedelta(seconds=0.02)


def test_no_job_stalls_when_the_wall_clock_steps_back_or_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """APScheduler plans in wall-clock time: a step back of an hour would stall a periodic
    job for an hour; steady jobs do not read the wall clock at all."""
    import apscheduler.schedulers.base as aps_base

    clock = SteppedClock()

    class SteppedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206 - the signature of datetime.now
            return datetime.fromtimestamp(clock.time(), tz)

    monkeypatch.setattr(aps_base, "datetime", SteppedDatetime)

    async def scenario() -> list[tuple[int, int]]:
        scheduler = Scheduler(Table(), clock)
        periodic, steady = CountingJob("periodic", 0.05), CountingJob("steady", 0.05)
        scheduler.add(periodic)
        scheduler.add_steady(steady)
        scheduler.start()
        counts = []
        for step in (0.0, -3600.0, +7200.0, -3600.0):
            clock.offset += step
            before = (periodic.cycles, steady.cycles)
            await asyncio.sleep(1.2)   # > the step watch's period
            counts.append((periodic.cycles - before[0], steady.cycles - before[1]))
        await scheduler.stop()
        assert scheduler.steps_seen == 3
        return counts

    for periodic, steady in asyncio.run(scenario()):
        # 24 intervals each; a job may lose at most one interval to a step
        assert periodic >= 12 and steady >= 20, (periodic, steady)


@pytest.mark.parametrize("step", [+7200.0, -3600.0])
def test_a_step_apscheduler_saw_first_is_not_corrected_twice(monkeypatch: pytest.MonkeyPatch, step: float) -> None:
    """APScheduler and the step watch wake on their own timers: when APScheduler runs first
    after a step forward, it has already replanned the job from the new wall time, and
    moving it once more by the step stalled it for the step's length (seen on a loaded
    machine). Here APScheduler is made to run first, every time."""
    import apscheduler.schedulers.base as aps_base

    clock = SteppedClock()

    class SteppedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206 - the signature of datetime.now
            return datetime.fromtimestamp(clock.time(), tz)

    monkeypatch.setattr(aps_base, "datetime", SteppedDatetime)

    async def scenario() -> int:
        scheduler = Scheduler(Table(), clock)
        periodic = CountingJob("periodic", 0.05)
        scheduler.add(periodic)
        scheduler.start()
        await asyncio.sleep(0.2)
        clock.offset += step
        scheduler._aps._process_jobs()     # APScheduler's own wake-up, before the watch's
        before = periodic.cycles
        await asyncio.sleep(1.2)
        after = periodic.cycles
        await scheduler.stop()
        assert scheduler.steps_seen == 1
        return after - before

    assert asyncio.run(scenario()) >= 12


def test_stop_cancels_running_cycles_quietly(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> BlockingJob:
        scheduler = Scheduler(Table(), FakeClock())
        job = BlockingJob()
        scheduler.add_steady(job)
        scheduler.start()
        await job.started.wait()
        await scheduler.stop()
        return job

    with caplog.at_level(logging.DEBUG):
        job = asyncio.run(scenario())
    assert job.cycles == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_reset_counters_zeroes_the_job_table() -> None:
    clock = FakeClock()
    jobs: Table = Table()
    scheduler = Scheduler(jobs, clock)
    scheduler.add(ScriptedJob(clock, [(0.5, "ok")], name="a"))
    asyncio.run(scheduler.runner("a")())
    assert (jobs[(1,)].runs, jobs[(1,)].max_duration_us) == (1, 500_000)
    scheduler.reset_counters()
    assert (jobs[(1,)].runs, jobs[(1,)].failures, jobs[(1,)].max_duration_us) == (0, 0, 0)


async def passes(n: int = 5) -> None:
    """A few passes of the loop: timers the FakeClock handed over run, and what they spawned."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_steady_jobs_run_on_the_schedulers_clock_in_phase() -> None:
    clock = FakeClock(monotonic=3.0)                # a machine booted seconds ago

    async def scenario() -> list[int]:
        scheduler = Scheduler(Table(), clock)
        job = CountingJob("role", 1.0)
        scheduler.add_steady(job)
        scheduler.start()
        counts = []
        for step in (0.0, 0.999, 0.001, 1.0, 3.5, 0.75, 0.25):
            clock.advance(step)
            await passes()
            counts.append(job.cycles)
        await scheduler.stop()
        return counts

    # At once, then every second of the clock; after a stall of 3.5 s one cycle, not three,
    # and the next one interval after it.
    assert asyncio.run(scenario()) == [1, 1, 2, 3, 4, 4, 5]


def test_the_step_watch_runs_on_the_schedulers_clock() -> None:
    clock = FakeClock(monotonic=3.0)

    async def scenario() -> list[int]:
        scheduler = Scheduler(Table(), clock)
        scheduler.start()
        seen = []
        for _ in range(2):
            clock.step_wall(-3600.0)
            clock.advance(1.0)                      # the watch looks every second at most
            await passes()
            seen.append(scheduler.steps_seen)
        await scheduler.stop()
        return seen

    assert asyncio.run(scenario()) == [1, 2]
