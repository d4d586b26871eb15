"""The performance area on a fake clock: takeover durations and their buckets from events,
and the collector's figures from the measurement channel (SNMP request meters taken
once a second, job cycles and overruns, heartbeat samples), all zeroed by resetCounters."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeClock
from test_core_scheduler import ScriptedJob, run_cycles

from fcaps.configuration.control import OperatorActions
from fcaps.performance import collector as collector_module
from fcaps.performance.collector import PerfCollector
from fcaps.performance.figures import BUCKET_BOUNDS_MS, NO_BOUND, DurationFigures, bucket_of
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.measure import HbPathSample, HbSendSample, JobSample, Measurements, Meter
from haoscar_snmp.core.scheduler import JobRunner
from haoscar_snmp.core.state import ControlAction, DurationKind, FrontEnd, JobRow, State

FAILOVER, FAILBACK = int(DurationKind.FAILOVER), int(DurationKind.FAILBACK)


def completed(kind: EventType, ms: int | None) -> Event:
    data = {"head_index": 1, "reason": "test"} | ({"duration_ms": ms} if ms is not None else {})
    return Event(kind, "head1", Severity.WARNING, "completed", 0.0, data)


def reset_counters(state: State, bus: EventBus) -> None:
    OperatorActions(state, bus, FakeClock()).handle(ControlAction.RESET_COUNTERS, "v3:admin@nms")


# -- durations and buckets -------------------------------------------------------------------


def test_every_kind_and_bucket_has_a_row_from_the_start_with_ordered_bounds() -> None:
    state = State()
    DurationFigures(state)
    assert state.perf_durations.keys() == [(FAILOVER,), (FAILBACK,)]
    for kind in (FAILOVER, FAILBACK):
        rows = [state.perf_buckets[(kind, n)] for n in range(1, len(BUCKET_BOUNDS_MS) + 2)]
        assert [r.upper_ms for r in rows] == [*BUCKET_BOUNDS_MS, NO_BOUND]
        assert [r.lower_ms for r in rows] == [0, *BUCKET_BOUNDS_MS]
        assert all(r.count == 0 for r in rows)
    assert len(state.perf_buckets) == 2 * (len(BUCKET_BOUNDS_MS) + 1)


@pytest.mark.parametrize("ms, bucket", [(0, 1), (50, 1), (51, 2), (100, 2), (499, 4), (500, 4),
                                        (30000, 9), (30001, 10), (10**9, 10)])
def test_a_duration_falls_in_the_bucket_whose_upper_bound_is_the_first_not_below_it(ms: int, bucket: int) -> None:
    assert bucket_of(ms) == bucket


def test_failovers_give_last_min_max_mean_count_and_buckets() -> None:
    state = State()
    figures = DurationFigures(state)
    for ms in (120, 40, 900, 41):
        figures(completed(EventType.FAILOVER_COMPLETED, ms))
    row = state.perf_durations[(FAILOVER,)]
    assert (row.count, row.last_ms, row.min_ms, row.max_ms) == (4, 41, 40, 900)
    assert row.mean_ms == round((120 + 40 + 900 + 41) / 4)
    counts = {n: state.perf_buckets[(FAILOVER, n)].count for n in range(1, 11)}
    assert counts == {1: 2, 2: 0, 3: 1, 4: 0, 5: 1, 6: 0, 7: 0, 8: 0, 9: 0, 10: 0}
    assert sum(counts.values()) == row.count
    # The failover scalars (haoscarPerfFailover*) show the same figures.
    p = state.perf
    assert (p.failover_last_ms, p.failover_min_ms, p.failover_max_ms, p.failover_mean_ms) == \
        (41, 40, 900, row.mean_ms)
    # Failbacks are counted apart.
    assert state.perf_durations[(FAILBACK,)].count == 0


def test_failbacks_are_their_own_kind_and_leave_the_failover_figures_alone() -> None:
    state = State()
    figures = DurationFigures(state)
    figures(completed(EventType.FAILBACK_COMPLETED, 75))
    figures(completed(EventType.FAILBACK_COMPLETED, 60_000))
    row = state.perf_durations[(FAILBACK,)]
    assert (row.count, row.last_ms, row.min_ms, row.max_ms, row.mean_ms) == (2, 60_000, 75, 60_000, 30_038)
    assert state.perf_buckets[(FAILBACK, 2)].count == 1 and state.perf_buckets[(FAILBACK, 10)].count == 1
    assert state.perf_durations[(FAILOVER,)].count == 0 and state.perf.failover_last_ms == 0


def test_events_without_a_duration_and_other_events_change_nothing() -> None:
    state = State()
    figures = DurationFigures(state)
    figures(completed(EventType.FAILOVER_COMPLETED, None))
    figures(completed(EventType.FAILOVER_STARTED, 10))
    figures(completed(EventType.ROLE_CHANGED, 10))
    assert all(r.count == 0 for r in state.perf_durations.values())
    assert all(b.count == 0 for b in state.perf_buckets.values())


def test_reset_counters_zeroes_durations_and_buckets_but_keeps_the_bounds() -> None:
    state = State()
    bus = EventBus()
    figures = DurationFigures(state)
    bus.subscribe("performance", figures)
    bus.publish(completed(EventType.FAILOVER_COMPLETED, 300))
    bus.publish(completed(EventType.FAILBACK_COMPLETED, 30))
    reset_counters(state, bus)
    assert all(r.count == r.last_ms == r.max_ms == r.mean_ms == 0 for r in state.perf_durations.values())
    assert all(b.count == 0 for b in state.perf_buckets.values())
    assert state.perf.failover_max_ms == 0 and state.perf_buckets[(FAILOVER, 1)].upper_ms == 50
    bus.publish(completed(EventType.FAILOVER_COMPLETED, 200))    # counting starts again from one
    row = state.perf_durations[(FAILOVER,)]
    assert (row.count, row.min_ms, row.mean_ms) == (1, 200, 200)


# -- the channel -------------------------------------------------------------------------------


def test_a_meter_counts_at_its_source_and_a_take_starts_it_again() -> None:
    meter = Meter()
    for us in (30, 10, 20):
        meter.add(us)
    meter.drop()
    sample = meter.take("m")
    assert (sample.count, sample.total_us, sample.max_us, sample.dropped) == (3, 60, 30, 1)
    assert meter.take("m").count == 0


def test_the_channel_has_one_subscriber_and_drops_samples_without_one() -> None:
    channel = Measurements()
    channel.publish(HbSendSample(1, 2))                      # nobody listens: nothing happens
    got: list[object] = []
    channel.subscribe(got.append)
    with pytest.raises(ValueError):
        channel.subscribe(got.append)
    assert channel.meter("a") is channel.meter("a")


# -- the collector -------------------------------------------------------------------------------


class Rig:
    """A collector on a fake clock, started inside a running loop."""

    def __init__(self) -> None:
        self.state = State()
        self.clock = FakeClock()
        self.channel = Measurements()
        self.collector = PerfCollector(self.state, self.channel, self.clock)
        self.bus = EventBus()
        self.bus.subscribe("perf-counters", self.collector.on_event)

    async def seconds(self, n: float) -> None:
        """Let `n` seconds pass, a collection period at a time, running the timers."""
        for _ in range(round(n / collector_module.COLLECT_S)):
            self.clock.advance(collector_module.COLLECT_S)
            await asyncio.sleep(0)
            await asyncio.sleep(0)


def test_requests_are_taken_once_a_second_into_their_front_ends_row() -> None:
    rig = Rig()
    meter = rig.channel.meter("snmp.standalone")

    async def main() -> None:
        rig.collector.start()
        row = rig.state.perf_requests[(int(FrontEnd.STANDALONE),)]      # a row from the start
        for us in (100, 300, 200):
            meter.add(us)
        meter.drop()
        assert row.served == 0                      # not before the next collection
        await rig.seconds(1)
        assert (row.served, row.dropped, row.mean_us, row.recent_max_us, row.max_us) == (3, 1, 200, 300, 300)
        meter.add(900)
        await rig.seconds(1)
        assert (row.served, row.mean_us, row.recent_max_us, row.max_us) == (4, 375, 900, 900)
        rig.collector.stop()
    asyncio.run(main())
    assert (int(FrontEnd.AGENTX),) not in rig.state.perf_requests     # no AgentX meter, no row


def test_a_slow_request_leaves_the_recent_worst_after_ten_seconds_but_not_the_worst() -> None:
    rig = Rig()
    meter = rig.channel.meter("snmp.agentx")

    async def main() -> None:
        rig.collector.start()
        meter.add(50_000)
        await rig.seconds(1)
        for _ in range(collector_module.RECENT_S):
            meter.add(100)
            await rig.seconds(1)
        rig.collector.stop()
    asyncio.run(main())
    row = rig.state.perf_requests[(int(FrontEnd.AGENTX),)]
    assert (row.recent_max_us, row.max_us, row.served) == (100, 50_000, 11)


def test_job_cycles_give_a_mean_and_count_the_overruns_of_their_interval() -> None:
    rig = Rig()
    for us in (100_000, 300_000, 1_200_000):
        rig.channel.publish(JobSample(3, "services", us, 1_000_000))
    rig.channel.publish(JobSample(4, "heartbeat", 5_000_000, 0))        # its own time: no overrun
    job = rig.state.perf_jobs[(3,)]
    assert (job.cycles, job.mean_us, job.overruns) == (3, 533_333, 1)
    assert rig.state.perf_jobs[(4,)].overruns == 0


def test_the_job_runner_publishes_each_cycle_with_its_row_index_and_interval() -> None:
    clock = FakeClock()
    channel = Measurements()
    got: list[object] = []
    channel.subscribe(got.append)
    job = ScriptedJob(clock, [(0.25, "ok"), (1.5, RuntimeError("boom"))], interval=1.0)
    run_cycles(JobRunner(job, JobRow(name="probe"), clock, 7, channel), 2)
    assert got == [JobSample(7, "probe", 250_000, 1_000_000), JobSample(7, "probe", 1_500_000, 1_000_000)]


def test_heartbeat_samples_become_path_rows_and_the_send_lag() -> None:
    rig = Rig()
    rig.channel.publish(HbPathSample(2, 1, 400, 300, 900, 450, 30, 12))
    rig.channel.publish(HbPathSample(2, 2, 500, 500, 500, 500, 0, 1))
    rig.channel.publish(HbSendSample(1_500, 4_000))
    row = rig.state.perf_hb_paths[(2, 1)]
    assert (row.rtt_us, row.rtt_min_us, row.rtt_max_us, row.rtt_mean_us, row.jitter_us, row.replies) == \
        (400, 300, 900, 450, 30, 12)
    assert rig.state.perf_hb_paths.keys() == [(2, 1), (2, 2)]
    assert (rig.state.perf_hb_send.lag_us, rig.state.perf_hb_send.lag_max_us) == (1_500, 4_000)


def test_reset_counters_zeroes_requests_jobs_and_the_worst_send_lag() -> None:
    rig = Rig()
    meter = rig.channel.meter("snmp.standalone")

    async def main() -> None:
        rig.collector.start()
        meter.add(700)
        await rig.seconds(1)
        meter.add(800)                              # before the action, not yet taken: not counted
        meter.drop()
        rig.channel.publish(JobSample(1, "role", 2_000_000, 1_000_000))
        rig.channel.publish(HbSendSample(100, 9_000))
        reset_counters(rig.state, rig.bus)
        row = rig.state.perf_requests[(int(FrontEnd.STANDALONE),)]
        assert (row.served, row.dropped, row.mean_us, row.recent_max_us, row.max_us) == (0, 0, 0, 0, 0)
        job = rig.state.perf_jobs[(1,)]
        assert (job.cycles, job.mean_us, job.overruns) == (0, 0, 0)
        assert rig.state.perf_hb_send.lag_max_us == 0
        meter.add(40)
        await rig.seconds(1)
        assert (row.served, row.dropped, row.max_us) == (1, 0, 40)
        rig.collector.stop()
    asyncio.run(main())
