#!/usr/bin/env python3
"""Heartbeats under SNMP load: false failovers and the worst heartbeat gap at fast timing.

Two real daemons (head1 active, head2 standby) in the network namespaces of the scenario
tests, heartbeat every 20 ms, dead time 60 ms (the fastest timing the configuration
accepts without a warning). Three phases of --seconds each:

* quiet   nothing but the heartbeats;
* walks   8 parallel `snmpbulkwalk` loops (4 per head, max-repetitions 50) from the NMS
          namespace over the whole MIB view;
* junk    the walks plus 2,500 undecodable datagrams a second to each head's SNMP port.

After each phase it reads from both heads: haoscarFailoverCount (a false failover is any
increase: the active head never stopped), haoscarHbPathMaxGap of every path (the longest
time between two valid heartbeats; reset between phases with the resetCounters action),
and the CPU time each daemon used. The holders of the alias are sampled every 100 ms:
any sample with head2 holding it is a double holder or a false failover the client saw.

It never fails on a number: it prints the figures. Run as root from the repository root:
    sudo .venv/bin/python bench/bench_flood.py [--seconds 120] [--interval-ms 20 --dead-ms 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from haoscar_snmp.core.bug import BUG_MARKER

REPO = Path(__file__).resolve().parents[1]
R = "1.3.6.1.4.1.32473.1"
HEADS = ("head1", "head2")
JUNK_RATE = 2500          # datagrams per second per head
WALKERS_PER_HEAD = 4

# A junk sender: bounded in time and count, to one address only.
_JUNK = r"""
import os, socket, sys, time
host, port, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + seconds
sent, start = 0, time.monotonic()
while time.monotonic() < end and sent < rate * seconds + 10:
    due = start + sent / rate
    now = time.monotonic()
    if due > now:
        time.sleep(min(due - now, 0.01))
        continue
    try:
        s.sendto(os.urandom(40 + sent % 200), (host, port))
    except OSError:
        pass
    sent += 1
print(sent)
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def daemon_pid(pair: object, head: str) -> int:
    """The daemon's own pid (the Popen is `ip netns exec ... env ... python`, which execs)."""
    return pair.procs[head].pid  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="length of each phase (default 120)")
    p.add_argument("--interval-ms", type=int, default=20)
    p.add_argument("--dead-ms", type=int, default=60)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_flood.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("ip", "nft", "snmpbulkwalk", "snmpset"):
        if not shutil.which(tool):
            print(f"missing: {tool}", file=sys.stderr)
            return 2
    sys.path.insert(0, str(REPO))
    from tests.scenarios.hapair import AUTH, PRIV, PUBLIC, SNMP_PORT, HaPair
    from tests.scenarios.netns import Cluster

    def _terminate(signum, frame):  # noqa: ANN001 - unwind through `finally`
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    work = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    cluster = Cluster(prefix=f"bf{os.getpid() % 10000}")
    try:
        with cluster:
            pair = HaPair(cluster, work, interval_ms=args.interval_ms, dead_ms=args.dead_ms,
                          initdead_ms=2000)
            pair.start_trapd()
            pair.start_both()
            print(f"heartbeats under SNMP load ({time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
                  f"{os.cpu_count()} CPUs, {os.uname().release}); interval {args.interval_ms} ms, "
                  f"dead time {args.dead_ms} ms, {args.seconds:.0f} s per phase")

            def get(head: str, oid: str) -> str:
                return pair.snmp(head, oid)

            def reset() -> None:
                for head in HEADS:
                    cluster.run("nms", "snmpset", "-v3", "-l", "authPriv", "-u", "admin", "-a", "SHA-256",
                                "-A", AUTH, "-x", "AES", "-X", PRIV, "-t", "2", "-r", "2",
                                f"{PUBLIC[head]}:{SNMP_PORT}", f"{R}.1.3.1.0", "i", "4", check=False)

            def gaps(head: str) -> list[int]:
                out = cluster.run("nms", "snmpwalk", "-v2c", "-c", "public", "-On", "-Oqv", "-t", "2",
                                  "-r", "2", f"{PUBLIC[head]}:{SNMP_PORT}", f"{R}.1.5.1.9", check=False).stdout
                return [int(v) for v in out.split() if v.isdigit()]

            def failovers() -> dict[str, int]:
                return {h: int(get(h, f"{R}.1.1.4.0") or 0) for h in HEADS}

            rows = []
            for phase in ("quiet", "walks", "junk"):
                reset()
                before = failovers()
                cpu0 = {h: cpu_seconds(daemon_pid(pair, h)) for h in HEADS}
                load: list[subprocess.Popen] = []
                if phase in ("walks", "junk"):
                    for head in HEADS:
                        for _ in range(WALKERS_PER_HEAD):
                            loop = (f"end=$((SECONDS+{int(args.seconds)})); while [ $SECONDS -lt $end ]; do "
                                    f"snmpbulkwalk -v2c -c public -Cr50 -t 2 -r 0 {PUBLIC[head]}:{SNMP_PORT} "
                                    f".1 >/dev/null 2>&1; done")
                            load.append(cluster.popen("nms", "bash", "-c", loop))
                if phase == "junk":
                    for head in HEADS:
                        load.append(cluster.popen("nms", sys.executable, "-c", _JUNK, PUBLIC[head],
                                                  str(SNMP_PORT), str(JUNK_RATE), str(args.seconds)))
                samples: list[set[str]] = []
                stop = threading.Event()

                def sample() -> None:
                    while not stop.is_set():
                        samples.append(pair.holders())
                        stop.wait(0.1)
                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                time.sleep(args.seconds)
                stop.set()
                sampler.join(5)
                for proc in load:
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                after = failovers()
                cpu = {h: (cpu_seconds(daemon_pid(pair, h)) - cpu0[h]) / args.seconds * 100 for h in HEADS}
                worst = {h: max(gaps(h), default=0) for h in HEADS}
                requests = get("head1", "1.3.6.1.2.1.11.1.0")
                row = dict(phase=phase, false_failovers=sum(after[h] - before[h] for h in HEADS),
                           gap1=worst["head1"] / 1000, gap2=worst["head2"] / 1000,
                           cpu1=cpu["head1"], cpu2=cpu["head2"],
                           double=sum(1 for s in samples if len(s) > 1),
                           moved=sum(1 for s in samples if s != {"head1"}), samples=len(samples),
                           in_pkts=requests)
                rows.append(row)
                print(f"  {phase:6} false failovers {row['false_failovers']}, worst gap head1<-head2 "
                      f"{row['gap1']:.1f} ms, head2<-head1 {row['gap2']:.1f} ms, cpu {row['cpu1']:.0f}% / "
                      f"{row['cpu2']:.0f}%, samples not {{head1}}: {row['moved']}/{row['samples']}", flush=True)
            print(f"\n{'phase':6} {'false failovers':>15} {'worst gap (ms) h1<-h2':>22} {'h2<-h1':>7} "
                  f"{'cpu h1':>7} {'cpu h2':>7} {'two holders':>12}")
            for r in rows:
                print(f"{r['phase']:6} {r['false_failovers']:>15} {r['gap1']:>22.1f} {r['gap2']:>7.1f} "
                      f"{r['cpu1']:>6.0f}% {r['cpu2']:>6.0f}% {r['double']:>5}/{r['samples']}")
            print(f"dead time {args.dead_ms} ms; snmpInPkts at head1 after the run: {rows[-1]['in_pkts']}")
            pair.stop_all()
            if BUG_MARKER in pair.log_text():
                print("WARNING: a daemon log holds the bug marker")
        return 0
    finally:
        cluster.teardown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
