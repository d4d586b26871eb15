"""What the operator views cost on the daemon's loop, with many rows.

Builds a state with N services, N LAN interfaces, their accounting rows (three windows),
two heads, four heartbeat paths, some alarms and 500 events, then times on the real
clock:

* the snapshot (`views/snapshot.py`), and the snapshot encoded as the status socket
  sends it (compact JSON): what one `haoscar-snmp status` costs the loop;
* the metrics page rendered as OpenMetrics and as Prometheus text 0.0.4: what one
  scrape costs (the aim is under 50 ms);
* the same as the daemon serves them, on an event loop, in slices (views/slices.py):
  the status socket's JSON, a scrape (the first one, with nothing kept from an earlier
  scrape, and then the following ones), and the live feed's marker;

and prints the best, median and worst of each (the best is the cost without other
work on the machine), the sizes, and the longest single stall of the loop during the
render: for the renders in one go, the render itself; for the sliced ones, the longest
gap between two turns of a task that does nothing but `await asyncio.sleep(0)` beside
the render (a real stall as the heartbeat answerer or the role machine would see it).
It never passes or fails on a number.

    .venv/bin/python bench/bench_views.py [--services 2000] [--interfaces 2000] [--reps 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any, Callable

from haoscar_snmp.config.loader import load_config
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import EventType, Severity
from haoscar_snmp.core.state import (
    AcctKind,
    AcctRow,
    AcctWindowRow,
    AlarmRow,
    EventRow,
    HbPathRow,
    HeadRole,
    HeadRow,
    HeadStatus,
    JobRow,
    Lan,
    LanIfRow,
    LinkStatus,
    ServiceRow,
    ServiceStatus,
    State,
)
from haoscar_snmp.views.metrics import MetricsPage, forget
from haoscar_snmp.views.snapshot import snapshot
from haoscar_snmp.views.source import SnapshotSource


def make_state(services: int, interfaces: int) -> State:
    now = time.time()
    state = State()
    state.cluster.name, state.cluster.local_head, state.cluster.agent_start_time = "bench", "head1", now - 3600
    state.heads.put((1,), HeadRow("head1", HeadRole.PRIMARY, is_local=True, status=HeadStatus.ACTIVE))
    state.heads.put((2,), HeadRow("head2", HeadRole.STANDBY, status=HeadStatus.STANDBY, last_heartbeat=now))
    for head in (1, 2):
        for lan in (Lan.LAN_A, Lan.LAN_B):
            state.hb_paths.put((head, int(lan)), HbPathRow(LinkStatus.UP, 10_000, 9_990, 10, 400, now))
    windows = [("24h", 86400), ("7d", 604800), ("30d", 2592000)]
    for w, (name, length) in enumerate(windows, start=1):
        state.acct_windows.put((w,), AcctWindowRow(name, length))
    subject = 0
    for i in range(1, services + 1):
        status = ServiceStatus.FAILED if i % 100 == 0 else ServiceStatus.RUNNING
        state.services.put((i,), ServiceRow(f"svc{i}", "true", status=status, last_failure=now - i))
        subject += 1
        for w in range(1, len(windows) + 1):
            state.accounting.put((subject, w), AcctRow(AcctKind.SERVICE, f"svc{i}", availability_ppm=999_000))
    for i in range(1, interfaces + 1):
        status = LinkStatus.DOWN if i % 100 == 0 else LinkStatus.UP
        state.lan_ifs.put((i,), LanIfRow(f"node{i}", Lan.LAN_A, f"eth{i % 4}", f"10.{i // 250}.{i % 250}.1",
                                         status=status, rtt_us=300, last_change=now - i))
        subject += 1
        for w in range(1, len(windows) + 1):
            state.accounting.put((subject, w), AcctRow(AcctKind.LAN_INTERFACE, f"node{i}/eth{i % 4}"))
    for i in range(1, 21):
        state.alarms.put((i,), AlarmRow(int(Severity.MAJOR), 1, 4, f"svc{i * 100}", now - 60, "down"))
    for i in range(1, 501):
        state.events.put((i,), EventRow(now - 500 + i, int(EventType.SERVICE_DOWN), f"svc{i}", int(Severity.MAJOR),
                                        "service down"))
    state.jobs.put((1,), JobRow("services", last_run=now))
    return state


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float, float, object, float]:
    times, out = [], None
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000, statistics.median(times) * 1000, max(times) * 1000, out, max(times) * 1000


def timed_async(fn: Callable[[], Any], reps: int) -> tuple[float, float, float, object, float]:
    """`fn()` awaited `reps` times on a loop, one at a time, beside a task that only turns:
    the longest gap between two of its turns is the longest stall of the loop."""
    async def main() -> tuple[list[float], object, float]:
        stall, last, done = 0.0, time.perf_counter(), False

        async def turn() -> None:
            nonlocal stall, last
            while not done:
                now = time.perf_counter()
                stall, last = max(stall, now - last), now
                await asyncio.sleep(0)
        ticker = asyncio.ensure_future(turn())
        await asyncio.sleep(0)
        times, out = [], None
        for _ in range(reps):
            start = time.perf_counter()
            out = await fn()
            times.append(time.perf_counter() - start)
        done = True
        await ticker
        return times, out, stall
    times, out, stall = asyncio.run(main())
    return min(times) * 1000, statistics.median(times) * 1000, max(times) * 1000, out, stall * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=2000)
    ap.add_argument("--interfaces", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    config = load_config(None)
    state = make_state(args.services, args.interfaces)
    clock = SystemClock()
    page = MetricsPage(state, lambda: config, clock)
    print(f"{args.services} services, {args.interfaces} LAN interfaces, {len(state.accounting)} accounting rows, "
          f"{len(state.events)} events; {args.reps} repetitions, best / median / worst "
          f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    source = SnapshotSource(state, lambda: config, clock)
    fresh = MetricsPage(state, lambda: config, clock)
    cases = [
        ("snapshot (20 events)", lambda: timed(lambda: snapshot(state, config, clock), args.reps)),
        ("snapshot + JSON (status socket)",
         lambda: timed(lambda: json.dumps(snapshot(state, config, clock), separators=(",", ":")), args.reps)),
        ("metrics, OpenMetrics", lambda: timed(lambda: page.render(True), args.reps)),
        ("metrics, Prometheus text 0.0.4", lambda: timed(lambda: page.render(False), args.reps)),
        ("sliced: status JSON", lambda: timed_async(source.json, args.reps)),
        ("sliced: metrics, nothing kept", lambda: (forget(), timed_async(lambda: fresh.body(True), 1))[1]),
        ("sliced: metrics, OpenMetrics", lambda: timed_async(lambda: page.body(True), args.reps)),
        ("sliced: metrics, Prometheus 0.0.4", lambda: timed_async(lambda: page.body(False), args.reps)),
        ("sliced: live feed marker", lambda: timed_async(source.marker, args.reps)),
    ]
    print(f"  {'':<34} {'best':>9} {'median':>9} {'worst':>9} {'longest stall':>14}")
    for name, run in cases:
        best, median, worst, out, stall = run()
        if isinstance(out, bytes):
            out = out.decode()
        size = f"  {len(out) / 1e6:.2f} MB, {out.count(chr(10))} lines" if isinstance(out, str) else ""
        print(f"  {name:<34} {best:6.1f} ms {median:6.1f} ms {worst:6.1f} ms {stall:11.1f} ms{size}")


if __name__ == "__main__":
    main()
