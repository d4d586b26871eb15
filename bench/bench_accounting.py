"""The outage ledger's cost on the daemon's loop, with many subjects.

Builds a state with N watched LAN interfaces (and a service, this head, the cluster) and
a real ledger file in a temporary directory, then times, on the real clocks:

* a look at the state when nothing changed (every second in the daemon);
* the figures of every subject and window (every 5 s, and after a change), all at
  once and the longest slice of 250 subjects (what the daemon computes in one loop pass);
* a look in which half of the interfaces go down at once (a LAN failure: one SQLite
  transaction for all the outages it opens), and the one in which they come back;
* a restart of the ledger on the file (recovery and loading);

and prints the median and worst of each, the ledger file's size and the process's peak
memory. It never passes or fails on a number.

    .venv/bin/python bench/bench_accounting.py [--interfaces 2000] [--reps 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import tempfile
import time
from pathlib import Path

from fcaps.accounting.ledger import Ledger
from fcaps.accounting.ledgerdb import LedgerFile
from fcaps.fault.alarms import Alarms
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import (
    HeadRole,
    HeadRow,
    HeadStatus,
    Lan,
    LanIfRow,
    LinkStatus,
    ServiceRow,
    ServiceStatus,
    State,
)


def make_state(interfaces: int) -> State:
    state = State()
    state.cluster.name, state.cluster.local_head = "bench", "head1"
    state.heads.put((1,), HeadRow("head1", HeadRole.PRIMARY, is_local=True, status=HeadStatus.ACTIVE))
    state.services.put((1,), ServiceRow("web", "true", status=ServiceStatus.RUNNING))
    for i in range(interfaces):
        state.lan_ifs.put((i + 1,), LanIfRow(f"node{i // 2:04d}", Lan.LAN_A if i % 2 == 0 else Lan.LAN_B,
                                             "eth0", status=LinkStatus.UP))
    return state


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def sliced(ledger: Ledger, reps: int) -> list[float]:
    worst = []
    for _ in range(reps):
        rows = ledger._rows(ledger.timeline.now())
        slices = []
        while True:
            t0 = time.perf_counter()
            done = next(rows, StopIteration) is StopIteration
            slices.append((time.perf_counter() - t0) * 1000)
            if done:
                break
        worst.append(max(slices))
    return worst


def show(what: str, ms: list[float]) -> None:
    print(f"{what:<58} median {statistics.median(ms):8.2f} ms   worst {max(ms):8.2f} ms   (n={len(ms)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interfaces", type=int, default=2000)
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args()
    logging.disable(logging.INFO)       # the per-outage log lines are not what is measured
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, state_dir=Path(tmp))
        state = make_state(args.interfaces)
        path = Path(tmp) / "accounting.sqlite"
        ledger_file = LedgerFile(path)
        clock = SystemClock()
        ledger = Ledger(state, lambda: cfg, clock, ledger_file, "bench-boot", Alarms(state, EventBus(), clock))
        t0 = time.perf_counter()
        ledger.start()
        print(f"{args.interfaces} LAN interfaces, {len(ledger.subjects)} subjects, windows {cfg.accounting.windows}")
        print(f"{'first start (subjects created)':<58} {(time.perf_counter() - t0) * 1000:8.2f} ms")
        show("look, nothing changed", timed(ledger.look, args.reps))
        show("figures of every subject and window", timed(lambda: ledger._refresh(ledger.timeline.now()), args.reps))
        rows = list(state.lan_ifs.values())
        down, up = [], []
        for _ in range(max(1, args.reps // 4)):
            for row in rows[::2]:
                row.status = LinkStatus.DOWN
            down += timed(ledger.look, 1)
            for row in rows[::2]:
                row.status = LinkStatus.UP
            up += timed(ledger.look, 1)
        show(f"look: {len(rows[::2])} interfaces go down (outages opened)", down)
        show("look: they come back (outages closed)", up)
        show("figures, every interface with outages", timed(lambda: ledger._refresh(ledger.timeline.now()),
                                                            args.reps))
        show("  the same, longest slice of 250 subjects (one loop pass)", sliced(ledger, args.reps))
        asyncio.run(ledger.run_cycle())
        ledger_file.close()
        restarts = []
        for _ in range(3):
            t0 = time.perf_counter()
            again = LedgerFile(path)
            Ledger(state, lambda: cfg, clock, again, "bench-boot", Alarms(state, EventBus(), clock)).start()
            restarts.append((time.perf_counter() - t0) * 1000)
            again.close()
        show(f"restart on the file ({len(down) * len(rows[::2])} outages kept)", restarts)
        size = sum(f.stat().st_size for f in Path(tmp).glob("accounting.sqlite*"))
        print(f"{'ledger file with its WAL':<58} {size / 1e6:8.2f} MB")
        print(f"{'peak resident memory of this process':<58} "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.1f} MB")


if __name__ == "__main__":
    main()
