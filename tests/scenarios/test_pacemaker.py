"""Scenario: the Pacemaker side against a real three-node Corosync + Pacemaker lab (root).

One lab, one test (a lab takes about 10 s to start): an IPaddr2 resource is placed,
Pacemaker's alert agent (ours, configured in the CIB) wakes the reader, the parsed
placement follows a move of the address to another node, and an address left behind
on the old node (put back by hand, as IPaddr2 leaves it on a downed link) raises the
stale-address alarm, cleared when it is removed. The reader runs real crm_mon and
cibadmin inside node1's namespaces; the watch runs in this process with a slow timer
of 60 s, so every refresh seen within the test came from an alert or was asked for.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from fcaps.fault import cluster as cluster_pkg
from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.fault.cluster.alerts import AlertListener
from fcaps.fault.cluster.model import KnetLink, Member, Membership, Quorum
from fcaps.fault.cluster.pacemaker import ExecCommands, PacemakerSource
from fcaps.fault.cluster.watch import ClusterWatch
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import Event, EventBus, EventType
from haoscar_snmp.core.state import State

from .corolab import CoroLab, MembershipWatch

AGENT = Path(cluster_pkg.__file__).parent / "alert_agent.py"
VIP = "10.71.1.100"


class LabCommands:
    """crm_mon and cibadmin run inside one lab node's namespaces."""

    def __init__(self, lab: CoroLab, node: str) -> None:
        self.lab, self.node = lab, node
        self.real = ExecCommands()

    async def output(self, argv: Sequence[str], timeout: float) -> str | None:
        return await self.real.output([*self.lab.enter(self.node), *argv], timeout)


class LabAddresses:
    """The addresses of one lab node's interfaces (`ip -j addr` in its namespace)."""

    def __init__(self, lab: CoroLab, node: str) -> None:
        self.lab, self.node = lab, node

    async def addresses(self) -> dict[str, str]:
        out = await ExecCommands().output([*self.lab.enter(self.node), "ip", "-j", "addr", "show"], 10)
        if out is None:
            raise OSError("ip addr failed")
        return {a["local"]: link["ifname"] for link in json.loads(out) for a in link.get("addr_info", [])}


async def until(condition, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def where(watch: ClusterWatch, rid: str) -> str | None:
    """The node a resource is started on (not on its way there), or None."""
    p = watch.view.placement
    row = next((r for r in p.resources if r.resource_id == rid), None) if p else None
    return row.node if row is not None and row.role == "Started" else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CoroLab, Path]]:
    """One lab for the file, with our alert agent in its CIB; (the lab, the agent's socket)."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    # The agent runs as hacluster: the socket's directory and its parents must let it through
    # (pytest's own temporary directories are root's only).
    public = Path(tempfile.mkdtemp(prefix="haoscar-pcmk-"))
    try:
        os.chmod(public, 0o755)
        sock = public / "alert.sock"
        with CoroLab(tmp_path_factory.mktemp("pcmklab")) as lab:
            lab.start()
            alert = (f'<alerts><alert id="haoscar" path="{AGENT}">'
                     f'<recipient id="haoscar-sock" value="{sock}"/></alert></alerts>')
            lab.run("node1", "cibadmin", "--create", "-o", "configuration", "--xml-text", alert, timeout=30)
            yield lab, sock
        assert lab.wait_gone(), "namespaces left behind"
    finally:
        shutil.rmtree(public, ignore_errors=True)


def test_the_placement_follows_pacemaker_and_a_left_address_is_stale(lab: tuple[CoroLab, Path]) -> None:
    asyncio.run(asyncio.wait_for(_scenario(*lab), 60))


async def _scenario(lab: CoroLab, sock: Path) -> None:
    state, bus, clock = State(), EventBus(), SystemClock()
    events: list[Event] = []
    bus.subscribe("test", events.append)
    alarms = Alarms(state, bus, clock)
    addresses = LabAddresses(lab, "node1")        # this head is node1
    watch = ClusterWatch(state, bus, clock, alarms, addresses, "node1", stale_hold=0.5)
    source = PacemakerSource(watch.set_placement, clock, LabCommands(lab, "node1"), interval=60, timeout=15)
    listener = AlertListener(sock, source.refresh)
    await listener.start()
    try:
        source.start()
        await until(lambda: watch.view.placement is not None, 15, "a first placement")
        lab.add_ip("vip", VIP)
        took = await until(lambda: where(watch, "vip"), 20, "vip started")
        first = where(watch, "vip")
        row = next(r for r in state.resources.values() if r.resource_id == "vip")
        assert (row.agent, row.address, row.role) == ("ocf:heartbeat:IPaddr2", VIP, "Started")
        assert listener.received > 0
        print(f"vip started on {first}, seen {took:.1f} s after it was added; "
              f"{listener.received} alerts, {source.reads} reads")

        for target in (["node1"] if first != "node1" else []) + ["node2"]:
            reads = source.reads
            t0 = time.monotonic()
            lab.run("node1", "crm_resource", "--resource", "vip", "--move", "--node", target, timeout=30)
            took = await until(lambda: where(watch, "vip") == target, 20, f"vip on {target}")
            moved = [e for e in events if e.type == EventType.RESOURCE_MOVED and e.subject == "vip"]
            assert moved and moved[-1].data["new"] == f"Started on {target}"
            assert source.reads > reads                 # alerts asked for them: the timer is 60 s
            print(f"vip moved to {target}: seen {took:.2f} s after crm_resource --move returned "
                  f"({time.monotonic() - t0:.2f} s with it), {source.reads - reads} reads")

        # node1 (this head) keeps the address, as IPaddr2 leaves it on a downed link: stale.
        first = "node1"
        lab.run(first, "ip", "addr", "add", f"{VIP}/24", "dev", "lana")
        source.refresh()
        await asyncio.sleep(0.6)                         # the hold
        source.refresh()
        await until(lambda: alarms.active(ProbableCause.STALE_ADDRESS, VIP), 10, "the stale alarm")
        assert [e.type for e in events].count(EventType.ADDRESS_STALE) == 1
        lab.run(first, "ip", "addr", "del", f"{VIP}/24", "dev", "lana")
        source.refresh()
        await until(lambda: not alarms.active(ProbableCause.STALE_ADDRESS, VIP), 10, "the clear")
        assert EventType.ADDRESS_STALE_CLEARED in [e.type for e in events]
    finally:
        listener.close()
        await source.stop()
        await watch.stop()


def membership_of(data: dict[str, Any]) -> Membership:
    """A Membership rebuilt from the JSON line of corosync_watch.py (dataclasses.asdict)."""
    return Membership(data["local_node_id"], Quorum(**data["quorum"]), tuple(
        Member(m["node_id"], m["name"], m["votes"], m["online"], tuple(KnetLink(**k) for k in m["links"]))
        for m in data["members"]))


def test_corosync_and_pacemaker_in_one_watch_follow_a_cut_node(lab: tuple[CoroLab, Path]) -> None:
    """As the daemon's assembly will: each membership from the Corosync source goes to the
    watch and asks Pacemaker for a refresh. node3 is cut off: the watch tells it left,
    and the address resource that ran there moves to the majority; healed, it joins."""
    asyncio.run(asyncio.wait_for(_membership_scenario(*lab), 90))


async def _membership_scenario(lab: CoroLab, sock: Path) -> None:
    state, bus, clock = State(), EventBus(), SystemClock()
    events: list[Event] = []
    bus.subscribe("test", events.append)
    watch = ClusterWatch(state, bus, clock, Alarms(state, bus, clock), LabAddresses(lab, "node1"), "node1")
    source = PacemakerSource(watch.set_placement, clock, LabCommands(lab, "node1"), interval=60, timeout=15)
    listener = AlertListener(sock, source.refresh)
    corosync = MembershipWatch(lab, "node1")
    await listener.start()
    seen = 0

    def forward() -> None:               # the assembly's wiring, done by hand
        nonlocal seen
        lines = corosync.memberships()
        for line in lines[seen:]:
            m = line["membership"]
            watch.set_membership(membership_of(m) if m is not None else None)
            source.refresh()
        seen = len(lines)

    async def until_(condition, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
        def check() -> bool:
            forward()
            return bool(condition())
        return await until(check, timeout, what)

    def member(node_id: int) -> bool | None:
        row = state.cluster_nodes.get((node_id,))
        return row.member if row is not None else None

    try:
        source.start()
        await until_(lambda: state.membership.known and member(3) and state.membership.placement_known,
                     30, "a first membership and placement")
        assert state.membership.quorate and state.membership.local_node_id == 1
        assert state.cluster_nodes[(1,)].is_local and len(state.cluster_links) == 4
        lab.add_ip("vip3", "10.71.1.103")
        lab.run("node1", "crm_resource", "--resource", "vip3", "--move", "--node", "node3", timeout=30)
        await until_(lambda: where(watch, "vip3") == "node3", 30, "vip3 started on node3")

        t0 = time.monotonic()
        lab.cut("node3")
        try:
            left = await until_(lambda: member(3) is False, 20, "node3 to leave the membership")
            assert any(e.type == EventType.CLUSTER_NODE_LEFT and e.subject == "node3" for e in events)
            assert state.membership.quorate and state.membership.total_votes == 2
            moved = await until_(lambda: where(watch, "vip3") in ("node1", "node2"), 30,
                                 "vip3 to move to the majority")
            print(f"cut node3: the watch saw it leave after {left:.2f} s and vip3 started on "
                  f"{where(watch, 'vip3')} after {left + moved:.2f} s")
            assert any(e.type == EventType.RESOURCE_MOVED and e.subject == "vip3"
                       and e.data["old"] == "Started on node3" for e in events)
        finally:
            lab.heal("node3")
        t1 = time.monotonic()
        await until_(lambda: member(3) is True, 30, "node3 to join again")
        assert any(e.type == EventType.CLUSTER_NODE_JOINED and e.subject == "node3"
                   for e in events)
        print(f"healed: the watch saw node3 join after {time.monotonic() - t1:.2f} s "
              f"(whole cut and heal {time.monotonic() - t0:.1f} s); {state.membership.changes} changes counted")
    finally:
        corosync.proc.terminate()
        listener.close()
        await source.stop()
        await watch.stop()
