"""The operator views: the snapshot on a unix socket in the state directory, for
`haoscar-snmp status`. Started after the jobs and stopped before them. Without it the
cluster is still served: the daemon logs and goes on."""

from __future__ import annotations

import logging

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
