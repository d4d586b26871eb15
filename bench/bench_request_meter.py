#!/usr/bin/env python3
"""What counting and timing every SNMP request costs the standalone agent.

The agent measures each datagram at its source (`snmp/agent.py`: a monotonic time read
before and after the engine handles it, a served-or-dropped test, a `Meter.add`), and the
performance area takes the meter once a second. This benchmark prices that, in one
process, with the real pysnmp engine and the real view, free of the client and the
kernel: the same pre-encoded SNMPv2c requests are handed straight to the engine's
`receive_message`, alternately with the measuring wrapper in place and with pysnmp's own
method, in interleaved rounds, and the median CPU time per request of each is printed
(the process's CPU clock: a busy machine slows both alike), with their difference. The answers go out through the agent's real UDP socket to a socket of
this process on 127.0.0.1 (drained, never read by anything else).

Requests: GET of haoscarClusterName.0, GETNEXT from the root of HAOSCAR-MIB, and GETBULK
with max-repetitions 25 from the root. It prints figures, never passes or fails.

    .venv/bin/python bench/bench_request_meter.py [--requests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyasn1.codec.ber import encoder  # noqa: E402
from pysnmp.carrier.asyncio.dgram import udp  # noqa: E402
from pysnmp.proto.api import v2c  # noqa: E402

from fcaps.configuration.mibmap import CONFIG_MAP  # noqa: E402
from fcaps.configuration.store import ConfigStore  # noqa: E402
from haoscar_snmp.core.clock import SystemClock  # noqa: E402
from haoscar_snmp.core.events import EventBus  # noqa: E402
from haoscar_snmp.core.measure import Measurements  # noqa: E402
from haoscar_snmp.core.state import State  # noqa: E402
from haoscar_snmp.snmp.agent import Agent  # noqa: E402
from haoscar_snmp.snmp.bindings import bind_all  # noqa: E402
from haoscar_snmp.snmp.mib import MibModel  # noqa: E402
from haoscar_snmp.snmp.setter import SetHandler  # noqa: E402
from haoscar_snmp.snmp.view import MibView  # noqa: E402

ROOT = "1.3.6.1.4.1.32473.1"
COMMUNITY = "bench"

CONFIG = """
[cluster]
name = "bench"
local_head = "head1"
state_dir = "{state}"

[[heads]]
name = "head1"
preferred_role = "primary"

[snmp]
listen = ["127.0.0.1:{port}"]

[[snmp.communities]]
name = "{community}"
access = "read"
"""


def message(pdu_cls: Any, oid: str, reps: int = 0) -> bytes:
    pdu = pdu_cls()
    api = v2c.apiBulkPDU if reps else v2c.apiPDU
    api.set_defaults(pdu)
    api.set_request_id(pdu, 4242)
    if reps:
        api.set_non_repeaters(pdu, 0)
        api.set_max_repetitions(pdu, reps)
    api.set_varbinds(pdu, [(v2c.ObjectIdentifier(oid), v2c.null)])
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, COMMUNITY)
    v2c.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(args: argparse.Namespace, workdir: Path) -> None:
    cfg = workdir / "bench.toml"
    cfg.write_text(CONFIG.format(state=workdir / "state", port=free_port(), community=COMMUNITY))
    state, bus, clock = State(), EventBus(), SystemClock()
    store = ConfigStore(cfg, None, state, bus, clock)
    mib = MibModel.load()
    view = MibView(mib)
    channel = Measurements()
    agent = Agent(store.effective, view, SetHandler(mib, store, CONFIG_MAP), store, state.security,
                  clock=clock, channel=channel)
    bind_all(view, state, store.current, CONFIG_MAP, agent.uptime_ticks, agent.auth_failures)
    agent.start()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    try:
        await asyncio.sleep(0.2)                          # pysnmp opens its transports in a task
        engine = agent.engine
        dispatcher = engine.message_dispatcher
        measured = dispatcher.receive_message              # the agent's wrapper
        plain = type(dispatcher).receive_message.__get__(dispatcher)
        transports = engine.transport_dispatcher
        measured_send = transports.send_message
        domain, address = udp.DOMAIN_NAME + (1,), sink.getsockname()
        requests = {
            "GET haoscarClusterName.0": message(v2c.GetRequestPDU, ROOT + ".1.1.1.0"),
            "GETNEXT from the root": message(v2c.GetNextRequestPDU, ROOT),
            "GETBULK r=25 from the root": message(v2c.GetBulkRequestPDU, ROOT, 25),
        }

        def drain() -> None:
            try:
                while True:
                    sink.recv(65535)
            except BlockingIOError:
                pass

        def timed(data: bytes, wrapped: bool) -> float:
            dispatcher.receive_message = measured if wrapped else plain
            if wrapped:
                transports.send_message = measured_send
            elif "send_message" in vars(transports):
                del transports.send_message               # pysnmp's own method again
            receive = dispatcher.receive_message
            start = time.process_time()
            for n in range(args.requests):
                receive(engine, domain, address, data)
                if n % 64 == 63:
                    drain()
            took = time.process_time() - start
            drain()
            return took / args.requests * 1e6

        print(f"per-request handling in the agent's process, CPU time (so that other work on the "
              f"machine counts less), median of {args.rounds} interleaved rounds of "
              f"{args.requests:,} requests (us)")
        print(f"{'request':30} {'unmeasured':>11} {'measured':>9} {'cost':>7} {'cost %':>7}")
        for name, data in requests.items():
            timed(data, True)                              # warm both paths up
            timed(data, False)
            plain_us: list[float] = []
            measured_us: list[float] = []
            for _ in range(args.rounds):
                plain_us.append(timed(data, False))
                measured_us.append(timed(data, True))
            a, b = statistics.median(plain_us), statistics.median(measured_us)
            print(f"{name:30} {a:11.1f} {b:9.1f} {b - a:7.1f} {100 * (b - a) / a:6.1f}%")
        dispatcher.receive_message = measured
        transports.send_message = measured_send
        sample = channel.meter("snmp.standalone").take("snmp.standalone")
        print(f"meter after the measured rounds: {sample.count:,} served, {sample.dropped} dropped, "
              f"mean {sample.total_us / max(sample.count, 1):.1f} us, worst {sample.max_us} us")
        meter = Measurements().meter("x")
        n = 1_000_000
        start = time.perf_counter()
        for _ in range(n):
            meter.add(57)
        print(f"Meter.add alone: {(time.perf_counter() - start) / n * 1e9:.0f} ns")
        print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")
    finally:
        sink.close()
        await agent.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="requests per round (default 2000)")
    p.add_argument("--rounds", type=int, default=7, help="rounds of each kind (default 7)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-meter-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
