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
from typing import Sequence

import pytest

from fcaps.fault import cluster as cluster_pkg
from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.fault.cluster.alerts import AlertListener
from fcaps.fault.cluster.pacemaker import ExecCommands, PacemakerSource
from fcaps.fault.cluster.watch import ClusterWatch
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import Event, EventBus, EventType
from haoscar_snmp.core.state import State

from .corolab import CoroLab

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


def test_the_placement_follows_pacemaker_and_a_left_address_is_stale(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    # The agent runs as hacluster: the socket's directory and its parents must let it through
    # (pytest's own temporary directories are root's only).
    public = Path(tempfile.mkdtemp(prefix="haoscar-pcmk-"))
    try:
        os.chmod(public, 0o755)
        sock = public / "alert.sock"
        with CoroLab(tmp_path / "lab") as lab:
            lab.start()
            alert = (f'<alerts><alert id="haoscar" path="{AGENT}">'
                     f'<recipient id="haoscar-sock" value="{sock}"/></alert></alerts>')
            lab.run("node1", "cibadmin", "--create", "-o", "configuration", "--xml-text", alert, timeout=30)
            asyncio.run(asyncio.wait_for(_scenario(lab, sock), 60))
        assert lab.wait_gone()
    finally:
        shutil.rmtree(public, ignore_errors=True)


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
