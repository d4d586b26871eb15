"""How long a resynchronisation burst holds the daemon's event loop.

When an inform target acknowledges haoscarAlarmResyncStart, the notifier takes the alarm
table's rows and builds haoscarAlarmResyncEnd in one pass of the loop (so the burst is the
table of one moment); each haoscarAlarmActive is then built and sent in a pass of its own.
This prints, for tables of several sizes, the time of that first pass (the longest the
burst holds the loop) and per alarm, and the time until every notification was handed
to the engine, with the real MIB, view and var-bind builder; the SNMP engine is replaced
by a counter, so pysnmp's encoding (one per send, each in its own loop pass) is not in
the figures.

    .venv/bin/python bench/bench_alarm_resync.py [--sizes 10 100 1000 5000] [--reps 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from fcaps.configuration.mibmap import CONFIG_MAP
from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import EventBus, Severity
from haoscar_snmp.core.state import State
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.notify import RESYNC_START, NotificationBuilder, Notifier
from haoscar_snmp.snmp.resync import NotifyTarget
from haoscar_snmp.snmp.view import MibView

TARGET = NotifyTarget(1, "n1", "nms", inform=True)


class CountingOriginator:
    def __init__(self) -> None:
        self.count = 0

    def send_varbinds(self, engine: Any, entry: str, ctx_engine: Any, ctx_name: bytes,
                      varbinds: Any, callback: Callable[..., None], ctx: Any) -> int:
        self.count += 1
        return self.count


async def one(mib: MibModel, size: int, tmp: str) -> tuple[float, float]:
    """(the burst's build pass, all sends handed over), seconds."""
    state = State()
    clock = SystemClock()
    alarms = Alarms(state, EventBus(), clock)
    for i in range(size):
        alarms.raise_alarm(ProbableCause.LAN_INTERFACE_FAILURE, f"node{i:05d}/lanA", Severity.MAJOR,
                           AlarmType.COMMUNICATIONS, f"LAN interface node{i:05d}/lanA is down")
    view = MibView(mib)
    config = load_config(None, state_dir=Path(tmp))
    bind_all(view, state, lambda: config, CONFIG_MAP, lambda m: int(m * 100), lambda: 0)
    originator = CountingOriginator()
    notifier = Notifier(NotificationBuilder(mib, view), lambda: object(), lambda: [TARGET], clock,
                        state, originator=originator)
    notifier._probing[TARGET.entry] = 1          # as if haoscarAlarmResyncStart 1 was sent
    started = time.perf_counter()
    notifier.outcome(TARGET, RESYNC_START, 1, True)
    built = time.perf_counter() - started
    while originator.count < size + 1:
        await asyncio.sleep(0)
    return built, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    import tempfile
    mib = MibModel.load()
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    print(f"{'active alarms':>14} {'build pass ms':>14} {'us per alarm':>13} {'all handed over ms':>19}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            runs = [asyncio.run(one(mib, size, tmp)) for _ in range(args.reps)]
            build = statistics.median(r[0] for r in runs)
            total = statistics.median(r[1] for r in runs)
            print(f"{size:>14} {build * 1000:>14.2f} {build / size * 1e6:>13.1f} {total * 1000:>19.1f}")


if __name__ == "__main__":
    main()
