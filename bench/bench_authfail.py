"""What watching for authentication failures costs per SNMP datagram, and what a flood of
refused requests costs the security area. Prints figures; passes or fails on nothing.

1. The agent's receive path reads four pysnmp counters before and after every datagram
   (to tell which one a refused request moved): the cost of that, per datagram, on a
   real pysnmp engine's counters.
2. `AuthFailures.snmp_refused` under a flood: after the first few events the rate
   limiter drops to a count; the cost per refused request, and how many events a flood
   of N requests becomes.

    .venv/bin/python bench/bench_authfail.py [--n 200000]
"""

from __future__ import annotations

import argparse
import time

from pysnmp.entity import engine as pengine

from fcaps.fault.alarms import Alarms
from fcaps.security.authfail import AuthFailures
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import State
from haoscar_snmp.snmp.agent import AUTH_FAILURE_COUNTERS


class WallClock:
    """Monotonic time only: what the rate limiter reads."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


def per_call_us(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="calls per figure")
    args = parser.parse_args()

    engine = pengine.SnmpEngine()
    builder = engine.get_mib_builder()
    counters = [builder.import_symbols(module, name)[0] for module, name, _why in AUTH_FAILURE_COUNTERS]

    def snapshot_twice() -> None:
        before = [int(c.syntax) for c in counters]
        after = [int(c.syntax) for c in counters]
        for a, b in zip(after, before):
            if a != b:
                raise AssertionError

    print(f"receive-path check (4 counters read before and after): {per_call_us(snapshot_twice, args.n):.2f} us "
          f"per datagram")

    bus = EventBus()
    events: list[object] = []
    bus.subscribe("count", events.append)
    state = State()
    failures = AuthFailures(state, bus, Alarms(state, bus, WallClock()), WallClock())
    cost = per_call_us(lambda: failures.snmp_refused("192.0.2.7:40112", "unknown community"), args.n)
    print(f"snmp_refused under a flood: {cost:.2f} us per refused request; {args.n} requests became "
          f"{len(events)} events ({failures.snmp_held} held back for the next summary)")


if __name__ == "__main__":
    main()
