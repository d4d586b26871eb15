"""A cluster past two heads in the operator's views, through the real parts: the head
program (cluster watch, status socket, web panel) over scenes the test picks;
`haoscar-snmp status` and its exit code, the metrics page through promtool, and the web
panel's membership section in the headless browser, updated live as the view changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.views.console import UnixHTTPConnection

from .browser import chromium, free_tcp_port, log_in
from .clusterhead import ClusterHead
from .harness import REPO

USER, PASSWORD = "operator", "operator-password-1"
SCREENSHOTS = os.environ.get("WEB_SCREENSHOTS")   # a directory: the docs' screenshots are taken there


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHead]:
    workdir = tmp_path_factory.mktemp("clusterviews")
    (workdir / "secrets").mkdir(mode=0o700)
    users = workdir / "secrets" / "web.users"
    done = subprocess.run([sys.executable, "-m", "haoscar_snmp", "web-user", str(users), USER, "--role", "read",
                           "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True,
                          timeout=30, cwd=REPO)
    assert done.returncode == 0, done.stderr
    h = ClusterHead(workdir, free_tcp_port(), users)
    h.start()
    try:
        yield h
    finally:
        h.stop()
    assert BUG_MARKER not in h.log_text(), h.log_text()


def status(head: ClusterHead, *args: str) -> subprocess.CompletedProcess[str]:
    return head.cli("status", "--state-dir", str(head.state_dir), "--no-color", *args)


@pytest.mark.parametrize("scene, code, says", [
    ("healthy", 0, "quorum quorate (3 of 3 expected votes)"),
    ("node3-left", 1, "degraded: 1 node not a member: node3"),
    ("quorum-lost", 2, "failed: quorum lost: 1 of 3 expected votes"),
    ("unknown", 1, "degraded: Corosync cannot be read: membership and quorum unknown"),
    ("web-failed", 1, "degraded: 1 resource failed: web"),
])
def test_status_shows_the_membership_and_exits_with_its_problems(head: ClusterHead, scene: str, code: int,
                                                                  says: str) -> None:
    head.scene(scene)
    done = status(head)
    assert done.returncode == code, done.stdout + done.stderr
    assert says in done.stdout, done.stdout
    assert "membership  corosync" in done.stdout
    if scene == "healthy":
        assert "cluster nodes (3)" in done.stdout and "node1            online       DC  (this node)" in done.stdout
        [vip] = [line.split() for line in done.stdout.splitlines() if line.startswith("  vip ")]
        assert vip == ["vip", "Started", "on", "node1", "192.0.2.10"]
    snap = json.loads(status(head, "--json").stdout)
    assert snap["membership"]["quorum"] == {"healthy": "quorate", "node3-left": "quorate",
                                            "quorum-lost": "lost", "unknown": "unknown",
                                            "web-failed": "quorate"}[scene]


def test_the_metrics_page_with_a_membership_passes_promtool(head: ClusterHead) -> None:
    head.scene("node3-left")
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup installs it (Debian package prometheus)"
    conn = UnixHTTPConnection(head.state_dir / "status.sock", 10)
    conn.request("GET", "/metrics", headers={"Accept": "text/plain; version=0.0.4"})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    assert response.status == 200
    for line in ('haoscar_cluster_node_member{node="node3"} 0', 'haoscar_cluster_node_member{node="node2"} 1',
                 "haoscar_quorate 1", "haoscar_quorum_total_votes 2",
                 'haoscar_cluster_link_connected{node="node2",link="0"} 1',
                 'haoscar_resource_active{resource="vip"} 1'):
        assert line in text, line
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and (done.stdout + done.stderr).strip() == "", done


def test_the_web_panel_shows_the_membership_live(head: ClusterHead, tmp_path: Path) -> None:
    head.scene("healthy")
    with chromium(tmp_path) as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        outside: list[str] = []
        base = f"http://127.0.0.1:{head.web_port}"
        page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
        log_in(page, base, USER, PASSWORD)
        page.wait_for_selector("#membership:not([hidden])")
        page.wait_for_selector("#membership-quorum td.state-quorate")
        assert page.inner_text("#membership-quorum td.state-quorate") == "quorate"
        nodes = page.inner_text("#membership-nodes")
        assert "node1 (this one)" in nodes and "DC" in nodes and "0: up 0.27 ms, 1: up 0.32 ms" in nodes
        assert "192.0.2.10" in page.inner_text("#membership-resources")
        # Live: the page is never reloaded.
        head.scene("node3-left")
        page.wait_for_selector("#membership-nodes td.state-left", timeout=5000)
        head.scene("web-failed")
        page.wait_for_selector("#membership-resources td.state-failed", timeout=5000)
        head.scene("quorum-lost")
        page.wait_for_selector("#membership-quorum td.state-lost", timeout=5000)
        assert "quorum lost" in page.inner_text("#health")
        head.scene("node3-left")
        page.wait_for_selector("#membership-quorum td.state-quorate", timeout=5000)
        if SCREENSHOTS:
            page.locator("#membership").screenshot(path=f"{SCREENSHOTS}/web-membership.png")
        assert outside == []
        context.close()
