#!/usr/bin/env python3
"""From a cut node to the membership source's listener call on the surviving nodes,
beside Corosync's own log time for the same membership change.

A Corosync lab of --nodes nodes (3; tests/scenarios/corolab.py, without Pacemaker unless
--pacemaker) with the membership source running in every node
(tests/integration/programs/corosync_watch.py). Then --cuts times (5): cut one node on
both LANs (nftables on its bridge ports; the nodes take turns), wait until every
survivor's source has told the node gone, heal, wait until everyone is back.

For each cut and each survivor it takes, from the moment of the cut:
  log      Corosync's own log line "A new membership (...) was formed. Members left: N"
           (wall-clock timestamps of corosync.log, against the wall clock at the cut);
  quorum   Corosync's "[QUORUM] Members[...]" line after it (the quorum service's news,
           which libquorum's callback carries);
  listener the source's listener call without the node (monotonic clock of the watch
           program against the monotonic clock at the cut: one machine, one clock);
  trap     with --daemon: the real daemon runs on every node (membership.backend =
           "corosync", Pacemaker on) with an snmptrapd on the node's loopback; the
           moment haoscarClusterNodeLeft appears in the survivor's snmptrapd log (the
           bench reads the log every 20 ms: that is the resolution).
and prints each, then median and worst. It never fails on a number.

Run as root from the repository root:
    sudo .venv/bin/python bench/bench_corosync.py [--cuts 5] [--nodes 3] [--token 1000] [--daemon]
Everything it creates is removed at the end, on Ctrl-C and on failure.
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scenarios.corolab import CoroLab, MembershipWatch, online  # noqa: E402

TRAP = "haoscarClusterNodeLeft"

LOG_LINE = re.compile(r"^(\w{3} \d{2} \d{2}:\d{2}:\d{2}\.\d{3}) .*?\[(TOTEM|QUORUM)\s*\] (.*)$")


def log_times(text: str, after_wall: float) -> list[tuple[float, str, str]]:
    """(wall time, service, message) of the corosync.log lines at or after after_wall."""
    year = datetime.datetime.fromtimestamp(after_wall).year
    out = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        stamp = datetime.datetime.strptime(f"{year} {m.group(1)}", "%Y %b %d %H:%M:%S.%f").timestamp()
        if stamp >= after_wall - 0.001:
            out.append((stamp, m.group(2), m.group(3)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--token", type=int, default=1000, help="totem token in ms (>= 1000)")
    parser.add_argument("--pacemaker", action="store_true", help="run Pacemaker too")
    parser.add_argument("--daemon", action="store_true",
                        help="run the daemon on every node (3 nodes, Pacemaker on) and time its notification")
    args = parser.parse_args()
    if args.daemon:
        args.pacemaker, args.nodes = True, 3
    rows: list[tuple[int, str, str, float, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-corosync-") as tmp:
        with CoroLab(Path(tmp), nodes=args.nodes, token_ms=args.token, pacemaker=args.pacemaker,
                     prefix=f"cb{__import__('os').getpid() % 10000}") as lab:
            lab.start(timeout=90)
            token = lab.cmap("node1", "runtime.config.totem.token")["runtime.config.totem.token"]
            print(f"lab: {args.nodes} nodes, token {args.token} ms (effective {token} ms), "
                  f"started in {lab.timings}")
            watches = {n: MembershipWatch(lab, n, lifetime_s=60 + 40 * args.cuts) for n in lab.nodes}
            CoroLab.wait_for(lambda: all(online(w.latest()) == set(lab.nodes) for w in watches.values()), 30,
                             "every source to see every node")
            names = list(lab.nodes)
            daemons = start_daemons(lab, Path(tmp)) if args.daemon else {}
            print(f"{'cut':>3} {'node':>6} {'survivor':>8} {'log s':>7} {'quorum s':>8} {'listener s':>10} "
                  f"{'listener-quorum ms':>18} {'trap s':>7}")
            for i in range(args.cuts):
                victim = names[(len(names) - 1 - i) % len(names)]
                survivors = [n for n in names if n != victim]
                time.sleep(1.0)
                before = {s: daemons[s].traps(TRAP) for s in daemons}
                t_mono, t_wall = time.monotonic(), time.time()
                lab.cut(victim)
                try:
                    trapped = wait_traps({s: daemons[s] for s in survivors if s in daemons}, before, 30)
                    for s in survivors:
                        CoroLab.wait_for(lambda: victim not in online(watches[s].latest())
                                         and watches[s].latest() is not None, 30, f"{s} to see {victim} leave")
                finally:
                    lab.heal(victim)
                for s in survivors:
                    heard = watches[s].first_since(t_mono, lambda m: m is not None and victim not in online(m))
                    lines = log_times(lab.corosync_log(s), t_wall)
                    formed = next((t for t, svc, msg in lines if svc == "TOTEM"
                                   and msg.startswith("A new membership") and "left" in msg), float("nan"))
                    quorum = next((t for t, svc, msg in lines if svc == "QUORUM" and msg.startswith("Members[")
                                   and t >= formed), float("nan"))
                    trap = trapped.get(s, float("nan")) - t_mono
                    row = (i + 1, victim, s, formed - t_wall, quorum - t_wall, heard - t_mono, trap)
                    rows.append(row)
                    print(f"{row[0]:>3} {victim:>6} {s:>8} {row[3]:>7.3f} {row[4]:>8.3f} {row[5]:>10.3f} "
                          f"{(row[5] - row[4]) * 1000:>18.0f} {trap:>7.3f}")
                CoroLab.wait_for(lambda: all(online(w.latest()) == set(lab.nodes) for w in watches.values()), 60,
                                 f"{victim} back everywhere")
                if daemons:
                    CoroLab.wait_for(lambda: all(d.members() == dict.fromkeys(lab.nodes, "true")
                                                 for d in daemons.values()), 60, f"{victim} back in every MIB")
            for d in daemons.values():
                d.daemon.terminate()
                d.daemon.wait(15)
    for label, k in (("log", 3), ("quorum", 4), ("listener", 5), ("trap", 6)):
        values = [r[k] for r in rows if r[k] == r[k]]
        if values:
            print(f"{label:>8}: median {statistics.median(values):.3f} s, worst {max(values):.3f} s "
                  f"({len(values)} samples)")
    traps = [(r[6] - r[3]) * 1000 for r in rows if r[6] == r[6] and r[3] == r[3]]
    if traps:
        print(f"trap at snmptrapd after Corosync's membership line: median {statistics.median(traps):.0f} ms, "
              f"worst {max(traps):.0f} ms")
    gaps = [(r[5] - r[4]) * 1000 for r in rows if r[4] == r[4]]
    if gaps:
        print(f"listener after Corosync's quorum line: median {statistics.median(gaps):.0f} ms, "
              f"worst {max(gaps):.0f} ms (log stamps have 1 ms resolution)")
    return 0


def start_daemons(lab: CoroLab, workdir: Path) -> dict:  # type: ignore[type-arg]
    """The daemon and an snmptrapd on every node, as the scenario test runs them; waits
    until each MIB lists every node as a member."""
    from tests.scenarios.test_corosync_daemon import Node

    daemons = {name: Node(lab, name, workdir) for name in lab.nodes}
    CoroLab.wait_for(lambda: all(d.members() == dict.fromkeys(lab.nodes, "true") for d in daemons.values()),
                     60, "every daemon to list every node")
    return daemons


def wait_traps(daemons: dict, before: dict[str, int], timeout: float) -> dict[str, float]:  # type: ignore[type-arg]
    """The monotonic time each daemon's snmptrapd log first showed one more TRAP (20 ms polls)."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(daemons) and time.monotonic() < deadline:
        for name, d in daemons.items():
            if name not in seen and d.traps(TRAP) > before[name]:
                seen[name] = time.monotonic()
        time.sleep(0.02)
    return seen


if __name__ == "__main__":
    raise SystemExit(main())
