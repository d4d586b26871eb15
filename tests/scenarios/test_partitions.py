"""Partitions: every shape of link failure ends with exactly one head holding the alias.

Two real daemons in head namespaces (100 ms heartbeats, 400 ms dead time), faults made
with carrier loss (the switch-side veth down) or muting (nftables drops on the bridge
port, the link stays up), the holders sampled every 50 ms while it happens, and each
head asked over SNMP why it did what it did. docs/failover.md has the table these
tests follow.
"""

from __future__ import annotations

import glob
import signal
import time

import pytest

from tests.integration.harness import R

from .hapair import ALIAS, ALIAS6, HaPair

# haoscarAlarmProbableCause values
HB_PATH_FAILURE, CLOCK_DIFFERENCE, HEAD_ISOLATED = "2", "10", "11"
# haoscarNotifications.N
HEAD_DOWN, FAILOVER_STARTED, SPLIT_BRAIN, SPLIT_BRAIN_RESOLVED, ALARM_RAISED = "2", "4", "15", "16", "17"


def never_two(samples: list[set[str]]) -> bool:
    return all(len(s) <= 1 for s in samples)


def cut(pair: HaPair, head: str, *lans: str) -> None:
    for lan in lans:
        pair.cluster.carrier_down(head, lan)


def heal(pair: HaPair, head: str, *lans: str) -> None:
    for lan in lans:
        pair.cluster.carrier_up(head, lan)


def test_active_head_losing_both_private_links_hands_over_and_says_why(pair: HaPair) -> None:
    c = pair.cluster
    pair.start_both()
    assert c.ping("client", ALIAS)
    cut(pair, "head1", "lana", "lanb")
    samples = pair.watch_holders(2.0)
    assert never_two(samples) and samples[-1] == {"head2"}
    # Heard on the public LAN, head1 handed over at once: no dead time was waited for.
    assert sum(1 for s in samples if not s) <= 4, samples[:10]
    assert (HEAD_ISOLATED, "head1") in pair.alarms("head1")
    assert "isolated: no carrier on either private heartbeat link" in pair.log_text()
    pair.wait_for(lambda: c.neigh_mac("client", ALIAS) == c.mac("head2", "pub"), 5, "the client to follow")
    assert c.ping("client", ALIAS)
    assert pair.role("head1") == "standby"
    heal(pair, "head1", "lana", "lanb")
    # auto-failback is on: head1 comes back, asks, and gets the alias back, one holder throughout
    samples = pair.watch_holders(3.0)
    assert never_two(samples) and samples[-1] == {"head1"}
    pair.wait_for(lambda: (HEAD_ISOLATED, "head1") not in pair.alarms("head1"), 5, "isolation alarm cleared")


def test_without_a_public_path_an_isolated_active_head_lets_go_and_the_peer_takes_over(pair: HaPair) -> None:
    pair.public_path = False
    pair.start_both()
    cut(pair, "head1", "lana", "lanb")
    samples = pair.watch_holders(2.0)
    assert never_two(samples) and samples[-1] == {"head2"}
    assert (HEAD_ISOLATED, "head1") in pair.alarms("head1")
    assert "may be alive" in pair.log_text()


@pytest.mark.parametrize("public_path", [True, False])
def test_a_standby_losing_both_private_links_does_not_take_over(pair: HaPair, public_path: bool) -> None:
    pair.public_path = public_path
    pair.start_both()
    cut(pair, "head2", "lana", "lanb")
    samples = pair.watch_holders(2.0)
    assert all(s == {"head1"} for s in samples), pair.log_text()[-12000:]
    assert (HEAD_ISOLATED, "head2") in pair.alarms("head2")
    assert pair.snmp("head2", f"{R}.1.1.4.0") == "0"                   # no failover
    heal(pair, "head2", "lana", "lanb")
    pair.wait_for(lambda: (HEAD_ISOLATED, "head2") not in pair.alarms("head2"), 5, "alarm cleared")
    assert pair.holders() == {"head1"}


def test_private_lans_silent_for_everyone_the_public_path_keeps_one_holder(pair: HaPair) -> None:
    c = pair.cluster
    pair.start_both()
    for host in ("head1", "head2", "node1"):
        for lan in ("lana", "lanb"):
            c.mute(host, lan)
    samples = pair.watch_holders(2.0)
    assert all(s == {"head1"} for s in samples)
    assert pair.snmp("head2", f"{R}.1.1.2.0") == "3"                   # haoscarClusterState degraded
    assert (HB_PATH_FAILURE, "head1/private") in pair.alarms("head2")
    assert pair.snmp("head2", f"{R}.1.5.1.2.1.3") == "2"               # the public path is up
    for host in ("head1", "head2", "node1"):
        for lan in ("lana", "lanb"):
            c.unmute(host, lan)
    pair.wait_for(lambda: (HB_PATH_FAILURE, "head1/private") not in pair.alarms("head2"), 5, "alarm cleared")
    assert pair.holders() == {"head1"} and pair.snmp("head2", f"{R}.1.1.4.0") == "0"


def test_a_second_holder_that_nobody_can_hear_is_found_on_the_public_lan_and_settled(pair: HaPair) -> None:
    """No public heartbeat path, both private LANs silent with the links up: the standby
    cannot tell this from a dead peer and takes over. The alias announcements on the
    public LAN show both heads the duplicate; the split-brain rule settles it (auto-failback
    on: the preferred primary keeps it), and the other does not take it back while the
    holder keeps announcing."""
    c = pair.cluster
    pair.public_path = False
    pair.start_both()
    assert c.ping("client", ALIAS)            # the client has an ARP entry for the alias
    for head in ("head1", "head2"):
        for lan in ("lana", "lanb"):
            c.mute(head, lan)
    # head2 takes over (it cannot tell), sees head1's announcement, and yields: it may
    # hold the alias for a few tens of milliseconds only, so its notifications tell.
    pair.wait_for(lambda: {SPLIT_BRAIN, SPLIT_BRAIN_RESOLVED} <= set(pair.trap_names("head2")), 5,
                  "head2 to report the duplicate and its resolution")
    assert pair.snmp("head2", f"{R}.1.1.4.0") == "1"                   # it did take over, once
    pair.wait_for(lambda: pair.holders() == {"head1"}, 5, "the duplicate settled")
    samples = pair.watch_holders(3.0)
    assert all(s == {"head1"} for s in samples), (samples, pair.log_text()[-12000:])
    pair.wait_for(lambda: c.neigh_mac("client", ALIAS) == c.mac("head1", "pub"), 5, "the client back on head1")
    for head in ("head1", "head2"):
        for lan in ("lana", "lanb"):
            c.unmute(head, lan)
    pair.wait_for(lambda: pair.role("head2") == "standby", 5, "head2 standby")
    assert pair.holders() == {"head1"}


def test_an_alias_added_by_hand_on_the_standby_is_removed_and_the_active_head_defends_it(pair: HaPair) -> None:
    c = pair.cluster
    pair.start_both()
    assert c.ping("client", ALIAS)
    c.run("head2", "ip", "addr", "add", f"{ALIAS}/24", "dev", "pub")
    c.run("head2", "arping", "-q", "-U", "-c", "1", "-I", "pub", ALIAS, check=False)   # steal the clients
    pair.wait_for(lambda: pair.holders() == {"head1"}, 5, "the stray alias to be removed from head2")
    pair.wait_for(lambda: c.neigh_mac("client", ALIAS) == c.mac("head1", "pub"), 5,
                  "head1 to defend the alias (the client back on head1)")
    assert c.ping("client", ALIAS)
    assert "was configured on head2, which is standby; removed" in pair.log_text()
    pair.wait_for(lambda: ALARM_RAISED in pair.trap_names("head2"), 5, "the aliasConflict alarm notified")


@pytest.mark.parametrize("fault", ["freeze", "mute", "cut"])
def test_with_auto_failback_off_the_service_stays_on_the_standby_after_the_partition_heals(
        pair: HaPair, fault: str) -> None:
    c = pair.cluster
    pair.auto_failback = False
    pair.start_both()
    lans = ("lana", "lanb", "pub")
    if fault == "freeze":
        pair.signal_group("head1", signal.SIGSTOP)
    elif fault == "mute":
        for lan in lans:
            c.mute("head1", lan)
    else:
        cut(pair, "head1", *lans)
    pair.wait_for(lambda: "head2" in pair.holders(), 5, "head2 to take over")
    time.sleep(0.5)
    if fault == "freeze":
        pair.signal_group("head1", signal.SIGCONT)
    elif fault == "mute":
        for lan in lans:
            c.unmute("head1", lan)
    else:
        heal(pair, "head1", *lans)
    pair.wait_for(lambda: pair.holders() == {"head2"}, 5, "one holder after the heal")
    samples = pair.watch_holders(2.5)
    assert all(s == {"head2"} for s in samples), (samples, pair.log_text()[-12000:])
    assert pair.role("head1") == "standby" and pair.role("head2") == "active"


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    assert found, "libfaketime is missing: scripts/setup installs Debian's faketime package"
    return found[0]


def test_a_wall_clock_step_on_the_active_head_moves_nothing(pair: HaPair) -> None:
    """head1 runs under libfaketime, which fakes its wall clock only (never the machine's):
    stepped back an hour, then forward again, mid-run."""
    offset = pair.workdir / "faketime"
    offset.write_text("+0\n")
    pair.env["head1"] = {"LD_PRELOAD": libfaketime(), "FAKETIME_TIMESTAMP_FILE": str(offset),
                         "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_CACHE_DURATION": "1"}
    pair.start_both()
    for step in ("-3600", "+0", "+3600", "+0"):
        offset.write_text(step + "\n")
        samples = pair.watch_holders(3.0)
        assert all(s == {"head1"} for s in samples), (step, samples)
        if step != "+0":
            assert (CLOCK_DIFFERENCE, "head1") in pair.alarms("head2"), step
    assert pair.role("head1") == "active" and pair.role("head2") == "standby"
    assert pair.snmp("head2", f"{R}.1.1.4.0") == "0"
    names = pair.trap_names()
    assert HEAD_DOWN not in names and FAILOVER_STARTED not in names
    assert "wall clock stepped" in pair.log_text()


def test_ipv6_clients_follow_the_alias_after_a_failover(pair: HaPair) -> None:
    c = pair.cluster
    pair.alias6 = True
    pair.start_both()
    pair.wait_for(lambda: pair.holders(ALIAS6) == {"head1"}, 5, "head1 to hold the IPv6 alias")
    assert c.ping("client", ALIAS6)
    assert c.neigh_mac("client", ALIAS6) == c.mac("head1", "pub")
    pair.kill9("head1")
    pair.wait_for(lambda: "head2" in pair.holders(ALIAS6), 5, "head2 to take the IPv6 alias")
    # The unsolicited neighbour advertisement moves the client at once (its cache entry
    # would otherwise keep head1's MAC, whose kernel still has the address).
    pair.wait_for(lambda: c.neigh_mac("client", ALIAS6) == c.mac("head2", "pub"), 3,
                  "the client's neighbour entry to move to head2")
    assert c.ping("client", ALIAS6)


def test_both_private_switches_dead_the_active_head_keeps_the_alias(pair: HaPair) -> None:
    """Carrier lost on every private link of both heads: both isolated, both heard on the
    public path, so the active head keeps the alias and nobody takes over."""
    pair.start_both()
    links = [(host, lan) for host in ("head1", "head2", "node1") for lan in ("lana", "lanb")]
    pair.cluster.carrier(links, up=False)         # both switches die at once
    samples = pair.watch_holders(2.0)
    assert all(s == {"head1"} for s in samples), (samples, pair.log_text()[-8000:])
    assert (HEAD_ISOLATED, "head1") in pair.alarms("head1")
    assert (HEAD_ISOLATED, "head2") in pair.alarms("head2")
    pair.cluster.carrier(links, up=True)
    samples = pair.watch_holders(1.5)
    assert all(s == {"head1"} for s in samples), (samples, pair.log_text()[-10000:])


def test_an_active_head_losing_carrier_on_its_alias_interface_hands_over(pair: HaPair) -> None:
    pair.start_both()
    cut(pair, "head1", "pub")
    samples = pair.watch_holders(2.0)
    assert never_two(samples) and samples[-1] == {"head2"}, (samples, pair.log_text()[-8000:])
    assert "no carrier on an alias interface" in pair.log_text()
    heal(pair, "head1", "pub")
    samples = pair.watch_holders(3.0)                 # auto-failback brings it back
    assert never_two(samples) and samples[-1] == {"head1"}, samples
