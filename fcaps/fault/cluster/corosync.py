"""The membership source: what the local Corosync says, as a `Membership`, kept current.

`CorosyncSource` is an asyncio component on the injected clock. It holds one `Session`
(a connection to the local Corosync through the three client libraries), puts the
session's file descriptors on the event loop (`loop.add_reader`) and, when one is
readable, dispatches the waiting notifications (quorum: membership, ring id, quorate;
votequorum: quorate, expected votes) and reads the whole membership afresh. knet does not
notify its link figures, so the same full read also runs every `poll_s` seconds. The
listener given to the constructor is called with the new `Membership` whenever it differs
from the last one (a member, the quorum, a link's state or latency), never with an equal
one.

Rules:
- No subprocess and no blocking call on the event loop. Every library call runs in one
  worker thread of this source, one call at a time, each bounded by `call_timeout_s`
  (a duration on the loop's clock: it bounds real I/O). A Corosync that stalls makes the
  call time out, which counts as a lost connection.
- Unknown is never guessed: when the connection is lost (Corosync stopped or killed: the
  descriptor closes, a dispatch or a read fails, or a call times out), the membership
  becomes None, the listener is called once with None, and the source reconnects after
  `backoff_min_s`, doubling the wait after each failed attempt up to `backoff_max_s`, on
  the injected clock. A reconnect opens a fresh session and reads everything again; the
  wait goes back to `backoff_min_s` after a success.
- A missing client library (`LibraryMissing`) is a failed attempt like any other, logged
  once: the membership stays unknown, it is never made up.

`CorosyncSession` is the real session over `corolib`; the unit tests give the source a
fake one through the same `Session` protocol.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import select
import time
from typing import Awaitable, Callable, Mapping, Protocol, TypeVar

from haoscar_snmp.core.clock import Clock, Timer

from . import corolib
from .model import KnetLink, Member, Membership, Quorum

log = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[[Membership | None], None]
Runner = Callable[[Callable[[], T]], Awaitable[T]]

MAX_LINKS = 8               # knet links 0..7


class Session(Protocol):
    """One connection to the local Corosync. Every method may block for one local IPC
    round trip, and raises (`corolib.CsError`, `OSError`) once the connection is gone."""

    def fds(self) -> tuple[int, ...]:
        """The descriptors that become readable when a notification waits."""

    def dispatch(self) -> None:
        """Run the callbacks of every waiting notification, without waiting for more."""

    def read(self) -> Membership:
        """The whole membership as Corosync says it now."""

    def close(self) -> None:
        """Finalize the connection (errors ignored)."""


def ring_id_text(node_id: int, seq: int) -> str:
    """A ring id as corosync-quorumtool prints it: both numbers in hexadecimal."""
    return f"{node_id:x}.{seq:x}"


def nodes_from_cmap(items: Mapping[str, object]) -> dict[int, tuple[str, tuple[int, ...]]]:
    """{node id: (name, link numbers)} from cmap's `nodelist.node.<i>.*` keys. A node
    without a `name` is called by its ring0_addr; its links are the `ring<L>_addr` it has;
    an entry without a nodeid is left out (Corosync 3 with knet requires one)."""
    raw: dict[str, dict[str, object]] = {}
    for key, value in items.items():
        parts = key.split(".")
        if len(parts) == 4 and parts[:2] == ["nodelist", "node"]:
            raw.setdefault(parts[2], {})[parts[3]] = value
    out: dict[int, tuple[str, tuple[int, ...]]] = {}
    for fields in raw.values():
        node_id = fields.get("nodeid")
        if not isinstance(node_id, int):
            continue
        links = tuple(n for n in range(MAX_LINKS) if f"ring{n}_addr" in fields)
        out[node_id] = (str(fields.get("name") or fields.get("ring0_addr") or node_id), links)
    return out


def links_from_stats(node_id: int, links: tuple[int, ...],
                     stat: Callable[[str], int | None]) -> tuple[KnetLink, ...]:
    """knet's view of each link to a node, from the stats map (`stat(key)`: the value, or
    None if there is no such key). A link knet has no entry for is not connected; its
    latency is None until knet has a sample."""
    out = []
    for link in links:
        prefix = f"stats.knet.node{node_id}.link{link}."
        connected = stat(prefix + "connected")
        samples = stat(prefix + "latency_samples") if connected is not None else None
        latency = stat(prefix + "latency_ave") if samples else None
        out.append(KnetLink(link=link, connected=bool(connected), latency_us=latency))
    return tuple(out)


class CorosyncSession:
    """The real session: libquorum and libvotequorum tracking, libcmap for the nodelist,
    the effective token and knet's link figures (stats map). Opening waits (bounded) for
    the first quorum notification, which trackstart(CS_TRACK_CURRENT) sends at once."""

    def __init__(self, first_notify_timeout_s: float = 5.0) -> None:
        self._handles: list[corolib.QuorumHandle | corolib.VotequorumHandle | corolib.CmapHandle] = []
        try:
            self._cmap = self._keep(corolib.CmapHandle())
            self._stats = self._keep(corolib.CmapHandle(stats=True))
            self._quorum = self._keep(corolib.QuorumHandle())
            self._votequorum = self._keep(corolib.VotequorumHandle())
            self._quorum.trackstart()
            self._votequorum.trackstart()
            self._last: corolib.QuorumEvent | None = None
            self._wait_first(first_notify_timeout_s)
        except BaseException:
            self.close()
            raise

    def _keep(self, handle: T) -> T:
        self._handles.append(handle)  # type: ignore[arg-type]
        return handle

    def _wait_first(self, timeout_s: float) -> None:
        fd = self._quorum.fd()
        deadline = time.monotonic() + timeout_s
        while self._last is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise corolib.CsError("quorum_trackstart (no first notification)", 5)
            select.select([fd], [], [], left)
            self.dispatch()

    def fds(self) -> tuple[int, ...]:
        return (self._quorum.fd(), self._votequorum.fd())

    def dispatch(self) -> None:
        self._quorum.dispatch()
        self._votequorum.dispatch()
        if self._quorum.events:
            self._last = self._quorum.events[-1]
            self._quorum.events.clear()
        self._votequorum.events.clear()     # read() asks votequorum itself

    def read(self) -> Membership:
        if self._last is None:
            raise corolib.CsError("quorum (no notification yet)", 12)
        local = self._votequorum.getinfo(0)
        nodes = self._nodelist()
        online = set(self._last.members)
        members = []
        for node_id, (name, links) in sorted(nodes.items()):
            try:
                votes = self._votequorum.getinfo(node_id).votes
            except corolib.CsError as exc:
                if exc.name != "CS_ERR_NOT_EXIST":
                    raise
                votes = 0
            members.append(Member(node_id=node_id, name=name, votes=votes, online=node_id in online,
                                  links=() if node_id == local.node_id else self._links(node_id, links)))
        quorum = Quorum(quorate=self._last.quorate, expected_votes=local.expected_votes,
                        total_votes=local.total_votes,
                        ring_id=ring_id_text(self._last.ring_nodeid, self._last.ring_seq),
                        token_ms=int(self._cmap.get("runtime.config.totem.token")))
        return Membership(local_node_id=local.node_id, quorum=quorum, members=tuple(members))

    def _nodelist(self) -> dict[int, tuple[str, tuple[int, ...]]]:
        return nodes_from_cmap(self._cmap.items("nodelist.node."))

    def _links(self, node_id: int, links: tuple[int, ...]) -> tuple[KnetLink, ...]:
        return links_from_stats(node_id, links, self._stat)

    def _stat(self, key: str) -> int | None:
        """A stats map value as an int; None if the key does not exist."""
        try:
            return int(self._stats.get(key))     # type: ignore[arg-type]
        except corolib.CsError as exc:
            if exc.name != "CS_ERR_NOT_EXIST":
                raise
            return None

    def close(self) -> None:
        for handle in reversed(self._handles):
            try:
                handle.finalize()
            except corolib.CsError:
                pass
        self._handles.clear()


class CorosyncSource:
    """Keeps the latest `Membership` of the local Corosync (None: unknown) and tells the
    listener of every change. `start()` and `stop()` on the event loop."""

    def __init__(self, clock: Clock, listener: Listener,
                 open_session: Callable[[], Session] = CorosyncSession, *,
                 poll_s: float = 5.0, backoff_min_s: float = 0.5, backoff_max_s: float = 8.0,
                 call_timeout_s: float = 5.0, runner: Runner | None = None) -> None:
        if not 0 < backoff_min_s <= backoff_max_s:
            raise ValueError("backoff: 0 < backoff_min_s <= backoff_max_s")
        if poll_s <= 0 or call_timeout_s <= 0:
            raise ValueError("poll_s and call_timeout_s must be positive")
        self._clock = clock
        self._listener = listener
        self._open = open_session
        self._poll_s = poll_s
        self._backoff_min = backoff_min_s
        self._backoff_max = backoff_max_s
        self._backoff = backoff_min_s
        self._call_timeout = call_timeout_s
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._runner = runner or self._in_worker
        self._membership: Membership | None = None
        self._session: Session | None = None
        self._fds: tuple[int, ...] = ()
        self._generation = 0            # bumped at every loss: late results of an old session are dropped
        self._timer: Timer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._reading = False           # readers on the loop (off while a dispatch runs)
        self._missing_logged = False
        self.attempts = 0               # connection attempts so far (figures for tests and views)
        self.losses = 0

    @property
    def membership(self) -> Membership | None:
        return self._membership

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Connect now (on the running loop); later attempts follow the backoff."""
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._spawn(self._connect())

    async def stop(self) -> None:
        self._running = False
        self._cancel_timer()
        self._remove_readers()
        for task in list(self._tasks):
            task.cancel()
        session, self._session = self._session, None
        if session is not None:
            try:
                await asyncio.wait_for(self._runner(session.close), self._call_timeout)
            except (asyncio.TimeoutError, Exception):     # closing is best effort
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- the worker --------------------------------------------------------------------

    async def _in_worker(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="corosync")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _call(self, fn: Callable[[], T], late: Callable[[T], None] | None = None) -> T:
        """fn() in the worker, bounded by call_timeout_s. The call itself is not abandoned
        on a timeout (a thread cannot be stopped): if it still returns a result after the
        caller gave up (timeout, cancellation), `late` gets that result."""
        future = asyncio.ensure_future(self._runner(fn))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._call_timeout)
        except BaseException:
            if late is not None:
                future.add_done_callback(functools.partial(self._late, late))
            raise

    @staticmethod
    def _late(late: Callable[[T], None], future: asyncio.Future[T]) -> None:
        if not future.cancelled() and future.exception() is None:
            late(future.result())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- connecting --------------------------------------------------------------------

    async def _connect(self) -> None:
        self._timer = None
        if not self._running or self._session is not None:
            return
        self.attempts += 1
        generation = self._generation
        session: Session | None = None
        try:
            session = await self._call(self._open, late=self._close_later)
            membership = await self._call(session.read)
            fds = await self._call(session.fds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to connect is "unknown, retry"
            if session is not None:
                self._spawn(self._close(session))
            self._retry_later(exc)
            return
        if not self._running or generation != self._generation:
            self._spawn(self._close(session))
            return
        self._session = session
        self._backoff = self._backoff_min
        self._missing_logged = False
        self._fds = fds
        self._add_readers()
        self._set(membership)
        self._arm_poll()
        log.info("corosync: connected (node %d, ring %s)", membership.local_node_id, membership.quorum.ring_id)

    def _retry_later(self, exc: BaseException) -> None:
        if isinstance(exc, corolib.LibraryMissing):
            if not self._missing_logged:
                log.error("corosync: %s; the membership stays unknown", exc)
                self._missing_logged = True
        else:
            log.debug("corosync: connection attempt failed: %s", exc)
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)
        if self._running:
            self._timer = self._clock.call_later(delay, self._spawn_connect)

    def _spawn_connect(self) -> None:
        self._spawn(self._connect())

    def _close_later(self, session: Session) -> None:
        self._spawn(self._close(session))

    async def _close(self, session: Session) -> None:
        try:
            await self._call(session.close)
        except Exception:  # noqa: BLE001 - closing a dead session is best effort
            pass

    # -- while connected ---------------------------------------------------------------

    def _readable(self) -> None:
        # One dispatch at a time: readers off until it is done.
        self._remove_readers()
        self._spawn(self._refresh(dispatch=True))

    def _arm_poll(self) -> None:
        self._cancel_timer()
        if self._running and self._session is not None:
            self._timer = self._clock.call_later(self._poll_s, self._poll)

    def _poll(self) -> None:
        self._timer = None
        if self._fds and not self._reading:
            self._arm_poll()        # a dispatch is running; it reads everything anyway
            return
        self._spawn(self._refresh(dispatch=False))

    async def _refresh(self, dispatch: bool) -> None:
        session, generation = self._session, self._generation
        if session is None:
            return
        try:
            if dispatch:
                await self._call(session.dispatch)
            membership = await self._call(session.read)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed call means the connection is gone
            if generation == self._generation:
                self._lost(exc)
            return
        if generation != self._generation or not self._running:
            return
        self._set(membership)
        if dispatch:
            self._add_readers()
        else:
            self._arm_poll()

    def _lost(self, exc: BaseException) -> None:
        log.warning("corosync: connection lost (%s); membership unknown until it is back", exc)
        self.losses += 1
        self._generation += 1
        self._cancel_timer()
        self._remove_readers()
        self._fds = ()
        session, self._session = self._session, None
        if session is not None:
            self._spawn(self._close(session))
        self._set(None)
        self._backoff = self._backoff_min
        if self._running:
            self._timer = self._clock.call_later(self._backoff, self._spawn_connect)
            self._backoff = min(self._backoff * 2, self._backoff_max)

    # -- helpers -----------------------------------------------------------------------

    def _set(self, membership: Membership | None) -> None:
        if membership == self._membership:
            return
        self._membership = membership
        try:
            self._listener(membership)
        except Exception:  # noqa: BLE001 - a listener's bug must not stop the source
            log.exception("corosync: the membership listener failed")

    def _add_readers(self) -> None:
        loop = self._loop or asyncio.get_running_loop()
        for fd in self._fds:
            loop.add_reader(fd, self._readable)
        self._reading = True

    def _remove_readers(self) -> None:
        loop = self._loop
        if loop is not None:
            for fd in self._fds:
                loop.remove_reader(fd)
        self._reading = False

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
