"""Failover scenarios: two real daemons in head namespaces, real faults, an NMS receiving traps.

Timing is aggressive (100 ms heartbeats, 400 ms dead time) so each scenario takes seconds.
Every scenario checks the outcome, the notifications at the NMS, the MIB as read from the
NMS namespace, and (in the fixture) that no daemon log holds the bug marker.
"""

from __future__ import annotations

import os
import signal
import time

from fcaps.fault.heartbeat import proto as hbproto
from tests.integration.harness import R

from .hapair import ALIAS, AUTH, PRIV, PUBLIC, SNMP_PORT, HaPair

# haoscarNotifications.N
HEAD_DOWN, FAILOVER_STARTED, FAILOVER_COMPLETED, FAILBACK_COMPLETED = "2", "4", "5", "7"
HB_PATH_DOWN, HB_PATH_UP, SPLIT_BRAIN, SPLIT_BRAIN_RESOLVED = "8", "9", "15", "16"
ALARM_RAISED, ALARM_CLEARED = "17", "18"
# haoscarAlarmProbableCause heartbeatProcessFailure
HB_PROCESS_FAILURE = "16"


def test_primary_killed_standby_takes_the_alias_and_fails_back(pair: HaPair) -> None:
    c = pair.cluster
    pair.start_both()
    assert c.ping("client", ALIAS)
    pair.kill9("head1")
    pair.wait_for(lambda: "head2" in pair.holders(), 5, "head2 to take the alias")
    # The kernel of head1 still holds the alias its killed daemon added (as with
    # keepalived); the client follows head2 because of the gratuitous ARP.
    pair.wait_for(lambda: c.neigh_mac("client", ALIAS) == c.mac("head2", "pub"), 5,
                  "the client's ARP entry to move to head2")
    assert c.ping("client", ALIAS)
    pair.wait_for(lambda: {HEAD_DOWN, FAILOVER_STARTED, FAILOVER_COMPLETED} <= set(pair.trap_names("head2")),
                  5, "headDown, failoverStarted, failoverCompleted from head2")
    assert pair.snmp("head2", f"{R}.1.1.3.0") == '"head2"'            # haoscarActiveHead
    assert pair.snmp("head2", f"{R}.1.1.4.0") == "1"                   # haoscarFailoverCount
    assert "dead" in pair.snmp("head2", f"{R}.1.1.7.0")                # haoscarLastFailoverReason
    # The performance figures of that failover: one duration, the cluster's own figure,
    # in one bucket; round trips measured on both heartbeat paths to head1.
    count, last = pair.snmp("head2", f"{R}.1.12.20.1.2.1", f"{R}.1.12.20.1.3.1").split()
    assert count == "1" and last == pair.snmp("head2", f"{R}.1.1.6.0")
    buckets = pair.snmp("head2", *(f"{R}.1.12.21.1.4.1.{n}" for n in range(1, 11))).split()
    assert sorted(buckets) == ["0"] * 9 + ["1"]
    replies = pair.snmp("head2", f"{R}.1.12.22.1.6.1.1", f"{R}.1.12.22.1.6.1.2").split()  # lanA, lanB
    assert len(replies) == 2 and all(n.isdigit() and int(n) > 0 for n in replies), replies
    # Repaired primary returns: it drops the leftover alias, comes back as standby, asks
    # for failback (auto-failback is on), and takes the alias back.
    pair.start("head1")
    pair.wait_for(lambda: pair.holders() == {"head1"}, 10, "failback to head1")
    pair.wait_for(lambda: FAILBACK_COMPLETED in pair.trap_names("head1"), 5, "failbackCompleted")
    pair.wait_for(lambda: c.neigh_mac("client", ALIAS) == c.mac("head1", "pub"), 5,
                  "the client's ARP entry to move back to head1")
    assert pair.role("head2") == "standby"
    # head1's failback: one duration of the failback kind, none of the failover kind.
    assert pair.snmp("head1", f"{R}.1.12.20.1.2.2", f"{R}.1.12.20.1.2.1").split() == ["1", "0"]


def test_frozen_primary_then_resumed_ends_with_one_holder(pair: HaPair) -> None:
    pair.start_both()
    pair.signal_group("head1", signal.SIGSTOP)          # the daemon and its heartbeat process
    pair.wait_for(lambda: "head2" in pair.holders(), 5, "head2 to take over from the frozen head1")
    pair.signal_group("head1", signal.SIGCONT)
    # Both believe they are active for a moment; with auto-failback and no delay the
    # preferred primary keeps the alias, head2 yields.
    pair.wait_for(lambda: pair.holders() == {"head1"}, 10, "exactly one holder after resume")
    pair.wait_for(lambda: pair.role("head2") == "standby", 5, "head2 standby")
    assert pair.role("head1") == "active"


def test_a_hung_daemon_lets_go_of_its_alias_before_the_peer_takes_over(pair: HaPair) -> None:
    """Only the daemon hangs; its heartbeat process notices that it stopped answering,
    removes the alias and falls silent, and only then does the peer take over."""
    pair.start_both()
    pair.signal("head1", signal.SIGSTOP)
    samples = pair.watch_holders(3.0)
    assert all(len(s) <= 1 for s in samples) and samples[-1] == {"head2"}, samples
    assert "the daemon has not answered for" in pair.log_text()
    pair.signal("head1", signal.SIGCONT)
    pair.wait_for(lambda: pair.role("head1") in ("standby", "active"), 5, "head1 to settle")
    samples = pair.watch_holders(3.0)
    assert all(len(s) <= 1 for s in samples) and samples[-1] == {"head1"}, samples  # failback


def test_a_frozen_heartbeat_process_lets_go_of_the_alias_before_the_peer_takes_over(pair: HaPair) -> None:
    """Only the active head's heartbeat process stops (stuck in the kernel, a frozen
    cgroup, a bug); its daemon runs on and hears nothing from it. The daemon releases the
    alias within max(2 intervals, half the dead time) + half an interval, before the peer's dead time runs
    out, says why, and starts a new heartbeat process; the peer takes over on its dead
    time, and head1, back as standby, fails back. Never two holders."""
    c = pair.cluster
    pair.start_both()
    assert c.ping("client", ALIAS)
    frozen = pair.signal_heartbeat("head1", signal.SIGSTOP)
    try:
        samples = pair.watch_holders(1.5)
        assert all(len(s) <= 1 for s in samples), samples
        assert {"head2"} in samples, samples
        pair.wait_for(lambda: pair.heartbeat_pid("head1") != frozen, 10, "a new heartbeat process on head1")
        # auto-failback on, no delay: head1 comes back as standby and takes the alias back
        samples = pair.watch_holders(3.0)
        assert all(len(s) <= 1 for s in samples) and samples[-1] == {"head1"}, samples
    finally:
        try:
            os.kill(frozen, signal.SIGCONT)
        except ProcessLookupError:
            pass
    log = pair.log_text()
    assert "heartbeat process has sent nothing for" in log, log[-6000:]
    assert "the heartbeat process is running again" in log
    assert pair.snmp("head2", f"{R}.1.1.4.0") == "1"                 # one failover, by head2
    assert pair.snmp("head1", f"{R}.1.1.4.0") == "0"
    raised = [binds for _, binds in pair.traps() if any("heartbeat process" in v for v in binds.values())]
    assert raised, pair.traps()
    assert (HB_PROCESS_FAILURE, "head1") not in pair.alarms("head1")   # cleared once it runs again
    assert c.ping("client", ALIAS)


def test_a_clean_stop_of_the_active_head_hands_over_at_once(pair: HaPair) -> None:
    pair.start_both()
    pair.signal("head1", signal.SIGTERM)
    samples = pair.watch_holders(1.0)
    assert all(len(s) <= 1 for s in samples) and samples[-1] == {"head2"}, samples
    pair.procs["head1"].wait(5)
    assert pair.cluster.has_address("head1", "pub", ALIAS) is False
    assert "the daemon is stopping" in pair.log_text()


def test_losing_one_lan_is_a_degraded_path_never_a_failover(pair: HaPair) -> None:
    c = pair.cluster
    pair.start_both()
    c.carrier_down("head1", "lana")
    pair.wait_for(lambda: HB_PATH_DOWN in pair.trap_names("head2"), 5, "hbPathDown from head2")
    time.sleep(1.0)
    assert pair.holders() == {"head1"} and pair.role("head2") == "standby"
    assert pair.snmp("head2", f"{R}.1.5.1.2.1.1") == "3"               # haoscarHbPathStatus lanA down
    assert pair.snmp("head2", f"{R}.1.5.1.2.1.2") == "2"               # lanB up
    assert pair.snmp("head2", f"{R}.1.1.2.0") == "3"                   # haoscarClusterState degraded
    c.carrier_up("head1", "lana")
    pair.wait_for(lambda: HB_PATH_UP in pair.trap_names("head2"), 5, "hbPathUp after healing")
    # LAN B muted: 100% loss with the link up.
    c.mute("head2", "lanb")
    pair.wait_for(lambda: pair.snmp("head2", f"{R}.1.5.1.2.1.2") == "3", 5, "lanB path down")
    time.sleep(1.0)
    assert pair.holders() == {"head1"} and pair.role("head2") == "standby"
    assert pair.snmp("head2", f"{R}.1.10.1.0") != "0"                  # an active alarm
    c.unmute("head2", "lanb")
    pair.wait_for(lambda: pair.snmp("head2", f"{R}.1.10.1.0") == "0", 5, "alarms cleared")
    assert pair.snmp("head2", f"{R}.1.1.4.0") == "0"                   # no failover at all


def test_no_failback_with_auto_failback_off_until_operator_switchover(pair: HaPair) -> None:
    pair.auto_failback = False
    pair.start_both()
    pair.kill9("head1")
    pair.wait_for(lambda: "head2" in pair.holders(), 5, "failover to head2")
    pair.start("head1")
    pair.wait_for(lambda: pair.role("head1") == "standby", 10, "head1 back as standby")
    time.sleep(1.5)
    assert pair.holders() == {"head2"}                                  # no automatic failback
    p = pair.cluster.run("nms", "snmpset", "-v3", "-l", "authPriv", "-u", "admin", "-a", "SHA-256",
                         "-A", AUTH, "-x", "AES", "-X", PRIV, f"{PUBLIC['head2']}:{SNMP_PORT}",
                         f"{R}.1.3.1.0", "i", "2", check=False)             # haoscarControlAction switchover
    assert p.returncode == 0, p.stderr
    pair.wait_for(lambda: pair.holders() == {"head1"}, 5, "switchover to head1")
    assert pair.snmp("head2", f"{R}.1.3.2.0") == "3"                   # haoscarControlResult succeeded


def test_forged_and_replayed_heartbeats_are_rejected_and_counted(pair: HaPair) -> None:
    pair.start_both()
    forged = hbproto.encode(hbproto.Heartbeat("head1", 1, 5, hbproto.Flag(0), epoch=1, seq=10**9),
                            b"not-the-key")
    key = (pair.workdir / "heartbeat.key").read_bytes()
    # Authentic messages recorded earlier: they echo a nonce head2 no longer has.
    replayed = hbproto.encode(hbproto.Heartbeat("head1", 1, 5, hbproto.Flag(0), epoch=1, seq=1,
                                                nonce=77, echo_nonce=12345), key)
    stale = hbproto.encode(hbproto.Heartbeat("head1", 1, 5, hbproto.Flag(0), epoch=10**6, seq=1,
                                             nonce=78, echo_nonce=54321), key)
    script = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "for h in sys.argv[1:]:\n    s.sendto(bytes.fromhex(h),('10.71.1.2',7789))\n")
    for _ in range(3):
        pair.cluster.run("node1", "python3", "-c", script, forged.hex(), replayed.hex(), stale.hex(), b"junk".hex())
    # The heartbeat process passes its counters on at least twice a second.
    pair.wait_for(lambda: int(pair.snmp("head2", f"{R}.1.13.4.0")) >= 3, 3, "haoscarHbAuthFailures")
    pair.wait_for(lambda: int(pair.snmp("head2", f"{R}.1.13.5.0")) >= 6, 3, "haoscarHbReplays (recordings)")
    pair.wait_for(lambda: int(pair.snmp("head2", f"{R}.1.13.6.0")) >= 3, 3, "haoscarMalformedPackets")
    assert pair.holders() == {"head1"} and pair.role("head2") == "standby"
    assert HEAD_DOWN not in pair.trap_names()


def test_snmp_flood_causes_no_false_failover(pair: HaPair) -> None:
    pair.start_both()
    walkers = []
    for head in ("head1", "head2", "head1", "head2", "head1", "head2"):
        loop = (f"end=$((SECONDS+6)); while [ $SECONDS -lt $end ]; do "
                f"snmpbulkwalk -v2c -c public -Cr50 -t 2 -r 0 {PUBLIC[head]}:{SNMP_PORT} .1 >/dev/null 2>&1; done")
        walkers.append(pair.cluster.popen("nms", "bash", "-c", loop))
    deadline = time.monotonic() + 15
    for w in walkers:
        w.wait(max(deadline - time.monotonic(), 1))
    assert pair.holders() == {"head1"} and pair.role("head2") == "standby"
    for head in ("head1", "head2"):
        assert pair.snmp(head, f"{R}.1.1.4.0") == "0"                  # failover count
    assert HEAD_DOWN not in pair.trap_names() and FAILOVER_STARTED not in pair.trap_names()
    requests = pair.snmp("head1", "1.3.6.1.2.1.11.1.0")                 # snmpInPkts: the flood was real
    assert int(requests) > 200, requests


def test_daemon_restarted_within_the_dead_time_keeps_its_alias_and_nothing_moves(pair: HaPair) -> None:
    # A production-like margin: the restart (1 to 3 s, more on a loaded machine: the
    # interpreter imports the whole daemon) well within the dead time.
    pair.dead_ms = 8000
    pair.initdead_ms = 8000
    pair.start_both()
    pair.kill9("head1")
    assert pair.holders() == {"head1"}                # the kernel keeps the alias
    pair.start("head1")
    pair.wait_for(lambda: pair.role("head1") == "active", 10, "head1 active again")
    assert pair.holders() == {"head1"} and pair.role("head2") == "standby"
    assert pair.snmp("head2", f"{R}.1.1.4.0") == "0"   # head2 never took over
    assert FAILOVER_STARTED not in pair.trap_names()


def test_the_heartbeat_key_is_rotated_with_a_reload_on_each_head_without_a_failover(pair: HaPair) -> None:
    pair.start_both()
    key = pair.workdir / "heartbeat.key"
    key.write_bytes(b"the-new-heartbeat-key-for-both-heads-0123456789")
    pair.signal("head1", signal.SIGHUP)
    samples = pair.watch_holders(2.0)                   # head2 reloads much later than a dead time
    pair.signal("head2", signal.SIGHUP)
    samples += pair.watch_holders(2.0)
    assert all(s == {"head1"} for s in samples)
    for head in ("head1", "head2"):
        assert pair.snmp(head, f"{R}.1.1.4.0") == "0"                # no failover
        assert pair.snmp(head, f"{R}.1.13.4.0") == "0"               # no heartbeat failed authentication
    assert HEAD_DOWN not in pair.trap_names()
    log = pair.log_text()
    assert log.count("heartbeat key rotation done: the old key is no longer accepted") == 2
    assert "reload refused" not in log
