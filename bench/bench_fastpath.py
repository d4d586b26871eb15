#!/usr/bin/env python3
"""The read path's CPU cost per request and per var-bind, in one process: the fast path
against the pysnmp path, on one agent state, without sockets or a client.

Two agents are started over one state that holds 2,000 service rows (as bench_snmp.py's
table), one with the fast path and one with HAOSCAR_SNMP_FASTPATH=0; each is handed the
same encoded request at its receive seam (SNMPv2c, then the same PDUs as SNMPv3
authPriv, SHA-256 / AES-128, with the demo configuration's user), over and over, for a bounded CPU time; what
it sends is captured, not sent. The figures are CPU time of this process (time.process_time),
so other load on the machine changes them less than wall-clock rates.

Run:  .venv/bin/python bench/bench_fastpath.py [--seconds S]     (no root needed)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

from pyasn1.codec.ber import encoder  # noqa: E402
from pysnmp.carrier.asyncio.dgram import udp  # noqa: E402
from pysnmp.proto import api  # noqa: E402

from fcaps.configuration.apply import apply_to_state  # noqa: E402
from fcaps.configuration.mibmap import CONFIG_MAP  # noqa: E402
from haoscar_snmp.config.loader import load_config  # noqa: E402
from haoscar_snmp.config.values import Endpoint  # noqa: E402
from haoscar_snmp.core.state import SecurityCounters, ServiceRow, State  # noqa: E402
from haoscar_snmp.snmp.agent import FASTPATH_SWITCH, Agent  # noqa: E402
from haoscar_snmp.snmp.bindings import bind_all  # noqa: E402
from haoscar_snmp.snmp.mib import MibModel  # noqa: E402
from haoscar_snmp.snmp.view import MibView  # noqa: E402

TABLE = (1, 3, 6, 1, 4, 1, 32473, 1, 1, 8)      # haoscarServiceTable
DOMAIN = udp.DOMAIN_NAME + (1,)


def request(kind: str, oid: tuple[int, ...], reps: int = 0) -> bytes:
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = p.GetBulkRequestPDU() if kind == "bulk" else p.GetRequestPDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, 0x10000000)
    if kind == "bulk":
        p.apiBulkPDU.set_non_repeaters(pdu, 0)
        p.apiBulkPDU.set_max_repetitions(pdu, reps)
    p.apiPDU.set_varbinds(pdu, [(oid, p.Null(""))])
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, "public")
    p.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def agents(tmp: Path) -> dict[str, Agent]:
    base = load_config(None, state_dir=tmp)
    cfg = base.model_copy(update={"snmp": base.snmp.model_copy(update={
        "listen": (Endpoint.model_construct(host="127.0.0.1", port=0),)})})   # ephemeral port
    state = State()
    apply_to_state(cfg, state)
    for i in range(3, 2003):
        state.services.put((i,), ServiceRow(name=f"bench-svc-{i:05d}", check="true", enabled=False))
    view = MibView(MibModel.load())
    bind_all(view, state, lambda: cfg, CONFIG_MAP, lambda m: 0, lambda: 0)
    out = {}
    for name, switch in (("fast path", "1"), ("pysnmp path", "0")):
        os.environ[FASTPATH_SWITCH] = switch
        (tmp / switch).mkdir()
        unused: Any = None
        agent = Agent(cfg.model_copy(update={"cluster": cfg.cluster.model_copy(
            update={"state_dir": str(tmp / switch)})}), view, unused, unused, SecurityCounters())
        agent.start()
        agent.engine.transport_dispatcher.send_message = lambda data, d, a: None   # captured, not sent
        out[name] = agent
    os.environ.pop(FASTPATH_SWITCH)
    return out


def v3_session(agent: Agent) -> Any:
    """A manager's session (bench/snmpv3_client.py) with the demo configuration's user
    admin (authPriv, SHA-256 / AES-128): a message it wraps is valid for 150 s, and the
    same message is asked again and again (USM takes replays inside its time window)."""
    from snmpv3_client import Usm
    b = agent.engine.get_mib_builder()
    eid, boots, now = b.import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineID", "snmpEngineBoots", "snmpEngineTime")
    usm = Usm("admin", "demo-auth-passphrase", "demo-priv-passphrase")
    usm.set_engine(bytes(eid.syntax), int(boots.syntax), int(now.syntax.clone()))
    return usm


def rate(agent: Agent, message: bytes, seconds: float) -> float:
    receive = agent.engine.message_dispatcher.receive_message
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds and n < 1_000_000:
        receive(agent.engine, DOMAIN, ("127.0.0.1", 40000), message)
        n += 1
    return n / (time.process_time() - t0)


async def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="haoscar-fastpath-") as tmp:
        pair = agents(Path(tmp))
        try:
            with open("/proc/loadavg") as f:
                load = " ".join(f.read().split()[:3])
            print(f"read path CPU cost, {seconds:g} s of CPU per figure; load average {load} "
                  f"(other work on the machine skews figures)")
            print(f"{'request':32} {'path':12} {'requests/CPU-s':>15} {'var-binds/CPU-s':>16} "
                  f"{'us/request':>11} {'us/var-bind':>12}")
            cases = [("GET, 1 var-bind", request("get", TABLE + (1, 2, 500)), 1)]
            cases += [(f"GETBULK, max-repetitions {r}", request("bulk", TABLE + (1, 2, 500), r), min(r, 64))
                      for r in (1, 25, 50)]
            usm = v3_session(pair["fast path"])
            pdus = [(title, message[message.index(b"\xa0" if "GET," in title else b"\xa5"):], vbs)
                    for title, message, vbs in cases]        # the PDU of each v2c message
            cases += [(f"v3 authPriv {title}", usm.wrap(pdu), vbs) for title, pdu, vbs in pdus]
            for title, message, vbs in cases:
                for name, agent in pair.items():
                    r = rate(agent, message, seconds)
                    print(f"{title:32} {name:12} {r:>15,.0f} {r * vbs:>16,.0f} {1e6 / r:>11.1f} "
                          f"{1e6 / r / vbs:>12.1f}")
        finally:
            for agent in pair.values():
                await agent.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per figure (default 2)")
    asyncio.run(main(p.parse_args().seconds))
