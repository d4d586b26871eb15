"""LAN monitoring scenarios: two real daemons, six compute-node namespaces on LAN A and LAN B,
real ICMP echo, real faults (carrier cut at the switch, nftables drops, a whole LAN cut).

Timing: heartbeats at 100 ms / 400 ms, LAN polls every 200 ms, an interface down after
600 ms without a reply, up again after 2 replies in a row. Every check reads the MIB from
the NMS namespace with net-snmp's snmpget/snmpwalk and the notifications at snmptrapd.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.integration.harness import R

from .hapair import PUBLIC, SNMP_PORT, HaPair
from .netns import Cluster

NODES = 6
POLL_MS, DOWN_AFTER_MS = 200, 600
LAN_IF_DOWN, LAN_IF_UP, LAN_FAILED, LAN_RECOVERED = "10", "11", "21", "22"
IF = f"{R}.1.6.1"                  # haoscarLanIfEntry
NODE, LAN, STATUS, REPLIES, CARRIER, SOURCE = 2, 3, 6, 11, 16, 21
LANS = f"{R}.1.16"                 # haoscarLans
UP, DOWN = "2", "3"
# haoscarAlarmEntry: probable cause column 4, subject 5
ALARM = f"{R}.1.10.3.1"
LAN_INTERFACE_FAILURE, LAN_FAILURE = "3", "14"


def nodes_toml(count: int) -> str:
    return "".join(f'[[nodes]]\nname = "node{n}"\nlan_a = "10.71.1.{10 + n}"\nlan_b = "10.71.2.{10 + n}"\n\n'
                   for n in range(1, count + 1))


@pytest.fixture
def lan_pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HaPair]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    hold_down_ms = getattr(request, "param", 0)
    with Cluster(nodes=NODES) as cluster:
        pair = HaPair(cluster, tmp_path)
        pair.timing_toml = f"lan_poll_interval_ms = {POLL_MS}\nlan_down_after_ms = {DOWN_AFTER_MS}\n"
        pair.extra_toml = nodes_toml(NODES) + f"[lan]\nrise = 2\nhold_down_ms = {hold_down_ms}\n"
        pair.start_trapd()
        try:
            yield pair
        finally:
            pair.stop_all()
        pair.assert_no_bug()
    assert cluster.wait_gone(), "namespaces left behind"


def walk(pair: HaPair, head: str, oid: str) -> dict[str, str]:
    """instance suffix -> value of a walk from the NMS namespace."""
    p = pair.cluster.run("nms", "snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Oq", "-t", "2", "-r", "1",
                         f"{PUBLIC[head]}:{SNMP_PORT}", oid, check=False)
    out = {}
    for line in p.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith(f".{oid}."):          # not "No Such Object", not past the end
            out[name.removeprefix(f".{oid}.")] = value.strip('"')
    return out


def interfaces(pair: HaPair, head: str) -> dict[tuple[str, str], dict[int, str]]:
    """(node, lan number) -> {column: value} of haoscarLanIfTable, read over SNMP."""
    table: dict[str, dict[int, str]] = {}
    for suffix, value in walk(pair, head, IF).items():
        column, _, index = suffix.partition(".")
        table.setdefault(index, {})[int(column)] = value
    return {(row[NODE], row[LAN]): row for row in table.values() if NODE in row}


def status(pair: HaPair, head: str, node: str, lan: str) -> str:
    return interfaces(pair, head).get((node, lan), {}).get(STATUS, "")


def alarms(pair: HaPair, head: str) -> set[tuple[str, str]]:
    rows: dict[str, dict[int, str]] = {}
    for suffix, value in walk(pair, head, ALARM).items():
        column, _, index = suffix.partition(".")
        rows.setdefault(index, {})[int(column)] = value
    return {(row.get(4, ""), row.get(5, "")) for row in rows.values()}


def all_up(pair: HaPair, head: str) -> bool:
    rows = interfaces(pair, head)
    return len(rows) == 2 * (NODES + 2) and all(row[STATUS] == UP for row in rows.values())


def test_a_cut_node_is_told_down_with_an_alarm_and_up_again_when_healed(lan_pair: HaPair) -> None:
    pair, c = lan_pair, lan_pair.cluster
    pair.start_both()
    pair.wait_for(lambda: all_up(pair, "head2"), 10, "every interface up on head2")
    assert pair.snmp("head2", f"{LANS}.1.0") == '"head2"'                # the standby reports
    # head1 learns it from head2's heartbeats: a beat or two later on a busy machine.
    pair.wait_for(lambda: pair.snmp("head1", f"{LANS}.1.0") == '"head2"', 5, "head1 to name head2 the reporter")
    before = int(interfaces(pair, "head2")[("node3", "1")][REPLIES])
    cut = time.monotonic()
    c.carrier_down("node3", "lana")
    pair.wait_for(lambda: status(pair, "head2", "node3", "1") == DOWN, 5, "node3/lanA down on head2")
    took = time.monotonic() - cut
    assert took < (DOWN_AFTER_MS + POLL_MS) / 1000 + 2.0, took         # + the walks that watch for it
    pair.wait_for(lambda: LAN_IF_DOWN in pair.trap_names("head2"), 5, "haoscarLanIfDown from head2")
    assert (LAN_INTERFACE_FAILURE, "node3/lanA") in alarms(pair, "head2")
    assert LAN_IF_DOWN not in pair.trap_names("head1")                    # head1 does not report
    assert status(pair, "head1", "node3", "1") == DOWN                    # but shows it too
    assert status(pair, "head2", "node3", "2") == UP                      # LAN B is fine
    c.carrier_up("node3", "lana")
    pair.wait_for(lambda: status(pair, "head2", "node3", "1") == UP, 5, "node3/lanA up again")
    pair.wait_for(lambda: LAN_IF_UP in pair.trap_names("head2"), 5, "haoscarLanIfUp")
    assert (LAN_INTERFACE_FAILURE, "node3/lanA") not in alarms(pair, "head2")
    assert int(interfaces(pair, "head2")[("node3", "1")][REPLIES]) > before   # the counts grow again
    assert pair.trap_names("head2").count(LAN_IF_DOWN) == 1


def test_a_muted_node_with_its_link_up_is_down_too(lan_pair: HaPair) -> None:
    pair, c = lan_pair, lan_pair.cluster
    pair.start_both()
    pair.wait_for(lambda: all_up(pair, "head2"), 10, "every interface up")
    c.mute("node5", "lanb")                                              # carrier up, no replies
    pair.wait_for(lambda: status(pair, "head2", "node5", "2") == DOWN, 5, "node5/lanB down")
    assert c.operstate("node5", "lanb") == "UP"
    pair.wait_for(lambda: LAN_IF_DOWN in pair.trap_names("head2"), 5, "haoscarLanIfDown")
    c.unmute("node5", "lanb")
    pair.wait_for(lambda: status(pair, "head2", "node5", "2") == UP, 5, "node5/lanB up")


def test_a_whole_lan_cut_is_one_lan_alarm_and_the_cluster_runs_on_lan_b(lan_pair: HaPair) -> None:
    pair, c = lan_pair, lan_pair.cluster
    pair.start_both()
    pair.wait_for(lambda: all_up(pair, "head2"), 10, "every interface up")
    c.carrier([(f"node{n}", "lana") for n in range(1, NODES + 1)], up=False)   # LAN A's switch ports
    pair.wait_for(lambda: LAN_FAILED in pair.trap_names("head2"), 5, "haoscarLanFailed from head2")
    time.sleep(1.0)                                                      # nothing more comes
    names = pair.trap_names("head2")
    assert names.count(LAN_FAILED) == 1 and LAN_IF_DOWN not in names, names
    assert pair.snmp("head2", f"{LANS}.4.1.2.1") == "4"                   # haoscarLanStatus lanA failed
    assert pair.snmp("head2", f"{LANS}.4.1.2.2") == "2"                   # lanB ok
    assert "running on lanB only" in pair.snmp("head2", f"{LANS}.3.0")
    assert {a for a in alarms(pair, "head2") if a[0] in (LAN_FAILURE, LAN_INTERFACE_FAILURE)} == {(LAN_FAILURE, "lanA")}
    assert pair.holders() == {"head1"}                                  # no failover for it
    c.carrier([(f"node{n}", "lana") for n in range(1, NODES + 1)], up=True)
    pair.wait_for(lambda: LAN_RECOVERED in pair.trap_names("head2"), 5, "haoscarLanRecovered")
    pair.wait_for(lambda: pair.snmp("head2", f"{LANS}.4.1.2.1") == "2", 5, "lanA ok")
    assert not {a for a in alarms(pair, "head2") if a[0] == LAN_FAILURE}


@pytest.mark.parametrize("lan_pair", [10000], indirect=True)
def test_a_link_flapping_every_second_gives_a_bounded_number_of_notifications(
        lan_pair: HaPair) -> None:
    pair, c = lan_pair, lan_pair.cluster
    pair.start_both()
    pair.wait_for(lambda: all_up(pair, "head2"), 10, "every interface up")
    end = time.monotonic() + 30
    down = False
    while time.monotonic() < end:                                       # bounded: 30 s, 1 s steps
        down = not down
        c.carrier([("node2", "lana")], up=not down)
        time.sleep(1.0)
    c.carrier_up("node2", "lana")
    pair.wait_for(lambda: status(pair, "head2", "node2", "1") == UP, 5, "node2/lanA up at the end")
    time.sleep(1.0)
    names = [n for n in pair.trap_names("head2") if n in (LAN_IF_DOWN, LAN_IF_UP)]
    # Hold-down 10 s over 30 s of flapping (30 changes): at most 2 x 3 + 1 notices, the
    # last one "up".
    assert 2 <= len(names) <= 7 and names[-1] == LAN_IF_UP, names


def test_a_heads_own_carrier_loss_is_seen_at_once_not_at_the_next_poll(lan_pair: HaPair) -> None:
    pair, c = lan_pair, lan_pair.cluster
    pair.timing_toml = "lan_poll_interval_ms = 10000\nlan_down_after_ms = 30000\n"   # polls far apart
    pair.start_both()
    pair.wait_for(lambda: interfaces(pair, "head2").get(("head2", "2"), {}).get(CARRIER) == UP, 15,
                  "head2's own lanB carrier up")
    time.sleep(0.5)
    cut = time.monotonic()
    c.carrier_down("head2", "lanb")
    pair.wait_for(lambda: interfaces(pair, "head2")[("head2", "2")][CARRIER] == DOWN, 5, "carrier down in the MIB")
    took = time.monotonic() - cut
    row = interfaces(pair, "head2")[("head2", "2")]
    assert row[STATUS] == DOWN and row[SOURCE] == "2"                   # thisHead
    assert took < 3.0, took        # the next poll is up to 10 s away; netlink tells at once
    c.carrier_up("head2", "lanb")
    pair.wait_for(lambda: interfaces(pair, "head2")[("head2", "2")][STATUS] == UP, 5, "up again")


def test_the_reporting_role_moves_to_the_active_head_when_the_standby_dies_and_keeps_the_states(
        lan_pair: HaPair) -> None:
    pair, c = lan_pair, lan_pair.cluster
    pair.start_both()
    pair.wait_for(lambda: all_up(pair, "head1"), 10, "every interface up on head1")
    c.carrier_down("node4", "lanb")
    pair.wait_for(lambda: LAN_IF_DOWN in pair.trap_names("head2"), 5, "head2 reports node4/lanB down")
    pair.kill9("head2")
    pair.wait_for(lambda: pair.snmp("head1", f"{LANS}.1.0") == '"head1"', 5, "head1 reports")
    assert status(pair, "head1", "node4", "2") == DOWN                 # known already, not re-learnt
    c.carrier_up("node4", "lanb")
    pair.wait_for(lambda: LAN_IF_UP in pair.trap_names("head1"), 5, "haoscarLanIfUp from head1")


def test_an_active_head_cut_off_from_both_private_lans_hands_over_when_the_rule_is_on(lan_pair: HaPair) -> None:
    """head1's switch ports on LAN A and LAN B drop everything, carrier up: its heartbeats
    there stop, but the public path says it lives, so nobody takes over by dead time.
    head2's poller finds head1 silent on both LANs while the nodes answer, says so in its
    heartbeats, and head1 hands over. Healed, head1 answers again and fails back."""
    pair, c = lan_pair, lan_pair.cluster
    pair.extra_toml += "\n[failover]\nlan_failure_is_head_failure = true\n"
    pair.start_both()
    pair.wait_for(lambda: all_up(pair, "head2"), 10, "every interface up on head2")
    c.mute("head1", "lana")
    c.mute("head1", "lanb")
    samples = pair.watch_holders(4.0)
    assert all(len(s) <= 1 for s in samples) and samples[-1] == {"head2"}, samples
    assert "answers on none of its private interfaces" in pair.log_text()
    c.unmute("head1", "lana")
    c.unmute("head1", "lanb")
    pair.wait_for(lambda: pair.holders() == {"head1"}, 10, "failback to head1 once it answers again")
