"""fcaps.fault.alarms.Alarms: one row per (cause, subject); every change moves LastChanged and publishes."""

from __future__ import annotations

import pytest
from fakes import EventRecorder, FakeClock

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from haoscar_snmp.core.events import EventBus, EventType, Severity
from haoscar_snmp.core.state import State


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def alarms(state: State, recorder: EventRecorder, clock: FakeClock) -> Alarms:
    bus = EventBus()
    bus.subscribe("recorder", recorder)
    return Alarms(state, bus, clock)


def raise_web(alarms: Alarms, text: str = "service web is down") -> None:
    alarms.raise_alarm(ProbableCause.SERVICE_FAILURE, "web", Severity.MAJOR,
                       AlarmType.PROCESSING_ERROR, text)


def test_raising_adds_a_row_and_publishes(alarms: Alarms, state: State, recorder: EventRecorder,
                                          clock: FakeClock) -> None:
    raise_web(alarms)
    assert state.alarms.keys() == [(1,)]
    row = state.alarms[(1,)]
    assert (row.severity, row.alarm_type, row.probable_cause, row.subject, row.text) == (
        int(Severity.MAJOR), int(AlarmType.PROCESSING_ERROR), int(ProbableCause.SERVICE_FAILURE),
        "web", "service web is down")
    assert row.raised_time == clock.time()
    assert state.alarm_last_changed == clock.monotonic()
    assert alarms.active(ProbableCause.SERVICE_FAILURE, "web")
    [raised] = recorder.events
    assert raised.type == EventType.ALARM_RAISED
    assert raised.severity == Severity.MAJOR
    assert raised.data == {"alarm_index": 1}


def test_raising_the_same_alarm_twice_keeps_one_row(alarms: Alarms, state: State,
                                                    recorder: EventRecorder, clock: FakeClock) -> None:
    raise_web(alarms)
    changed = state.alarm_last_changed
    raised = state.alarms[(1,)]
    clock.advance(10)
    raise_web(alarms)
    assert state.alarms.keys() == [(1,)]
    assert state.alarms[(1,)] == raised                      # not even last_updated moves
    assert raised.last_updated == raised.raised_time
    assert state.alarm_last_changed == changed               # nothing changed
    assert recorder.types() == [EventType.ALARM_RAISED]


def test_a_repeated_raise_with_a_new_text_updates_the_row_without_a_notification(
        alarms: Alarms, state: State, recorder: EventRecorder, clock: FakeClock) -> None:
    raise_web(alarms)
    raised_time = state.alarms[(1,)].raised_time
    clock.advance(10)
    raise_web(alarms, "service web is still down: connection refused")
    row = state.alarms[(1,)]
    assert state.alarms.keys() == [(1,)]
    assert row.text == "service web is still down: connection refused"
    assert row.raised_time == raised_time
    assert row.last_updated == clock.time() == raised_time + 10
    assert row.severity == int(Severity.MAJOR)
    assert state.alarm_last_changed == clock.monotonic()     # the table changed: an NMS re-reads it
    assert recorder.types() == [EventType.ALARM_RAISED]      # the text alone is not news


def test_a_severity_change_updates_the_row_in_place_and_publishes_with_the_same_identity(
        alarms: Alarms, state: State, recorder: EventRecorder, clock: FakeClock) -> None:
    alarms.raise_alarm(ProbableCause.SERVICE_CHECK_ERROR, "web", Severity.MINOR,
                       AlarmType.PROCESSING_ERROR, "the check of web cannot run")
    raised_time = state.alarms[(1,)].raised_time
    clock.advance(5)
    alarms.raise_alarm(ProbableCause.SERVICE_CHECK_ERROR, "web", Severity.MAJOR,
                       AlarmType.PROCESSING_ERROR, "the check of web cannot run")
    row = state.alarms[(1,)]
    assert state.alarms.keys() == [(1,)]
    assert (row.severity, row.raised_time, row.last_updated) == (int(Severity.MAJOR), raised_time,
                                                                  clock.time())
    assert state.alarm_last_changed == clock.monotonic()
    raised, changed = recorder.events
    assert changed.type == EventType.ALARM_CHANGED
    assert changed.severity == Severity.MAJOR
    assert changed.subject == raised.subject == "web"
    assert changed.data == {"alarm_index": 1, "old": "minor", "new": "major"}
    assert changed.text == "alarm severity minor -> major: the check of web cannot run"
    assert changed.time == clock.time()
    # and back down: again in place, again published
    alarms.raise_alarm(ProbableCause.SERVICE_CHECK_ERROR, "web", Severity.MINOR,
                       AlarmType.PROCESSING_ERROR, "the check of web cannot run")
    assert state.alarms[(1,)].severity == int(Severity.MINOR)
    assert recorder.types() == [EventType.ALARM_RAISED, EventType.ALARM_CHANGED, EventType.ALARM_CHANGED]
    # the clear carries the same identity
    alarms.clear(ProbableCause.SERVICE_CHECK_ERROR, "web")
    cleared = recorder.events[-1]
    assert cleared.data["alarm_index"] == 1
    assert cleared.data["haoscarAlarmProbableCause"] == int(ProbableCause.SERVICE_CHECK_ERROR)
    assert cleared.data["haoscarAlarmSubject"] == "web"


def test_a_long_text_is_cut_to_the_mibs_size_and_a_repeat_of_it_is_no_change(
        alarms: Alarms, state: State, recorder: EventRecorder, clock: FakeClock) -> None:
    raise_web(alarms, "x" * 300)
    changed = state.alarm_last_changed
    clock.advance(1)
    raise_web(alarms, "x" * 300)
    assert state.alarms[(1,)].text == "x" * 255
    assert state.alarm_last_changed == changed


def test_an_alarm_cannot_be_raised_as_cleared_or_info(alarms: Alarms) -> None:
    for severity in (Severity.CLEARED, Severity.INFO):
        with pytest.raises(AssertionError):
            alarms.raise_alarm(ProbableCause.SERVICE_FAILURE, "web", severity,
                               AlarmType.PROCESSING_ERROR, "no")


def test_same_cause_other_subject_is_another_alarm(alarms: Alarms, state: State) -> None:
    raise_web(alarms)
    alarms.raise_alarm(ProbableCause.SERVICE_FAILURE, "db", Severity.MAJOR,
                       AlarmType.PROCESSING_ERROR, "service db is down")
    alarms.raise_alarm(ProbableCause.HEAD_FAILURE, "web", Severity.CRITICAL,
                       AlarmType.EQUIPMENT, "head web is down")
    assert state.alarms.keys() == [(1,), (2,), (3,)]


def test_clearing_removes_the_row_and_publishes_cleared(alarms: Alarms, state: State,
                                                        recorder: EventRecorder, clock: FakeClock) -> None:
    raise_web(alarms)
    raised_at = state.alarm_last_changed
    clock.advance(30)
    alarms.clear(ProbableCause.SERVICE_FAILURE, "web")
    assert len(state.alarms) == 0
    assert not alarms.active(ProbableCause.SERVICE_FAILURE, "web")
    assert state.alarm_last_changed == clock.monotonic() > raised_at
    cleared = recorder.events[-1]
    assert cleared.type == EventType.ALARM_CLEARED
    assert cleared.severity == Severity.CLEARED
    assert cleared.time == clock.time()
    assert cleared.data["alarm_index"] == 1
    assert cleared.data["haoscarAlarmSeverity"] == 1  # cleared(1)
    assert cleared.data["haoscarAlarmProbableCause"] == int(ProbableCause.SERVICE_FAILURE)
    assert cleared.data["haoscarAlarmSubject"] == "web"
    assert cleared.text == "alarm cleared: service web is down"


def test_clearing_an_alarm_that_is_not_raised_does_nothing(alarms: Alarms, state: State,
                                                           recorder: EventRecorder) -> None:
    alarms.clear(ProbableCause.SERVICE_FAILURE, "web")
    assert recorder.events == []
    assert state.alarm_last_changed == 0.0


def test_a_raise_after_a_clear_gets_a_new_index(alarms: Alarms, state: State, recorder: EventRecorder,
                                                clock: FakeClock) -> None:
    raise_web(alarms)
    clock.advance(1)
    alarms.clear(ProbableCause.SERVICE_FAILURE, "web", "web is back")
    clock.advance(1)
    raise_web(alarms)
    assert state.alarms.keys() == [(2,)]
    assert recorder.types() == [EventType.ALARM_RAISED, EventType.ALARM_CLEARED, EventType.ALARM_RAISED]
    assert recorder.events[1].text == "alarm cleared: web is back"
    assert state.alarm_last_changed == clock.monotonic()
