"""Operator e-mail delivered to a real SMTP server (aiosmtpd) on the loopback interface.

Plain SMTP, STARTTLS and implicit TLS with the server's certificate verified against a
throw-away CA made here (with an IP address SAN for 127.0.0.1), SMTP AUTH with the
password read from a 0600 file by the configuration loader, and the failures: a wrong
password, an unknown CA, a server that is not there, a server that never answers. Each
failure is counted, and the caller is never held up.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest

from fcaps.fault.mailer import Mailer
from haoscar_snmp.config.loader import parse_config, read_embedded_default
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import Event, EventType, Severity
from haoscar_snmp.core.state import State

from .harness import write_secret
from .smtp import (
    HOST,
    PASSWORD,
    USER,
    Pki,
    Received,
    SmtpServer,
    accept_one_user,
    free_tcp_port,
    make_pki,
)

RECIPIENTS = ["op@example.com", "oncall@example.com"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "good")


@pytest.fixture
def plain_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def starttls_server(pki: Pki) -> Iterator[SmtpServer]:
    with SmtpServer(tls_context=pki.server_context(), require_starttls=True) as server:
        yield server


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[SmtpServer]:
    with SmtpServer(ssl_context=pki.server_context()) as server:   # TLS from the first byte
        yield server


@pytest.fixture
def auth_server(pki: Pki) -> Iterator[SmtpServer]:
    with SmtpServer(tls_context=pki.server_context(), require_starttls=True, auth_required=True,
                    auth_require_tls=True, authenticator=accept_one_user) as server:
        yield server


# -- the mailer, configured through the loader -------------------------------------------------

def email_config(tmp_path: Path, **values: Any) -> Config:
    """The embedded demo config with [notify.email] replaced, read by the real loader."""
    values = {"enabled": True, "smtp_host": HOST, "from": "haoscar@head1.test", "to": RECIPIENTS,
              "timeout_ms": 3000, "retries": 0, **values}
    section = "[notify.email]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    # The demo's own [notify.email] table (up to the next table) goes; ours is appended.
    text = re.sub(r"^\[notify\.email\]\n(?:(?!\[).*\n)*", "", read_embedded_default(), flags=re.MULTILINE)
    text += "\n" + section
    return parse_config(text, label="test_mailer", base_dir=tmp_path, environ={"HOME": str(tmp_path)},
                        state_dir=tmp_path / "state")


class Harness:
    def __init__(self, config: Config) -> None:
        self.state = State()
        self.mailer = Mailer(self.state, lambda: config, SystemClock(), settle_s=0.05, retry_delay_s=0.1)
        self.tried_inside_on_event = 0   # publications whose mail was tried before on_event returned

    def publish(self, etype: EventType, subject: str, text: str, severity: Severity, **data: Any) -> None:
        email = self.state.email
        before = (email.sent, email.failed)
        self.mailer.on_event(Event(etype, subject, severity, text, time.time(), data))
        self.tried_inside_on_event += (email.sent, email.failed) != before

    def head_down(self) -> None:
        self.publish(EventType.HEAD_DOWN, "head2", "head2 down: no heartbeat on any path", Severity.CRITICAL,
                     reason="dead time over")

    def run(self, scenario: Callable[[], Awaitable[None]], timeout: float = 8.0) -> float:
        """Run the scenario with the sender started; return the loop's longest lag meanwhile."""
        lag = 0.0

        async def ticker() -> None:
            nonlocal lag
            loop = asyncio.get_running_loop()
            while True:
                before = loop.time()
                await asyncio.sleep(0.005)
                lag = max(lag, loop.time() - before - 0.005)

        async def main() -> None:
            await self.mailer.start()
            tick = asyncio.create_task(ticker())
            try:
                await asyncio.wait_for(scenario(), timeout)
            finally:
                tick.cancel()
                await self.mailer.stop()

        asyncio.run(main())
        return lag


async def until(condition: Callable[[], bool], timeout: float = 6.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def deliver_one(h: Harness, server: SmtpServer) -> Received:
    async def scenario() -> None:
        h.head_down()
        await until(lambda: h.state.email.sent + h.state.email.failed > 0)

    h.run(scenario)
    assert h.state.email.failed == 0, h.state.email.last_error
    assert h.state.email.sent == 1 and len(server.inbox.received) == 1
    return server.inbox.received[0]


# -- delivery -----------------------------------------------------------------------------------

def test_plain_smtp_delivers_one_mail_with_its_headers_and_events(tmp_path: Path, plain_server: SmtpServer) -> None:
    h = Harness(email_config(tmp_path, smtp_port=plain_server.port))
    got = deliver_one(h, plain_server)
    assert got.mail_from == "haoscar@head1.test" and got.rcpt_tos == RECIPIENTS and not got.tls
    m = got.message
    # A subject that does not fit after "Subject: " is folded onto the next line as a whole;
    # Python's parser keeps the folding white space, a mail reader does not.
    assert m["Subject"].strip() == "[haoscar demo/head1] PROBLEM head head2: head2 down: no heartbeat on any path"
    assert m["From"] == "haoscar@head1.test" and m["To"] == ", ".join(RECIPIENTS)
    assert m["Date"] is not None and m["Message-ID"].endswith("@head1>")
    text = m.get_content()
    assert "Cluster:  demo" in text and "Incident: head head2" in text
    assert "HEAD_DOWN CRITICAL: head2 down: no heartbeat on any path" in text and "reason: dead time over" in text
    assert h.state.email.last_sent > 0 and h.state.email.last_error == ""


def test_starttls_verifies_the_server_against_the_configured_ca(tmp_path: Path, pki: Pki,
                                                               starttls_server: SmtpServer) -> None:
    h = Harness(email_config(tmp_path, smtp_port=starttls_server.port, security="starttls",
                             ca_file=str(pki.ca_file)))
    got = deliver_one(h, starttls_server)
    assert got.tls and got.message["Subject"].strip().startswith("[haoscar demo/head1] PROBLEM head head2")


def test_implicit_tls_delivers(tmp_path: Path, pki: Pki, tls_server: SmtpServer) -> None:
    h = Harness(email_config(tmp_path, smtp_port=tls_server.port, security="tls", ca_file=str(pki.ca_file)))
    got = deliver_one(h, tls_server)
    assert got.message["To"] == ", ".join(RECIPIENTS)


def test_smtp_auth_over_starttls_with_the_password_from_a_file(tmp_path: Path, pki: Pki,
                                                               auth_server: SmtpServer) -> None:
    password_file = write_secret(tmp_path / "smtp-password", PASSWORD)
    config = email_config(tmp_path, smtp_port=auth_server.port, security="starttls", ca_file=str(pki.ca_file),
                          username=USER, password_file=password_file.name)
    assert config.notify.email.password == PASSWORD
    got = deliver_one(Harness(config), auth_server)
    assert got.tls and got.authenticated


# -- failures -------------------------------------------------------------------------------------

def test_a_wrong_password_is_counted_as_failed(tmp_path: Path, pki: Pki, auth_server: SmtpServer) -> None:
    password_file = write_secret(tmp_path / "smtp-password", "not the password")
    h = Harness(email_config(tmp_path, smtp_port=auth_server.port, security="starttls", ca_file=str(pki.ca_file),
                             username=USER, password_file=str(password_file), retries=1))

    async def scenario() -> None:
        h.head_down()
        await until(lambda: h.state.email.failed == 1)

    h.run(scenario)
    assert h.state.email.sent == 0 and auth_server.inbox.received == []
    assert "535" in h.state.email.last_error or "auth" in h.state.email.last_error.lower()


def test_a_server_certificate_from_another_ca_is_refused(tmp_path: Path, starttls_server: SmtpServer) -> None:
    other = make_pki(tmp_path, "other")
    h = Harness(email_config(tmp_path, smtp_port=starttls_server.port, security="starttls",
                             ca_file=str(other.ca_file)))

    async def scenario() -> None:
        h.head_down()
        await until(lambda: h.state.email.failed == 1)

    h.run(scenario)
    assert starttls_server.inbox.received == [] and h.state.email.sent == 0
    assert "certificate" in h.state.email.last_error.lower()


def test_a_server_that_is_not_running_is_retried_then_counted_and_nobody_waits(tmp_path: Path) -> None:
    h = Harness(email_config(tmp_path, smtp_port=free_tcp_port(), retries=2))

    async def scenario() -> None:
        h.head_down()
        h.publish(EventType.FAILOVER_STARTED, "head1", "failover to head1 started", Severity.MAJOR)
        await until(lambda: h.state.email.failed == 2)

    started = time.monotonic()
    h.run(scenario)
    # Nobody waits: each event only queues its mail (a refused connection would have
    # been counted at once had on_event tried it) ...
    assert h.tried_inside_on_event == 0
    # two mails, three attempts each, 0.1 s then 0.2 s apart, one after the other
    assert time.monotonic() - started >= 2 * 0.3
    assert h.state.email.sent == 0 and h.state.email.queued == 0
    assert h.state.email.last_error


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    timeout_ms = 1500
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        silent.bind((HOST, 0))
        silent.listen(4)   # the kernel accepts the connection; nobody ever speaks
        h = Harness(email_config(tmp_path, smtp_port=silent.getsockname()[1], timeout_ms=timeout_ms))

        async def scenario() -> None:
            h.head_down()
            await until(lambda: h.state.email.failed == 1)

        lag = h.run(scenario)
    finally:
        silent.close()
    # ... and the loop runs on while the mail waits: a loop held by the sender would lag by
    # the whole timeout.
    assert lag < timeout_ms / 1000 / 2 and "timeout" in h.state.email.last_error.lower()
