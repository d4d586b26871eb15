"""net-snmp's snmpwalk over the cluster past two heads: the standalone agent (started in
this process, on loopback) serves a state whose membership tables the cluster watch
wrote from a view, and snmpwalk with HAOSCAR-MIB loaded shows every new object by name,
with the values the view holds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fcaps.configuration.apply import apply_to_state
from fcaps.configuration.mibmap import CONFIG_MAP
from fcaps.fault.alarms import Alarms
from fcaps.fault.cluster.model import (
    ClusterView,
    KnetLink,
    Member,
    Membership,
    Placement,
    PlacedNode,
    Quorum,
    Resource,
)
from fcaps.fault.cluster.watch import ClusterWatch
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.values import Endpoint
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import SecurityCounters, State
from haoscar_snmp.snmp.agent import Agent
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.view import MibView

from .harness import MIB_DIRS, free_udp_port

VIEW = ClusterView(
    Membership(1, Quorum(True, 3, 2, "1.24", 1650), (
        Member(1, "node1", 1, True),
        Member(2, "node2", 1, True, (KnetLink(0, True, 412), KnetLink(1, False, None))),
        Member(3, "node3", 1, False, (KnetLink(0, False, None), KnetLink(1, False, None))))),
    Placement("node2", (
        PlacedNode("node1", 1, True, False, False, False, False),
        PlacedNode("node2", 2, True, False, False, False, True),
        PlacedNode("node3", 3, False, False, True, False, False)), (
        Resource("vip", "ocf:heartbeat:IPaddr2", "Started", "node1", False, 0, "ok", "192.0.2.10"),
        Resource("web", "ocf:pacemaker:Dummy", "Stopped", "", True, 1000000, "error"))))


class NoAddresses:
    async def addresses(self) -> dict[str, str]:
        return {}


async def walk(tmp_path: Path) -> str:
    port = free_udp_port()
    base = load_config(None, state_dir=tmp_path)
    cfg = base.model_copy(update={"snmp": base.snmp.model_copy(update={
        "listen": (Endpoint.model_construct(host="127.0.0.1", port=port),), "targets": ()})})
    state, bus, clock = State(), EventBus(), SystemClock()
    apply_to_state(cfg, state)
    watch = ClusterWatch(state, bus, clock, Alarms(state, bus, clock), NoAddresses(), "node1")
    watch.update(VIEW)
    await watch.settled()
    view = MibView(MibModel.load())
    unused: Any = None
    agent = Agent(cfg, view, unused, unused, SecurityCounters())
    bind_all(view, state, lambda: cfg, CONFIG_MAP, agent.uptime_ticks, lambda: 0)
    agent.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            "snmpwalk", "-v2c", "-c", "public", "-M", MIB_DIRS, "-m", "HAOSCAR-MIB", "-OQs", "-t", "2",
            f"127.0.0.1:{port}", "HAOSCAR-MIB::haoscarMembership",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err
        return out.decode()
    finally:
        await agent.stop()


def test_snmpwalk_shows_every_membership_object(tmp_path: Path) -> None:
    text = asyncio.run(walk(tmp_path))
    values = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    mib = MibModel.load()
    root = mib["haoscarMembershipKnown"].oid[:-1]
    names = {o.name for o in mib.objects.values() if o.oid[: len(root)] == root
             and o.node in ("scalar", "column") and o.access != "not-accessible"}
    shown = {key.split(".", 1)[0] for key in values}
    assert shown == names, sorted(names ^ shown)
    assert values["haoscarMembershipKnown.0"] == "true" and values["haoscarQuorate.0"] == "true"
    assert values["haoscarQuorumRingId.0"] == "1.24" and values["haoscarPacemakerDc.0"] == "node2"
    assert values["haoscarClusterNodeMember.3"] == "false" and values["haoscarClusterNodeUnclean.3"] == "true"
    assert values["haoscarClusterLinkLatency.2.0"] == "412 microseconds" and values["haoscarClusterLinkConnected.2.1"] == "false"
    assert values["haoscarResourceAddress.1"] == "192.0.2.10"
    assert values["haoscarResourceIsFailed.2"] == "true" and values["haoscarResourceFailCount.2"] == "1000000"
    assert len(values) == 11 + 3 * 9 + 4 * 2 + 2 * 8
