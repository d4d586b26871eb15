"""fcaps.fault.services.monitor.ServiceMonitor: verdicts in, ladder steps carried out.

The checks are scripted (a fake checker), restart commands go to a FakeRunner, times to
a FakeClock; each step must show as an event with its reason, an alarm raised or
cleared, a row of the service table, and in the outage history on disk.

The checks' timers run on the FakeClock too: time passes for them only when a test moves
the clock. Every test runs twice, with the monotonic clock starting a few seconds after
boot and days after it: the monitor must not care where that clock starts.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fakes import EventRecorder, FakeClock, FakeRunner

from fcaps.configuration.apply import apply_to_state
from fcaps.configuration.control import OperatorActions
from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.fault.heartbeat.proto import Flag
from fcaps.fault.services.checks import Outcome, Verdict
from fcaps.fault.services.monitor import TICK_S, ServiceMonitor
from fcaps.fault.services.outages import OutageFile
from haoscar_snmp.config.checkspec import CheckSpec
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.schema import Config, ServiceConfig
from haoscar_snmp.core.events import EventBus, EventType, Severity
from haoscar_snmp.core.runner import RunResult
from haoscar_snmp.core.state import (
    ControlAction,
    HeadStatus,
    PeerView,
    RecoveryAction,
    ServiceRung,
    ServiceSelection,
    ServiceStatus,
    State,
)

UP = Outcome(Verdict.UP, "connected")
DOWN = Outcome(Verdict.DOWN, "connection refused")
SLOW = Outcome(Verdict.DOWN, "no answer within 800 ms", timed_out=True)
BROKEN = Outcome(Verdict.ERROR, "cannot run: exit 127 (command not found)")


@pytest.fixture(autouse=True, params=[5.0, 1_000_000.0], ids=["just-booted", "up-for-days"])
def _monotonic_start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(World, "monotonic_start", request.param)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config(None, state_dir=tmp_path_factory.mktemp("state"))


def service(index: int = 1, name: str = "web", **fields: Any) -> ServiceConfig:
    values: dict[str, Any] = dict(index=index, name=name, check=f"check-{name}", restart=f"restart-{name}",
                                  retry_threshold=2, interval_ms=3600000, max_restarts=2, reset_after=3,
                                  flap_threshold=0)
    values.update(fields)
    return ServiceConfig(**values)


class FakeChecker:
    """Answers each service's checks from a script (the last answer repeats)."""

    def __init__(self) -> None:
        self.script: dict[str, list[Outcome]] = {}
        self.calls: list[str] = []
        self.running = 0
        self.most = 0
        self.delay = 0.0

    async def check(self, spec: CheckSpec, timeout: float) -> Outcome:
        name = spec.command.removeprefix("check-")
        self.calls.append(name)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            answers = self.script.get(name, [UP])
            return answers.pop(0) if len(answers) > 1 else answers[0]
        finally:
            self.running -= 1


class World:
    monotonic_start = 5.0

    def __init__(self, base: Config, tmp_path: Path, *services: ServiceConfig, active: bool = True,
                 max_in_flight: int = 32) -> None:
        self.config = base.model_copy(update={"services": services or (service(),)})
        self.clock = FakeClock(monotonic=self.monotonic_start)
        self.state = State()
        apply_to_state(self.config, self.state)
        self.head = next(h for h in self.state.heads.values() if h.is_local)
        self.head.status = HeadStatus.ACTIVE if active else HeadStatus.STANDBY
        self.checker = FakeChecker()
        self.runner = FakeRunner({})
        self.bus = EventBus()
        self.events = EventRecorder()
        self.bus.subscribe("recorder", self.events)
        self.alarms = Alarms(self.state, self.bus, self.clock)
        self.role_woken = 0
        self.path = tmp_path / "services.json"
        self.monitor = self.new_monitor(max_in_flight)

    def new_monitor(self, max_in_flight: int = 32) -> ServiceMonitor:
        monitor = ServiceMonitor(self.state, lambda: self.config, self.checker, self.runner,  # type: ignore[arg-type]
                                 self.bus, self.alarms, self.clock, OutageFile(self.path, self.clock, boot="b"),
                                 wake_role=self.woken, max_in_flight=max_in_flight)
        self.bus.subscribe(f"services{id(monitor)}", monitor.on_event)
        return monitor

    def woken(self) -> None:
        self.role_woken += 1

    def row(self, index: int = 1) -> Any:
        return self.state.services[(index,)]

    def run(self, *steps: Any) -> None:
        """Run the steps (coroutine functions of the world) on one loop, in order."""
        async def main() -> None:
            for step in steps:
                await step()
            await self.monitor.stop()
        asyncio.run(main())
        self.monitor._stopped = False       # the next run() is a new loop: the monitor goes on there

    async def cycle(self) -> None:
        await self.monitor.run_cycle()
        await self.later(TICK_S)             # a new row's first check: the grid's next tick

    async def quiet(self) -> None:
        """Until no check is due, queued or running. The clock hands a due timer to the
        loop, which runs it in its next pass; the monitor then starts one queued check per
        pass of the loop."""
        monitor = self.monitor
        while True:
            await asyncio.sleep(0)
            if not (monitor._queued or monitor._draining is not None or monitor._tasks):
                return
            await monitor.settle()

    async def later(self, seconds: float) -> None:
        """Let `seconds` pass on the clock, timer by timer, each check run to its end."""
        end = self.clock.monotonic() + seconds
        await self.quiet()
        while (due := self.clock.next_due()) is not None and due <= end:
            self.clock.advance(max(due - self.clock.monotonic(), 0.0))
            await self.quiet()
        self.clock.advance(max(end - self.clock.monotonic(), 0.0))
        await self.quiet()

    def after(self, seconds: float) -> Any:
        async def step() -> None:
            await self.later(seconds)
        return step

    def all_at_once(self, seconds: float) -> Any:
        """Move the clock in one step, as a loop that wakes late finds it: every timer due
        meanwhile falls due together."""
        async def step() -> None:
            self.clock.advance(seconds)
            await self.quiet()
        return step

    def checks(self, name: str, *outcomes: Outcome) -> Any:
        async def step() -> None:
            for outcome in outcomes:
                self.checker.script[name] = [outcome]
                self.clock.advance(1)
                await self.monitor.check_now(name)
                await self.monitor.settle()
        return step

    def types(self) -> list[EventType]:
        return [e.type for e in self.events.events if e.type not in (EventType.ALARM_RAISED,
                                                                      EventType.ALARM_CLEARED)]


def test_a_failed_service_is_declared_down_and_restarted(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    row = w.row()
    assert w.types() == [EventType.SERVICE_DOWN, EventType.SERVICE_RESTARTED]
    down, restarted = [e for e in w.events.events if e.type in (EventType.SERVICE_DOWN, EventType.SERVICE_RESTARTED)]
    assert down.severity == Severity.MAJOR and "2 failed checks (connection refused)" in down.data["reason"]
    assert "restart 1 of 2" in restarted.text and restarted.data["rung"] == "restarting"
    assert w.runner.calls == ["restart-web"]
    assert (row.status, row.rung, row.restarts, row.restarts_in_window, row.last_action) == (
        ServiceStatus.RECOVERING, ServiceRung.RESTARTING, 1, 1, RecoveryAction.RESTART)
    assert row.last_action_time == w.clock.time() and row.last_failure == w.clock.time()
    assert w.alarms.active(ProbableCause.SERVICE_FAILURE, "web")


def test_a_restart_that_works_recovers_the_service_and_clears_the_alarm(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.run(w.cycle, w.checks("web", DOWN, DOWN, UP))
    recovered = w.events.events[-2]          # the recovery, then its alarm cleared
    assert recovered.type == EventType.SERVICE_RECOVERED and "the restart worked" in recovered.text
    assert not w.alarms.active(ProbableCause.SERVICE_FAILURE, "web")
    assert w.row().status is ServiceStatus.RUNNING and w.row().rung is ServiceRung.RESTARTING
    w.run(w.checks("web", UP, UP))
    assert w.types()[-1] == EventType.SERVICE_LADDER_RESET and w.row().rung is ServiceRung.WATCHING


def test_the_ladder_is_saved_before_the_restart_runs(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    seen: list[str] = []

    async def restart(command: str, timeout: float) -> RunResult:
        seen.append(json.loads(w.path.read_text())["services"]["web"]["rung"])
        return RunResult(command, 0, "")
    w.runner.run = restart  # type: ignore[method-assign]
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    assert seen == ["restarting"]


def test_restarts_that_do_not_help_hand_the_role_to_a_peer_that_can_serve(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.state.peer = PeerView("head2", False, heard=True, status=HeadStatus.STANDBY, flags=int(Flag.QUORUM_OK))
    w.run(w.cycle, w.checks("web", *[DOWN] * 6))
    assert w.types() == [EventType.SERVICE_DOWN, EventType.SERVICE_RESTARTED, EventType.SERVICE_RESTART_FAILED,
                         EventType.SERVICE_RESTARTED, EventType.SERVICE_RESTART_FAILED,
                         EventType.SERVICE_ESCALATED]
    escalated = w.events.events[-1]
    assert "2 restarts within 300 s did not help" in escalated.text and "handing the active role to head2" in escalated.text
    assert w.row().rung is ServiceRung.FAILOVER and w.row().last_action is RecoveryAction.FAILOVER
    assert w.state.service_unfit == "service web failed on this head" and w.role_woken == 1


def test_a_failover_the_peer_cannot_take_goes_to_the_operator(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(restart=""))
    w.state.peer = PeerView("head2", False, heard=False)
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    exhausted = w.events.events[-2]
    assert exhausted.type == EventType.SERVICE_RECOVERY_EXHAUSTED and exhausted.severity == Severity.CRITICAL
    assert "no restart command; the active role cannot move: peer head2 is not heard" in exhausted.text
    assert w.alarms.active(ProbableCause.RECOVERY_EXHAUSTED, "web")
    assert w.row().rung is ServiceRung.OPERATOR
    assert w.state.service_unfit     # the role moves as soon as the peer can take it


def test_restart_then_notify_notifies_and_leaves_the_head_fit(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(recovery="restart-then-notify", max_restarts=1))
    w.run(w.cycle, w.checks("web", *[DOWN] * 4))
    assert w.types()[-1] == EventType.SERVICE_RECOVERY_EXHAUSTED
    assert "1 restarts within 300 s did not help" in w.events.events[-2].text
    assert w.row().last_action is RecoveryAction.NOTIFY and w.state.service_unfit == ""


def test_a_restart_command_that_fails_is_an_event(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.runner.answers["restart-web"] = [1]
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    failed = w.events.events[-1]
    assert failed.type == EventType.SERVICE_RESTART_FAILED and "restart command exited with 1" in failed.text
    assert w.row().status is ServiceStatus.FAILED


def test_a_check_that_cannot_run_is_counted_and_alarmed_but_judges_nothing(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.run(w.cycle, w.checks("web", BROKEN, BROKEN, BROKEN))
    row = w.row()
    assert (row.status, row.check_errors, row.consec_failures) == (ServiceStatus.RUNNING, 3, 0)
    assert row.last_reason.startswith("check could not run: cannot run: exit 127")
    assert w.alarms.active(ProbableCause.SERVICE_CHECK_ERROR, "web") and w.types() == []
    w.run(w.checks("web", UP))
    assert not w.alarms.active(ProbableCause.SERVICE_CHECK_ERROR, "web")


def test_a_check_that_times_out_is_a_failure_and_counted(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.run(w.cycle, w.checks("web", SLOW))
    assert (w.row().check_timeouts, w.row().consec_failures) == (1, 1)


def test_active_only_services_are_not_checked_on_a_standby(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(active_only=True), service(2, "nfs"), active=False)
    w.run(w.cycle)
    assert w.row(1).status is ServiceStatus.STOPPED and w.checker.calls == ["nfs"]
    w.head.status = HeadStatus.ACTIVE
    seen: list[tuple[ServiceStatus, bool]] = []

    async def look() -> None:
        seen.append((w.row(1).status, "web" in w.checker.calls))
    # Just started by the takeover: judged one interval later, not at once.
    w.run(w.cycle, look, w.after(3600), look)
    assert seen == [(ServiceStatus.UNKNOWN, False), (ServiceStatus.RUNNING, True)]


def test_a_handed_over_active_only_service_is_reset_after_its_failure_timeout(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(active_only=True, restart="", failure_timeout_s=600))
    w.state.peer = PeerView("head2", False, heard=True, status=HeadStatus.STANDBY, flags=int(Flag.QUORUM_OK))
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    assert w.row().rung is ServiceRung.FAILOVER and w.state.service_unfit
    w.head.status = HeadStatus.STANDBY                     # the role moved
    w.clock.advance(100)
    w.run(w.cycle)
    assert w.row().status is ServiceStatus.STOPPED and w.state.service_unfit
    w.clock.advance(600)
    w.run(w.cycle)
    assert w.types()[-1] == EventType.SERVICE_LADDER_RESET and "failure timeout of 600 s" in w.events.events[-1].text
    assert w.state.service_unfit == "" and w.row().rung is ServiceRung.WATCHING


def test_an_operator_reset_clears_the_ladder_and_checks_afresh(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(restart=""), service(2, "nfs"))
    w.state.peer = PeerView("head2", False, heard=False)
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    assert w.row().rung is ServiceRung.OPERATOR and w.state.service_unfit
    actions = OperatorActions(w.state, w.bus, w.clock)

    async def reset() -> None:
        actions.handle(ServiceSelection(1), "v3:admin@nms")
        actions.handle(ControlAction.RESET_SERVICE, "v3:admin@nms")
        await asyncio.sleep(0)
        await w.monitor.settle()
    w.run(reset)
    assert w.state.control.result_text == "service web reset"
    reset_event = next(e for e in w.events.events if e.type == EventType.SERVICE_LADDER_RESET)
    assert "reset by v3:admin@nms" in reset_event.text
    assert (w.row().rung, w.row().status) == (ServiceRung.WATCHING, ServiceStatus.UNKNOWN)
    assert not w.alarms.active(ProbableCause.RECOVERY_EXHAUSTED, "web") and w.state.service_unfit == ""
    actions.handle(ServiceSelection(9), "v3:admin@nms")
    actions.handle(ControlAction.RESET_SERVICE, "v3:admin@nms")
    assert "no service with index 9" in w.state.control.result_text


def test_disabled_rows_are_not_checked_and_lose_their_ladder(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    w.config = w.config.model_copy(update={"services": (service(enabled=False),)})
    apply_to_state(w.config, w.state)
    calls = len(w.checker.calls)
    w.run(w.cycle)
    assert w.row().status is ServiceStatus.DISABLED and len(w.checker.calls) == calls
    assert "web" not in w.monitor.ladders and not w.alarms.active(ProbableCause.SERVICE_FAILURE, "web")


def test_a_daemon_restart_resumes_the_ladder_on_its_rung(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.run(w.cycle, w.checks("web", DOWN, DOWN))         # restart 1 ran
    w.state = State()
    apply_to_state(w.config, w.state)
    next(h for h in w.state.heads.values() if h.is_local).status = HeadStatus.ACTIVE
    w.alarms = Alarms(w.state, w.bus, w.clock)
    w.monitor = w.new_monitor()
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    assert w.row().rung is ServiceRung.RESTARTING and w.row().restarts_in_window == 2
    assert w.types()[-2:] == [EventType.SERVICE_RESTART_FAILED, EventType.SERVICE_RESTARTED]


def test_reset_counters_zeroes_the_monitors_counters(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path)
    w.run(w.cycle, w.checks("web", BROKEN, SLOW, DOWN))
    OperatorActions(w.state, w.bus, w.clock).handle(ControlAction.RESET_COUNTERS, "v3:admin@nms")
    assert (w.row().restarts, w.row().check_errors, w.row().check_timeouts) == (0, 0, 0)


def test_no_more_checks_run_at_once_than_allowed(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, *(service(i, f"s{i}") for i in range(1, 9)), max_in_flight=3)
    w.checker.delay = 0.01
    # The first check of each is spread over the interval (one at once, the others 450 s
    # apart); a loop that wakes late after 3599 s finds the other seven due together.
    w.run(w.cycle, w.all_at_once(3599))
    assert len(w.checker.calls) == 8 and w.checker.most == 3


def test_the_summary_names_what_is_down(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(restart=""), service(2, "nfs"))
    w.state.peer = PeerView("head2", False, heard=False)
    sentences: list[str] = []

    async def summary() -> None:
        sentences.append(await w.monitor.run_cycle())
    w.run(w.cycle, w.after(1800), w.checks("web", DOWN, DOWN), summary)   # nfs first checked half an interval on
    assert sentences == ["1/2 services up; down: web"]


def test_an_active_only_service_is_never_judged_or_restarted_once_the_head_is_not_active(
        base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(active_only=True))
    w.run(w.cycle, w.checks("web", DOWN))                  # one failure of two
    w.head.status = HeadStatus.RELEASING                   # the role is stopping it right now
    w.run(w.checks("web", DOWN, DOWN))
    assert w.runner.calls == [] and w.types() == [] and w.row().consec_failures == 1


def test_a_restart_that_ends_after_the_release_is_stopped_again(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(active_only=True, stop="stop-web"))

    async def restart_during_release(command: str, timeout: float) -> RunResult:
        w.runner.calls.append(command)
        if command == "restart-web":
            w.head.status = HeadStatus.RELEASING            # the role released meanwhile
        return RunResult(command, 0, "")
    w.runner.run = restart_during_release  # type: ignore[method-assign]
    w.run(w.cycle, w.checks("web", DOWN, DOWN))
    assert w.runner.calls == ["restart-web", "stop-web"]


def test_each_service_is_checked_every_interval_of_the_monitors_clock(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(interval_ms=10000))
    counts: list[int] = []
    next_in: list[float] = []

    async def count() -> None:
        counts.append(len(w.checker.calls))
        next_in.append(round(w.clock.next_due() - w.clock.monotonic(), 6))  # type: ignore[operator]
    w.run(w.cycle, count, w.after(9.9), count, w.after(0.1), count, w.after(10), count, w.all_at_once(35), count)
    # At once, then every 10 s in phase (the clock is looked at 0.05 s after each); after
    # a stall of 35 s one check, not the three missed, and the next one 10 s after it.
    assert counts == [1, 1, 2, 3, 4]
    assert next_in == [9.95, 0.05, 9.95, 9.95, 10]


def test_an_operator_reset_checks_afresh_at_once_then_every_interval(base: Config, tmp_path: Path) -> None:
    w = World(base, tmp_path, service(restart="", interval_ms=10000))
    w.state.peer = PeerView("head2", False, heard=False)
    actions = OperatorActions(w.state, w.bus, w.clock)
    counts: list[int] = []

    async def count() -> None:
        counts.append(len(w.checker.calls))

    async def reset() -> None:
        w.checker.script["web"] = [UP]           # repaired by the operator
        actions.handle(ServiceSelection(1), "v3:admin@nms")
        actions.handle(ControlAction.RESET_SERVICE, "v3:admin@nms")
        await w.later(TICK_S)
    w.run(w.cycle, w.checks("web", DOWN, DOWN), count, reset, count, w.after(9.9), count, w.after(0.2), count)
    assert counts == [3, 4, 4, 5]
    assert w.row().status is ServiceStatus.RUNNING


def test_a_services_timers_share_one_callback_and_no_arguments(base: Config, tmp_path: Path) -> None:
    """Rearming every interval makes no bound method or argument tuple of its own: those
    would live as long as the interval and reach the collector's oldest generation."""
    w = World(base, tmp_path, service(interval_ms=10000))
    seen: list[tuple[object, tuple]] = []

    async def look() -> None:
        timer = w.monitor._timers["web"]
        seen.append((timer.callback, timer.args))       # type: ignore[attr-defined]
    w.run(w.cycle, look, w.after(10), look, w.after(10), look)
    assert len(w.checker.calls) == 3
    assert all(args == () for _, args in seen)
    assert seen[0][0] is seen[1][0] is seen[2][0]
