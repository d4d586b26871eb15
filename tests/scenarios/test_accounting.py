"""A failover in the outage ledger: two real daemons in head namespaces; the primary is
killed, the standby takes the alias. The standby's ledger counts the alias (and the
cluster's service) out of service from the primary's last heartbeat (declared silent,
less the dead time) to its own takeover completed, which is the dead time plus the
measured failover at least; the primary head is down from its last heartbeat on."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.integration.harness import R

from .hapair import ALIAS, HaPair


def outages(pair: HaPair, head: str) -> list[dict]:
    p = subprocess.run([sys.executable, "-m", "haoscar_snmp", "report", "--state-dir",
                        str(pair.workdir / f"state-{head}"), "--outages", "--format", "json"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["rows"]


def test_a_failover_is_an_outage_from_the_last_heartbeat_to_the_takeover(pair: HaPair) -> None:
    pair.start_both()
    # head2 has seen head1 hold the alias (its ledger looks every second; a cold start of
    # the pair is an outage until the primary holds the alias, which it may count too).
    time.sleep(1.2)
    pair.wait_for(lambda: not any(o["open"] for o in outages(pair, "head2")), 5, "head2 to see the alias held")
    pair.kill9("head1")
    pair.wait_for(lambda: "head2" in pair.holders(), 5, "head2 to take the alias")
    pair.wait_for(lambda: any(o["subject"] == ALIAS and not o["open"] for o in outages(pair, "head2")), 5,
                  "head2's ledger to close the alias's outage")
    failover_s = int(pair.snmp("head2", f"{R}.1.1.6.0")) / 1000      # haoscarLastFailoverDuration
    dead_s = pair.dead_ms / 1000
    rows = outages(pair, "head2")
    alias = [o for o in rows if o["subject"] == ALIAS][-1]
    cluster = [o for o in rows if o["subject_type"] == "cluster"][-1]
    for outage in (alias, cluster):
        assert dead_s + failover_s - 0.05 <= outage["duration_s"] <= dead_s + failover_s + 1.0, (outage, failover_s)
        assert "head1" in outage["cause"]
    [head1] = [o for o in rows if o["subject"] == "head1"]
    assert head1["open"] and "heartbeat" in head1["cause"]
