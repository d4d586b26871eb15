"""The local status socket: `GET /status` answers the snapshot as JSON, and `GET /metrics`
the metrics page (metrics.py), on a unix socket in the state directory
(`<state_dir>/status.sock`): `curl --unix-socket <state_dir>/status.sock http://-/metrics`.

Rules:

* no network: a unix socket only, mode 0600 in a 0700 directory, so only the daemon's
  user (and root) can read it; `haoscar-snmp status` is its client;
* a stale socket left by a daemon that died is replaced: the state directory's lock,
  taken before this starts, proves no other daemon uses the directory;
* a request reads the state on the event loop, like an SNMP request does, in slices
  that give the loop back every millisecond or so (slices.py); concurrent requests share
  the render under way (bench/bench_views.py);
* bad input (`?events=x`) gets a 400 with the reason and changes nothing.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Callable

from aiohttp import web

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.state import State
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.views.metrics import MetricsPage
from haoscar_snmp.views.snapshot import DEFAULT_EVENTS, MAX_EVENTS
from haoscar_snmp.views.source import SnapshotSource

log = logging.getLogger(__name__)

STATUS_SOCKET = "status.sock"
SOCKET_MODE = 0o600
JSON_TYPE = "application/json"


class StatusServer:
    """Serves the snapshot (and the metrics) on `path` while started. `config` gives the
    effective configuration at each request (a reload changes it); `mib` the loaded MIB
    (the daemon's), for the metrics' HELP text."""

    def __init__(self, path: Path, state: State, config: Callable[[], Config], clock: Clock,
                 mib: MibModel | None = None) -> None:
        self.path = path
        self.state = state
        self.config = config
        self.clock = clock
        self.metrics = MetricsPage(state, config, clock, mib)
        self.source = SnapshotSource(state, config, clock)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; raises OSError when the socket cannot be made (e.g. a path too long)."""
        self._remove_stale()
        app = web.Application()
        app.router.add_get("/status", self.status)
        app.router.add_get("/metrics", self.metrics.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.UnixSite(runner, str(self.path))
            await site.start()
            os.chmod(self.path, SOCKET_MODE)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("status: serving the snapshot on %s (haoscar-snmp status)", self.path)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await runner.cleanup()
        self._remove_stale()

    def _remove_stale(self) -> None:
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                self.path.unlink()
        except FileNotFoundError:
            pass

    async def status(self, request: web.Request) -> web.Response:
        text = request.query.get("events", str(DEFAULT_EVENTS))
        if not text.isdigit() or int(text) > MAX_EVENTS:
            return web.json_response({"error": f"events must be a whole number 0..{MAX_EVENTS}, not {text!r}"},
                                     status=400)
        return web.Response(text=await self.source.json(int(text)), content_type=JSON_TYPE)
