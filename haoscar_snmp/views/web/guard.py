"""What every request passes through: security headers, the session, CSRF and Origin.

* Headers on every answer: a Content-Security-Policy that allows only this origin
  (no inline script or style, no frames, forms post only here), X-Frame-Options DENY,
  nosniff, no referrer to other sites, and `Cache-Control: no-store` on everything but the static
  assets, since every page shows state or carries a CSRF token.
* No anonymous access: without a live session a page redirects to /login and
  anything else answers 401. A session whose user was removed from the users file, or
  whose role changed, ends.
* `/metrics` is for Prometheus, not for browsers: HTTP Basic authentication as any
  user of the panel (`metrics_auth = "basic"`, the default), or nothing when the
  configuration says `metrics_auth = "none"`. A verified credential is remembered for
  `BASIC_CACHE_S` (as a keyed digest, never the password), so a scrape every 15 s does
  not cost a password hash each time; failures count in the login throttle.
* Every POST must come from this origin (the Origin header equals the request's own
  scheme and host) and, once logged in, carry the session's CSRF token; a read-only
  user's POST (other than logout) answers 403 before any handler runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from haoscar_snmp.core.clock import Clock

from .sessions import Session, Sessions
from .throttle import LoginThrottle
from .users import UserTable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PUBLIC = ("/login", "/static/")           # reachable without a session
READ_ONLY_POSTS = ("/logout",)            # POSTs a read-only user may make
METRICS = "/metrics"
BASIC_CACHE_S = 300.0
BASIC_CACHE_SIZE = 16
SESSION_KEY: web.RequestKey[Session] = web.RequestKey("session", Session)


def cookie_name(tls: bool) -> str:
    # The __Host- prefix makes the browser refuse the cookie unless it is Secure, for
    # this host only and for every path: nothing on another port or subdomain can set it.
    return "__Host-haoscar" if tls else "haoscar"


def set_session_cookie(response: web.StreamResponse, session: Session, tls: bool) -> None:
    response.set_cookie(cookie_name(tls), session.id, httponly=True, samesite="Strict", secure=tls, path="/")


def clear_session_cookie(response: web.StreamResponse, tls: bool) -> None:
    response.del_cookie(cookie_name(tls), path="/", secure=tls, httponly=True, samesite="Strict")


def same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin == f"{request.scheme}://{request.host}"


def session_of(request: web.Request) -> Session:
    return request[SESSION_KEY]


class BasicAuth:
    """HTTP Basic for /metrics, with a small cache of credentials verified lately."""

    def __init__(self, users: UserTable, throttle: LoginThrottle, clock: Clock) -> None:
        self.users = users
        self.throttle = throttle
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, tuple[str, float]] = OrderedDict()  # digest -> (user, when)

    async def check(self, request: web.Request) -> None:
        """Returns if the request carries a valid user's credentials; raises 401/429 if not."""
        header = request.headers.get("Authorization", "")
        challenge = {"WWW-Authenticate": 'Basic realm="haoscar-snmp metrics", charset="UTF-8"'}
        if not header.startswith("Basic "):
            raise web.HTTPUnauthorized(text="metrics need HTTP Basic authentication", headers=challenge)
        try:
            name, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise web.HTTPUnauthorized(text="malformed credentials", headers=challenge) from None
        digest = hmac.new(self._key, header.encode(), hashlib.sha256).digest()
        now = self.clock.monotonic()
        known = self._verified.get(digest)
        if known is not None and now - known[1] < BASIC_CACHE_S:
            await self.users.refresh()
            if self.users.get(known[0]) is not None:
                return
        address = request.remote or "?"
        if not self.throttle.allowed(address, name):
            raise web.HTTPTooManyRequests(text="too many failed logins", headers={"Retry-After": "60"})
        user = await self.users.authenticate(name[:64], password)
        if user is None:
            self.throttle.failed(address, name)
            raise web.HTTPUnauthorized(text="wrong user name or password", headers=challenge)
        self._verified[digest] = (user.name, now)
        while len(self._verified) > BASIC_CACHE_SIZE:
            self._verified.popitem(last=False)


class Guard:
    def __init__(self, sessions: Sessions, users: UserTable, tls: bool, basic: BasicAuth | None) -> None:
        self.sessions = sessions
        self.users = users
        self.tls = tls
        self.basic = basic      # None: /metrics is open (metrics_auth = "none")
        self.refused_origin = 0
        self.refused_csrf = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as exc:
            response = exc
        self._headers(request, response)
        if isinstance(response, web.HTTPException) and not response.prepared:
            raise response
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if request.method == "POST" and not same_origin(request):
            self.refused_origin += 1
            raise web.HTTPForbidden(text="refused: this form must be sent from the panel's own pages "
                                         "(the Origin header is missing or names another site)")
        if path.startswith(PUBLIC):
            return await handler(request)
        if path == METRICS:
            if self.basic is not None:
                await self.basic.check(request)
            return await handler(request)
        session = self.sessions.get(request.cookies.get(cookie_name(self.tls)))
        if session is not None:
            await self.users.refresh()
            user = self.users.get(session.user)
            if user is None or user.role != session.role:
                self.sessions.end_user(session.user)
                session = None
        if session is None:
            if request.method == "GET" and path in ("/", "/config"):
                raise web.HTTPSeeOther("/login")
            raise web.HTTPUnauthorized(text="log in first")
        request[SESSION_KEY] = session
        if request.method == "POST":
            form = await request.post()
            token = form.get("csrf")
            if not session.csrf_ok(token if isinstance(token, str) else None):
                self.refused_csrf += 1
                raise web.HTTPForbidden(text="refused: the form's CSRF token is missing or stale; reload the page")
            if not session.can_write and path not in READ_ONLY_POSTS:
                raise web.HTTPForbidden(text=f"refused: user {session.user} may only read")
        return await handler(request)

    @staticmethod
    def _headers(request: web.Request, response: web.StreamResponse) -> None:
        if response.prepared:   # a stream (server-sent events) set its headers before it started
            return
        headers = response.headers
        headers["Content-Security-Policy"] = CSP
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"   # "no-referrer" makes browsers send "Origin: null" on POSTs
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.scheme == "https":
            headers["Strict-Transport-Security"] = "max-age=31536000"
        if not request.path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"


def stream_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The same headers, for a response that is prepared by its handler (a stream)."""
    Guard._headers(request, response)
