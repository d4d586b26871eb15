"""One configuration for the cluster: two real daemons in head namespaces, SETs over SNMPv3
from the NMS namespace, read back from the other head.

A SET of a cluster-wide object is proposed to the peer, which validates, persists and
applies it before the receiving head answers; a heartbeat timing changed in one SET
(dead time and interval) goes in two steps on both heads, each safe against the other
head's timing, while a timing unsafe in its end state is refused with inconsistentValue;
with the peer frozen a change stays on the receiving head with a drift alarm until the
peer answers again; a head restarted with an old state directory takes the peer's newer
settings. No scenario may move the alias or count a failover.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time

from tests.integration.harness import R

from .hapair import AUTH, PRIV, PUBLIC, SNMP_PORT, HaPair

INTERVAL, DEAD = f"{R}.1.2.1.0", f"{R}.1.2.2.0"
SYNC = f"{R}.1.18"
STATUS, VERSION, UNCONFIRMED, ADOPTIONS = f"{SYNC}.1.0", f"{SYNC}.2.0", f"{SYNC}.12.0", f"{SYNC}.10.0"
FAILOVERS = f"{R}.1.1.4.0"
CONTROL, RESULT = f"{R}.1.3.1.0", f"{R}.1.3.2.0"
IN_SYNC, DRIFT = "3", "5"
CONFIG_DRIFT, CONFIG_DRIFT_CLEARED = "23", "24"     # haoscarNotifications.N
CONFIGURATION_DRIFT = "15"                          # probable cause


def snmpset(pair: HaPair, head: str, *args: str) -> subprocess.CompletedProcess:
    return pair.cluster.run("nms", "snmpset", "-v3", "-l", "authPriv", "-u", "admin", "-a", "SHA-256",
                            "-A", AUTH, "-x", "AES", "-X", PRIV, "-t", "3", "-r", "0",
                            f"{PUBLIC[head]}:{SNMP_PORT}", *args, check=False)


def no_failover(pair: HaPair) -> None:
    assert pair.holders() == {"head1"}
    assert pair.snmp("head1", FAILOVERS) == "0" and pair.snmp("head2", FAILOVERS) == "0"


def in_sync(pair: HaPair) -> bool:
    return (pair.snmp("head1", STATUS) == IN_SYNC and pair.snmp("head2", STATUS) == IN_SYNC
            and pair.snmp("head1", VERSION) == pair.snmp("head2", VERSION))


def test_sets_on_either_head_apply_on_both_before_they_are_answered(pair: HaPair) -> None:
    pair.start_both()
    pair.wait_for(lambda: in_sync(pair), 5, "the heads to agree at start")

    p = snmpset(pair, "head1", INTERVAL, "u", "120")
    assert p.returncode == 0, p.stderr
    assert pair.snmp("head2", INTERVAL) == "120"        # taken by the peer before the answer

    service = f"{R}.1.8.1"
    p = snmpset(pair, "head1", f"{service}.2.5", "s", "marker", f"{service}.3.5", "s", "true",
                f"{service}.14.5", "i", "4")                              # RowStatus createAndGo
    assert p.returncode == 0, p.stderr
    assert pair.snmp("head2", f"{service}.2.5") == '"marker"'
    assert pair.snmp("head2", f"{service}.14.5") == "1"                   # active

    alias = f"{R}.1.7.1"
    p = snmpset(pair, "head1", f"{alias}.2.2", "s", "10.71.0.51", f"{alias}.3.2", "u", "24",
                f"{alias}.4.2", "s", "pub", f"{alias}.8.2", "i", "4")
    assert p.returncode == 0, p.stderr
    assert pair.snmp("head2", f"{alias}.2.2") == '"10.71.0.51"'
    pair.wait_for(lambda: pair.cluster.has_address("head1", "pub", "10.71.0.51"), 5,
                  "head1, active, to hold the new alias")
    assert not pair.cluster.has_address("head2", "pub", "10.71.0.51")
    # And from the standby: the row destroyed on head2 is gone on head1, and so is the address.
    p = snmpset(pair, "head2", f"{alias}.8.2", "i", "6")                  # RowStatus destroy
    assert p.returncode == 0, p.stderr
    assert "No Such Instance" in pair.snmp("head1", f"{alias}.2.2")
    pair.wait_for(lambda: not pair.cluster.has_address("head1", "pub", "10.71.0.51"), 5,
                  "head1 to release the destroyed alias")

    pair.wait_for(lambda: in_sync(pair), 3, "the heads to agree")
    assert pair.snmp("head1", VERSION) == "4"
    # The operator's pull: nothing differs, and it says so.
    p = snmpset(pair, "head2", CONTROL, "i", "6")
    assert p.returncode == 0, p.stderr
    pair.wait_for(lambda: pair.snmp("head2", RESULT) == "3", 3, "pullPeerConfig to succeed")
    no_failover(pair)
    assert CONFIG_DRIFT not in pair.trap_names()


def timed_set(pair: HaPair, head: str, *args: str) -> tuple[subprocess.CompletedProcess, float, list[set[str]]]:
    """snmpset, answered; how long it took; who held the alias while it ran (sampled)."""
    done: list[subprocess.CompletedProcess] = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: done.append(snmpset(pair, head, *args)))
    worker.start()
    samples = []
    while worker.is_alive():
        samples.append(pair.holders())
        time.sleep(0.02)
    worker.join()
    return done[0], time.monotonic() - started, samples


def test_one_set_of_dead_time_and_interval_applies_in_safe_steps_without_a_failover(pair: HaPair) -> None:
    pair.interval_ms, pair.dead_ms, pair.initdead_ms = 200, 1000, 5000
    pair.start_both()
    pair.wait_for(lambda: in_sync(pair), 5, "the heads to agree at start")
    # An end state unsafe on its own is refused, and nothing moves on either head.
    p = snmpset(pair, "head1", DEAD, "u", "1500", INTERVAL, "u", "600")
    assert p.returncode != 0 and "inconsistentValue" in p.stdout + p.stderr, p.stdout + p.stderr
    for head in ("head1", "head2"):
        assert pair.snmp(head, INTERVAL) == "200" and pair.snmp(head, DEAD) == "1000"

    # 1500 ms beats next to a 1000 ms dead time would be a false failover: the heads go
    # through dead time 4500 with the old interval first, then the new interval.
    p, took, during = timed_set(pair, "head1", DEAD, "u", "4500", INTERVAL, "u", "1500")
    assert p.returncode == 0, p.stdout + p.stderr + pair.log_text()[-5000:]
    for head in ("head1", "head2"):
        assert pair.snmp(head, INTERVAL) == "1500" and pair.snmp(head, DEAD) == "4500"
    after = pair.watch_holders(6.0)             # longer than the new dead time
    assert all(held == {"head1"} for held in during + after), during + after
    no_failover(pair)
    print(f"slow-down SET answered in {took * 1000:.0f} ms")

    # And back, from head2: the faster beat first, the shorter dead time one old beat later.
    p, took, during = timed_set(pair, "head2", DEAD, "u", "1000", INTERVAL, "u", "200")
    assert p.returncode == 0, p.stdout + p.stderr + pair.log_text()[-5000:]
    assert took >= 1.5                         # the step 2 wait: one old interval
    for head in ("head1", "head2"):
        assert pair.snmp(head, INTERVAL) == "200" and pair.snmp(head, DEAD) == "1000"
    after = pair.watch_holders(3.0)
    assert all(held == {"head1"} for held in during + after), during + after
    no_failover(pair)
    print(f"speed-up SET answered in {took * 1000:.0f} ms")

    pair.wait_for(lambda: in_sync(pair), 5, "the heads to agree")
    assert pair.snmp("head1", VERSION) == pair.snmp("head2", VERSION) == "4"
    logs = pair.log_text()
    assert "step 1 applied on both heads" in logs and "step 2 applied on both heads" in logs
    assert "step 1 of 2 of a heartbeat timing change" in logs
    assert CONFIG_DRIFT not in pair.trap_names()
    assert pair.role("head2") == "standby"


def test_a_set_while_the_peer_is_frozen_stays_here_with_a_drift_alarm_then_converges(pair: HaPair) -> None:
    pair.interval_ms, pair.dead_ms, pair.initdead_ms = 200, 3000, 3000   # the freeze stays inside it
    pair.start_both()
    pair.wait_for(lambda: in_sync(pair), 5, "the heads to agree at start")
    pair.signal("head1", signal.SIGSTOP)            # the daemon only: its heartbeat goes on
    try:
        p = snmpset(pair, "head2", INTERVAL, "u", "250")
        assert p.returncode == 0, p.stderr           # accepted here, said honestly below
        assert pair.snmp("head2", INTERVAL) == "250"
        assert pair.snmp("head2", STATUS) == DRIFT
        assert pair.snmp("head2", UNCONFIRMED) == "1"
        assert (CONFIGURATION_DRIFT, "cluster-config") in pair.alarms("head2")
    finally:
        pair.signal("head1", signal.SIGCONT)
    pair.wait_for(lambda: pair.snmp("head1", INTERVAL) == "250", 5, "head1 to take the change")
    pair.wait_for(lambda: in_sync(pair), 5, "the heads to agree again")
    assert (CONFIGURATION_DRIFT, "cluster-config") not in pair.alarms("head2")
    pair.wait_for(lambda: {CONFIG_DRIFT, CONFIG_DRIFT_CLEARED} <= set(pair.trap_names("head2")), 5,
                  "the drift and drift-cleared notifications")
    no_failover(pair)


def test_a_head_restarted_with_an_old_state_directory_adopts_the_peers_settings(pair: HaPair) -> None:
    pair.start_both()
    pair.wait_for(lambda: in_sync(pair), 5, "the heads to agree at start")
    state2, old = pair.workdir / "state-head2", pair.workdir / "state-head2.old"

    def restart_head2(before_start=None) -> None:  # noqa: ANN001
        pair.procs["head2"].terminate()
        pair.procs["head2"].wait(10)
        if before_start:
            before_start()
        pair.start("head2")
        pair.wait_for(lambda: pair.role("head2") == "standby", 10, "head2 back as standby")

    restart_head2(lambda: shutil.copytree(state2, old))
    p = snmpset(pair, "head1", INTERVAL, "u", "130")
    assert p.returncode == 0, p.stderr
    assert pair.snmp("head2", INTERVAL) == "130"

    def restore() -> None:
        shutil.rmtree(state2)
        shutil.copytree(old, state2)

    restart_head2(restore)
    pair.wait_for(lambda: in_sync(pair), 5, "head2 to adopt head1's settings")
    assert pair.snmp("head2", INTERVAL) == "130"
    assert int(pair.snmp("head2", ADOPTIONS)) >= 1
    assert "adopted (version 1@head1)" in (pair.logs[-1]).read_text()
    no_failover(pair)
