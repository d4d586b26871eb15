"""What every request passes through: security headers, the session, CSRF and Origin.

* Headers on every answer: a Content-Security-Policy that allows only this origin
  (no inline script or style, no frames, forms post only here), X-Frame-Options DENY,
  nosniff, no referrer to other sites, and `Cache-Control: no-store` on everything but the static
  assets, since every page shows state or carries a CSRF token.
* No anonymous access: without a live session a page redirects to /login and
  anything else answers 401. A session whose user was removed from the users file, or
  whose role changed, ends.
* Every POST must come from this origin (the Origin header equals the request's own
  scheme and host) and, once logged in, carry the session's CSRF token; a read-only
  user's POST (other than logout) answers 403 before any handler runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .sessions import Session, Sessions
from .users import UserTable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PUBLIC = ("/login", "/static/")           # reachable without a session
READ_ONLY_POSTS = ("/logout",)            # POSTs a read-only user may make
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


class Guard:
    def __init__(self, sessions: Sessions, users: UserTable, tls: bool) -> None:
        self.sessions = sessions
        self.users = users
        self.tls = tls
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
