"""What the operator views cost on the daemon's loop, with many rows.

Builds a state with N services, N LAN interfaces, their accounting rows (three windows),
two heads, four heartbeat paths, some alarms and 500 events, then times on the real
clock:

* the snapshot (`views/snapshot.py`), and the snapshot encoded as the status socket
  sends it (compact JSON): what one `haoscar-snmp status` costs the loop;
* the metrics page rendered as OpenMetrics and as Prometheus text 0.0.4: what one
  scrape costs the loop (the aim is under 50 ms);

and prints the best, median and worst of each (the best is the cost without other
work on the machine), and the sizes. It never passes or fails on a
number.

    .venv/bin/python bench/bench_views.py [--services 2000] [--interfaces 2000] [--reps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Callable

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
from haoscar_snmp.views.metrics import MetricsPage
from haoscar_snmp.views.snapshot import snapshot


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


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float, float, object]:
    times, out = [], None
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000, statistics.median(times) * 1000, max(times) * 1000, out


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
    cases = [
        ("snapshot (20 events)", lambda: snapshot(state, config, clock)),
        ("snapshot + JSON (status socket)",
         lambda: json.dumps(snapshot(state, config, clock), separators=(",", ":"))),
        ("metrics, OpenMetrics", lambda: page.render(True)),
        ("metrics, Prometheus text 0.0.4", lambda: page.render(False)),
    ]
    for name, fn in cases:
        best, median, worst, out = timed(fn, args.reps)
        size = f"  {len(out) / 1e6:.2f} MB, {out.count(chr(10))} lines" if isinstance(out, str) else ""
        print(f"  {name:<34} {best:6.1f} ms {median:6.1f} ms {worst:6.1f} ms{size}")


if __name__ == "__main__":
    main()
