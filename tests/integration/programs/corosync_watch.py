"""Runs the Corosync membership source and prints every membership it gives, one JSON
line each, with the monotonic time of the listener call: the scenario test and the
benchmark run it inside a lab node's namespaces.

    python3 corosync_watch.py SECONDS [POLL_S]

A line is {"t": <time.monotonic()>, "membership": null | {...}}; "membership" is null
while Corosync is unknown. The program exits by itself after SECONDS, or at SIGTERM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
import time

from fcaps.fault.cluster.corosync import CorosyncSource
from fcaps.fault.cluster.model import Membership
from haoscar_snmp.core.clock import SystemClock


def show(membership: Membership | None) -> None:
    data = dataclasses.asdict(membership) if membership is not None else None
    print(json.dumps({"t": time.monotonic(), "membership": data}), flush=True)


async def main(seconds: float, poll_s: float) -> None:
    source = CorosyncSource(SystemClock(), show, poll_s=poll_s)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    source.start()
    print(json.dumps({"t": time.monotonic(), "started": True}), flush=True)
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    await source.stop()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 2.0))
