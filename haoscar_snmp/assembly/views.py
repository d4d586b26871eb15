"""The operator views: the snapshot on a unix socket in the state directory, for
`haoscar-snmp status`, started after the jobs and stopped before them; and the web panel
([web]), started before the jobs. Without either the cluster is still served: the daemon
logs and goes on."""

from __future__ import annotations

import logging

from fcaps.configuration.mibmap import CONFIG_MAP
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.views.server import STATUS_SOCKET, StatusServer

from .parts import Core

log = logging.getLogger("haoscar_snmp")


async def status(core: Core, mib: MibModel) -> None:
    server = StatusServer(core.state_dir / STATUS_SOCKET, core.state, core.store.current, core.clock, mib)
    try:
        await server.start()
        core.stack.push_async_callback(server.stop)
    except OSError as exc:
        log.error("status: cannot serve %s (haoscar-snmp status will not answer): %s", server.path, exc)


async def web(core: Core, mib: MibModel) -> None:
    """The web panel, when [web] turns it on: its writes go through the store as a SET's
    do. Imported here: a daemon without the panel does not load it. A panel that cannot
    listen (its port taken, a bad certificate) is logged, and the daemon serves on."""
    config = core.store.effective
    if not config.web.enabled:
        return
    from haoscar_snmp.views.metrics import MetricsPage
    from haoscar_snmp.views.source import SnapshotSource
    from haoscar_snmp.views.web.server import WebPanel
    from haoscar_snmp.views.web.writes import WebWrites

    state, store, clock = core.state, core.store, core.clock
    writes = WebWrites(store, CONFIG_MAP, lambda name: mib[name].oid, state)
    panel = WebPanel(config, store.current, writes, SnapshotSource(state, store.current, clock),
                     clock, MetricsPage(state, store.current, clock, mib).handle)
    try:
        url = await panel.start()
    except OSError as exc:
        log.error("web panel: cannot serve on %s (the panel is off in this run): %s", config.web.listen, exc)
        return
    core.stack.push_async_callback(panel.stop)
    core.bus.subscribe("web", panel.live.on_event)
    log.info("web panel: %s", url)
