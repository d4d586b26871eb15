"""`haoscar-snmp status` and the metrics against the real daemon on the demo configuration
(its SNMP port moved to a free one, its state directory into the test's directory)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from haoscar_snmp.views.console import UnixHTTPConnection

from .harness import REPO, Agent, Result, free_udp_port

pytestmark = pytest.mark.integration
DEMO = REPO / "haoscar_snmp" / "config" / "default.toml"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Agent]:
    agent = Agent(tmp_path, free_udp_port(), 0)
    text = DEMO.read_text().replace("16161", str(agent.port)).replace('state_dir = ""', 'state_dir = "state"')
    agent.config_path.write_text(text)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def status(agent: Agent, *args: str, env: dict[str, str] | None = None) -> Result:
    p = subprocess.run([sys.executable, "-m", "haoscar_snmp", "status", "-c", str(agent.config_path), *args],
                       capture_output=True, text=True, timeout=60, cwd=agent.workdir,
                       env=dict(os.environ, **(env or {})))
    return Result(p.returncode, p.stdout, p.stderr)


def wait_running(agent: Agent, timeout: float = 30.0) -> dict:
    """The snapshot once both demo services have been checked and run."""
    deadline = time.monotonic() + timeout
    while True:
        r = status(agent, "--json")
        snap = json.loads(r.out) if r.out else {}
        states = {s["name"]: s["state"] for s in snap.get("services", [])}
        if states == {"always-healthy": "running", "tmp-writable": "running"}:
            return snap
        assert time.monotonic() < deadline, f"services not running after {timeout}s: {r.text}"
        time.sleep(0.5)


def test_status_shows_the_running_demo_and_exits_ok(demo: Agent) -> None:
    snap = wait_running(demo)
    assert snap["schema"] == 1 and snap["health"] == {"status": "ok", "reasons": []}
    assert snap["cluster"]["name"] == "demo" and snap["cluster"]["this_head_role"] == "active"
    assert [e["type"] for e in snap["events"]][-1] == "agentStarted"
    r = status(demo)
    assert r.rc == 0, r.text
    assert "cluster demo  status normal  health OK" in r.out
    assert "always-healthy" in r.out and "tmp-writable" in r.out and "\x1b[" not in r.out   # not a terminal
    sock = demo.state_dir / "status.sock"
    assert sock.stat().st_mode & 0o777 == 0o600


def test_status_exits_3_when_the_daemon_is_stopped(demo: Agent) -> None:
    wait_running(demo)
    assert demo.stop() == 0
    r = status(demo)
    assert r.rc == 3 and r.out == ""
    assert f"UNKNOWN: {demo.state_dir / 'status.sock'} does not exist: the daemon is not running" in r.err


def test_metrics_of_the_real_daemon_pass_promtool(demo: Agent) -> None:
    wait_running(demo)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup installs it (Debian package prometheus)"
    texts = {}
    for accept in ("application/openmetrics-text; version=1.0.0", "text/plain; version=0.0.4"):
        conn = UnixHTTPConnection(demo.state_dir / "status.sock", 10)
        conn.request("GET", "/metrics", headers={"Accept": accept})
        response = conn.getresponse()
        assert response.status == 200
        texts[accept.split(";")[0]] = (response.getheader("Content-Type"), response.read().decode())
        conn.close()
    om_type, om = texts["application/openmetrics-text"]
    assert om_type == "application/openmetrics-text; version=1.0.0; charset=utf-8" and om.endswith("# EOF\n")
    assert 'haoscar_service_state{service="tmp-writable",haoscar_service_state="running"} 1' in om
    text_type, text = texts["text/plain"]
    assert text_type.startswith("text/plain; version=0.0.4")
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and (done.stdout + done.stderr).strip() == "", done
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    assert len(list(text_string_to_metric_families(om))) > 30
