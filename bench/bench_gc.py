#!/usr/bin/env python3
"""Full collections in a big daemon: how often, how long, and what they walk.

Two real daemons (head1 active, head2 standby) in the scenario namespaces, in the
configuration of `bench_flood.py --scrape` (--services 2,000 TCP service checks every
10 s, --lan-targets 2,000 LAN interfaces polled every second, 4 public targets, the web
panel on; heartbeat 20 ms, dead time 60 ms), no SNMP or view client beyond the bench's
own few reads. Each daemon runs with bench/gcwatch/sitecustomize.py on its PYTHONPATH,
which records every collection from inside the daemon process (`gc.callbacks`: the
generation, how long, how many objects collected) and its VmRSS; with --heap, also what
generation 2 holds (the objects not frozen at start-up), by type, and where the new ones
hang from (that sampling holds the GIL, so the loop lag of a --heap run is not a figure).

After --settle seconds (30) both heads' counters are reset (resetCounters), then for
--seconds (120): per head, collections per minute of each generation, the duration of the
full (generation 2) ones (median, worst), the objects they collected, the VmRSS at the
start and end of the window, and head1's worst loop lag over the window
(haoscarPerfLoopLagMax). Nothing passes or fails on a number.

Run as root from the repository root:
    sudo .venv/bin/python bench/bench_gc.py [--seconds 120] [--heap]
Everything lives in the namespaces of tests.scenarios.netns.Cluster and is removed at the
end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
from benchsignals import unwind_on_signals  # noqa: E402  (bench/ is on sys.path)
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

from bench_flood import HEADS, LOOP_LAG_MAX, TCP_PORT, _LISTENER, Env, build_targets, loaded_pair, loadavg, stop_all  # noqa: E402
from flood_scrape import web_toml  # noqa: E402


def summarise(path: Path, start: float, end: float) -> dict[str, Any]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    window = [x for x in lines if start <= x["t"] <= end]
    minutes = (end - start) / 60
    colls = [x for x in window if "gen" in x]
    full = [x for x in colls if x["gen"] == 2]
    rss = [x["rss_kib"] for x in window if "rss_kib" in x]
    out: dict[str, Any] = {
        "per_min": {g: round(sum(1 for x in colls if x["gen"] == g) / minutes, 1) for g in (0, 1, 2)},
        "full_ms_median": statistics.median([x["ms"] for x in full]) if full else None,
        "full_ms_worst": max((x["ms"] for x in full), default=None),
        "full_cpu_ms_median": statistics.median([x.get("cpu_ms", 0) for x in full]) if full else None,
        "full_cpu_ms_worst": max((x.get("cpu_ms", 0) for x in full), default=None),
        "full_ms_total_per_min": round(sum(x["ms"] for x in full) / minutes, 1),
        "young_ms_worst": max((x["ms"] for x in colls if x["gen"] < 2), default=None),
        "full_collected_median": statistics.median([x["collected"] for x in full]) if full else None,
        "rss_kib_first": rss[0] if rss else None, "rss_kib_last": rss[-1] if rss else None,
    }
    heaps = [x for x in window if x.get("kind") == "heap"]
    if heaps:
        out["gen2"] = [x["gen2"] for x in heaps]
        out["last_heap"] = heaps[-1]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--settle", type=float, default=30.0)
    p.add_argument("--services", type=int, default=2000)
    p.add_argument("--lan-targets", type=int, default=2000)
    p.add_argument("--heap", action="store_true", help="also sample generation 2 by type (distorts the lag)")
    p.add_argument("--every", type=float, default=10.0, help="seconds between the daemon's log lines")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_gc.py needs root (network namespaces)", file=sys.stderr)
        return 2
    # bench_flood's configuration builders read these.
    args.interval_ms, args.dead_ms, args.service_interval_ms = 20, 60, 10000
    args.lan_poll_ms, args.public_targets, args.public_probe_ms, args.daemon_env = 1000, 4, 100, []
    from tests.scenarios.netns import Cluster


    unwind_on_signals()

    work = Path(tempfile.mkdtemp(prefix="bench-gc-"))
    cluster = Cluster(prefix=f"bg{os.getpid() % 10000}")
    listeners: list[subprocess.Popen] = []
    try:
        with cluster:
            env = Env(cluster, work)
            public = build_targets(env, args)
            for head in HEADS:
                proc = cluster.popen(head, sys.executable, "-c", _LISTENER, str(TCP_PORT),
                                     f"{args.seconds + args.settle + 300:.0f}", stdout=subprocess.PIPE, text=True)
                listeners.append(proc)
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"TCP listener did not start in {head}")
            pair = loaded_pair(env, args, public)
            pair.extra_toml += web_toml()
            logs = {h: work / f"gc-{h}.jsonl" for h in HEADS}
            pair.env = {h: {"PYTHONPATH": f"{BENCH / 'gcwatch'}{os.pathsep}{REPO}",
                            "HAOSCAR_BENCH_GCLOG": str(logs[h]), "HAOSCAR_BENCH_GCLOG_EVERY": str(args.every),
                            "HAOSCAR_BENCH_GCLOG_HEAP": "1" if args.heap else "0"} for h in HEADS}
            try:
                pair.start_both()
                print(f"bench_gc: {args.services} services, {args.lan_targets} LAN interfaces per head; heartbeat "
                      f"20 ms, dead time 60 ms; settle {args.settle:.0f} s, window {args.seconds:.0f} s; "
                      f"heap sampling {'on' if args.heap else 'off'}; load average {loadavg()}", flush=True)
                time.sleep(args.settle)
                for head in HEADS:
                    env.reset(head)
                start = time.monotonic()
                time.sleep(args.seconds)
                end = time.monotonic()
                lag = env.get("head1", LOOP_LAG_MAX)
                time.sleep(args.every + 1)          # the last log lines of the window
            finally:
                pair.stop_all()
            out = {"load": loadavg(), "head1_lag_max_ms": int(lag) / 1000 if lag.isdigit() else None}
            for head in HEADS:
                out[head] = summarise(logs[head], start, end)
                row = {k: v for k, v in out[head].items() if k != "last_heap"}
                print(f"{head}: {json.dumps(row)}")
                heap = out[head].get("last_heap")
                if heap:
                    print(f"  generation 2 (not frozen) {heap['gen2']}, frozen {heap['frozen']}; by type:")
                    for name, n in heap["types"]:
                        print(f"    {n:8d}  {name}")
                    print("  new since the sample before:")
                    for name, n in heap["new"]:
                        print(f"    {n:8d}  {name}")
                    print("  the new tuples' shapes:")
                    for name, n in heap.get("tuples", []):
                        print(f"    {n:8d}  {name}")
                    print("  the largest containers (type, length, held by):")
                    for name, n, by in heap.get("big", []):
                        print(f"    {n:8d}  {name} <- {by}")
                    print("  where a sample of the new ones hang from:")
                    for name, n in heap["where"]:
                        print(f"    {n:8d}  {name}")
            print(f"head1 worst loop lag over the window {out['head1_lag_max_ms']} ms; load average {out['load']}")
            if args.json:
                args.json.write_text(json.dumps(out, indent=1))
        return 0
    finally:
        stop_all(listeners)
        cluster.teardown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
