"""Service recovery with real processes: a TCP service the daemon starts, checks, finds
killed and restarts; a restart that fails and escalates to the operator, seen at a real
snmptrapd and a real SMTP server over STARTTLS; a service row created with snmpset that
keeps its rung across a daemon restart, is reset through haoscarControlAction and is
destroyed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .conftest import make_agent
from .harness import Agent, R, TrapReceiver, free_udp_port
from .smtp import SmtpServer, free_tcp_port, make_pki

PROGRAM = Path(__file__).parent / "programs" / "tcp_service.py"
SERVICE = f"{R}.1.8.1"           # haoscarServiceEntry
STATE, RESTARTS, LAST_ACTION, ROW_STATUS, RUNG, REASON = 4, 5, 13, 14, 27, 29
SERVICE_DOWN, SERVICE_RECOVERED, EXHAUSTED, LADDER_STEP = (f"{R}.0.{n}" for n in (12, 13, 14, 20))
NOTIFY_REASON = f".{R}.1.14.2.0"  # haoscarNotifyReason


def column(column: int, index: int) -> str:
    return f"{SERVICE}.{column}.{index}"


def value(agent: Agent, oid: str) -> str:
    r = agent.v2c("snmpget", oid, mib=False)
    assert r.rc == 0, r.text
    return r.out.split(" = ", 1)[1].strip().split(": ", 1)[-1].strip('"')


def wait_value(agent: Agent, oid: str, wanted: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = value(agent, oid)
        if seen == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"{oid} is {seen!r}, not {wanted!r}:\n{agent.log_text()}")


class TcpService:
    """The shell commands that start, restart and stop one tcp_service.py, and its pid."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.pidfile = workdir / f"tcp-{port}.pid"
        self.command = (f"{sys.executable} {PROGRAM} {port} {self.pidfile} "
                        f">/dev/null 2>&1 </dev/null &")

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None

    def alive(self, pid: int | None) -> bool:
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"

    def start_here(self) -> None:
        subprocess.run(self.command, shell=True, check=True, timeout=10)
        deadline = time.monotonic() + 10
        while not self.alive(self.pid()) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        pid = self.pid()
        if self.alive(pid):
            os.kill(pid, signal.SIGKILL)      # type: ignore[arg-type]
            while self.alive(pid):
                time.sleep(0.01)

    def cleanup(self) -> None:
        self.kill()
        subprocess.run(["pkill", "-KILL", "-f", f"{PROGRAM} {self.port} "], check=False)


@pytest.fixture
def tcp(tmp_path: Path) -> Iterator[TcpService]:
    service = TcpService(tmp_path, free_tcp_port())
    yield service
    service.cleanup()


def wait_new(trapd: TrapReceiver, trap_oid: str, after: int, timeout: float = 15.0) -> dict[str, str]:
    """The first notification `trap_oid` among those received after the first `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, binds in trapd.notifications()[after:]:
            if binds.get(".1.3.6.1.6.3.1.1.4.1.0", "").endswith(trap_oid):
                return binds
        time.sleep(0.05)
    raise AssertionError(f"no new notification {trap_oid}; snmptrapd logged:\n{trapd.text()}")


def started(agent: Agent) -> Agent:
    agent.start()
    return agent


def test_a_killed_service_is_restarted_and_the_mib_and_notifications_say_so(
        tmp_path: Path, trapd: TrapReceiver, tcp: TcpService) -> None:
    services = f"""
[[services]]
name = "tcpd"
check_type = "tcp"
check = "127.0.0.1:{tcp.port}"
active_only = true
start = "{tcp.command}"
restart = "{tcp.command}"
stop = "kill $(cat {tcp.pidfile})"
interval_ms = 200
retry_threshold = 2
reset_after = 10000
recovery = "restart-then-notify"
"""
    agent = started(make_agent(tmp_path, trapd.port, services_toml=services))
    try:
        wait_value(agent, column(STATE, 1), "2")                       # running, started at takeover
        assert value(agent, column(RESTARTS, 1)) == "0"                # no restart needed to start it
        first = tcp.pid()
        assert tcp.alive(first)
        before = len(trapd.notifications())
        tcp.kill()
        wait_new(trapd, SERVICE_DOWN, before)
        step = wait_new(trapd, LADDER_STEP, before)
        assert "restart 1 of 3" in step[NOTIFY_REASON]
        wait_new(trapd, SERVICE_RECOVERED, before)
        wait_value(agent, column(STATE, 1), "2")
        assert tcp.alive(tcp.pid()) and tcp.pid() != first, agent.log_text()   # a new process serves
        assert value(agent, column(RESTARTS, 1)) == "1"
        assert value(agent, column(LAST_ACTION, 1)) == "2"             # restart(2)
        assert value(agent, column(RUNG, 1)) == "2"                    # restarting(2): the incident is open
        assert "the restart worked" in value(agent, column(REASON, 1))
    finally:
        agent.stop()
    assert not tcp.alive(tcp.pid())                                    # stopped at release
    assert BUG_MARKER not in agent.log_text(), agent.log_text()


def test_a_restart_that_fails_escalates_to_the_operator_by_trap_and_e_mail_over_starttls(
        tmp_path: Path, trapd: TrapReceiver) -> None:
    pki = make_pki(tmp_path, "mail")
    closed = free_tcp_port()
    services = f"""
[[services]]
name = "tcpd"
check_type = "tcp"
check = "127.0.0.1:{closed}"
restart = "false"
max_restarts = 1
interval_ms = 200
retry_threshold = 1
recovery = "restart-then-notify"
"""
    with SmtpServer(tls_context=pki.server_context(), require_starttls=True) as smtp:
        mail = f"""
[notify.email]
enabled = true
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
security = "starttls"
ca_file = "{pki.ca_file}"
from = "haoscar@head1.test"
to = ["ops@example.org"]
"""
        agent = started(make_agent(tmp_path, trapd.port, services_toml=services, extra_toml=mail))
        try:
            trapd.wait_notification(SERVICE_DOWN)
            _, exhausted = trapd.wait_notification(EXHAUSTED)
            assert "1 restarts within 300 s did not help" in exhausted[NOTIFY_REASON]
            steps = [binds[NOTIFY_REASON] for _, binds in trapd.notifications()
                     if binds.get(".1.3.6.1.6.3.1.1.4.1.0", "").endswith(LADDER_STEP)]
            assert any("restart 1 of 1" in s for s in steps)
            assert any("restart command exited with 1" in s for s in steps)
            wait_value(agent, column(RUNG, 1), "4")                   # operator(4)
            assert value(agent, column(LAST_ACTION, 1)) == "4"         # notify(4)
            deadline = time.monotonic() + 15
            while not smtp.inbox.received and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(smtp.inbox.received) == 1, agent.log_text()
            got = smtp.inbox.received[0]
            assert got.tls and got.rcpt_tos == ["ops@example.org"]
            subject = str(got.message["Subject"]).strip()
            assert subject.startswith("[haoscar itest/head1] PROBLEM service tcpd"), subject
            body = got.message.get_content()
            assert "recovery exhausted" in body and "1 restarts within 300 s did not help" in body
            assert value(agent, f"{R}.1.15.1.0") == "1"                # haoscarEmailSent
        finally:
            agent.stop()
    assert BUG_MARKER not in agent.log_text(), agent.log_text()


def test_a_service_created_with_snmpset_is_monitored_keeps_its_rung_across_a_restart_and_is_destroyed(
        tmp_path: Path, trapd: TrapReceiver, tcp: TcpService) -> None:
    agent = started(make_agent(tmp_path, trapd.port))
    try:
        tcp.start_here()
        bad = agent.v3("snmpset", column(3, 7), "s", "web", column(15, 7), "i", "4",
                       column(ROW_STATUS, 7), "i", "4", mib=False)
        assert "inconsistentValue" in bad.text                            # "web" is no HOST:PORT
        r = agent.v3("snmpset", column(2, 7), "s", "web", column(3, 7), "s", f"127.0.0.1:{tcp.port}",
                     column(15, 7), "i", "4", column(7, 7), "u", "1", column(8, 7), "i", "2",
                     column(11, 7), "s", "false", column(21, 7), "u", "1", column(16, 7), "u", "200",
                     column(ROW_STATUS, 7), "i", "4", mib=False)
        assert r.rc == 0, r.text
        wait_value(agent, column(STATE, 7), "2")                          # running: the port answers
        tcp.kill()
        wait_value(agent, column(RUNG, 7), "4")                           # its restart fails: operator
        assert value(agent, column(STATE, 7)) == "3"

        agent.stop()
        agent.start()
        assert value(agent, column(2, 7)) == "web"                        # the row is still there,
        assert value(agent, column(RUNG, 7)) == "4"                       # on the same rung
        time.sleep(0.5)                                                   # checked again: still failed
        assert value(agent, column(STATE, 7)) == "3"

        tcp.start_here()
        r = agent.v3("snmpset", f"{R}.1.3.1.0", "i", "5", f"{R}.1.3.6.0", "u", "7", mib=False)
        assert r.rc == 0, r.text                                          # resetService(5), service 7
        wait_value(agent, f"{R}.1.3.2.0", "3")                            # succeeded(3)
        assert value(agent, f"{R}.1.3.3.0") == "service web reset"
        wait_value(agent, column(RUNG, 7), "1")                           # watching(1)
        wait_value(agent, column(STATE, 7), "2")

        r = agent.v3("snmpset", column(ROW_STATUS, 7), "i", "6", mib=False)
        assert r.rc == 0, r.text
        assert "No Such Instance" in agent.v2c("snmpget", column(2, 7)).text
    finally:
        agent.stop()
    assert BUG_MARKER not in agent.log_text(), agent.log_text()
