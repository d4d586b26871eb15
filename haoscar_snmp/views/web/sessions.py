"""Server-side sessions: a random id in an HttpOnly cookie, everything else here.

A session ends after `idle_s` without a request and `max_s` after the login, whatever
happens (both on the monotonic clock), at logout, and when its user is removed or
changes role. At most `max_sessions` live at once: a new login beyond that ends the
session least recently used. Each session has its own CSRF token, which every form
of the panel carries and every POST must return.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from haoscar_snmp.core.clock import Clock


@dataclass
class Session:
    id: str
    user: str
    role: str
    csrf: str
    started: float      # monotonic
    seen: float         # monotonic, the last request
    flash: str = ""     # a message for the next page (the outcome of a write)
    flash_ok: bool = True

    @property
    def can_write(self) -> bool:
        return self.role == "write"

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    def __init__(self, clock: Clock, idle_s: float, max_s: float, max_sessions: int) -> None:
        self.clock = clock
        self.idle_s = idle_s
        self.max_s = max_s
        self.max_sessions = max_sessions
        self._live: OrderedDict[str, Session] = OrderedDict()   # least recently used first

    def __len__(self) -> int:
        return len(self._live)

    def create(self, user: str, role: str) -> Session:
        self.expire()
        while len(self._live) >= self.max_sessions:
            self._live.popitem(last=False)
        now = self.clock.monotonic()
        session = Session(secrets.token_urlsafe(32), user, role, secrets.token_urlsafe(32), now, now)
        self._live[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this id, marked as used now; None if none or expired."""
        if not session_id:
            return None
        session = self._live.get(session_id)
        if session is None:
            return None
        now = self.clock.monotonic()
        if now - session.seen >= self.idle_s or now - session.started >= self.max_s:
            del self._live[session_id]
            return None
        session.seen = now
        self._live.move_to_end(session_id)
        return session

    def end(self, session_id: str) -> None:
        self._live.pop(session_id, None)

    def end_user(self, user: str) -> int:
        ids = [sid for sid, session in self._live.items() if session.user == user]
        for sid in ids:
            del self._live[sid]
        return len(ids)

    def expire(self) -> None:
        now = self.clock.monotonic()
        for sid in [sid for sid, s in self._live.items()
                    if now - s.seen >= self.idle_s or now - s.started >= self.max_s]:
            del self._live[sid]
