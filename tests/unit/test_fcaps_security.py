"""The security area: its rate limiter, the authentication-failure events, the audit of
credentials changed by a reload (never a secret in it)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fakes import FakeClock

from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.security.audit import CredentialAudit, credential_changes
from fcaps.security.authfail import BURST, CLEAR_AFTER_S, PERIOD_S, RAISE_AFTER, AuthFailures
from haoscar_snmp.core.ratelimit import RateLimiter
from haoscar_snmp.config.loader import parse_config, read_embedded_default
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import State

DEMO = read_embedded_default()


def config(text: str = DEMO) -> Config:
    return parse_config(text, label="demo", base_dir=Path("/etc"), environ={"HOME": "/home/op"})


def collect(bus: EventBus) -> list[Event]:
    seen: list[Event] = []
    bus.subscribe("test", seen.append)
    return seen


# -- the rate limiter ------------------------------------------------------------------


def test_a_burst_goes_through_then_one_per_period_and_the_rest_is_counted() -> None:
    clock = FakeClock(monotonic=3.0)          # a machine booted seconds ago
    limiter = RateLimiter(clock, burst=3, period_s=10.0)
    assert [limiter.allow() for _ in range(5)] == [True, True, True, False, False]
    assert limiter.suppressed == 2
    clock.advance(9.9)
    assert not limiter.allow()
    clock.advance(0.1)
    assert limiter.allow()
    assert limiter.take_suppressed() == 3 and limiter.suppressed == 0


def test_a_long_quiet_refills_no_more_than_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, burst=2, period_s=1.0)
    clock.advance(1000.0)
    assert [limiter.allow() for _ in range(3)] == [True, True, False]


def test_a_limiter_needs_a_positive_burst_and_period() -> None:
    with pytest.raises(ValueError):
        RateLimiter(FakeClock(), burst=0, period_s=1.0)
    with pytest.raises(ValueError):
        RateLimiter(FakeClock(), burst=1, period_s=0.0)


# -- SNMP authentication failures --------------------------------------------------------


def test_a_flood_of_refused_requests_gives_a_burst_of_events_then_a_summary() -> None:
    clock, bus, state = FakeClock(), EventBus(), State()
    events = collect(bus)
    failures = AuthFailures(state, bus, Alarms(state, bus, clock), clock)
    for n in range(1000):
        failures.snmp_refused(f"192.0.2.{n % 250 + 1}:5000", "unknown community")
    assert len(events) == BURST
    first = events[0]
    assert first.type == EventType.SNMP_AUTH_FAILURE and first.severity == Severity.WARNING
    assert first.subject == "192.0.2.1:5000"
    assert first.text == "SNMP request from 192.0.2.1:5000 refused: unknown community"
    assert first.data["reason"] == "unknown community"
    # The guessing stops; the job reports what was held back once the limiter allows.
    assert asyncio.run(failures.run_cycle()) == "no authentication failures to report"
    clock.advance(PERIOD_S)
    sentence = asyncio.run(failures.run_cycle())
    assert len(events) == BURST + 1
    summary = events[-1]
    assert summary.data["suppressed"] == 1000 - BURST
    assert summary.subject == "192.0.2.250:5000"           # the latest one held back
    assert sentence == summary.text == (f"{1000 - BURST} more SNMP requests refused since the last report "
                                         "(the latest from 192.0.2.250:5000: unknown community)")
    clock.advance(PERIOD_S)
    asyncio.run(failures.run_cycle())
    assert len(events) == BURST + 1                         # nothing left to report


def test_what_the_network_chose_is_escaped_in_the_event() -> None:
    clock, bus, state = FakeClock(), EventBus(), State()
    events = collect(bus)
    AuthFailures(state, bus, Alarms(state, bus, clock), clock).snmp_refused("evil\nINFO forged:1", "unknown community")
    assert "\n" not in events[0].subject and "\n" not in events[0].text


# -- heartbeat and settings exchange ----------------------------------------------------


def test_refused_heartbeats_are_reported_with_their_counts_rate_limited() -> None:
    clock, bus, state = FakeClock(), EventBus(), State()
    events = collect(bus)
    failures = AuthFailures(state, bus, Alarms(state, bus, clock), clock)
    assert asyncio.run(failures.run_cycle()) == "no authentication failures to report"
    state.security.hb_auth_failures = 3
    state.security.hb_replays = 1
    state.security.hb_last_refused = "lanB: replayed or out of order"
    state.config_sync.bad_messages = 2
    sentence = asyncio.run(failures.run_cycle())
    assert [e.type for e in events] == [EventType.PEER_AUTH_FAILURE]
    assert sentence == events[0].text == (
        "refused on the heartbeat port since the last report: 3 heartbeat authentication failures, "
        "1 heartbeat replays, 2 settings-exchange datagrams refused "
        "(the latest heartbeat: lanB: replayed or out of order)")
    # A flood: one event a cycle for the burst, then one per period with the sum.
    for n in range(1, 20):
        state.security.hb_auth_failures = 3 + 100 * n
        asyncio.run(failures.run_cycle())
    reports = [e for e in events if e.type == EventType.PEER_AUTH_FAILURE]
    assert len(reports) == BURST
    clock.advance(PERIOD_S)
    asyncio.run(failures.run_cycle())
    reports = [e for e in events if e.type == EventType.PEER_AUTH_FAILURE]
    assert len(reports) == BURST + 1
    assert reports[-1].data["counts"] == {"heartbeat authentication failures": 100 * (19 - BURST + 1)}


def test_refusals_that_go_on_raise_the_alarm_and_a_quiet_minute_clears_it() -> None:
    clock, bus, state = FakeClock(), EventBus(), State()
    events = collect(bus)
    alarms = Alarms(state, bus, clock)
    failures = AuthFailures(state, bus, alarms, clock)

    def cycle(grow: int) -> str:
        state.security.hb_auth_failures += grow
        clock.advance(1.0)
        return asyncio.run(failures.run_cycle())

    cycle(1)                                             # one stray packet
    cycle(0)
    assert not alarms.active(ProbableCause.AUTHENTICATION_FAILURE, "heartbeat")
    state.security.hb_last_refused = "lanA: authentication failed"
    for _ in range(RAISE_AFTER - 1):
        cycle(20)
    assert not alarms.active(ProbableCause.AUTHENTICATION_FAILURE, "heartbeat")
    assert cycle(20).startswith(f"heartbeat traffic refused for {RAISE_AFTER} s in a row "
                                "(the latest: lanA: authentication failed)")
    assert alarms.active(ProbableCause.AUTHENTICATION_FAILURE, "heartbeat")
    assert [e for e in events if e.type == EventType.ALARM_RAISED][0].severity == Severity.MAJOR
    for _ in range(int(CLEAR_AFTER_S) - 1):
        cycle(0)
    assert alarms.active(ProbableCause.AUTHENTICATION_FAILURE, "heartbeat")
    assert cycle(0) == f"no heartbeat traffic refused for {CLEAR_AFTER_S:.0f} s"
    assert not alarms.active(ProbableCause.AUTHENTICATION_FAILURE, "heartbeat")


def test_snmp_guessing_raises_no_alarm() -> None:
    clock, bus, state = FakeClock(), EventBus(), State()
    alarms = Alarms(state, bus, clock)
    failures = AuthFailures(state, bus, alarms, clock)
    for _ in range(10):
        failures.snmp_refused("192.0.2.9:161", "unknown community")
        clock.advance(1.0)
        asyncio.run(failures.run_cycle())
    assert len(state.alarms) == 0


def test_a_counter_that_went_back_was_reset_and_counts_from_zero() -> None:
    clock, bus, state = FakeClock(), EventBus(), State()
    events = collect(bus)
    state.security.hb_auth_failures = 50                      # before the job started
    failures = AuthFailures(state, bus, Alarms(state, bus, clock), clock)
    state.security.hb_auth_failures = 2                       # a new heartbeat process
    asyncio.run(failures.run_cycle())
    assert events[-1].data["counts"] == {"heartbeat authentication failures": 2}


def test_reset_counters_is_not_reported_as_failures() -> None:
    clock, bus, state = FakeClock(), EventBus(), State()
    events = collect(bus)
    failures = AuthFailures(state, bus, Alarms(state, bus, clock), clock)
    bus.subscribe("security", failures.on_event)
    state.security.hb_replays = 7
    state.security.hb_replays = 0
    bus.publish(Event(EventType.OPERATOR_ACTION, "reset_counters", Severity.INFO, "reset", clock.time()))
    asyncio.run(failures.run_cycle())
    assert [e for e in events if e.type == EventType.PEER_AUTH_FAILURE] == []


# -- the credential audit ----------------------------------------------------------------


def test_credential_changes_name_what_changed_never_the_values(caplog: pytest.LogCaptureFixture) -> None:
    old = config()
    text = (DEMO.replace('name = "public"', 'name = "s3cret-community"')
                .replace('auth_key = "demo-auth-passphrase"', 'auth_key = "n3w-auth-passphrase"')
                .replace("allow_v2c_write = false", "allow_v2c_write = true"))
    new = config(text)
    clock, bus = FakeClock(), EventBus()
    events = collect(bus)
    audit = CredentialAudit(old, bus, clock)
    with caplog.at_level(logging.INFO, logger="haoscar_snmp.audit"):
        changes = audit(new)
    assert changes == ["community 1 replaced", "user admin: auth key changed", "allow_v2c_write false -> true"]
    assert [e.type for e in events] == [EventType.CREDENTIALS_CHANGED]
    assert events[0].data["principal"] == "reload"
    written = caplog.text + repr(events)
    for secret in ("s3cret-community", "n3w-auth-passphrase", "demo-auth-passphrase", "public"):
        assert secret not in written
    assert audit(new) == [] and len(events) == 1              # nothing changed the second time


def test_users_and_targets_added_and_removed_are_named() -> None:
    old = config()
    text = DEMO.replace('name = "admin"', 'name = "operator"').replace('name = "local-trapd"', 'name = "nms"')
    changes = credential_changes(old.snmp, config(text).snmp)
    assert changes == ["user admin removed", "user operator added (write)",
                       "notification target local-trapd removed", "notification target nms added"]


def test_a_change_outside_the_credentials_is_not_audited() -> None:
    old = config()
    new = config(DEMO.replace("garp_count = 5", "garp_count = 6"))
    assert credential_changes(old.snmp, new.snmp) == []
