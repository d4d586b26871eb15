"""The namespace harness itself (tests/scenarios/netns.py): reachability on every LAN,
carrier loss, muting, an alias moved by hand with a gratuitous ARP, and teardown."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Callable

import pytest

from .netns import ALIAS, Cluster


def eventually(predicate: Callable[[], bool], timeout: float = 5, step: float = 0.05) -> bool:
    """Poll predicate until true or timeout (bounded); its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_every_lan_connects_its_hosts(cluster: Cluster) -> None:
    for lan in ("lana", "lanb", "pub"):
        assert cluster.ping("head1", cluster.addr("head2", lan)), f"head1 -> head2 over {lan}"
    for head in ("head1", "head2"):
        for lan in ("lana", "lanb"):
            assert cluster.ping("node1", cluster.addr(head, lan)), f"node1 -> {head} over {lan}"
        for host in ("client", "nms"):
            assert cluster.ping(host, cluster.addr(head, "pub")), f"{host} -> {head} over pub"
    assert cluster.addr("node1", "lanA") == "10.71.1.11"
    assert cluster.addr("nms", "pub") == "10.71.0.200"
    assert cluster.has_address("head2", "lanb", "10.71.2.2")
    assert not cluster.has_address("head2", "lanb", "10.71.2.1")


def test_carrier_down_cuts_one_lan_and_carrier_up_heals_it(cluster: Cluster) -> None:
    head2_a, head2_b = cluster.addr("head2", "lana"), cluster.addr("head2", "lanb")
    assert cluster.ping("head1", head2_a)
    cluster.carrier_down("head1", "lanA")
    link = cluster.link("head1", "lana")
    assert "NO-CARRIER" in link["flags"] and link["operstate"] == "DOWN", link
    assert not cluster.ping("head1", head2_a)
    assert cluster.ping("head1", head2_b)
    cluster.carrier_up("head1", "lanA")
    assert eventually(lambda: cluster.operstate("head1", "lana") == "UP")
    assert eventually(lambda: cluster.ping("head1", head2_a))


def test_mute_drops_traffic_with_the_link_up_and_unmute_heals(cluster: Cluster) -> None:
    head2_a, head2_b = cluster.addr("head2", "lana"), cluster.addr("head2", "lanb")
    assert cluster.ping("head1", head2_b)
    cluster.mute("head2", "lanb")
    assert cluster.muted() == {"h2b"}
    assert not cluster.ping("head1", head2_b)
    assert not cluster.ping("node1", head2_b)
    link = cluster.link("head2", "lanb")
    assert link["operstate"] == "UP" and "LOWER_UP" in link["flags"], link
    assert cluster.ping("head1", head2_a)
    cluster.unmute("head2", "lanb")
    cluster.unmute("head2", "lanb")  # idempotent
    assert cluster.muted() == set()
    assert eventually(lambda: cluster.ping("head1", head2_b))


def test_alias_moved_by_hand_follows_the_gratuitous_arp(cluster: Cluster) -> None:
    for head in ("head1", "head2"):
        cluster.udp_echo(head)
    cluster.run("head1", "ip", "addr", "add", f"{ALIAS}/24", "dev", "pub", "label", "pub:0")
    assert cluster.has_address("head1", "pub", ALIAS)
    assert cluster.ping("client", ALIAS)
    assert cluster.neigh_mac("client", ALIAS) == cluster.mac("head1", "pub")
    assert cluster.udp_ask("client", ALIAS) == "head1"
    assert cluster.probe("client", ALIAS) and cluster.probe("client", ALIAS, 7007)
    # Each head's own address answers from that head (the reply comes from the asked address).
    assert cluster.udp_ask("nms", cluster.addr("head2", "pub")) == "head2"
    assert cluster.udp_ask("client", cluster.addr("node1", "lana")) is None  # not reachable

    cluster.run("head1", "ip", "addr", "del", f"{ALIAS}/24", "dev", "pub")
    cluster.run("head2", "ip", "addr", "add", f"{ALIAS}/24", "dev", "pub", "label", "pub:0")
    cluster.run("head2", "arping", "-U", "-c", "1", "-I", "pub", ALIAS, check=False)
    assert not cluster.has_address("head1", "pub", ALIAS)
    assert cluster.has_address("head2", "pub", ALIAS)
    head2_mac = cluster.mac("head2", "pub")
    assert eventually(lambda: cluster.neigh_mac("client", ALIAS) == head2_mac, 3), \
        cluster.run("client", "ip", "neigh").stdout
    assert cluster.ping("client", ALIAS)
    assert cluster.udp_ask("client", ALIAS) == "head2"


def test_teardown_removes_leftovers_processes_and_namespaces() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    prefix = f"hs{os.getpid() % 10000}t"
    # A leftover of a "crashed" run: a namespace with our prefix and a process inside.
    subprocess.run(["ip", "netns", "add", f"{prefix}-sw"], check=True, timeout=10)
    stale = subprocess.Popen(["ip", "netns", "exec", f"{prefix}-sw", "sleep", "30"],
                             start_new_session=True)
    try:
        with Cluster(prefix) as c:
            assert stale.wait(5) is not None  # killed by the clean-up at set-up
            assert sorted(c.namespaces()) == sorted(c.ns(h) for h in
                                                    ("sw", "head1", "head2", "node1", "client", "nms"))
            shell = c.popen("head1", "sh", "-c", "sleep 30 & sleep 30")
            assert c.ping("client", c.addr("head1", "pub"))
    finally:
        if stale.poll() is None:
            stale.kill()
        stale.wait(5)
    assert shell.returncode is not None  # killed and reaped
    assert not c.namespaces()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    assert not [line for line in listed.splitlines() if line.startswith(f"{prefix}-")]
    # The background sleep of the killed shell (same session) is gone too (once init reaps it).
    assert eventually(lambda: subprocess.run(["pgrep", "-s", str(shell.pid)], capture_output=True,
                                             timeout=10).returncode == 1, 5)
