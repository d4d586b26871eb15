"""A head of a cluster past two heads, without Corosync: the cluster watch, the outage
ledger (SQLite in the state directory), the status socket, the web panel and the
standalone SNMP agent, built as the daemon builds them, over views that the test
chooses. The integration tests drive it to check the accounting and the operator's
views with real parts (`haoscar-snmp report` and `status`, promtool, snmpwalk, chromium).

    python3 cluster_views.py CONFIG

It reads scene names on stdin, one a line (`healthy`, `node3-left`, `quorum-lost`,
`unknown`, `vip-stopped`, `web-failed`), hands the scene's view to the watch, and prints
`ok <scene>` once the watch and the ledger have taken it. It stops at end of input or
SIGTERM (a clean stop of the ledger); SIGKILL is a crash.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from fcaps.accounting.ledger import Ledger
from fcaps.accounting.ledgerdb import LedgerFile
from fcaps.accounting.report import LEDGER_FILE
from fcaps.accounting.timeline import read_boot_id
from fcaps.configuration.apply import apply_to_state
from fcaps.configuration.mibmap import CONFIG_MAP
from fcaps.fault.alarms import Alarms
from fcaps.fault.cluster.model import (
    ClusterView,
    KnetLink,
    Member,
    Membership,
    Placement,
    PlacedNode,
    Quorum,
    Resource,
)
from fcaps.fault.cluster.watch import ClusterWatch
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import SecurityCounters, State
from haoscar_snmp.snmp.agent import Agent
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.view import MibView
from haoscar_snmp.views.metrics import MetricsPage
from haoscar_snmp.views.server import STATUS_SOCKET, StatusServer
from haoscar_snmp.views.source import SnapshotSource
from haoscar_snmp.views.web.server import WebPanel
from haoscar_snmp.views.web.writes import WebWrites

NAMES = ("node1", "node2", "node3")


def scene(online: tuple[str, ...] = NAMES, quorate: bool = True, vip: str = "node1",
          web_failed: bool = False) -> ClusterView:
    members = tuple(Member(i, name, 1, name in online,
                           () if i == 1 else (KnetLink(0, name in online, 250 + 10 * i),
                                              KnetLink(1, name in online, 300 + 10 * i)))
                    for i, name in enumerate(NAMES, start=1))
    quorum = Quorum(quorate, 3, len(online), f"1.{10 + len(online)}", 1650)
    nodes = tuple(PlacedNode(name, i, name in online, False, False, False, name == "node1")
                  for i, name in enumerate(NAMES, start=1))
    resources = (
        Resource("vip", "ocf:heartbeat:IPaddr2", "Started" if vip else "Stopped", vip, False, 0,
                 "ok", "192.0.2.10"),
        Resource("web", "ocf:heartbeat:apache", "Stopped" if web_failed else "Started",
                 "" if web_failed else "node2", web_failed, 1000000 if web_failed else 0,
                 "error" if web_failed else "ok"))
    return ClusterView(Membership(1, quorum, members), Placement("node1", nodes, resources))


SCENES = {
    "healthy": scene(),
    "node3-left": scene(online=("node1", "node2")),
    "quorum-lost": scene(online=("node1",), quorate=False),
    "unknown": ClusterView(None, None),
    "vip-stopped": scene(vip=""),
    "web-failed": scene(web_failed=True),
}


class NoAddresses:
    async def addresses(self) -> dict[str, str]:
        return {}


async def main(config_path: Path) -> None:
    cfg = load_config(config_path)
    cfg.cluster.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state, bus, clock = State(), EventBus(), SystemClock()
    apply_to_state(cfg, state)
    state.membership.watched = True
    alarms = Alarms(state, bus, clock)
    watch = ClusterWatch(state, bus, clock, alarms, NoAddresses(), "node1")
    ledger = Ledger(state, lambda: cfg, clock, LedgerFile(cfg.cluster.state_dir / LEDGER_FILE), read_boot_id(),
                    alarms, membership=True, service_resource=lambda: "vip")
    bus.subscribe("accounting", ledger.on_event)
    ledger.start()
    mib = MibModel.load()
    status = StatusServer(cfg.cluster.state_dir / STATUS_SOCKET, state, lambda: cfg, clock, mib)
    await status.start()
    writes = WebWrites(None, CONFIG_MAP, lambda name: mib[name].oid, state)   # type: ignore[arg-type]
    panel = WebPanel(cfg, lambda: cfg, writes, SnapshotSource(state, lambda: cfg, clock), clock,
                     MetricsPage(state, lambda: cfg, clock, mib).handle)
    await panel.start()
    bus.subscribe("web", panel.live.on_event)
    view = MibView(mib)
    unused: Any = None
    agent = Agent(cfg, view, unused, unused, SecurityCounters())
    bind_all(view, state, lambda: cfg, CONFIG_MAP, agent.uptime_ticks, lambda: 0)
    agent.start()

    async def cycles() -> None:
        while True:
            await asyncio.sleep(ledger.interval())
            await ledger.run_cycle()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    ticking = asyncio.create_task(cycles())
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    try:
        while not stop.is_set():
            line_task = asyncio.create_task(reader.readline())
            stop_task = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({line_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if stop_task not in done:
                stop_task.cancel()
            if line_task not in done:
                line_task.cancel()
                break
            name = line_task.result().decode().strip()
            if not name:
                break
            watch.update(SCENES[name])
            await watch.settled()
            await asyncio.sleep(0.05)           # the ledger's look, asked for by the events
            ledger.look()
            print(f"ok {name}", flush=True)
    finally:
        ticking.cancel()
        await watch.stop()
        await agent.stop()
        await panel.stop()
        await status.stop()
        ledger.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
