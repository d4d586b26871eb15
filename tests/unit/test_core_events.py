"""core.events.EventBus: synchronous fan-out in subscription order; a broken consumer is isolated."""

from __future__ import annotations

import logging

import pytest

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity


def event(kind: EventType = EventType.HEAD_DOWN, subject: str = "head2") -> Event:
    return Event(kind, subject, Severity.MAJOR, f"{subject} is down", 1_700_000_000.0)


def test_every_subscriber_gets_every_event_in_subscription_order() -> None:
    bus = EventBus()
    seen: list[tuple[str, str]] = []
    for name in ("history", "alarms", "notifier"):
        bus.subscribe(name, lambda e, name=name: seen.append((name, e.subject)))
    bus.publish(event(subject="a"))
    bus.publish(event(subject="b"))
    assert seen == [("history", "a"), ("alarms", "a"), ("notifier", "a"),
                    ("history", "b"), ("alarms", "b"), ("notifier", "b")]


def test_the_same_event_object_reaches_each_subscriber() -> None:
    bus = EventBus()
    got: list[Event] = []
    bus.subscribe("one", got.append)
    bus.subscribe("two", got.append)
    sent = event()
    bus.publish(sent)
    assert got == [sent, sent]
    assert got[0] is sent


def test_publishing_without_subscribers_is_harmless() -> None:
    bus = EventBus()
    bus.publish(event())  # nobody listens: nothing raised, nothing kept for later
    got: list[Event] = []
    bus.subscribe("late", got.append)
    sent = event()
    bus.publish(sent)
    assert got == [sent]


def test_a_raising_subscriber_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(e: Event) -> None:
        raise RuntimeError("consumer bug")

    bus.subscribe("before", lambda e: seen.append("before"))
    bus.subscribe("broken", broken)
    bus.subscribe("after", lambda e: seen.append("after"))
    with caplog.at_level(logging.ERROR, logger="haoscar_snmp.core.events"):
        bus.publish(event(EventType.SERVICE_DOWN))
        bus.publish(event(EventType.SERVICE_DOWN))
    assert seen == ["before", "after", "before", "after"]
    bugs = [r for r in caplog.records if BUG_MARKER in r.getMessage()]
    assert len(bugs) == 2
    assert "broken" in bugs[0].getMessage()
    assert "SERVICE_DOWN" in bugs[0].getMessage()
    assert bugs[0].exc_info is not None and bugs[0].exc_info[0] is RuntimeError


def test_healthy_subscribers_log_no_bug(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    bus.subscribe("quiet", lambda e: None)
    with caplog.at_level(logging.DEBUG):
        bus.publish(event())
    assert not [r for r in caplog.records if BUG_MARKER in r.getMessage()]
