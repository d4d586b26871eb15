"""A cluster past two heads in the operator's views: the cluster watch writes the
membership tables from views of a three-node cluster (fakes for the clock and the
addresses), and the snapshot, the health and its exit code, the console and the metrics
page (a strict OpenMetrics parser, and promtool) show it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from clusterviews import membership, placement, resource, view, vip
from fakes import FakeClock
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from views_world import NOW, config, healthy

from fcaps.fault.alarms import Alarms
from fcaps.fault.cluster.model import ClusterView
from fcaps.fault.cluster.watch import ClusterWatch
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import State
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.views.console import render, status_exit
from haoscar_snmp.views.metrics import MetricsPage
from haoscar_snmp.views.snapshot import snapshot


class NoAddresses:
    async def addresses(self) -> dict[str, str]:
        return {}


class World:
    def __init__(self, tmp_path: Path, watched: bool = True) -> None:
        self.cfg = config(tmp_path)
        self.state = healthy(self.cfg)
        self.state.membership.watched = watched
        self.clock = FakeClock(start=NOW)
        bus = EventBus()
        self.watch = ClusterWatch(self.state, bus, self.clock, Alarms(self.state, bus, self.clock),
                                  NoAddresses(), "node1")

    def give(self, v: ClusterView) -> None:
        async def run() -> None:
            self.watch.update(v)
            await self.watch.settled()
        asyncio.run(run())

    def snap(self) -> dict:
        return snapshot(self.state, self.cfg, self.clock)


@pytest.fixture(scope="module")
def mib() -> MibModel:
    return MibModel.load()


def test_no_membership_part_for_a_pair_of_heads(tmp_path: Path, mib: MibModel) -> None:
    w = World(tmp_path, watched=False)
    snap = w.snap()
    assert "membership" not in snap and status_exit(snap) == 0
    assert "cluster nodes" not in render(snap)
    assert "haoscar_quorate" not in MetricsPage(w.state, lambda: w.cfg, w.clock, mib).render(True)


def test_the_snapshot_and_console_show_nodes_links_quorum_and_resources(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.give(view(membership(online=("node1", "node2")), placement(vip(), resource("web", "node2"),
                                                                 online=("node1", "node2"))))
    w.clock.advance(3)
    m = w.snap()["membership"]
    assert (m["corosync"], m["pacemaker"], m["quorum"], m["total_votes"], m["expected_votes"], m["dc"]) == \
        ("known", "known", "quorate", 2, 3, "node1")
    assert m["last_changed"]["ago_s"] == 3 and m["changes"] == 1
    nodes = {n["name"]: n for n in m["nodes"]}
    assert nodes["node1"]["this_node"] and nodes["node1"]["dc"] and nodes["node1"]["state"] == "online"
    assert nodes["node3"]["state"] == "left" and not nodes["node3"]["member"]
    assert nodes["node2"]["links"] == [{"link": 0, "connected": True, "latency_ms": 0.3},
                                       {"link": 1, "connected": True, "latency_ms": None}]
    assert [(r["id"], r["role"], r["node"], r["active"], r["address"]) for r in m["resources"]] == [
        ("vip", "Started", "node1", True, "192.0.2.10"), ("web", "Started", "node2", True, "")]
    text = render(w.snap())
    assert "membership  corosync known  quorum quorate (2 of 3 expected votes)" in text
    assert "node1            online       DC  (this node)" in text
    assert "node3            left         links 0:down 0.30 ms 1:down" in text
    assert "vip                      Started    on node1" in text and "192.0.2.10" in text
    # A node that left is a reason, the partition still quorate: degraded.
    assert status_exit(w.snap()) == 1
    assert "1 node not a member: node3" in [r["text"] for r in w.snap()["health"]["reasons"]]


@pytest.mark.parametrize("v, code, reason", [
    (view(membership(online=("node1",), quorate=False), placement()), 2, "quorum lost: 1 of 3 expected votes"),
    (ClusterView(None, placement()), 1, "Corosync cannot be read: membership and quorum unknown"),
    (ClusterView(membership(), None), 1, "Pacemaker cannot be read: placement unknown"),
    (view(membership(), placement(vip(), resource("web", "", failed=True, fail_count=3))), 1,
     "1 resource failed: web"),
    (view(membership(), placement()), 0, None),
])
def test_the_exit_code_counts_quorum_lost_unknown_and_failed_resources(tmp_path: Path, v: ClusterView,
                                                                       code: int, reason: str | None) -> None:
    w = World(tmp_path)
    w.give(view(membership(), placement()))
    w.give(v)
    snap = w.snap()
    assert status_exit(snap) == code, snap["health"]
    if reason:
        assert reason in [r["text"] for r in snap["health"]["reasons"]]


def test_unknown_is_shown_as_unknown_not_as_lost(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.give(view(membership(), placement()))
    w.give(ClusterView(None, None))
    m = w.snap()["membership"]
    assert (m["corosync"], m["pacemaker"], m["quorum"], m["nodes"], m["resources"]) == \
        ("unknown", "unknown", "unknown", [], [])
    assert "quorum unknown" in render(w.snap())


def metrics(w: World, mib: MibModel, om: bool = True) -> str:
    return MetricsPage(w.state, lambda: w.cfg, w.clock, mib).render(om)


def value(text: str, family: str, sample: str, **labels: str) -> float:
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    found = [s.value for s in fams[family].samples
             if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (family, labels, found)
    return found[0]


def test_metrics_export_nodes_links_resources_and_quorum(tmp_path: Path, mib: MibModel) -> None:
    w = World(tmp_path)
    w.give(view(membership(online=("node1", "node2")),
                placement(vip(), resource("web", "", failed=True, fail_count=2), online=("node1", "node2"))))
    text = metrics(w, mib)
    assert value(text, "haoscar_quorate", "haoscar_quorate") == 1
    assert value(text, "haoscar_quorum_total_votes", "haoscar_quorum_total_votes") == 2
    assert value(text, "haoscar_quorum_token_seconds", "haoscar_quorum_token_seconds") == 3.0
    assert value(text, "haoscar_cluster_node_member", "haoscar_cluster_node_member", node="node3") == 0
    assert value(text, "haoscar_cluster_node_dc", "haoscar_cluster_node_dc", node="node1") == 1
    assert value(text, "haoscar_cluster_node", "haoscar_cluster_node_info", node="node1", node_id="1",
                 this_node="true") == 1
    assert value(text, "haoscar_cluster_link_connected", "haoscar_cluster_link_connected",
                 node="node2", link="0") == 1
    assert value(text, "haoscar_cluster_link_latency_seconds", "haoscar_cluster_link_latency_seconds",
                 node="node2", link="0") == pytest.approx(0.0003)
    assert 'haoscar_cluster_link_latency_seconds{node="node2",link="1"}' not in text    # none reported
    assert value(text, "haoscar_resource_active", "haoscar_resource_active", resource="vip") == 1
    assert value(text, "haoscar_resource_failed", "haoscar_resource_failed", resource="web") == 1
    assert value(text, "haoscar_resource_failures", "haoscar_resource_failures", resource="web") == 2
    assert value(text, "haoscar_resource", "haoscar_resource_info", resource="vip", role="Started",
                 node="node1", address="192.0.2.10", agent="ocf:heartbeat:IPaddr2") == 1
    assert value(text, "haoscar_membership_changes", "haoscar_membership_changes_total") == 1
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["haoscar_quorate"].documentation.endswith("(MIB haoscarQuorate)")
    # Corosync unread: its figures are absent, not zeros.
    w.give(ClusterView(None, placement()))
    text = metrics(w, mib)
    assert value(text, "haoscar_corosync_known", "haoscar_corosync_known") == 0
    assert "\nhaoscar_quorate " not in text and "haoscar_cluster_node_member{" not in text


def test_the_prometheus_text_with_a_membership_passes_promtool(tmp_path: Path, mib: MibModel) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup installs it (Debian package prometheus)"
    w = World(tmp_path)
    w.give(view(membership(online=("node1", "node2")), placement()))
    text = metrics(w, mib, om=False)
    assert "haoscar_cluster_node_info{" in text
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "" and done.stderr.strip() == "", done


def test_the_live_marker_moves_with_the_membership_tables(tmp_path: Path) -> None:
    from haoscar_snmp.views.slices import drain
    from haoscar_snmp.views.source import mark

    w = World(tmp_path)
    w.give(view(membership(), placement()))
    before = drain(mark(w.state, w.cfg))
    w.give(view(membership(), placement(node2={"standby": True})))      # no event: only the table
    after = drain(mark(w.state, w.cfg))
    assert before != after
    w.give(view(membership(latency=900), placement(node2={"standby": True})))   # a latency alone
    assert drain(mark(w.state, w.cfg)) != after
