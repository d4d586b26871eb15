"""The public LAN as part of a head's fitness: public targets, pinged by each head.

Two real daemons in head namespaces (100 ms heartbeats, 400 ms dead time), with the
client (10.71.0.100) and the NMS station (10.71.0.200) as public targets, pinged every
100 ms (down after 3 unanswered, up after 2 answered, a 2 s hold-down). The fault: the
active head's public link goes silent while its carrier stays up (its bridge port muted
with nftables), as a dead switch port, a wrong VLAN or an upstream failure would leave
it. docs/failover.md has the rules these tests follow.
"""

from __future__ import annotations

import time

from tests.integration.harness import R

from .hapair import ALIAS, HaPair

# haoscarNotifications.N
PUBLIC_LAN_LOST, PUBLIC_LAN_REGAINED, FAILBACK_COMPLETED = "25", "26", "7"
PUBLIC_LAN_UNREACHABLE = "17"          # haoscarAlarmProbableCause
LOST, REACHED = "4", "3"               # haoscarHeadPublicState
REACHABLE, UNREACHABLE = "2", "3"      # haoscarPubTargetStatus
TARGETS = """
    [failover]
    public_targets = ["10.71.0.100", "10.71.0.200"]
    public_probe_interval_ms = 100
    public_rise = 2
    public_fall = 3
    public_hold_down_ms = 2000
    """


def start(pair: HaPair) -> None:
    pair.extra_toml = TARGETS
    pair.start_both()
    # both heads reach both targets, each as the other says too
    for head in ("head1", "head2"):
        pair.wait_for(lambda head=head: pair.snmp(head, f"{R}.1.4.1.12.1", f"{R}.1.4.1.12.2").split()
                      == [REACHED, REACHED], 5, f"{head} to see both heads reach the public LAN")
    assert pair.snmp("head1", f"{R}.1.4.1.11.1") == "2"                 # haoscarHeadPublicReached


def test_a_silent_public_link_on_the_active_head_moves_the_service_to_the_standby(pair: HaPair) -> None:
    c = pair.cluster
    start(pair)
    c.udp_echo("head1")
    c.udp_echo("head2")
    assert c.udp_ask("client", ALIAS) == "head1"
    muted = time.monotonic()
    c.mute("head1", "pub")
    samples: list[tuple[float, set[str]]] = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        samples.append((time.monotonic() - muted, pair.holders()))
        if samples[-1][1] == {"head2"}:
            break
        time.sleep(0.02)
    assert all(len(s) <= 1 for _, s in samples), samples
    # 3 probes unanswered (judged one interval after each), up to one interval of phase,
    # the settling for the peer's word, then the handover over the private LANs
    # (bench/bench_failover.py measures how long that takes).
    assert any(s == {"head2"} for _, s in samples), samples[-5:]
    pair.wait_for(lambda: c.udp_ask("client", ALIAS, timeout_s=0.3) == "head2", 5,
                  "the client to be served by head2")
    # head2 tells the NMS (head1 cannot reach it), and both MIBs say which head lost it
    pair.wait_for(lambda: PUBLIC_LAN_LOST in pair.trap_names("head2"), 5, "haoscarPublicLanLost from head2")
    lost = [binds for _, binds in pair.traps()
            if binds.get(".1.3.6.1.6.3.1.1.4.1.0", "").endswith(f".0.{PUBLIC_LAN_LOST}")]
    assert any(any("head1" in v for v in b.values()) for b in lost), lost
    assert pair.snmp("head2", f"{R}.1.4.1.12.1") == LOST
    assert pair.snmp("head2", f"{R}.1.19.5.1.3.1.1", f"{R}.1.19.5.1.3.1.2").split() == [UNREACHABLE] * 2
    assert pair.snmp("head2", f"{R}.1.19.5.1.3.2.1") == REACHABLE
    assert (PUBLIC_LAN_UNREACHABLE, "head1") in pair.alarms("head2")
    assert pair.role("head2") == "active" and pair.snmp("head2", f"{R}.1.1.4.0") == "0"   # a handover
    log = pair.log_text()
    assert "head1 reaches none of its 2 public targets" in log and "handing over" in log
    # The link comes back: head1 counts as reaching the LAN after the 2 s hold-down, then
    # fails back (auto-failback, no delay). One holder throughout.
    c.unmute("head1", "pub")
    healed = time.monotonic()
    samples2 = pair.watch_holders(1.5)
    assert all(s == {"head2"} for s in samples2), samples2        # the hold-down holds it
    pair.wait_for(lambda: pair.holders() == {"head1"}, 6, "head1 to fail back after the hold-down")
    assert time.monotonic() - healed >= 2.0
    pair.wait_for(lambda: PUBLIC_LAN_REGAINED in pair.trap_names(), 5, "haoscarPublicLanRegained")
    pair.wait_for(lambda: (PUBLIC_LAN_UNREACHABLE, "head1") not in pair.alarms("head2"), 5, "alarm cleared")
    pair.wait_for(lambda: c.udp_ask("client", ALIAS, timeout_s=0.3) == "head1", 5, "the client back on head1")


def test_when_neither_head_reaches_the_public_targets_nothing_moves(pair: HaPair) -> None:
    c = pair.cluster
    start(pair)
    for host in ("client", "nms"):
        c.mute(host, "pub")                       # the targets are gone for both heads
    samples = pair.watch_holders(2.0)
    assert all(s == {"head1"} for s in samples), samples
    log = pair.log_text()
    assert "reaches none either: keeping the alias" in log, log[-6000:]
    for host in ("client", "nms"):
        c.unmute(host, "pub")
    pair.wait_for(lambda: pair.snmp("head1", f"{R}.1.4.1.12.1") == REACHED, 6, "head1 to reach them again")
    assert pair.holders() == {"head1"}
    for head in ("head1", "head2"):
        assert pair.snmp(head, f"{R}.1.1.4.0") == "0"
