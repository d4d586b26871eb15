"""Pacemaker's alert agent and the daemon's alert socket: one datagram, one refresh; the
agent is quiet and quick when nobody listens; the socket's path and mode."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fcaps.fault.cluster import alert_agent
from fcaps.fault.cluster.alerts import AlertListener

AGENT = Path(alert_agent.__file__)


def run(body):  # type: ignore[no-untyped-def]
    asyncio.run(asyncio.wait_for(body(), 5.0))


def test_the_message_names_the_event() -> None:
    env = {"CRM_alert_kind": "resource", "CRM_alert_node": "node1", "CRM_alert_rsc": "vip",
           "CRM_alert_task": "start", "CRM_alert_rc": "0"}
    assert alert_agent.message(env) == b"kind=resource node=node1 rsc=vip task=start rc=0"
    assert alert_agent.message({}) == b"kind=unknown"
    assert len(alert_agent.message({"CRM_alert_node": "n" * 2000})) == alert_agent.DATAGRAM_MAX


def test_each_datagram_asks_for_a_refresh(tmp_path: Path) -> None:
    path = tmp_path / "alert.sock"
    asked: list[int] = []

    async def body() -> None:
        listener = AlertListener(path, lambda: asked.append(1))
        await listener.start()
        assert stat.S_ISSOCK(path.lstat().st_mode) and stat.S_IMODE(path.lstat().st_mode) == 0o660
        for kind in ("node", "resource"):
            assert alert_agent.main({"CRM_alert_recipient": str(path), "CRM_alert_kind": kind}) == 0
        for _ in range(50):
            if len(asked) == 2:
                break
            await asyncio.sleep(0.01)
        assert listener.received == 2
        listener.close()
        assert not path.exists()
    run(body)
    assert asked == [1, 1]


def test_a_stale_socket_is_replaced_and_anything_else_refused(tmp_path: Path) -> None:
    path = tmp_path / "alert.sock"

    async def body() -> None:
        first = AlertListener(path, lambda: None)
        await first.start()
        first._transport = None          # as if the daemon had died: the file stays  # noqa: SLF001
        second = AlertListener(path, lambda: None)
        await second.start()
        second.close()
        path.write_text("not a socket")
        with pytest.raises(OSError, match="not a socket"):
            await AlertListener(path, lambda: None).start()
        assert path.read_text() == "not a socket"
    run(body)


def test_without_a_daemon_the_agent_exits_0_quietly_and_fast(tmp_path: Path) -> None:
    assert alert_agent.main({"CRM_alert_recipient": str(tmp_path / "nobody.sock")}) == 0
    assert alert_agent.main({"CRM_alert_recipient": "\0bad"}) == 0
    env = {"PATH": os.environ.get("PATH", ""), "CRM_alert_recipient": str(tmp_path / "nobody.sock"),
           "CRM_alert_kind": "node"}
    start = time.monotonic()
    done = subprocess.run([str(AGENT)], env=env, capture_output=True, timeout=30)
    elapsed = time.monotonic() - start
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    print(f"alert agent without a daemon: {elapsed * 1000:.0f} ms")


def test_the_agent_is_executable_and_imports_nothing_of_the_project() -> None:
    assert os.access(AGENT, os.X_OK)
    assert AGENT.read_text().startswith("#!/usr/bin/python3 -IS\n")
    code = (f"import sys, runpy; runpy.run_path({str(AGENT)!r}); "
            "print(sorted(m for m in sys.modules if m.startswith(('fcaps', 'haoscar_snmp'))))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "[]", out.stderr


def test_an_alert_asks_for_a_read_now_and_one_more_when_the_transition_is_over() -> None:
    from fakes import FakeClock

    from fcaps.fault.cluster.alerts import AlertReads

    async def scenario() -> list[float]:
        clock = FakeClock()
        reads: list[float] = []
        alerts = AlertReads(lambda: reads.append(clock.monotonic()), clock, settle_s=1.0)
        alerts()                    # the stop's alert
        clock.advance(0.4)
        alerts()                    # the monitor's: shares the later read
        clock.advance(0.6)
        await asyncio.sleep(0)
        clock.advance(5)
        await asyncio.sleep(0)
        alerts()
        alerts.close()              # at shutdown: the later read is called off
        clock.advance(5)
        await asyncio.sleep(0)
        return reads

    assert asyncio.run(scenario()) == [5.0, 5.4, 6.0, 11.0]
