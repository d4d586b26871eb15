"""The outage ledger over a cluster past two heads: the cluster watch, on a fake clock,
writes the membership tables and publishes its events from views of a three-node
cluster; the ledger (real SQLite file, fake clock) turns them into outages of nodes, the
quorum, resources, the cluster's service and the agent's own blindness."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from clusterviews import membership, placement, resource, view, vip
from fakes import FakeClock

from fcaps.accounting.ledger import CRASH_NOTE, Ledger
from fcaps.accounting.ledgerdb import LedgerFile
from fcaps.accounting.report import figures, outages
from fcaps.fault.alarms import Alarms
from fcaps.fault.cluster.model import ClusterView
from fcaps.fault.cluster.watch import ClusterWatch
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import AcctKind, State

K = AcctKind
HOUR = 3600.0


class NoAddresses:
    async def addresses(self) -> dict[str, str]:
        return {}


class Rig:
    """A watch and a ledger on one state, bus and fake clock, on the loop of the test."""

    def __init__(self, path: Path, cfg: Config, clock: FakeClock, service: str = "vip") -> None:
        self.path, self.cfg, self.clock, self.service = path, cfg, clock, service
        self._build()

    def _build(self) -> None:
        """What a start of the agent builds: an empty state, the watch, the ledger."""
        self.state, self.bus = State(), EventBus()
        self.state.cluster.name, self.state.cluster.local_head = "demo", "node1"
        alarms = Alarms(self.state, self.bus, self.clock)
        self.watch = ClusterWatch(self.state, self.bus, self.clock, alarms, NoAddresses(), "node1")
        self.file = LedgerFile(self.path)
        self.ledger = Ledger(self.state, lambda: self.cfg, self.clock, self.file, "boot-1",
                             Alarms(self.state, EventBus(), self.clock), membership=True,
                             service_resource=lambda: self.service)
        self.bus.subscribe("accounting", self.ledger.on_event)
        self.ledger.start()

    async def give(self, v: ClusterView) -> None:
        self.watch.update(v)
        await self.watch.settled()
        await asyncio.sleep(0)          # the look the events asked for, in the next loop turn

    async def run_for(self, seconds: float) -> None:
        for _ in range(round(seconds)):
            self.clock.advance(1.0)
            await self.ledger.run_cycle()

    def crash_and_restart(self) -> None:
        """A kill -9: no stop; a new agent on the same ledger file."""
        self.file.close()
        self._build()

    def spans(self, kind: AcctKind, name: str) -> list[tuple[float, float | None, str]]:
        subject = self.ledger.subjects[(kind, name)]
        return [(s[0], s[1], s[2]) for s in subject.spans]

    def row(self, kind: AcctKind, name: str, window: int = 1):
        return self.state.accounting[(self.ledger.subjects[(kind, name)].id, window)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def healthy() -> ClusterView:
    return view(membership(), placement())


def test_a_node_that_leaves_is_down_until_it_joins(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    async def run() -> None:
        rig = Rig(tmp_path / "a.sqlite", cfg, clock)
        await rig.give(healthy())
        await rig.run_for(60)
        await rig.give(view(membership(online=("node1", "node2")), placement(online=("node1", "node2"))))
        left = rig.ledger.timeline.now()
        await rig.run_for(30)
        row = rig.row(K.CLUSTER_NODE, "node3")
        assert row.in_outage and row.last_outage_cause == "node node3 left the membership"
        await rig.give(healthy())
        [(start, end, _)] = rig.spans(K.CLUSTER_NODE, "node3")
        assert start == pytest.approx(left) and end == pytest.approx(left + 30)
        assert rig.spans(K.CLUSTER_NODE, "node1") == [] and rig.spans(K.CLUSTER_NODE, "node2") == []
        # Two of three are a quorum: no quorum outage; the service stayed on node1.
        assert rig.spans(K.QUORUM, "demo") == [] and rig.spans(K.CLUSTER, "demo") == []
        await rig.run_for(10)
        row = rig.row(K.CLUSTER_NODE, "node3")
        assert (row.outages, row.downtime_s, row.mttr_s, row.in_outage) == (1, 30, 30, False)
        assert row.availability_ppm < 1_000_000
        assert rig.row(K.CLUSTER_NODE, "node1").availability_ppm == 1_000_000
    asyncio.run(run())


def test_quorum_lost_and_regained_is_an_outage_of_the_quorum(tmp_path: Path, cfg: Config,
                                                             clock: FakeClock) -> None:
    async def run() -> None:
        rig = Rig(tmp_path / "a.sqlite", cfg, clock)
        await rig.give(healthy())
        await rig.run_for(5)
        await rig.give(view(membership(online=("node1",), quorate=False), placement()))
        await rig.run_for(20)
        assert rig.row(K.QUORUM, "demo").last_outage_cause.startswith("quorum lost: 1 of 3 expected votes")
        await rig.give(healthy())
        [(start, end, _)] = rig.spans(K.QUORUM, "demo")
        assert end - start == pytest.approx(20)
        assert len(rig.spans(K.CLUSTER_NODE, "node2")) == len(rig.spans(K.CLUSTER_NODE, "node3")) == 1
    asyncio.run(run())


def test_membership_unknown_is_blindness_never_a_node_or_quorum_outage(tmp_path: Path, cfg: Config,
                                                                      clock: FakeClock) -> None:
    async def run() -> None:
        rig = Rig(tmp_path / "a.sqlite", cfg, clock)
        await rig.give(view(membership(), placement(vip(), resource("web", ""))))
        await rig.run_for(5)
        await rig.give(ClusterView(None, None))         # Corosync and Pacemaker both unreadable
        await rig.run_for(40)
        # What was out stays out, neither closed nor counted anew: the rows are gone, not the subjects.
        assert rig.row(K.RESOURCE, "web").in_outage and rig.spans(K.RESOURCE, "web")[0][1] is None
        for side in ("corosync", "pacemaker"):
            row = rig.row(K.MEMBERSHIP_VIEW, side)
            assert row.in_outage and row.last_outage_cause == f"{side} cannot be read: its view is unknown"
        # The rows of nodes and resources stay as the tables left them, judged not known.
        await rig.give(view(membership(online=("node1", "node2")), placement()))
        for side in ("corosync", "pacemaker"):
            [(start, end, _)] = rig.spans(K.MEMBERSHIP_VIEW, side)
            assert end - start == pytest.approx(40)
        assert rig.spans(K.QUORUM, "demo") == [] and rig.spans(K.RESOURCE, "vip") == []
        [(start, end, _)] = rig.spans(K.RESOURCE, "web")       # closed only when seen running
        assert end is not None and end - start == pytest.approx(45)
        assert rig.spans(K.CLUSTER, "demo") == []
        # node3 is found gone when Corosync is read again: from then on, not before.
        [(start, end, _)] = rig.spans(K.CLUSTER_NODE, "node3")
        assert end is None and start == pytest.approx(rig.ledger.timeline.now())
    asyncio.run(run())


def test_a_side_never_read_in_this_run_is_not_blindness(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    async def run() -> None:
        rig = Rig(tmp_path / "a.sqlite", cfg, clock)
        await rig.give(ClusterView(membership(), None))     # no Pacemaker on this head
        await rig.run_for(30)
        assert (K.MEMBERSHIP_VIEW, "pacemaker") not in rig.ledger.subjects
        assert rig.spans(K.MEMBERSHIP_VIEW, "corosync") == []
        assert (K.CLUSTER, "demo") in rig.ledger.subjects and rig.spans(K.CLUSTER, "demo") == []
    asyncio.run(run())


def test_a_resource_is_down_while_stopped_or_failed_and_the_service_while_no_node_holds_it(
        tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    async def run() -> None:
        rig = Rig(tmp_path / "a.sqlite", cfg, clock)
        await rig.give(healthy())
        await rig.run_for(5)
        # vip moves: stopping on node1 still serves, stopped serves nothing, started on node2 again.
        await rig.give(view(membership(), placement(vip(role="Stopping"), resource("web", "node2"))))
        await rig.run_for(2)
        assert rig.spans(K.RESOURCE, "vip") == [] and rig.spans(K.CLUSTER, "demo") == []
        await rig.give(view(membership(), placement(vip(""), resource("web", "node2"))))
        await rig.run_for(3)
        row = rig.row(K.CLUSTER, "demo")
        assert row.in_outage and row.last_outage_cause == "no node holds vip: Stopped"
        await rig.give(view(membership(), placement(vip("node2"), resource("web", "node2"))))
        [(s1, e1, cause)] = rig.spans(K.RESOURCE, "vip")
        assert e1 - s1 == pytest.approx(3) and cause == "resource vip: Started on node1 -> Stopped"
        [(s2, e2, _)] = rig.spans(K.CLUSTER, "demo")
        assert (s2, e2) == (s1, e1)
        # web fails in place: marked failed, still on node2.
        await rig.give(view(membership(), placement(vip("node2"), resource("web", "node2", failed=True,
                                                                                fail_count=1))))
        await rig.run_for(4)
        assert rig.row(K.RESOURCE, "web").last_outage_cause.startswith("resource web failed on node2")
        assert len(rig.spans(K.CLUSTER, "demo")) == 1          # the service is vip's, not web's
        await rig.give(view(membership(), placement(vip("node2"), resource("web", "node2", fail_count=1))))
        [(s3, e3, _)] = rig.spans(K.RESOURCE, "web")
        assert e3 - s3 == pytest.approx(4)
        # A headline from the cluster's service (the longest window).
        await rig.run_for(6)
        assert rig.state.acct_headline.window == "30d" and rig.state.acct_headline.availability_ppm < 1_000_000
    asyncio.run(run())


def test_clone_instances_count_for_the_service(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    async def run() -> None:
        rig = Rig(tmp_path / "a.sqlite", cfg, clock, service="ip")
        clone = (resource("ip:node1", "node1"), resource("ip:node2", "node2"))
        await rig.give(view(membership(), placement(*clone)))
        await rig.run_for(3)
        await rig.give(view(membership(), placement(clone[1])))      # one instance stopped: still held
        await rig.run_for(3)
        assert rig.spans(K.CLUSTER, "demo") == []
        await rig.give(view(membership(), placement(resource("ip", ""))))     # none runs
        await rig.run_for(3)
        assert rig.row(K.CLUSTER, "demo").in_outage
    asyncio.run(run())


def test_without_a_named_resource_the_cluster_is_no_subject(tmp_path: Path, cfg: Config,
                                                            clock: FakeClock) -> None:
    async def run() -> None:
        rig = Rig(tmp_path / "a.sqlite", cfg, clock, service="")
        await rig.give(healthy())
        await rig.run_for(10)
        assert (K.CLUSTER, "demo") not in rig.ledger.subjects
        assert {k for k, _ in rig.ledger.subjects} == {K.HEAD, K.CLUSTER_NODE, K.QUORUM, K.RESOURCE,
                                                         K.MEMBERSHIP_VIEW}
    asyncio.run(run())


def test_an_outage_open_at_a_crash_is_closed_at_the_mark_and_reported(tmp_path: Path, cfg: Config,
                                                                      clock: FakeClock) -> None:
    async def run() -> None:
        rig = Rig(tmp_path / "a.sqlite", cfg, clock)
        await rig.give(healthy())
        await rig.run_for(5)
        await rig.give(view(membership(online=("node1", "node2")), placement(online=("node1", "node2"))))
        await rig.run_for(25)               # marks every 10 s: the last at 30 s
        clock.advance(7)
        rig.crash_and_restart()
        found = [o for o in outages(rig.file, None, rig.ledger.timeline.now()) if o.subject == "node3"]
        [outage] = found
        assert outage.subject_type == "cluster_node" and outage.note == CRASH_NOTE and not outage.open
        assert outage.duration_s == pytest.approx(20, abs=0.01)
        # The node is still out: a new outage from this run's first view, closed when it joins.
        await rig.give(view(membership(online=("node1", "node2")), placement(online=("node1", "node2"))))
        await rig.run_for(5)
        await rig.give(healthy())
        rows = {(r.subject_type, r.subject, r.window): r
                for r in figures(rig.file, ["24h"], None, rig.ledger.timeline.now())}
        assert rows[("cluster_node", "node3", "24h")].outages == 2
        assert rows[("quorum", "demo", "24h")].outages == 0
        assert rows[("membership_view", "corosync", "24h")].availability_ppm == 1_000_000
    asyncio.run(run())
