"""The mailer: one mail per incident and one when it is over, rate-limited, queued, retried.

A fake transport records the messages (and can fail). The settle delay and the delays
between attempts run on the mailer's FakeClock: they pass only when a test moves it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import time
from email.message import EmailMessage
from typing import Any, Awaitable, Callable

import pytest
from fakes import FakeClock

from fcaps.fault.mailer import MAX_LISTED, Mailer, utc
from haoscar_snmp.config.schema import Config, EmailConfig
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.events import Event, EventType, Severity
from haoscar_snmp.core.state import State

SETTLE = 2.0      # seconds of the FakeClock; each event of a test comes 0.5 s after the last
T = EventType


class FakeTransport:
    """Records every message; fails the first `fail` attempts with `error`."""

    def __init__(self, fail: int = 0, error: Exception | None = None) -> None:
        self.fail = fail
        self.error = error or ConnectionRefusedError("connection refused")
        self.messages: list[EmailMessage] = []
        self.attempts: list[float] = []     # monotonic time of each attempt, on the mailer's clock
        self.sent_at: list[float] = []      # wall-clock time of each message accepted
        self.configs: list[EmailConfig] = []
        self.clock = FakeClock()            # the mailer's, once a Setup has one

    async def __call__(self, message: EmailMessage, cfg: EmailConfig) -> None:
        self.attempts.append(self.clock.monotonic())
        self.configs.append(cfg)
        if self.fail > 0:
            self.fail -= 1
            raise self.error
        self.messages.append(message)
        self.sent_at.append(self.clock.time())


class StuckTransport(FakeTransport):
    """A server that never answers."""

    async def __call__(self, message: EmailMessage, cfg: EmailConfig) -> None:
        self.attempts.append(self.clock.monotonic())
        await asyncio.Event().wait()


class Setup:
    """A mailer on a config the test can change live."""

    def __init__(self, base: Config, transport: FakeTransport | None = None, **email_values: Any) -> None:
        self.base = base
        self.state = State()
        self.clock = FakeClock()
        self.transport = transport or FakeTransport()
        self.transport.clock = self.clock
        self.times: list[float] = []        # wall-clock time of each event
        self.set_email(**{"enabled": True, "to": ["op@example.com", "oncall@example.com"],
                          "from": "haoscar@head1.example.com", **email_values})
        self.mailer = Mailer(self.state, lambda: self.cfg, self.clock, self.transport,
                             settle_s=SETTLE, retry_delay_s=0.01)

    def set_email(self, **values: Any) -> None:
        email_cfg = EmailConfig.model_validate(values)
        self.cfg = self.base.model_copy(update={"notify": self.base.notify.model_copy(update={"email": email_cfg})})

    def event(self, etype: EventType, subject: str = "pbs", text: str = "", severity: Severity = Severity.MAJOR,
              **data: Any) -> None:
        self.clock.advance(0.5)
        self.times.append(self.clock.time())
        self.mailer.on_event(Event(etype, subject, severity, text or f"{etype.name.lower()} {subject}",
                                   self.clock.time(), data))

    def mails(self) -> list[EmailMessage]:
        return self.transport.messages

    async def until(self, condition: Callable[[], bool], limit: float = 600.0) -> None:
        """Let the clock run, timer by timer, until `condition` holds (at most `limit` s)."""
        end = self.clock.monotonic() + limit
        while True:
            await passes()
            if condition():
                return
            due = self.clock.next_due()
            if due is None or due > end:
                raise AssertionError(f"condition not met within {limit} s of the clock")
            self.clock.advance(max(due - self.clock.monotonic(), 0.0))

    async def quiet(self, seconds: float = 2 * SETTLE) -> None:
        """Let the clock run `seconds`, timer by timer: every settle delay and send due
        meanwhile happens."""
        end = self.clock.monotonic() + seconds
        await passes()
        while (due := self.clock.next_due()) is not None and due <= end:
            self.clock.advance(max(due - self.clock.monotonic(), 0.0))
            await passes()


async def passes(n: int = 20) -> None:
    """Passes of the loop: what a timer handed to it set going (a mail queued, then sent
    by the sender task) has run."""
    for _ in range(n):
        await asyncio.sleep(0)


def run(body: Callable[[], Awaitable[None]], timeout: float = 5.0) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout))


def body(message: EmailMessage) -> str:
    content = message.get_content()
    assert isinstance(content, str)
    return content


def test_one_mail_per_incident_with_every_event_of_the_settle_delay(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.SERVICE_ESCALATED, text="pbs: restart did not help", reason="check failed", rung="failover")
        s.event(T.SERVICE_ESCALATED, text="pbs: failing over", rung="operator", action="notify")
        s.event(T.SERVICE_RECOVERY_EXHAUSTED, text="pbs: recovery exhausted", severity=Severity.CRITICAL)
        await s.until(lambda: len(s.mails()) == 1)
        await s.quiet()
        await s.mailer.stop()

    run(scenario)
    assert len(s.mails()) == 1
    mail = s.mails()[0]
    assert mail["Subject"] == "[haoscar demo/head1] PROBLEM service pbs: pbs: restart did not help"
    assert mail["From"] == "haoscar@head1.example.com"
    assert mail["To"] == "op@example.com, oncall@example.com"
    assert mail["Date"] and mail["Message-ID"]
    text = body(mail)
    assert "Cluster:  demo" in text and "Head:     head1" in text and "Incident: service pbs" in text
    assert text.count("SERVICE_ESCALATED") == 2 and "SERVICE_RECOVERY_EXHAUSTED CRITICAL" in text
    assert "reason: check failed" in text and "rung: failover" in text and "action: notify" in text
    first_time = s.times[0]
    assert utc(first_time) in text and utc(first_time).endswith("Z") and "T" in utc(first_time)
    assert s.state.email.sent == 1 and s.state.email.queued == 0
    assert s.state.email.last_sent == s.transport.sent_at[0] == first_time + SETTLE


def test_an_incident_over_within_the_settle_delay_gives_one_resolved_mail(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.FAILOVER_STARTED, subject="head2", text="failover to head2 started: head1 down")
        s.event(T.FAILOVER_COMPLETED, subject="head2", text="failover to head2 completed")
        await s.until(lambda: len(s.mails()) == 1)
        await s.quiet()
        await s.mailer.stop()

    run(scenario)
    assert [m["Subject"] for m in s.mails()] == ["[haoscar demo/head1] RESOLVED failover demo"]
    text = body(s.mails()[0])
    assert "FAILOVER_STARTED" in text and "FAILOVER_COMPLETED" in text and "Until:" in text


def test_a_mailed_problem_gets_a_recovery_mail_listing_what_happened_since(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.HEAD_DOWN, subject="head2", text="head2 down: no heartbeat", severity=Severity.CRITICAL)
        await s.until(lambda: len(s.mails()) == 1)
        s.event(T.HEAD_DOWN, subject="head2", text="head2 still down, second report")
        await s.quiet()
        assert len(s.mails()) == 1          # remembered, not mailed
        s.event(T.HEAD_UP, subject="head2", text="head2 up", severity=Severity.INFO)
        await s.until(lambda: len(s.mails()) == 2)
        await s.quiet()
        await s.mailer.stop()

    run(scenario)
    subjects = [m["Subject"] for m in s.mails()]
    assert subjects == ["[haoscar demo/head1] PROBLEM head head2: head2 down: no heartbeat",
                        "[haoscar demo/head1] RECOVERED head head2"]
    recovery = body(s.mails()[1])
    assert "head2 still down, second report" in recovery and "HEAD_UP INFO: head2 up" in recovery
    assert "head2 down: no heartbeat" in recovery        # the first event, for context
    assert s.state.email.sent == 2


def test_a_failed_failover_keeps_the_incident_open_and_a_lone_one_opens_it(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.FAILOVER_FAILED, subject="head1", text="takeover by head1 failed: no quorum",
                severity=Severity.CRITICAL, reason="no quorum")
        await s.until(lambda: len(s.mails()) == 1)
        s.event(T.FAILOVER_STARTED, subject="head1", text="failover to head1 started")
        s.event(T.FAILOVER_FAILED, subject="head1", text="takeover by head1 failed again")
        await s.quiet()
        assert len(s.mails()) == 1
        s.event(T.FAILOVER_COMPLETED, subject="head1", text="failover to head1 completed")
        await s.until(lambda: len(s.mails()) == 2)
        await s.mailer.stop()

    run(scenario)
    assert s.mails()[0]["Subject"].startswith("[haoscar demo/head1] PROBLEM failover demo: takeover by head1")
    assert s.mails()[1]["Subject"] == "[haoscar demo/head1] RECOVERED failover demo"
    assert "takeover by head1 failed again" in body(s.mails()[1])


def test_split_brain_and_services_are_separate_incidents(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.SPLIT_BRAIN_DETECTED, subject="head1", text="both heads active")
        s.event(T.SERVICE_ESCALATED, subject="pbs")
        s.event(T.SERVICE_ESCALATED, subject="maui")
        await s.until(lambda: len(s.mails()) == 3)
        s.event(T.SERVICE_LADDER_RESET, subject="maui")
        s.event(T.SPLIT_BRAIN_RESOLVED, subject="head1")
        await s.until(lambda: len(s.mails()) == 5)
        await s.quiet()
        await s.mailer.stop()

    run(scenario)
    subjects = sorted(m["Subject"].split("] ")[1].split(":")[0] for m in s.mails())
    assert subjects == ["PROBLEM service maui", "PROBLEM service pbs", "PROBLEM split-brain demo",
                        "RECOVERED service maui", "RECOVERED split-brain demo"]


def test_other_events_and_closes_without_an_incident_send_nothing(cfg: Config) -> None:
    s = Setup(cfg)
    others = [t for t in EventType if t not in {
        T.SERVICE_ESCALATED, T.SERVICE_RECOVERY_EXHAUSTED, T.HEAD_DOWN, T.FAILOVER_STARTED,
        T.FAILOVER_FAILED, T.SPLIT_BRAIN_DETECTED, T.LAN_FAILED, T.LAN_IF_DOWN,
        T.CLUSTER_NODE_LEFT, T.QUORUM_LOST, T.MEMBERSHIP_UNKNOWN, T.RESOURCE_FAILED, T.ADDRESS_STALE}]

    async def scenario() -> None:
        await s.mailer.start()
        for etype in others:
            s.event(etype, subject="pbs")
        await s.quiet()
        await s.mailer.stop()

    run(scenario)
    assert T.SERVICE_DOWN in others and T.SERVICE_RECOVERED in others and T.HEAD_UP in others
    assert s.mails() == [] and s.transport.attempts == []
    assert s.state.email.sent == s.state.email.dropped == 0


@pytest.mark.parametrize("values", [{"enabled": False}, {"to": []}])
def test_disabled_or_without_recipients_nothing_is_sent(cfg: Config, values: dict[str, Any]) -> None:
    s = Setup(cfg, **values)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.HEAD_DOWN, subject="head2")
        s.event(T.SERVICE_ESCALATED)
        await s.quiet()
        await s.mailer.stop()

    run(scenario)
    assert s.mails() == [] and s.transport.attempts == []
    assert s.state.email.dropped == 0


def test_disabling_during_the_settle_delay_sends_nothing_and_the_recipients_are_read_live(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.HEAD_DOWN, subject="head2")
        s.set_email(enabled=False, to=["op@example.com"])
        await s.quiet()
        assert s.mails() == []
        s.set_email(enabled=True, to=["new-op@example.com"])
        s.event(T.HEAD_DOWN, subject="head2")
        await s.until(lambda: len(s.mails()) == 1)
        await s.mailer.stop()

    run(scenario)
    assert s.mails()[0]["To"] == "new-op@example.com"
    assert s.mails()[0]["Subject"].startswith("[haoscar demo/head1] PROBLEM head head2")


def test_the_rate_limit_drops_and_counts_and_logs_once_per_hour(cfg: Config, caplog: pytest.LogCaptureFixture
                                                                ) -> None:
    s = Setup(cfg, max_per_hour=2)

    async def scenario() -> None:
        await s.mailer.start()
        for name in ("a", "b", "c", "d"):
            s.event(T.SERVICE_ESCALATED, subject=name)
        await s.until(lambda: len(s.mails()) == 2)
        await s.quiet()
        assert s.state.email.dropped == 2
        s.clock.advance(3600)           # the sliding hour is over
        s.event(T.SERVICE_ESCALATED, subject="e")
        await s.until(lambda: len(s.mails()) == 3)
        await s.mailer.stop()

    with caplog.at_level(logging.WARNING, logger="fcaps.fault.mailer"):
        run(scenario)
    assert s.state.email.sent == 3 and s.state.email.dropped == 2
    assert len([r for r in caplog.records if "in an hour" in r.getMessage()]) == 1


def test_a_full_queue_drops_and_counts_and_queued_mirrors_the_queue(cfg: Config) -> None:
    s = Setup(cfg, queue_size=2)

    async def scenario() -> None:
        # The sender is not started: everything stays queued.
        for name in ("a", "b", "c", "d"):
            s.event(T.SERVICE_ESCALATED, subject=name)
        await s.quiet()
        assert s.state.email.queued == 2 and s.state.email.dropped == 2
        await s.mailer.start()
        await s.until(lambda: len(s.mails()) == 2)
        assert s.state.email.queued == 0
        await s.mailer.stop()

    run(scenario)
    assert [m["Subject"].split(": ")[0] for m in s.mails()] == [
        "[haoscar demo/head1] PROBLEM service a", "[haoscar demo/head1] PROBLEM service b"]


def test_failed_attempts_are_retried_with_a_doubling_delay_then_succeed(cfg: Config) -> None:
    s = Setup(cfg, FakeTransport(fail=3), retries=3)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.HEAD_DOWN, subject="head2")
        await s.until(lambda: len(s.mails()) == 1)
        await s.mailer.stop()

    run(scenario)
    attempts = s.transport.attempts
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) == 4
    assert gaps == pytest.approx([0.01, 0.02, 0.04])
    assert s.state.email.sent == 1 and s.state.email.failed == 0
    assert s.state.email.last_error == "ConnectionRefusedError: connection refused"
    ids = {m["Message-ID"] for m in s.mails()}
    assert len(ids) == 1


def test_exhausted_retries_count_a_failure_and_keep_the_error(cfg: Config, caplog: pytest.LogCaptureFixture
                                                              ) -> None:
    error = OSError("x" * 100 + "\r\nInjected: line" + "y" * 400)
    s = Setup(cfg, FakeTransport(fail=100, error=error), retries=2, smtp_host="mail.example.com", smtp_port=2525)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.HEAD_DOWN, subject="head2")
        await s.until(lambda: s.state.email.failed == 1)
        # the next mail is not held up by the failed one
        s.transport.fail = 0
        s.event(T.HEAD_UP, subject="head2")
        await s.until(lambda: len(s.mails()) == 1)
        await s.mailer.stop()

    with caplog.at_level(logging.WARNING, logger="fcaps.fault.mailer"):
        run(scenario)
    assert len(s.transport.attempts) == 3 + 1
    assert s.state.email.failed == 1 and s.state.email.sent == 1
    last_error = s.state.email.last_error
    assert last_error.startswith("OSError: xxx") and len(last_error) <= 255
    assert "\r" not in last_error and "\n" not in last_error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("mail.example.com:2525" in w and "OSError" in w for w in warnings)


def test_header_injection_in_event_text_stays_on_one_line(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.SERVICE_ESCALATED, subject="pbs\r\nBcc: victim@example.com",
                text="down\nX-Injected: yes\r\n\r\nfake body", reason="r\nX-Reason: 1")
        await s.until(lambda: len(s.mails()) == 1)
        await s.mailer.stop()

    run(scenario)
    mail = s.mails()[0]
    subject = mail["Subject"]
    assert "\r" not in subject and "\n" not in subject
    assert "Bcc" in subject                 # shown, escaped, in the one header
    wire = mail.as_bytes(policy=email.policy.SMTP)
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None and parsed["X-Reason"] is None
    assert str(parsed["Subject"]) == subject
    text = body(mail)
    assert "\nX-Injected" not in text and "\nX-Reason" not in text and "\\n" in text


def test_counters_reset_on_the_reset_event(cfg: Config) -> None:
    s = Setup(cfg)
    stats = s.state.email
    stats.sent, stats.failed, stats.dropped, stats.last_error = 5, 3, 2, "earlier"
    s.mailer.on_event(Event(T.OPERATOR_ACTION, "reset_counters", Severity.INFO,
                            "operator action reset_counters by admin: counters reset", 0.0))
    assert (stats.sent, stats.failed, stats.dropped) == (0, 0, 0)
    # A refused action (severity WARNING) is not a reset.
    stats.sent = 4
    s.mailer.on_event(Event(T.OPERATOR_ACTION, "reset_counters", Severity.WARNING, "refused", 0.0))
    assert stats.sent == 4


def test_counters_reset_even_when_mail_is_disabled(cfg: Config) -> None:
    s = Setup(cfg, enabled=False)
    s.state.email.dropped = 7
    s.mailer.on_event(Event(T.OPERATOR_ACTION, "reset_counters", Severity.INFO, "reset", 0.0))
    assert s.state.email.dropped == 0


def test_stop_with_mails_queued_returns_at_once_and_counts_them(cfg: Config, caplog: pytest.LogCaptureFixture
                                                                ) -> None:
    s = Setup(cfg, StuckTransport())

    async def scenario() -> None:
        await s.mailer.start()
        for name in ("a", "b", "c"):
            s.event(T.SERVICE_ESCALATED, subject=name)
        await s.until(lambda: len(s.transport.attempts) == 1 and s.state.email.queued == 2)
        s.event(T.HEAD_DOWN, subject="head2")      # still settling
        assert s.state.email.queued == 2
        began = time.monotonic()
        await asyncio.wait_for(s.mailer.stop(), 1.0)
        assert time.monotonic() - began < 0.5

    with caplog.at_level(logging.WARNING, logger="fcaps.fault.mailer"):
        run(scenario)
    assert s.state.email.dropped == 4 and s.state.email.queued == 0 and s.state.email.sent == 0
    assert len([r for r in caplog.records if "not sent" in r.getMessage()]) == 1


def test_on_event_returns_at_once_and_never_raises(cfg: Config, caplog: pytest.LogCaptureFixture) -> None:
    s = Setup(cfg, StuckTransport())

    def broken() -> Config:
        raise RuntimeError("config unavailable")

    async def scenario() -> None:
        await s.mailer.start()
        began = time.perf_counter()
        for i in range(200):
            s.event(T.SERVICE_ESCALATED, subject=f"svc{i}")
        assert time.perf_counter() - began < 0.5
        s.mailer.config = broken
        s.event(T.HEAD_DOWN, subject="head2")        # logged, not raised
        await s.mailer.stop()

    run(scenario)
    assert any(BUG_MARKER in r.getMessage() for r in caplog.records)


def test_without_a_running_loop_the_problem_mail_is_queued_at_once(cfg: Config) -> None:
    s = Setup(cfg)
    s.event(T.HEAD_DOWN, subject="head2")
    assert s.state.email.queued == 1

    async def scenario() -> None:
        await s.mailer.start()
        await s.until(lambda: len(s.mails()) == 1)
        await s.mailer.stop()

    run(scenario)
    assert s.state.email.sent == 1


def test_a_long_incident_lists_a_bounded_number_of_events_and_always_the_last(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.HEAD_DOWN, subject="head2", text="head2 down")
        await s.until(lambda: len(s.mails()) == 1)
        for i in range(80):
            s.event(T.HEAD_DOWN, subject="head2", text=f"report {i}")
        s.event(T.HEAD_UP, subject="head2", text="head2 is back")
        await s.until(lambda: len(s.mails()) == 2)
        await s.mailer.stop()

    run(scenario)
    text = body(s.mails()[1])
    assert text.count("HEAD_DOWN") == MAX_LISTED
    assert f"and {80 + 1 - MAX_LISTED} more event(s), not listed" in text
    assert "HEAD_UP MAJOR: head2 is back" in text


def test_a_lan_failure_and_an_interface_down_are_incidents_of_their_own(cfg: Config) -> None:
    s = Setup(cfg)

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.LAN_FAILED, subject="lanA", text="lanA failed: 6 of 7 interfaces went down within 0.4 s")
        s.event(T.LAN_IF_DOWN, subject="node3/lanB", text="LAN interface node3/lanB is down")
        await s.until(lambda: len(s.mails()) == 2)
        s.event(T.LAN_RECOVERED, subject="lanA")
        s.event(T.LAN_IF_UP, subject="node3/lanB")
        await s.until(lambda: len(s.mails()) == 4)
        await s.quiet()
        await s.mailer.stop()

    run(scenario)
    subjects = sorted(m["Subject"].split("] ")[1].split(":")[0] for m in s.mails())
    assert subjects == ["PROBLEM LAN lanA", "PROBLEM interface node3/lanB",
                        "RECOVERED LAN lanA", "RECOVERED interface node3/lanB"]


def test_the_settle_delay_and_the_retries_wait_on_the_mailers_clock(cfg: Config) -> None:
    s = Setup(cfg, FakeTransport(fail=1), retries=1)
    s.mailer.settle_s = 30.0
    seen: list[int] = []

    async def scenario() -> None:
        await s.mailer.start()
        s.event(T.HEAD_DOWN, subject="head2")
        s.clock.advance(29.9)
        await passes()
        seen.append(len(s.transport.attempts))      # still settling
        s.clock.advance(0.1)
        await passes()
        seen.append(len(s.transport.attempts))      # the first attempt, refused
        s.clock.advance(0.009)
        await passes()
        seen.append(len(s.transport.attempts))      # the next one is 0.01 s later
        s.clock.advance(0.001)
        await passes()
        seen.append(len(s.transport.attempts))
        await s.mailer.stop()

    run(scenario)
    assert seen == [0, 1, 1, 2] and len(s.mails()) == 1
