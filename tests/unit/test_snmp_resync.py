"""snmp.notify.Notifier and snmp.resync.TargetWatch: an inform target whose informs were
lost is probed every resynchronisation interval (fake clock) and, once it answers, gets
its active alarms again, marked as a resynchronisation; trap targets never are."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import pytest
from fakes import FakeClock, FakeOriginator

from fcaps.configuration.mibmap import CONFIG_MAP
from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import State, TargetStatus
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import OID, MibModel
from haoscar_snmp.snmp.notify import NotificationBuilder, Notifier
from haoscar_snmp.snmp.resync import NotifyTarget, ResyncSettings, TargetWatch, Verdict
from haoscar_snmp.snmp.view import MibView

NMS = NotifyTarget(1, "n1", "nms", inform=True)
TRAPS = NotifyTarget(2, "n2", "traps", inform=False)
INTERVAL = 30.0


# -- the target's state, pure --------------------------------------------------------------


def test_a_lost_inform_makes_the_target_unreachable_and_an_acknowledged_one_brings_it_back() -> None:
    watch = TargetWatch(NMS)
    first, second, third = watch.sent(), watch.sent(), watch.sent()
    assert watch.result(first, True) is Verdict.SAME
    assert watch.result(second, False) is Verdict.LOST
    assert not watch.reachable and watch.lost == 1
    assert watch.result(third, False) is Verdict.SAME
    assert watch.lost == 2
    assert watch.describe() == "2 inform(s) to target nms lost"
    fourth = watch.sent()
    assert watch.result(fourth, True) is Verdict.BACK
    assert watch.reachable


def test_a_late_result_of_an_older_inform_does_not_undo_a_newer_one() -> None:
    watch = TargetWatch(NMS)
    old, new = watch.sent(), watch.sent()
    assert watch.result(new, True) is Verdict.SAME
    assert watch.result(old, False) is Verdict.SAME       # lost before the newer one got through
    assert watch.reachable
    lost, late = watch.sent(), watch.sent()
    assert watch.result(late, False) is Verdict.LOST
    assert watch.result(lost, True) is Verdict.SAME       # acknowledged late, but older
    assert not watch.reachable


# -- the notifier: probes and the burst ----------------------------------------------------


class ReachRecorder:
    def __init__(self) -> None:
        self.told: list[tuple[str, bool]] = []

    def target_reach(self, target: str, reachable: bool, text: str) -> None:
        self.told.append((target, reachable))


class Rig:
    def __init__(self, mib: MibModel, cfg: Config, settings: ResyncSettings, real_alarm: bool = False) -> None:
        self.mib = mib
        self.state = State()
        self.clock = FakeClock()
        self.bus = EventBus()
        self.alarms = Alarms(self.state, self.bus, self.clock)
        view = MibView(mib)
        bind_all(view, self.state, lambda: cfg, CONFIG_MAP, lambda m: int(m * 100), lambda: 0)
        self.originator = FakeOriginator()
        self.reach = ReachRecorder()
        self.targets = [NMS, TRAPS]
        self.notifier = Notifier(
            NotificationBuilder(mib, view), lambda: object(), lambda: self.targets, self.clock,
            self.state, lambda: settings, self.alarms if real_alarm else self.reach,
            originator=self.originator)
        self.bus.subscribe("notifications", self.notifier)

    async def turn(self) -> None:
        """Let the loop run queued callbacks and the notifier's worker."""
        for _ in range(20):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.turn()

    def name(self, varbinds: list[tuple[OID, Any]]) -> str:
        trap_oid = tuple(varbinds[0][1])
        return next(o.name for o in self.mib.objects.values()
                    if o.node == "notification" and o.oid == trap_oid)

    def values(self, varbinds: list[tuple[OID, Any]]) -> dict[str, tuple[OID, Any]]:
        """var-binds by object name: (instance suffix, value)."""
        by_oid = {o.oid: o.name for o in self.mib.objects.values()}
        out = {}
        for oid, value in varbinds[1:]:
            for cut in range(len(oid), 0, -1):
                if oid[:cut] in by_oid:
                    out[by_oid[oid[:cut]]] = (oid[cut:], value)
                    break
        return out

    def raise_two(self) -> None:
        self.alarms.raise_alarm(ProbableCause.SERVICE_FAILURE, "web", Severity.MAJOR,
                                AlarmType.PROCESSING_ERROR, "service web is down")
        self.alarms.raise_alarm(ProbableCause.HEAD_FAILURE, "head2", Severity.CRITICAL,
                                AlarmType.EQUIPMENT, "head head2 is down")


def run(mib: MibModel, cfg: Config, body: Callable[[Rig], Awaitable[None]],
        settings: ResyncSettings = ResyncSettings(True, INTERVAL), real_alarm: bool = False) -> Rig:
    rig = Rig(mib, cfg, settings, real_alarm)

    async def main() -> None:
        await body(rig)
        await rig.notifier.drain(1.0)

    asyncio.run(asyncio.wait_for(main(), 5))
    return rig


def only(sent: list[Any], entry: str) -> list[Any]:
    return [item for item in sent if item[0] == entry]


def test_a_target_that_answers_again_gets_its_active_alarms_as_a_marked_burst(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        sent = rig.originator.take()
        assert [rig.name(v) for _, v, _, _ in only(sent, "n1")] == ["haoscarAlarmRaised"] * 2
        raised_web = rig.values(only(sent, "n1")[0][1])
        for item in only(sent, "n1"):
            FakeOriginator.answer(item, acknowledged=False)     # the NMS is away
        assert rig.notifier.unreachable() == ["nms"]
        row = rig.state.alarm_targets[(1,)]
        assert (row.status, row.sent, row.lost, row.resyncs) == (TargetStatus.UNREACHABLE, 2, 2, 0)
        await rig.advance(INTERVAL - 1)
        assert rig.originator.take() == []                     # nothing before the interval

        await rig.advance(1)                                   # the first probe: lost too
        [probe] = rig.originator.take()
        assert probe[0] == "n1" and rig.name(probe[1]) == "haoscarAlarmResyncStart"
        got = rig.values(probe[1])
        assert got["haoscarNotifySubject"][1].asOctets() == b"nms"
        assert int(got["haoscarNotifyResyncId"][1]) == 1
        assert got["haoscarNotifyReason"][1].asOctets() == b"2 inform(s) to target nms lost"
        FakeOriginator.answer(probe, acknowledged=False)
        await rig.turn()

        # meanwhile the service recovers: the alarm is cleared (lost as well)
        rig.alarms.clear(ProbableCause.SERVICE_FAILURE, "web")
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):
            FakeOriginator.answer(item, acknowledged=False)

        await rig.advance(INTERVAL)                            # the second probe gets through
        [probe] = rig.originator.take()
        assert int(rig.values(probe[1])["haoscarNotifyResyncId"][1]) == 2
        FakeOriginator.answer(probe, acknowledged=True)
        await rig.turn()
        burst = rig.originator.take()
        assert [entry for entry, _, _, _ in burst] == ["n1", "n1"]          # that target only
        assert [rig.name(v) for _, v, _, _ in burst] == ["haoscarAlarmActive", "haoscarAlarmResyncEnd"]
        active = rig.values(burst[0][1])
        assert active["haoscarAlarmProbableCause"][0] == (2,)              # the row's index
        assert int(active["haoscarAlarmProbableCause"][1]) == int(ProbableCause.HEAD_FAILURE)
        assert active["haoscarAlarmSubject"][1].asOctets() == b"head2"
        assert int(active["haoscarAlarmSeverity"][1]) == int(Severity.CRITICAL)
        assert (int(active["haoscarNotifyResyncId"][1]), int(active["haoscarNotifyResyncPosition"][1])) == (2, 1)
        end = rig.values(burst[1][1])
        assert int(end["haoscarNotifyResyncId"][1]) == 2
        assert int(end["haoscarAlarmActiveCount"][1]) == 1
        assert int(end["haoscarAlarmLastChanged"][1]) == int(rig.state.alarm_last_changed * 100)
        assert rig.notifier.unreachable() == []
        row = rig.state.alarm_targets[(1,)]
        assert (row.status, row.resyncs, row.last_resync) == (TargetStatus.REACHABLE, 1, rig.clock.monotonic())
        assert (row.sent, row.lost) == (2 + 1 + 1 + 1 + 2, 2 + 1 + 1)   # raises, probes, clear, burst
        assert raised_web["haoscarAlarmSeverity"][0] == (1,)
        for item in burst:
            FakeOriginator.answer(item, acknowledged=True)
        await rig.advance(10 * INTERVAL)
        assert rig.originator.take() == []                     # reachable: no more probes
        assert rig.reach.told == [("nms", False), ("nms", True)]

    run(mib, cfg, body)


def test_an_unreachable_target_is_an_alarm_cleared_before_its_resynchronisation(mib: MibModel,
                                                                                cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.alarms.raise_alarm(ProbableCause.SERVICE_FAILURE, "web", Severity.MAJOR,
                               AlarmType.PROCESSING_ERROR, "service web is down")
        await rig.turn()
        [raised] = only(rig.originator.take(), "n1")
        FakeOriginator.answer(raised, acknowledged=False)
        [(index, row)] = [(k, r) for k, r in rig.state.alarms.items() if r.subject == "nms"]
        assert row.probable_cause == int(ProbableCause.NOTIFICATION_TARGET_UNREACHABLE)
        assert (row.severity, row.alarm_type) == (int(Severity.MINOR), int(AlarmType.COMMUNICATIONS))
        assert row.text == "notification target nms does not acknowledge informs (ALARM_RAISED was lost)"
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):         # its own raise: lost as well
            FakeOriginator.answer(item, acknowledged=False)
        await rig.advance(INTERVAL)
        [probe] = rig.originator.take()
        FakeOriginator.answer(probe, acknowledged=True)
        assert [r.subject for r in rig.state.alarms.values()] == ["web"]
        await rig.turn()
        sent = [(rig.name(v), rig.values(v)) for _, v, _, _ in only(rig.originator.take(), "n1")]
        assert [name for name, _ in sent] == ["haoscarAlarmCleared", "haoscarAlarmActive", "haoscarAlarmResyncEnd"]
        assert sent[0][1]["haoscarAlarmSubject"][1].asOctets() == b"nms"
        assert sent[0][1]["haoscarAlarmSubject"][0] == index
        assert sent[1][1]["haoscarAlarmSubject"][1].asOctets() == b"web"

    run(mib, cfg, body, real_alarm=True)


def test_the_burst_is_the_table_of_the_moment_the_start_was_acknowledged(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):
            FakeOriginator.answer(item, acknowledged=False)
        await rig.advance(INTERVAL)
        [probe] = rig.originator.take()
        FakeOriginator.answer(probe, acknowledged=True)
        # before the burst leaves, the table changes: a clear and a severity change
        rig.alarms.clear(ProbableCause.SERVICE_FAILURE, "web")
        rig.alarms.raise_alarm(ProbableCause.HEAD_FAILURE, "head2", Severity.MAJOR,
                               AlarmType.EQUIPMENT, "head head2 is down")
        await rig.turn()
        sent = [(rig.name(v), rig.values(v)) for _, v, _, _ in only(rig.originator.take(), "n1")]
        assert [name for name, _ in sent] == ["haoscarAlarmActive", "haoscarAlarmActive", "haoscarAlarmResyncEnd",
                                              "haoscarAlarmCleared", "haoscarAlarmRaised"]
        (_, web), (_, head), (_, end) = sent[:3]
        assert web["haoscarAlarmSubject"][1].asOctets() == b"web"
        assert (head["haoscarAlarmSeverity"][0], int(head["haoscarAlarmSeverity"][1])) == ((2,), int(Severity.CRITICAL))
        assert int(head["haoscarNotifyResyncPosition"][1]) == 2
        assert int(end["haoscarAlarmActiveCount"][1]) == 2
        assert int(sent[4][1]["haoscarAlarmSeverity"][1]) == int(Severity.MAJOR)   # then the change

    run(mib, cfg, body)


def test_an_inform_that_gets_through_starts_the_resync_at_once(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        first, second = only(rig.originator.take(), "n1")
        FakeOriginator.answer(first, acknowledged=False)
        rig.alarms.clear(ProbableCause.HEAD_FAILURE, "head2")
        await rig.turn()
        [clear] = only(rig.originator.take(), "n1")
        FakeOriginator.answer(second, acknowledged=False)
        FakeOriginator.answer(clear, acknowledged=True)        # before any probe was due
        await rig.turn()
        [probe] = rig.originator.take()
        assert rig.name(probe[1]) == "haoscarAlarmResyncStart"
        FakeOriginator.answer(probe, acknowledged=True)
        await rig.turn()
        burst = rig.originator.take()
        assert [rig.name(v) for _, v, _, _ in burst] == ["haoscarAlarmActive", "haoscarAlarmResyncEnd"]
        assert rig.values(burst[0][1])["haoscarAlarmSubject"][1].asOctets() == b"web"
        await rig.advance(10 * INTERVAL)
        assert rig.originator.take() == []

    run(mib, cfg, body)


def test_a_probe_lost_while_a_later_inform_got_through_is_tried_again(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):
            FakeOriginator.answer(item, acknowledged=False)
        await rig.advance(INTERVAL)
        [probe] = rig.originator.take()                        # in flight while the NMS comes back
        rig.alarms.clear(ProbableCause.HEAD_FAILURE, "head2")
        await rig.turn()
        [clear] = only(rig.originator.take(), "n1")
        FakeOriginator.answer(clear, acknowledged=True)        # back: a probe is already in flight
        await rig.turn()
        assert rig.originator.take() == []
        FakeOriginator.answer(probe, acknowledged=False)       # its retries fell while it was away
        await rig.turn()
        assert rig.state.alarm_targets[(1,)].status == TargetStatus.REACHABLE
        await rig.advance(INTERVAL)
        [again] = rig.originator.take()
        assert rig.name(again[1]) == "haoscarAlarmResyncStart"
        FakeOriginator.answer(again, acknowledged=True)
        await rig.turn()
        assert [rig.name(v) for _, v, _, _ in rig.originator.take()] == ["haoscarAlarmActive",
                                                                         "haoscarAlarmResyncEnd"]

    run(mib, cfg, body)


def test_with_no_active_alarm_the_burst_is_its_end_alone(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):
            FakeOriginator.answer(item, acknowledged=False)
        rig.alarms.clear(ProbableCause.HEAD_FAILURE, "head2")
        rig.alarms.clear(ProbableCause.SERVICE_FAILURE, "web")
        await rig.turn()
        rig.originator.take()                                   # the clears, left unanswered
        await rig.advance(INTERVAL)
        [probe] = rig.originator.take()
        FakeOriginator.answer(probe, acknowledged=True)
        await rig.turn()
        [end] = rig.originator.take()
        assert rig.name(end[1]) == "haoscarAlarmResyncEnd"
        assert int(rig.values(end[1])["haoscarAlarmActiveCount"][1]) == 0

    run(mib, cfg, body)


def test_trap_targets_are_never_probed(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        sent = rig.originator.take()
        for item in only(sent, "n2"):
            FakeOriginator.answer(item, acknowledged=False)    # e.g. the send itself failed
        for item in only(sent, "n1"):
            FakeOriginator.answer(item, acknowledged=True)
        await rig.advance(10 * INTERVAL)
        assert rig.originator.take() == []
        assert rig.notifier.unreachable() == []
        traps = rig.state.alarm_targets[(2,)]
        assert (traps.name, traps.inform, traps.status, traps.sent, traps.lost) == (
            "traps", False, TargetStatus.UNKNOWN, 2, 2)
        assert rig.state.alarm_targets[(1,)].status == TargetStatus.REACHABLE

    run(mib, cfg, body)


def test_reset_counters_zeroes_the_targets_counters_but_not_their_state(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):
            FakeOriginator.answer(item, acknowledged=False)
        rig.bus.publish(Event(EventType.OPERATOR_ACTION, "reset_counters", Severity.INFO, "reset",
                              rig.clock.time()))
        row = rig.state.alarm_targets[(1,)]
        assert (row.sent, row.lost, row.resyncs) == (0, 0, 0)
        assert row.status == TargetStatus.UNREACHABLE

    run(mib, cfg, body)


def test_with_resync_off_a_lost_inform_is_only_counted(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):
            FakeOriginator.answer(item, acknowledged=False)
        await rig.advance(10 * INTERVAL)
        assert rig.originator.take() == []
        assert rig.state.alarm_targets[(1,)].lost == 2
        assert rig.state.alarm_targets[(1,)].status == TargetStatus.UNREACHABLE

    run(mib, cfg, body, ResyncSettings(False, INTERVAL))


def test_stopping_cancels_the_next_probe(mib: MibModel, cfg: Config) -> None:
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):
            FakeOriginator.answer(item, acknowledged=False)
        assert rig.clock.next_due() == rig.clock.monotonic() + INTERVAL
        await rig.notifier.drain(1.0)
        assert rig.clock.next_due() is None
        await rig.advance(10 * INTERVAL)
        assert rig.originator.take() == []

    run(mib, cfg, body)


@pytest.mark.parametrize("acknowledged", [True, False])
def test_a_severity_change_goes_out_with_the_same_identity(mib: MibModel, cfg: Config,
                                                           acknowledged: bool) -> None:
    async def body(rig: Rig) -> None:
        rig.alarms.raise_alarm(ProbableCause.SERVICE_CHECK_ERROR, "web", Severity.MINOR,
                               AlarmType.PROCESSING_ERROR, "the check of web cannot run")
        rig.alarms.raise_alarm(ProbableCause.SERVICE_CHECK_ERROR, "web", Severity.MAJOR,
                               AlarmType.PROCESSING_ERROR, "the check of web cannot run")
        rig.alarms.raise_alarm(ProbableCause.SERVICE_CHECK_ERROR, "web", Severity.MAJOR,
                               AlarmType.PROCESSING_ERROR, "the check of web cannot run: timeout")
        rig.alarms.clear(ProbableCause.SERVICE_CHECK_ERROR, "web")
        await rig.turn()
        sent = only(rig.originator.take(), "n1")
        assert [rig.name(v) for _, v, _, _ in sent] == ["haoscarAlarmRaised", "haoscarAlarmRaised",
                                                         "haoscarAlarmCleared"]
        raised, changed, cleared = (rig.values(v) for _, v, _, _ in sent)
        for got in (raised, changed, cleared):
            assert got["haoscarAlarmProbableCause"][0] == (1,)
            assert int(got["haoscarAlarmProbableCause"][1]) == int(ProbableCause.SERVICE_CHECK_ERROR)
            assert got["haoscarAlarmSubject"][1].asOctets() == b"web"
        assert [int(g["haoscarAlarmSeverity"][1]) for g in (raised, changed, cleared)] == [
            int(Severity.MINOR), int(Severity.MAJOR), int(Severity.CLEARED)]
        for item in sent:
            FakeOriginator.answer(item, acknowledged)

    run(mib, cfg, body)


def test_a_reload_that_replaces_targets_rebuilds_their_rows_and_forgets_the_old_ones(
        mib: MibModel, cfg: Config) -> None:
    """Credentials (targets among them) are replaced by a reload in the running agent:
    a target kept as it was keeps its row; a target gone takes its watch, its pending
    probe and its unreachable alarm with it; a new one gets a fresh row."""
    async def body(rig: Rig) -> None:
        rig.raise_two()
        await rig.turn()
        for item in only(rig.originator.take(), "n1"):
            FakeOriginator.answer(item, acknowledged=False)
        assert rig.notifier.unreachable() == ["nms"]
        assert rig.reach.told == [("nms", False)]
        rig.state.alarm_targets[(2,)].sent = 7
        rig.targets = [NotifyTarget(1, "n1", "nms2", inform=True), TRAPS]   # the reload
        rig.notifier.retarget()
        assert rig.notifier.unreachable() == []
        assert rig.reach.told[-1] == ("nms", True)                # its alarm goes with it
        rows = dict(rig.state.alarm_targets.items())
        assert [(k, r.name, r.status) for k, r in sorted(rows.items())] == [
            ((1,), "nms2", TargetStatus.REACHABLE), ((2,), "traps", TargetStatus.UNKNOWN)]
        assert rows[(2,)].sent == 7                               # kept as it was
        await rig.advance(INTERVAL + 1)
        assert rig.originator.take() == []                        # no probe of the old target

    run(mib, cfg, body)
