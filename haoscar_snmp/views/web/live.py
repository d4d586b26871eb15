"""Live updates: the snapshot pushed to open pages as server-sent events.

A page opens `GET /live` (an EventSource) and receives the whole snapshot as one
`data:` line, at once and again whenever it changes: right after an event on the
daemon's `EventBus` (every state transition publishes one), and otherwise when a poll
every `POLL_S` finds the source's marker changed (counters and figures move without
events). The marker is a hash of the rows the snapshot reads (views/source.py), a
fraction of a build's cost; only a changed marker costs a build. One snapshot is built
and encoded per push, in slices, for every client alike, and a page that opens while
the state is unchanged gets the last push's text without a build. A comment line every
`KEEPALIVE_S` keeps proxies from closing an idle stream.

At most `max_clients` streams are open: one more is answered 503 at once. A client
that does not read its stream is dropped after `SEND_TIMEOUT_S`, so no page holds
memory on the daemon. All waiting is on the injected clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event

from .guard import stream_headers

log = logging.getLogger(__name__)

POLL_S = 0.5
EVENT_DELAY_S = 0.05       # events come in bursts (a failover publishes several): one push
KEEPALIVE_S = 15.0
SEND_TIMEOUT_S = 5.0
VOLATILE = frozenset({"generated", "ago_s", "uptime_s"})   # move every instant, change nothing


class Source(Protocol):
    """What the feed reads (views/source.py's SnapshotSource)."""

    async def json(self) -> str: ...

    async def marker(self) -> int: ...


class BuiltSource:
    """A source around a function that builds the snapshot in one go; its marker is the
    snapshot's fingerprint (for a panel given only such a function)."""

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        self.build = build

    def __call__(self) -> dict[str, Any]:
        return self.build()

    async def json(self) -> str:
        return json.dumps(self.build(), separators=(",", ":"))

    async def marker(self) -> int:
        return hash(fingerprint(self.build()))


def as_source(snapshot: Any) -> Any:
    """`snapshot` if it is a source already, else a `BuiltSource` around it."""
    return snapshot if hasattr(snapshot, "marker") else BuiltSource(snapshot)


def fingerprint(snapshot: Any) -> str:
    """A digest of the snapshot without its ever-moving times."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return hashlib.sha256(json.dumps(strip(snapshot), sort_keys=True).encode()).hexdigest()


class LiveFeed:
    def __init__(self, source: Source, clock: Clock, max_clients: int) -> None:
        self.source = source
        self.clock = clock
        self.max_clients = max_clients
        self._clients: set[asyncio.Queue[str]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last: tuple[int, str] | None = None      # (marker, text) of the last build
        self.pushes = 0
        self.builds = 0
        self.refused = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    def on_event(self, event: Event) -> None:
        """EventBus subscriber: quick, only wakes the pusher."""
        if self._clients:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="web-live")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for queue in self._clients:
            queue.put_nowait("")         # "" ends the stream

    async def _run(self) -> None:
        while True:
            waiter = asyncio.ensure_future(self._wake.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(POLL_S))
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            sleeper.cancel()
            if self._wake.is_set():
                self._wake.clear()
                await self.clock.sleep(EVENT_DELAY_S)
            if not self._clients:
                continue
            try:
                await self._push()
            except Exception:  # noqa: BLE001 - a view's bug must not end the feed
                log.exception("web panel: building the live snapshot failed")

    async def _current(self) -> tuple[str, bool]:
        """The snapshot's text, and whether it is new: built only when the marker moved."""
        marker = await self.source.marker()
        last = self._last
        if last is not None and last[0] == marker:
            return last[1], False
        text = await self.source.json()
        self.builds += 1
        self._last = (marker, text)        # the marker read before the build: a change
        return text, True                  # during it shows at the next poll

    async def _push(self) -> None:
        text, new = await self._current()
        if not new:
            return
        message = f"data: {text}\n\n"
        self.pushes += 1
        for queue in self._clients:
            if queue.qsize() < 2:        # a slow reader gets the newest, not a backlog
                queue.put_nowait(message)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if len(self._clients) >= self.max_clients:
            self.refused += 1
            raise web.HTTPServiceUnavailable(text=f"too many live pages open (at most {self.max_clients})",
                                             headers={"Retry-After": "10"})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "X-Accel-Buffering": "no"})
        stream_headers(request, response)
        await response.prepare(request)
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._clients.add(queue)
        try:
            text, _ = await self._current()
            await self._send(response, f"retry: 1000\ndata: {text}\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    message = ": keepalive\n\n"
                if not message:
                    break
                await self._send(response, message)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self._clients.discard(queue)
        return response

    @staticmethod
    async def _send(response: web.StreamResponse, message: str) -> None:
        await asyncio.wait_for(response.write(message.encode()), SEND_TIMEOUT_S)
