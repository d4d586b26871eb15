"""The recovery ladder (fcaps.fault.services.ladder) rung by rung, and its outage history on disk
(fcaps.fault.services.outages), with times given by the test."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from fakes import FakeClock

from fcaps.fault.services.ladder import Ladder, Policy, StepKind
from fcaps.fault.services.outages import OutageFile
from haoscar_snmp.core.state import RecoveryAction, ServiceRung, ServiceStatus

K = StepKind
FAIL_OVER = Policy(fall=2, rise=1, max_restarts=2, window_s=60, reset_after=3, flap_threshold=0)
NOTIFY = Policy(fall=2, rise=1, max_restarts=2, window_s=60, reset_after=3, flap_threshold=0,
                recovery="restart-then-notify")


def kinds(steps: list) -> list[StepKind]:
    return [step.kind for step in steps]


def fail(ladder: Ladder, t: float, policy: Policy = FAIL_OVER, times: int = 1) -> list[StepKind]:
    out: list[StepKind] = []
    for i in range(times):
        out += kinds(ladder.observe(False, t + i, policy, "connection refused"))
    return out


def ok(ladder: Ladder, t: float, policy: Policy = FAIL_OVER, times: int = 1) -> list[StepKind]:
    out: list[StepKind] = []
    for i in range(times):
        out += kinds(ladder.observe(True, t + i, policy, "connected"))
    return out


def test_a_service_is_restarted_after_fall_failures_and_recovers_after_rise_good_checks() -> None:
    ladder = Ladder()
    assert ok(ladder, 0) == [] and ladder.status is ServiceStatus.RUNNING
    assert fail(ladder, 1) == []                                   # one bad check pages nobody
    assert fail(ladder, 2) == [K.DOWN, K.RESTART]
    assert (ladder.status, ladder.rung, ladder.last_action) == (
        ServiceStatus.RECOVERING, ServiceRung.RESTARTING, RecoveryAction.RESTART)
    assert ladder.restart_done(True, "finished") == []
    steps = ladder.observe(True, 3, FAIL_OVER, "connected")
    assert kinds(steps) == [K.RECOVERED] and steps[0].reason == "the restart worked"
    assert ladder.rung is ServiceRung.RESTARTING                  # the incident stays open ...
    assert ok(ladder, 4, times=2) == [K.RESET]                     # ... until reset_after good checks
    assert (ladder.rung, ladder.restarts, ladder.total_restarts) == (ServiceRung.WATCHING, [], 1)


def test_restarts_that_do_not_help_climb_to_failover() -> None:
    ladder = Ladder(status=ServiceStatus.RUNNING)
    assert fail(ladder, 0, times=2) == [K.DOWN, K.RESTART]
    ladder.restart_done(True, "finished")
    assert fail(ladder, 2, times=2) == [K.RESTART_FAILED, K.RESTART]
    ladder.restart_done(True, "finished")
    steps = ladder.observe(False, 4, FAIL_OVER, "refused") + ladder.observe(False, 5, FAIL_OVER, "refused")
    assert kinds(steps) == [K.RESTART_FAILED, K.FAILOVER]
    assert "2 restarts within 60 s did not help" in steps[-1].reason
    assert (ladder.rung, ladder.unfit, ladder.last_action) == (ServiceRung.FAILOVER, True, RecoveryAction.FAILOVER)
    assert ladder.handed_over_at == 5
    assert fail(ladder, 6, times=4) == []                          # nothing more to do


def test_restart_then_notify_ends_with_the_operator() -> None:
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, 0, NOTIFY, times=2)
    for t in (2, 4):
        ladder.restart_done(True, "finished")
        last = fail(ladder, t, NOTIFY, times=2)
    assert last == [K.RESTART_FAILED, K.EXHAUSTED]
    assert (ladder.rung, ladder.unfit, ladder.last_action) == (ServiceRung.OPERATOR, False, RecoveryAction.NOTIFY)


def test_a_restart_command_that_fails_is_reported_once_and_the_checks_decide_the_rest() -> None:
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, 0, times=2)
    steps = ladder.restart_done(False, "exited with 1")
    assert kinds(steps) == [K.RESTART_FAILED] and "exited with 1" in steps[0].reason
    assert ladder.status is ServiceStatus.FAILED
    assert fail(ladder, 2, times=2) == [K.RESTART]                 # no second "restart failed"


def test_restarts_leave_the_window_and_count_no_more() -> None:
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, 0, times=2)                                       # restart 1 at t=1
    ladder.restart_done(True, "finished")
    ok(ladder, 2)
    fail(ladder, 10, times=2)                                      # restart 2 at t=11
    ladder.restart_done(True, "finished")
    ok(ladder, 12)
    assert ladder.restarts_in_window(12, FAIL_OVER) == 2
    assert fail(ladder, 65, times=2) == [K.DOWN, K.RESTART]        # t=66: restart 1 has left the window
    assert ladder.restarts == [11, 66]


def test_flapping_escalates_although_each_restart_worked() -> None:
    flappy = Policy(fall=1, rise=1, max_restarts=10, window_s=60, reset_after=100, flap_threshold=3,
                    recovery="restart-then-notify")
    ladder = Ladder(status=ServiceStatus.RUNNING)
    for t in (0, 10):
        assert fail(ladder, t, flappy) == [K.DOWN, K.RESTART]
        ladder.restart_done(True, "finished")
        assert ok(ladder, t + 1, flappy) == [K.RECOVERED]
    steps = ladder.observe(False, 20, flappy, "refused")
    assert kinds(steps) == [K.DOWN, K.EXHAUSTED] and "flapping: failed 3 times within 60 s" in steps[-1].reason


@pytest.mark.parametrize("policy, why", [
    (Policy(fall=1, has_restart=False), "no restart command"),
    (Policy(fall=1, recovery="notify-only"), "policy notify-only"),
    (Policy(fall=1, max_restarts=0, recovery="restart-then-notify"), "max_restarts = 0"),
])
def test_without_a_restart_rung_the_first_failure_escalates(policy: Policy, why: str) -> None:
    ladder = Ladder(status=ServiceStatus.RUNNING)
    steps = ladder.observe(False, 0, policy, "refused")
    assert kinds(steps)[0] is K.DOWN and kinds(steps)[1] in (K.FAILOVER, K.EXHAUSTED)
    assert why in steps[1].reason


def test_a_refused_failover_goes_to_the_operator_and_keeps_the_head_unfit() -> None:
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, 0, Policy(fall=1, has_restart=False))
    steps = ladder.failover_refused("no restart command; the active role cannot move: peer head2 is not heard")
    assert kinds(steps) == [K.EXHAUSTED] and "not heard" in steps[0].reason
    assert (ladder.rung, ladder.unfit, ladder.handed_over_at) == (ServiceRung.OPERATOR, True, 0.0)


def test_healthy_again_here_clears_the_unfit_mark() -> None:
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, 0, Policy(fall=1, has_restart=False))
    assert ladder.unfit
    assert ok(ladder, 1, Policy(fall=1, has_restart=False)) == [K.RECOVERED]
    assert not ladder.unfit and ladder.rung is ServiceRung.FAILOVER


def test_the_failure_timeout_resets_a_handed_over_service_that_is_not_checked_here() -> None:
    policy = Policy(fall=1, has_restart=False, failure_timeout_s=600)
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, 100, policy)
    assert ladder.tick(699, policy, checked=False) == []
    assert ladder.tick(700, policy, checked=True) == []             # checked here: its checks decide
    steps = ladder.tick(700, policy, checked=False)
    assert kinds(steps) == [K.RESET] and not ladder.unfit and ladder.rung is ServiceRung.WATCHING
    never = Policy(fall=1, has_restart=False, failure_timeout_s=0)
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, 100, never)
    assert ladder.tick(10_000_000, never, checked=False) == [] and ladder.unfit


def test_an_operator_reset_starts_the_ladder_afresh() -> None:
    flappy = Policy(fall=1, max_restarts=1, flap_threshold=2, recovery="restart-then-notify")
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, 0, flappy)
    ladder.restart_done(True, "finished")
    fail(ladder, 1, flappy)
    assert ladder.rung is ServiceRung.OPERATOR
    steps = ladder.reset("reset by v3:admin@nms")
    assert kinds(steps) == [K.RESET] and steps[0].reason == "reset by v3:admin@nms"
    assert (ladder.status, ladder.rung, ladder.restarts, ladder.failures) == (
        ServiceStatus.UNKNOWN, ServiceRung.WATCHING, [], [])
    assert ok(ladder, 2, flappy) == [] and fail(ladder, 3, flappy) == [K.DOWN, K.RESTART]


# -- the outage history on disk ----------------------------------------------------------

def test_the_history_survives_a_restart_on_the_same_rung(tmp_path: Path) -> None:
    clock = FakeClock()
    ladder = Ladder(status=ServiceStatus.RUNNING)
    fail(ladder, clock.monotonic(), times=2)                      # DOWN, restart 1
    ladder.restart_done(True, "finished")
    asyncio.run(OutageFile(tmp_path / "services.json", clock, boot="b1").save({"pbs": ladder}))
    clock.advance(5)
    again = OutageFile(tmp_path / "services.json", clock, boot="b1").load()["pbs"]
    assert (again.status, again.rung, again.restarts, again.total_restarts) == (
        ServiceStatus.RECOVERING, ServiceRung.RESTARTING, ladder.restarts, 1)
    # Two more failed checks: the restart did not help; the second restart follows.
    steps = again.observe(False, clock.monotonic(), FAIL_OVER, "x") + \
        again.observe(False, clock.monotonic(), FAIL_OVER, "x")
    assert kinds(steps) == [K.RESTART_FAILED, K.RESTART]


def test_a_running_service_comes_back_unknown_and_a_reboot_moves_the_times(tmp_path: Path) -> None:
    clock = FakeClock()
    ladder = Ladder(status=ServiceStatus.RUNNING, rung=ServiceRung.RESTARTING,
                    restarts=[clock.monotonic() - 10])
    asyncio.run(OutageFile(tmp_path / "services.json", clock, boot="b1").save({"pbs": ladder}))
    after = FakeClock()
    after._mono = 5.0                           # a new boot: the monotonic clock started again
    after._wall = clock.time() + 30             # 30 s of wall-clock time later
    again = OutageFile(tmp_path / "services.json", after, boot="b2").load()["pbs"]
    assert again.status is ServiceStatus.UNKNOWN and again.rung is ServiceRung.RESTARTING
    assert again.restarts == [pytest.approx(5.0 - 30 - 10)]        # 40 s before "now"


@pytest.mark.parametrize("text", ["{", "[]", '{"format": 9}', '{"format": 1, "services": {"a": {}}}'])
def test_an_unusable_history_is_said_and_started_afresh(tmp_path: Path, text: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "services.json"
    path.write_text(text)
    assert OutageFile(path, FakeClock(), boot="b1").load() == {}
    assert "start afresh" in caplog.text


def test_the_file_is_private_and_readable_json(tmp_path: Path) -> None:
    asyncio.run(OutageFile(tmp_path / "services.json", FakeClock(), boot="b1").save({"web": Ladder()}))
    path = tmp_path / "services.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["services"]["web"]["rung"] == "watching"
