"""fcaps.fault.services.ServiceMonitor with a FakeRunner and a FakeClock.

A service is down only after retry_threshold consecutive failed checks, which publishes
SERVICE_DOWN and raises an alarm; the first good check after that publishes
SERVICE_RECOVERED and clears the alarm. Disabled and notInService rows are never checked.
"""

from __future__ import annotations

import asyncio

import pytest
from fakes import EventRecorder, FakeClock, FakeRunner

from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.fault.services import ServiceMonitor
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import EventBus, EventType, Severity
from haoscar_snmp.core.runner import RunResult
from haoscar_snmp.core.state import HeadRole, HeadRow, HeadStatus, ServiceRow, ServiceStatus, State


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config(None, state_dir=tmp_path_factory.mktemp("state"))


class World:
    """A monitor wired to fakes, with the services the test puts in its state."""

    def __init__(self, cfg: Config, answers: dict[str, list[int]], *rows: ServiceRow) -> None:
        self.clock = FakeClock()
        self.state = State()
        self.head = HeadRow("a", HeadRole.PRIMARY, is_local=True, status=HeadStatus.ACTIVE)
        self.state.heads.put((1,), self.head)
        for n, row in enumerate(rows, start=1):
            self.state.services.put((n,), row)
        self.runner = FakeRunner(answers)
        self.recorder = EventRecorder()
        bus = EventBus()
        bus.subscribe("recorder", self.recorder)
        self.alarms = Alarms(self.state, bus, self.clock)
        self.monitor = ServiceMonitor(self.state, lambda: cfg, self.runner, bus, self.alarms, self.clock)

    def cycle(self) -> str:
        self.clock.advance(10)
        return asyncio.run(self.monitor.run_cycle())


def web(threshold: int = 3, **fields: object) -> ServiceRow:
    return ServiceRow(name="web", check="check-web", retry_threshold=threshold, **fields)


def test_a_service_is_down_only_after_threshold_consecutive_failures(cfg: Config) -> None:
    world = World(cfg, {"check-web": [1, 1, 1]}, web(3))
    row = world.state.services[(1,)]
    assert world.cycle() == "1/1 services up"  # not yet down: one bad check pages nobody
    assert world.cycle() == "1/1 services up"
    assert (row.status, row.consec_failures) == (ServiceStatus.UNKNOWN, 2)
    assert world.recorder.events == []

    sentence = world.cycle()
    assert sentence == "0/1 services up; down: web"
    assert (row.status, row.consec_failures) == (ServiceStatus.FAILED, 3)
    assert row.last_failure == world.clock.time()
    assert world.recorder.types() == [EventType.SERVICE_DOWN, EventType.ALARM_RAISED]
    down = world.recorder.events[0]
    assert down.subject == "web" and down.severity == Severity.MAJOR
    assert down.data["service_index"] == 1
    assert "exit code 1" in down.data["reason"]
    assert world.alarms.active(ProbableCause.SERVICE_FAILURE, "web")
    assert [a.subject for a in world.state.alarms.values()] == ["web"]


def test_a_good_check_resets_the_count(cfg: Config) -> None:
    world = World(cfg, {"check-web": [1, 1, 0, 1, 1, 0]}, web(3))
    for _ in range(6):
        world.cycle()
    row = world.state.services[(1,)]
    assert row.status == ServiceStatus.RUNNING
    assert row.consec_failures == 0
    assert world.recorder.events == []


def test_a_down_service_is_reported_once(cfg: Config) -> None:
    world = World(cfg, {"check-web": [1]}, web(2))
    for _ in range(6):
        world.cycle()
    assert world.recorder.types() == [EventType.SERVICE_DOWN, EventType.ALARM_RAISED]
    assert world.state.services[(1,)].consec_failures == 6
    assert len(world.state.alarms) == 1


def test_recovery_publishes_recovered_and_clears_the_alarm(cfg: Config) -> None:
    world = World(cfg, {"check-web": [1, 1, 0]}, web(2))
    world.cycle()
    world.cycle()
    assert world.state.services[(1,)].status == ServiceStatus.FAILED
    assert world.cycle() == "1/1 services up"
    row = world.state.services[(1,)]
    assert (row.status, row.consec_failures) == (ServiceStatus.RUNNING, 0)
    assert world.recorder.types() == [EventType.SERVICE_DOWN, EventType.ALARM_RAISED,
                                      EventType.SERVICE_RECOVERED, EventType.ALARM_CLEARED]
    assert world.recorder.events[2].data == {"service_index": 1}
    assert not world.alarms.active(ProbableCause.SERVICE_FAILURE, "web")
    assert len(world.state.alarms) == 0


def test_a_first_good_check_is_not_a_recovery(cfg: Config) -> None:
    world = World(cfg, {"check-web": [0]}, web())
    world.cycle()
    assert world.state.services[(1,)].status == ServiceStatus.RUNNING
    assert world.recorder.events == []


def test_disabled_and_not_in_service_rows_are_not_checked(cfg: Config) -> None:
    world = World(cfg, {"check-web": [1], "check-off": [1], "check-nis": [1]},
                  web(1),
                  ServiceRow(name="off", check="check-off", retry_threshold=1, enabled=False),
                  ServiceRow(name="nis", check="check-nis", retry_threshold=1, row_status="notInService"),
                  ServiceRow(name="draft", check="check-draft", retry_threshold=1, row_status="notReady"))
    assert world.cycle() == "0/1 services up; down: web"
    assert world.runner.calls == ["check-web"]
    assert [e.subject for e in world.recorder.events if e.type == EventType.SERVICE_DOWN] == ["web"]


def test_nothing_to_check(cfg: Config) -> None:
    world = World(cfg, {}, ServiceRow(name="off", check="check-off", enabled=False))
    assert world.cycle() == "no active services to check"
    assert world.runner.calls == []


def test_each_service_is_judged_on_its_own_check(cfg: Config) -> None:
    world = World(cfg, {"check-web": [1], "check-db": [0]},
                  web(1), ServiceRow(name="db", check="check-db", retry_threshold=1))
    assert world.cycle() == "1/2 services up; down: web"
    assert world.state.services[(2,)].status == ServiceStatus.RUNNING
    assert sorted(world.runner.calls) == ["check-db", "check-web"]


def test_the_check_interval_comes_from_the_live_config(cfg: Config) -> None:
    world = World(cfg, {})
    assert world.monitor.interval() == cfg.timing.service_check_interval_ms / 1000.0


class HangingRunner:
    """Every check times out; remembers the timeout it was given."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    async def run(self, command: str, timeout: float) -> RunResult:
        self.timeouts.append(timeout)
        return RunResult(command, None, "", timed_out=True)


def test_a_hung_check_counts_as_a_failure_and_is_bounded_by_the_interval(cfg: Config) -> None:
    world = World(cfg, {}, web(1))
    hanging = HangingRunner()
    world.monitor.runner = hanging
    world.cycle()
    assert world.state.services[(1,)].status == ServiceStatus.FAILED
    assert "timed out" in world.recorder.events[0].data["reason"]
    assert hanging.timeouts == [pytest.approx(world.monitor.interval() * 0.8)]


def test_active_only_services_are_checked_on_the_active_head_only(cfg: Config) -> None:
    world = World(cfg, {"check-web": [1], "check-pbs": [0]}, web(1),
                  ServiceRow(name="pbs", check="check-pbs", retry_threshold=1, active_only=True))
    world.head.status = HeadStatus.STANDBY     # as the role machine writes it
    world.cycle()
    assert world.runner.calls == ["check-web"]
    assert world.state.services[(2,)].status == ServiceStatus.STOPPED   # shown as stopped on a standby
    world.head.status = HeadStatus.ACTIVE
    world.cycle()
    assert "check-pbs" in world.runner.calls
    assert world.state.services[(2,)].status == ServiceStatus.RUNNING
