"""The outage ledger of a cluster past two heads through the real parts: the cluster
watch and the ledger (SQLite) in a head program, net-snmp's snmpwalk of haoscarAcctTable
by name, `haoscar-snmp report` in CSV and JSON; a kill -9 while the cluster's service
is out, and a new start that closes that outage at the last-alive mark."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .browser import free_tcp_port
from .clusterhead import ClusterHead


@pytest.fixture
def head(tmp_path: Path) -> Iterator[ClusterHead]:
    h = ClusterHead(tmp_path, free_tcp_port())
    h.start()
    try:
        yield h
    finally:
        h.stop()
    assert BUG_MARKER not in h.log_text(), h.log_text()


def report(head: ClusterHead, *args: str) -> str:
    done = head.cli("report", "--state-dir", str(head.state_dir), "--window", "1h", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_nodes_quorum_resources_and_blindness_are_accounted_and_survive_kill_9(head: ClusterHead) -> None:
    head.scene("healthy")
    head.scene("node3-left")
    time.sleep(1.2)
    head.scene("quorum-lost")
    time.sleep(1.2)
    head.scene("healthy")
    head.scene("unknown")
    time.sleep(1.2)
    head.scene("healthy")
    head.scene("web-failed")
    time.sleep(1.2)
    head.scene("healthy")

    outages = json.loads(report(head, "--outages", "--format", "json"))["rows"]
    got = sorted((o["subject_type"], o["subject"]) for o in outages)
    assert got == [("cluster_node", "node2"), ("cluster_node", "node3"), ("membership_view", "corosync"),
                   ("membership_view", "pacemaker"), ("quorum", "triad"), ("resource", "web")], outages
    by = {(o["subject_type"], o["subject"]): o for o in outages}
    assert 2.3 <= by[("cluster_node", "node3")]["duration_s"] <= 5          # left, then quorum lost too
    assert 1.1 <= by[("quorum", "triad")]["duration_s"] <= 3
    assert by[("quorum", "triad")]["cause"].startswith("quorum lost: 1 of 3 expected votes")
    assert by[("membership_view", "corosync")]["cause"] == "corosync cannot be read: its view is unknown"
    assert 1.1 <= by[("resource", "web")]["duration_s"] <= 3
    assert not any(o["open"] for o in outages)

    rows = list(csv.DictReader(io.StringIO(report(head, "--format", "csv"))))
    node3 = {r["window"]: r for r in rows if r["subject"] == "node3"}
    assert node3["1h"]["subject_type"] == "cluster_node" and node3["1h"]["outages"] == "1"
    assert int(node3["1h"]["availability_ppm"]) < 1_000_000
    assert {r["subject"] for r in rows if r["subject_type"] == "cluster"} == {"triad"}

    # haoscarAcctTable by name, after the next figures (every 5 s at most).
    deadline = time.monotonic() + 10
    walked = ""
    while time.monotonic() < deadline:
        walked = head.snmpwalk("HAOSCAR-MIB::haoscarAcctTable")
        if "= membershipView" in walked:
            break
        time.sleep(0.5)
    kinds = {line.split(" = ")[1] for line in walked.splitlines() if line.startswith("haoscarAcctSubjectType")}
    assert {"clusterNode", "quorum", "resource", "membershipView", "cluster"} <= kinds, walked
    subjects = {line.split(" = ")[1] for line in walked.splitlines() if line.startswith("haoscarAcctSubject.")}
    assert {"node1", "node2", "node3", "triad", "vip", "web", "corosync", "pacemaker"} <= subjects, walked

    # The cluster's service is out when the head is killed: the next start closes that
    # outage at the last-alive mark, and counts the gap as this head's own outage.
    head.scene("vip-stopped")
    time.sleep(2.5)                 # last-alive marks, every second here
    head.kill9()
    open_now = [o for o in json.loads(report(head, "--outages", "--format", "json"))["rows"] if o["open"]]
    assert sorted((o["subject_type"], o["subject"]) for o in open_now) == [("cluster", "triad"), ("resource", "vip")]
    time.sleep(1)
    head.start()
    head.scene("healthy")
    outages = json.loads(report(head, "--outages", "--format", "json"))["rows"]
    cluster = [o for o in outages if o["subject_type"] == "cluster"]
    assert len(cluster) == 1 and not cluster[0]["open"] and "killed or crashed" in cluster[0]["note"]
    assert 1 <= cluster[0]["duration_s"] <= 5      # up to its last mark: one a second
    assert cluster[0]["cause"] == "no node holds vip: Stopped"
    [gap] = [o for o in outages if o["subject"] == "node1" and o["subject_type"] == "head"]
    assert "killed or crashed" in gap["cause"] and 1 <= gap["duration_s"] <= 30
