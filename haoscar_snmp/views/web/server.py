"""The panel's listener: one aiohttp site on the daemon's own event loop.

`WebPanel.start` opens the socket (TLS when the configuration names a certificate and
key) and `stop` closes it and ends the live streams. Static assets come from the
package (`static/`), never from another site: the heads may have no internet access,
and a page that loads nothing from elsewhere cannot be changed by elsewhere.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from haoscar_snmp.config.schema import Config, MetricsAuth, WebConfig
from haoscar_snmp.config.webusers import WebUser
from haoscar_snmp.core.clock import Clock

from .guard import METRICS, BasicAuth, Guard
from .live import LiveFeed, as_source
from .pages import Pages
from .sessions import Sessions
from .throttle import LoginThrottle
from .users import UserTable
from .writes import WebWrites

log = logging.getLogger(__name__)

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}
MAX_BODY = 64 * 1024      # a form is small; nothing bigger is read


def static_files() -> dict[str, tuple[bytes, str]]:
    """Every asset of static/, read once: name -> (bytes, content type)."""
    out = {}
    for item in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if suffix in STATIC_TYPES:
            out[item.name] = (item.read_bytes(), STATIC_TYPES[suffix])
    return out


def tls_context(web_config: WebConfig) -> ssl.SSLContext | None:
    if not web_config.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(web_config.tls_cert_file), str(web_config.tls_key_file))
    return context


class WebPanel:
    def __init__(self, config: Config, current: Callable[[], Config], writes: WebWrites,
                 snapshot: Callable[[], dict[str, Any]] | Any, clock: Clock,
                 metrics: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None) -> None:
        settings = config.web
        self.settings = settings
        inline = tuple(WebUser(u.name, u.role, u.password_hash) for u in settings.users)
        self.users = UserTable(inline, settings.file_users, settings.users_file, clock)
        self.sessions = Sessions(clock, settings.session_idle_s, settings.session_max_s, settings.max_sessions)
        self.throttle = LoginThrottle(clock)
        basic = BasicAuth(self.users, self.throttle, clock) if settings.metrics_auth is MetricsAuth.BASIC else None
        self.guard = Guard(self.sessions, self.users, settings.tls, basic)
        source = as_source(snapshot)       # a SnapshotSource (views/source.py) renders in slices
        self.live = LiveFeed(source, clock, settings.max_live_clients)
        self.pages = Pages(self.sessions, self.users, self.throttle, writes, source, current, settings.tls)
        self._static = static_files()
        self.app = web.Application(middlewares=[self.guard.middleware], client_max_size=MAX_BODY)
        self.app.add_routes(self.pages.routes())
        self.app.add_routes([web.get("/live", self.live.handle), web.get("/static/{name}", self.static)])
        if metrics is not None:         # the Prometheus page (haoscar_snmp/views/metrics.py)
            self.app.add_routes([web.get(METRICS, metrics)])
        self._runner: web.AppRunner | None = None

    async def static(self, request: web.Request) -> web.Response:
        found = self._static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "no-cache"})

    async def start(self) -> str:
        """Open the listener; returns its URL. Raises OSError (port taken) or ssl.SSLError."""
        context = tls_context(self.settings)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        listen = self.settings.listen
        site = web.TCPSite(self._runner, listen.host, listen.port, ssl_context=context, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.live.start()
        return f"{'https' if context else 'http'}://{listen}/"

    async def stop(self) -> None:
        await self.live.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
