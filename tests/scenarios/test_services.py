"""A service's recovery ladder moving the active role: two real daemons in head namespaces.

The service is a small TCP server (tests/integration/programs/tcp_service.py) that runs
only on the active head: started at takeover, stopped at release, checked by a TCP
connect. On head1 its restart is made to fail; the ladder hands the role to head2,
which starts it and serves the client through the alias. head1, the preferred primary
with auto-failback on, does not take the role back while its service is marked failed;
after an operator resets the service there, the failback follows.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from tests.integration.harness import R

from .hapair import ALIAS, AUTH, PRIV, PUBLIC, SNMP_PORT, HaPair

PROGRAM = Path(__file__).resolve().parents[1] / "integration" / "programs" / "tcp_service.py"
PORT = 17070
SERVICE_DOWN, EXHAUSTED, LADDER_STEP = "12", "14", "20"


def tcp_service(pair: HaPair) -> str:
    """The service's TOML, the same for both heads (services are cluster-wide settings);
    its commands are a small script in the workdir. Both heads share this filesystem, so
    the script keeps each head's pid file and fault marker apart by HAOSCAR_TEST_HEAD,
    set in each daemon's environment (on real heads, the paths are the machine's own)."""
    script = pair.workdir / "tcpd"
    pidfile = f"{pair.workdir}/tcp-$HAOSCAR_TEST_HEAD.pid"
    script.write_text(f"""#!/bin/sh
case "$1" in
  restart) test -e {pair.workdir}/$HAOSCAR_TEST_HEAD.broken && exit 1 ;;
  stop) kill "$(cat {pidfile})"; exit ;;
esac
{sys.executable} {PROGRAM} {PORT} {pidfile} 0.0.0.0 >/dev/null 2>&1 </dev/null &
""")
    script.chmod(0o755)
    for head in ("head1", "head2"):
        pair.env.setdefault(head, {})["HAOSCAR_TEST_HEAD"] = head
    return f"""
        [[services]]
        name = "tcpd"
        check_type = "tcp"
        check = "127.0.0.1:{PORT}"
        active_only = true
        start = "{script} start"
        restart = "{script} restart"
        stop = "{script} stop"
        interval_ms = 200
        retry_threshold = 2
        max_restarts = 1
        recovery = "restart-then-failover"
        """


def served(pair: HaPair) -> bool:
    """A TCP connection from the client to the alias, at the service's port."""
    code = f"import socket; socket.create_connection(('{ALIAS}', {PORT}), 1).close()"
    return pair.cluster.run("client", sys.executable, "-c", code, check=False).returncode == 0


def pid(pair: HaPair, head: str) -> int | None:
    try:
        return int((pair.workdir / f"tcp-{head}.pid").read_text())
    except (OSError, ValueError):
        return None


def alive(number: int | None) -> bool:
    if number is None or not Path(f"/proc/{number}").exists():
        return False
    return Path(f"/proc/{number}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def kill_service(pair: HaPair, head: str) -> None:
    number = pid(pair, head)
    if alive(number):
        os.kill(number, signal.SIGKILL)      # type: ignore[arg-type]


def test_exhausted_restarts_hand_the_service_to_the_standby_and_the_failed_head_waits_for_a_reset(
        pair: HaPair) -> None:
    c = pair.cluster
    service = tcp_service(pair)
    pair.services = {head: service for head in ("head1", "head2")}
    try:
        pair.start_both()
        pair.wait_for(lambda: alive(pid(pair, "head1")), 5, "the service started on head1 at takeover")
        pair.wait_for(lambda: pair.snmp("head1", f"{R}.1.8.1.4.1") == "2", 5, "tcpd running on head1")
        assert served(pair)

        (pair.workdir / "head1.broken").touch()           # from now on, its restart fails on head1
        kill_service(pair, "head1")
        pair.wait_for(lambda: pair.holders() == {"head2"}, 10, "the ladder to hand the role to head2")
        pair.wait_for(lambda: alive(pid(pair, "head2")), 5, "head2 to start the service")
        pair.wait_for(lambda: served(pair), 5, "the client served through the alias")
        assert not alive(pid(pair, "head1"))
        assert {SERVICE_DOWN, LADDER_STEP} <= set(pair.trap_names("head1"))
        assert pair.snmp("head1", f"{R}.1.8.1.27.1") == "3"             # haoscarServiceRung failover(3)
        assert pair.snmp("head1", f"{R}.1.8.1.13.1") == "3"             # haoscarServiceLastAction failover
        pair.wait_for(lambda: pair.snmp("head2", f"{R}.1.8.1.4.1") == "2", 5, "tcpd running on head2")

        # head1 is the preferred primary and auto-failback is on, but its service failed there.
        time.sleep(2.0)
        assert pair.holders() == {"head2"} and pair.role("head1") == "standby"
        p = c.run("nms", "snmpset", "-v3", "-l", "authPriv", "-u", "admin", "-a", "SHA-256", "-A", AUTH,
                  "-x", "AES", "-X", PRIV, f"{PUBLIC['head1']}:{SNMP_PORT}",
                  f"{R}.1.3.6.0", "u", "1", f"{R}.1.3.1.0", "i", "5", check=False)   # resetService(5)
        assert p.returncode == 0, p.stderr
        assert pair.snmp("head1", f"{R}.1.3.3.0") == '"service tcpd reset"'
        (pair.workdir / "head1.broken").unlink()
        pair.wait_for(lambda: pair.holders() == {"head1"}, 10, "the failback to head1 after the reset")
        pair.wait_for(lambda: alive(pid(pair, "head1")), 5, "head1 to start the service again")
        pair.wait_for(lambda: not alive(pid(pair, "head2")), 5, "head2 to stop it at release")
        assert served(pair)
    finally:
        for head in ("head1", "head2"):
            kill_service(pair, head)
