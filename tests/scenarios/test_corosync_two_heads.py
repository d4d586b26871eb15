"""Scenario: two heads, the HA-OSCAR shape, on Corosync + Pacemaker with the daemon in
the corosync mode (root).

A two-node lab (votequorum `two_node: 1`): each node runs `haoscar-snmp run` with
`[[heads]]` naming both nodes, one alias whose address an IPaddr2 resource carries, and
one monitored service. The service is a small TCP server that Pacemaker runs
(`ocf:heartbeat:anything`, colocated with the address); the daemon checks it on the
head that holds the alias, with `recovery = "notify-only"` (the corosync mode refuses
the failover rung; Pacemaker restarts it). Each agent listens on its node's loopback and
sends notifications to an snmptrapd there. Everything is read with net-snmp's tools:

1. both agents show the same head table (the holder active, the other standby), the
   alias row, the summary scalars and the membership tables; the service runs on the
   holder only;
2. the HAOSCAR-MIB objects present (names of scalars and columns, not values) are
   those an `own`-mode pair shows (a real pair in `hapair.py`'s namespaces, walked the
   same way), but for the objects only one mode fills, listed below with the reason;
3. `crm_resource --move`: the roles swap in both head tables and alias rows,
   haoscarResourceMoved (the address's resource, its new node) reaches both snmptrapds,
   haoscarFailoverCount counts the move, the service follows the address. The role
   change itself has no notification of its own in either mode (the own mode tells
   failoverStarted/Completed); in this mode the move is what an NMS hears;
4. the active node cut off on both LANs: the survivor keeps quorum (two_node), Pacemaker
   starts the address there and its MIB says so; the cut node's MIB shows the split from
   its side; healed, both agents agree again.

There is no fencing in the lab. While cut, the cut node is quorate too (two_node) and
keeps the address: both run it until the heal, when Pacemaker finds it active twice and
recovers it to one node. A real two-head site needs fencing for that reason.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.integration.harness import MIB_DIRS

from . import corodaemon
from .corodaemon import LabDaemon, add_alert, assert_clean, config, stop
from .corolab import CoroLab
from .hapair import PUBLIC, SNMP_PORT, HaPair

PROGRAM = Path(__file__).resolve().parents[1] / "integration" / "programs" / "tcp_service.py"
VIP = "10.71.1.100"
PORT = 17071
NODES = ("node1", "node2")
OTHER = {"node1": "node2", "node2": "node1"}
LAN_A = {"node1": "10.71.1.11", "node2": "10.71.1.12"}   # the lab's addresses (corolab.py)
LAN_B = {"node1": "10.71.2.11", "node2": "10.71.2.12"}

# haoscarMembership objects that differ between two agents of one cluster: which node is
# this one, when this agent saw a change and how many, its own knet links, the operation
# history Pacemaker keeps per node.
PER_NODE = ("haoscarMembershipLocalNodeId", "haoscarClusterNodeIsLocal", "haoscarMembershipLastChanged",
            "haoscarMembershipChanges", "haoscarClusterLink", "haoscarResourceLast", "haoscarResourceFail")
# Objects present in one mode only (prefixes of names); the rest must be the same set.
ONLY_COROSYNC: dict[str, str] = {
    "haoscarClusterNode": "Corosync's nodes: no rows without Corosync",
    "haoscarClusterLink": "knet's links to each node: Corosync's",
    "haoscarResource": "Pacemaker's resources: no rows without Pacemaker",
}
ONLY_OWN: dict[str, str] = {
    "haoscarHbPath": "the heads' own heartbeat paths: that heartbeat is off with Corosync",
    "haoscarPerfHbPath": "round trips of that heartbeat, per path",
}


HEADS = f"""
    [[heads]]
    name = "node1"
    preferred_role = "primary"
    lan_a = "{LAN_A['node1']}"
    lan_b = "{LAN_B['node1']}"

    [[heads]]
    name = "node2"
    preferred_role = "standby"
    lan_a = "{LAN_A['node2']}"
    lan_b = "{LAN_B['node2']}"
    """


# The service, in both modes (in the own mode the daemon starts it at takeover; here
# Pacemaker runs it).
SERVICE = f"""
    [[services]]
    name = "tcpd"
    check_type = "tcp"
    check = "127.0.0.1:{PORT}"
    active_only = true
    interval_ms = 500
    retry_threshold = 2
    recovery = "notify-only"
    """


def names(walk_output: str) -> set[str]:
    """The object names of an `snmpwalk -Oqs` output, without their indexes."""
    return {line.split(" ", 1)[0].split(".", 1)[0] for line in walk_output.splitlines() if line.strip()}


def own_mode_objects(pair: HaPair) -> dict[str, set[str]]:
    """The objects each head of a running own-mode pair shows, walked from the NMS."""
    out = {}
    for head in ("head1", "head2"):
        p = pair.cluster.run("nms", "snmpwalk", "-v2c", "-c", "public", "-t", "2", "-r", "1", "-Oqs",
                             "-M", MIB_DIRS, "-m", "HAOSCAR-MIB", f"{PUBLIC[head]}:{SNMP_PORT}",
                             "HAOSCAR-MIB::haoscarMIB", check=False, timeout=60)
        out[head] = names(p.stdout)
    return out


class Head(LabDaemon):
    """One node's daemon and snmptrapd."""

    def __init__(self, lab: CoroLab, name: str, workdir: Path) -> None:
        super().__init__(lab, name, workdir, config(name, workdir, HEADS, SERVICE, VIP))

    def heads(self) -> dict[str, str]:
        return self.head_states()

    def alias(self) -> tuple[str, str]:
        """(owner, status) of alias 1."""
        got = self.get("haoscarAliasOwner.1", "haoscarAliasStatus.1")
        return (got[0], got[1]) if len(got) == 2 else ("?", "?")

    def summary(self) -> tuple[str, str]:
        """(haoscarActiveHead, haoscarClusterState)."""
        got = self.get("haoscarActiveHead.0", "haoscarClusterState.0")
        return (got[0], got[1]) if len(got) == 2 else ("?", "?")

    def service(self) -> str:
        return self.by_name("haoscarServiceTable", "haoscarServiceName", "haoscarServiceState").get("tcpd", "")

    def serving(self) -> bool:
        """The TCP service listens in this node."""
        p = self.lab.run(self.name, "ss", "-Hltn", f"sport = :{PORT}", check=False)
        return str(PORT) in p.stdout

    def told_moved(self, resource: str, node: str) -> bool:
        """A haoscarResourceMoved naming the resource and its new node reached snmptrapd."""
        return any("HAOSCAR-MIB::haoscarResourceMoved" in line
                   and f"haoscarNotifySubject.0 = STRING: {resource}\t" in line
                   and f"haoscarNotifyNewValue.0 = STRING: Started on {node}" in line
                   for line in self.trap_text().splitlines())


def wait(condition: Callable[[], object], timeout: float, what: str, heads: dict[str, Head]) -> float:
    def more() -> str:
        some = next(iter(heads.values()))
        services = {h.name: (h.service(), h.serving()) for h in heads.values()}
        return f"service (MIB, listening): {services}\n{some.lab.crm_mon_text(some.name)}"
    return corodaemon.wait(condition, timeout, what, heads, more)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[CoroLab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    if shutil.which("snmptrapd") is None:
        pytest.skip("net-snmp's snmptrapd is not installed")
    with CoroLab(tmp_path / "lab", nodes=2) as lab:
        assert lab.two_node
        lab.start()
        add_alert(lab)
        lab.add_ip("vip", VIP)
        tcpd = ('<primitive id="tcpd" class="ocf" provider="heartbeat" type="anything">'
                '<instance_attributes id="tcpd-ia">'
                '<nvpair id="tcpd-bin" name="binfile" value="/usr/bin/python3"/>'
                f'<nvpair id="tcpd-args" name="cmdline_options" value="{PROGRAM} {PORT} /run/tcpd.listening"/>'
                '</instance_attributes><operations>'
                '<op id="tcpd-monitor" name="monitor" interval="5s" timeout="20s"/>'
                '</operations></primitive>')
        lab.run("node1", "cibadmin", "--create", "-o", "resources", "--xml-text", tcpd, timeout=30)
        lab.run("node1", "cibadmin", "--create", "-o", "constraints", "--xml-text",
                '<rsc_colocation id="tcpd-with-vip" rsc="tcpd" with-rsc="vip" score="INFINITY"/>', timeout=30)
        lab.run("node1", "cibadmin", "--create", "-o", "constraints", "--xml-text",
                '<rsc_order id="vip-then-tcpd" first="vip" then="tcpd"/>', timeout=30)
        yield lab
    assert lab.wait_gone(), "namespaces left behind"


def test_two_heads_on_corosync_show_the_own_mode_objects(lab: CoroLab, pair: HaPair, tmp_path: Path) -> None:
    # The own-mode pair first (it is stopped before the lab's daemons start).
    pair.services = {h: SERVICE for h in ("head1", "head2")}
    pair.start_both()
    own = own_mode_objects(pair)
    pair.stop_all()
    heads = {name: Head(lab, name, tmp_path) for name in NODES}
    try:
        _scenario(lab, heads, own)
    finally:
        stop(heads)
    assert_clean(heads)


def _agree(heads: dict[str, Head], holder: str) -> bool:
    """Both agents: the holder active, the other standby, the alias held by the holder, the
    summary naming it, the cluster normal, both nodes members."""
    want = {holder: "active", OTHER[holder]: "standby"}
    return all(h.heads() == want and h.alias() == (holder, "held") and h.summary() == (holder, "normal")
               and h.members() == {"node1": "true", "node2": "true"} for h in heads.values())


def _scenario(lab: CoroLab, heads: dict[str, Head], own: dict[str, set[str]]) -> None:
    n1 = heads["node1"]

    # 1. The same head, alias, summary and membership in both agents.
    t0 = time.monotonic()
    wait(lambda: n1.alias()[1] == "held", 40, "the alias held in node1's MIB", heads)
    holder = n1.alias()[0]
    wait(lambda: _agree(heads, holder), 20, f"both agents to show {holder} active", heads)
    print(f"\n2 daemons agree ({holder} active) {time.monotonic() - t0:.1f} s after they were started")
    membership = [{k: v for k, v in h.walk("haoscarMembership").items() if not k.startswith(PER_NODE)}
                  for h in heads.values()]
    assert membership[0] == membership[1], {k: (membership[0].get(k), membership[1].get(k))
                                            for k in membership[0].keys() | membership[1].keys()
                                            if membership[0].get(k) != membership[1].get(k)}
    assert membership[0]["haoscarQuorate.0"] == "true"
    assert membership[0]["haoscarQuorumExpectedVotes.0"] == "2" and membership[0]["haoscarQuorumTotalVotes.0"] == "2"
    wait(lambda: heads[holder].serving() and heads[holder].service() == "running", 20,
         f"the service up on {holder}", heads)
    assert not heads[OTHER[holder]].serving() and heads[OTHER[holder]].service() == "stopped"

    # 2. The same objects as an own-mode pair, but for those one mode only fills.
    for name, h in heads.items():
        mine = names("\n".join(f"{k} {v}" for k, v in h.walk("HAOSCAR-MIB::haoscarMIB").items()))
        for head, theirs in own.items():
            only_here = {o for o in mine - theirs if not o.startswith(tuple(ONLY_COROSYNC))}
            only_there = {o for o in theirs - mine if not o.startswith(tuple(ONLY_OWN))}
            assert not only_here and not only_there, (
                f"{name} (corosync) against {head} (own): only in corosync {sorted(only_here)}, "
                f"only in own {sorted(only_there)}")

    # 3. Pacemaker moves the address: the roles swap in both agents; the service follows.
    target = OTHER[holder]
    t0 = time.monotonic()
    lab.run("node1", "crm_resource", "--resource", "vip", "--move", "--node", target, timeout=30)
    took = wait(lambda: _agree(heads, target), 20, f"both agents to show {target} active", heads)
    print(f"crm_resource --move from {holder} to {target}: both agents show it after {took:.2f} s")
    wait(lambda: all(h.told_moved("vip", target) for h in heads.values()), 10,
         f"haoscarResourceMoved (vip, Started on {target}) at both snmptrapds", heads)
    wait(lambda: heads[target].serving() and heads[target].service() == "running", 20,
         f"the service up on {target}", heads)
    assert not heads[holder].serving() and heads[holder].service() == "stopped"
    assert n1.get("haoscarFailoverCount.0") == ["1"]
    lab.run("node1", "crm_resource", "--resource", "vip", "--clear", timeout=30)

    # 4. The active node cut off: the survivor keeps quorum and takes the address.
    cut, survivor = target, heads[holder]
    t0 = time.monotonic()
    lab.cut(cut)
    try:
        took = wait(lambda: survivor.heads() == {holder: "active", cut: "failed"}
                    and survivor.alias() == (holder, "held"), 30,
                    f"{holder}'s MIB to show it holds the address, {cut} failed", heads)
        print(f"{cut} cut: {holder}'s MIB shows it active after {took:.2f} s")
        assert survivor.get("haoscarQuorate.0") == ["true"]
        assert survivor.summary() == (holder, "degraded")
        assert survivor.members() == {holder: "true", cut: "false"}
        wait(lambda: survivor.traps("haoscarClusterNodeLeft"), 10, "haoscarClusterNodeLeft at the survivor", heads)
        wait(lambda: survivor.serving(), 20, f"the service on {holder}", heads)
        # The cut head is quorate too (two_node, no fencing) and keeps the address: its
        # MIB shows the split from its side.
        alone = heads[cut]
        wait(lambda: alone.heads() == {holder: "failed", cut: "active"} and alone.alias() == (cut, "held"), 10,
             f"{cut}'s MIB to show itself active, {holder} failed", heads)
        assert alone.get("haoscarQuorate.0") == ["true"]
    finally:
        lab.heal(cut)
    # Both ran the address: once healed, Pacemaker finds it active twice and recovers it
    # to one node (stop both, start one). Wait for its transition to end, then compare.
    t0 = time.monotonic()
    lab.run("node1", "crm_resource", "--wait", "--timeout", "40s", timeout=50)

    def settled() -> bool:
        owner = n1.alias()[0]
        return (owner in NODES and _agree(heads, owner) and heads[owner].serving()
                and not heads[OTHER[owner]].serving() and heads[OTHER[owner]].service() == "stopped")

    wait(settled, 30, "both agents to agree on one holder, the service there only", heads)
    print(f"{cut} healed: Pacemaker settled and both agents agree ({n1.alias()[0]} active) after "
          f"{time.monotonic() - t0:.2f} s")
