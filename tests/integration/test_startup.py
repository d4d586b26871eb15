"""Starting: a daemon that cannot do its job says so and exits 2, it never runs on deaf."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from .conftest import make_agent
from .harness import Agent, TrapReceiver


def run_once(agent: Agent, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "haoscar_snmp", "run", "-c", str(agent.config_path)],
                          capture_output=True, text=True, cwd=agent.workdir, timeout=timeout)


def test_a_second_daemon_on_the_same_state_directory_is_refused(agent: Agent) -> None:
    second = run_once(agent)
    assert second.returncode == 2, second.stderr
    assert f"{agent.state_dir} is in use by another haoscar-snmp (pid {agent.proc.pid})" in second.stderr
    assert "ready: try" not in second.stderr
    agent.wait_ready(5)                              # the first one is untouched


def test_a_listener_that_cannot_be_bound_stops_the_start(tmp_path: Path, trapd: TrapReceiver) -> None:
    agent = make_agent(tmp_path, trapd.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", agent.port))        # another program holds the port
        result = run_once(agent)
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on udp 127.0.0.1:{agent.port}: Address already in use" in result.stderr
    assert "ready: try" not in result.stderr and "AGENT_STARTED" not in result.stderr
    assert not trapd.notifications()                 # no agentStarted for a deaf agent
