#!/usr/bin/env python3
"""What one configuration for the cluster costs a SET, and how fast a returning head catches up.

Two real daemons in head namespaces (the scenario topology: two private LANs and a public
one), the NMS namespace sending `snmpset` over SNMPv3 authPriv, as an operator would.
Three figures:

* SET latency, peer present: a cluster-wide SET (haoscarGarpCount, alternating values)
  is proposed to the peer, which validates, persists and applies it before the answer;
  the time of the whole `snmpset` command, median / p90 / worst over N SETs;
* SET latency, per-head only: the same number of SETs of an object that changes no
  cluster-wide setting (haoscarControlServiceIndex): no proposal; the difference
  between the two is what the exchange adds;
* catch-up: the peer's daemon frozen (SIGSTOP, its heartbeat process goes on), one SET
  on head1 (answered after the proposal's 800 ms wait, applied there only), the peer
  resumed: the time from the resume until the peer reads the new value over SNMP.

Run as root from the repository:  sudo .venv/bin/python bench/bench_config_sync.py [--sets N]
Figures vary with the machine's load; they are printed, never judged.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.harness import R  # noqa: E402
from tests.scenarios.hapair import AUTH, PRIV, PUBLIC, SNMP_PORT, HaPair  # noqa: E402
from tests.scenarios.netns import Cluster  # noqa: E402

GARP, SERVICE_INDEX, STATUS = f"{R}.1.2.9.0", f"{R}.1.3.6.0", f"{R}.1.18.1.0"


def snmpset(pair: HaPair, head: str, *args: str) -> float:
    """Seconds the whole command took; raises if the SET was refused."""
    start = time.perf_counter()
    p = pair.cluster.run("nms", "snmpset", "-v3", "-l", "authPriv", "-u", "admin", "-a", "SHA-256",
                         "-A", AUTH, "-x", "AES", "-X", PRIV, "-t", "3", "-r", "0",
                         f"{PUBLIC[head]}:{SNMP_PORT}", *args, check=False)
    took = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"SET refused: {p.stdout}{p.stderr}")
    return took


def figures(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(f"{label:34s} n={len(ms):3d}  median {statistics.median(ms):6.1f} ms  p90 {p90:6.1f} ms  "
          f"worst {ms[-1]:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", type=int, default=40, help="SETs per figure (default 40)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp, Cluster() as cluster:
        pair = HaPair(cluster, Path(tmp), interval_ms=200, dead_ms=3000, initdead_ms=3000)
        pair.start_trapd()
        try:
            pair.start_both()
            pair.wait_for(lambda: pair.snmp("head2", STATUS) == "3", 10, "the heads to agree")
            cluster_wide = [snmpset(pair, "head1", GARP, "u", str(3 + i % 2)) for i in range(args.sets)]
            per_head = [snmpset(pair, "head1", SERVICE_INDEX, "u", str(i % 2)) for i in range(args.sets)]
            figures("SET cluster-wide (proposed)", cluster_wide)
            figures("SET per-head (no proposal)", per_head)
            extra = statistics.median(cluster_wide) - statistics.median(per_head)
            print(f"{'the exchange adds (medians)':34s} {extra * 1000:6.1f} ms")

            pair.signal("head2", signal.SIGSTOP)
            try:
                alone = snmpset(pair, "head1", GARP, "u", "7")
            finally:
                pair.signal("head2", signal.SIGCONT)
            resumed = time.perf_counter()
            deadline = resumed + 10
            while pair.snmp("head2", GARP) != "7" and time.perf_counter() < deadline:
                time.sleep(0.01)
            caught_up = time.perf_counter() - resumed
            print(f"{'SET with the peer frozen':34s} answered in {alone * 1000:6.1f} ms (applied on head1 only)")
            print(f"{'peer resumed -> value read there':34s} {caught_up * 1000:6.1f} ms "
                  f"(includes one snmpget of 10 ms polling)")
            print(f"failovers: head1 {pair.snmp('head1', f'{R}.1.1.4.0')}, head2 {pair.snmp('head2', f'{R}.1.1.4.0')}")
        finally:
            pair.stop_all()


if __name__ == "__main__":
    main()
