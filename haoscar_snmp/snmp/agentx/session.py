"""The AgentX subagent: one session with the master agent (net-snmp's snmpd), kept up.

    subagent = Subagent(settings, handler, state.agentx)
    subagent.start()                     # in the running loop; returns at once
    bus.subscribe("agentx", subagent.on_event)
    ...
    await subagent.stop()                # queued notifications get a moment, then Close

One task runs the life of the link: connect (unix socket or TCP), Open, Register our
subtree, AddAgentCaps (a sysORTable row); then four tasks serve the session until it is
lost: the reader (bytes to PDUs, Responses to whoever waits for them, requests queued),
the worker (answers requests in order, from `RequestHandler`), the keepalive (a Ping
every interval; `retries + 1` unanswered in a row and the master counts as dead) and
the notification sender (Notify, one at a time, from a bounded queue). When the session
is lost (snmpd restarted or reloaded, a dead or frozen master, a parse error that loses
the framing, a master that stops reading) the link goes to BACKOFF and tries again after
0.5 s doubling to 30 s, with jitter; a registered session resets the delay.

Nothing here blocks: non-blocking streams, every wait bounded by the configured timeout,
and at most MAX_WRITE_BUFFER octets waiting for a master that does not read: past that,
the connection is dropped rather than buffered forever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from haoscar_snmp.config.schema import AgentxConfig
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.events import Event
from haoscar_snmp.core.measure import Measurements
from haoscar_snmp.core.state import AgentxStats, AgentxStatus

from ..mib import OID
from ..notify import NotificationBuilder
from .backoff import Backoff
from .decoder import ParseError
from .encoder import encode
from .pdu import (
    AddAgentCaps,
    CleanupSet,
    Close,
    CloseReason,
    Notify,
    Open,
    Pdu,
    PduType,
    Ping,
    Register,
    Response,
    ResponseError,
    VarBind,
)
from .requests import RequestHandler
from .stream import StreamDecoder
from .values import varbind

log = logging.getLogger(__name__)

MAX_WRITE_BUFFER = 1 << 20      # octets queued for a master that does not read
MAX_QUEUED_REQUESTS = 1024      # requests read but not answered yet
PARSE_LOG_EVERY_S = 60.0        # unreadable PDUs: at most one log line this often
RESPONSE_CACHE = 64             # answers kept for retransmitted requests
READ_CHUNK = 64 * 1024

# The allowed transitions of the link, named in one table and checked at each change;
# CLOSED can follow any state.
_TRANSITIONS = {
    (AgentxStatus.DISABLED, AgentxStatus.CONNECTING),     # started
    (AgentxStatus.BACKOFF, AgentxStatus.CONNECTING),      # the delay is over
    (AgentxStatus.CONNECTING, AgentxStatus.REGISTERED),   # Open and Register answered
    (AgentxStatus.CONNECTING, AgentxStatus.BACKOFF),      # no master, or it refused us
    (AgentxStatus.REGISTERED, AgentxStatus.BACKOFF),      # the session was lost
}

Opener = Callable[[str, float], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
Sleep = Callable[[float], Awaitable[None]]


class SessionLost(Exception):
    """The session cannot go on; the text says why (it is logged and kept as last_error)."""


@dataclass(frozen=True)
class SessionSettings:
    master: str
    timeout_s: float
    retries: int
    priority: int
    ping_interval_s: float
    queue_size: int
    subtree: OID
    identity: OID                    # Open's o.id: what this subagent is
    caps: OID                        # AddAgentCaps's id: the sysORTable row (sysORID)
    descr: bytes = b"haoscar-snmp: HA-OSCAR cluster head (HAOSCAR-MIB)"
    network_byte_order: bool = True

    @classmethod
    def of(cls, config: AgentxConfig, subtree: OID, identity: OID) -> SessionSettings:
        return cls(master=config.master, timeout_s=config.timeout_ms / 1000, retries=config.retries,
                   priority=config.priority, ping_interval_s=config.ping_interval_ms / 1000,
                   queue_size=config.notify_queue, subtree=subtree, identity=identity, caps=subtree)


async def open_master(master: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to "/path/to/socket" or "tcp:HOST:PORT" within `timeout` seconds."""
    if master.startswith("tcp:"):
        host, _, port = master.removeprefix("tcp:").rpartition(":")
        return await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), timeout)
    return await asyncio.wait_for(asyncio.open_unix_connection(master), timeout)


class _Connection:
    """One connected stream: its decoder, the session ID once open, and bounded writes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 stats: AgentxStats) -> None:
        self.reader = reader
        self.writer = writer
        self.stats = stats
        self.decoder = StreamDecoder()
        self.session_id = 0
        # (request, its byte order, the loop's time when it was read)
        self.requests: asyncio.Queue[tuple[Pdu, bool, float]] = asyncio.Queue(MAX_QUEUED_REQUESTS)

    def send(self, pdu: Pdu, network_byte_order: bool) -> None:
        transport = self.writer.transport
        if transport.is_closing():
            raise SessionLost("the connection is closed")
        self.writer.write(encode(pdu, network_byte_order=network_byte_order))
        self.stats.pdus_out += 1
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            transport.abort()
            raise SessionLost(f"the master stopped reading ({MAX_WRITE_BUFFER} octets unsent)")

    def close(self) -> None:
        self.writer.transport.abort()


class Subagent:
    """Keeps one AgentX session with the master up, serves it, and sends notifications."""

    def __init__(self, settings: SessionSettings, handler: RequestHandler, stats: AgentxStats, *,
                 builder: NotificationBuilder | None = None, opener: Opener = open_master,
                 sleep: Sleep = asyncio.sleep, rand: Callable[[], float] = random.random,
                 channel: Measurements | None = None) -> None:
        # `sleep` waits between attempts (the tests' fake clock); `rand` draws the jitter.
        self.settings = settings
        self.handler = handler
        self.stats = stats
        # Requests answered and their handling time (from the moment the PDU was read to
        # its answer handed to the socket), and requests dropped (unreadable), counted
        # here and taken once a second by the performance area.
        self.meter = (channel or Measurements()).meter("snmp.agentx")
        self.builder = builder
        self._open = opener
        self._sleep = sleep
        self.backoff = Backoff(rand=rand)
        self._queue: deque[tuple[VarBind, ...]] = deque()
        self._queued = asyncio.Event()
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._parse_logged_at = -PARSE_LOG_EVERY_S
        self._packet_id = 0
        self._answers: OrderedDict[tuple[int, int, int, int], Response | None] = OrderedDict()
        self._conn: _Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._drop_logged = False
        stats.master = settings.master

    # -- life ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="agentx")

    async def stop(self, drain_s: float = 1.0) -> None:
        """Let queued notifications leave (bounded), Close the session, stop."""
        self._stopping = True
        conn = self._conn
        if conn is not None and self.stats.status is AgentxStatus.REGISTERED:
            deadline = asyncio.get_running_loop().time() + drain_s
            while self._queue and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            try:
                await self._request(conn, Close(reason=CloseReason.SHUTDOWN))
            except (TimeoutError, SessionLost, OSError):
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._queue:
            log.warning("AgentX: %d notification(s) not sent through the master before stopping",
                        len(self._queue))
        self._transition(AgentxStatus.CLOSED, "stopped")
        log.info("%s", self.describe())

    def describe(self) -> str:
        s = self.stats
        where = f"session {s.session_id} with {s.master}" if s.status is AgentxStatus.REGISTERED \
            else f"master {s.master}"
        return (f"AgentX {s.status.name.lower()}, {where}: {s.connects} session(s) opened, "
                f"{s.reconnects} reconnect(s), {s.failed_attempts} failed attempt(s), "
                f"{s.pdus_in:,} PDUs in, {s.pdus_out:,} out, {s.parse_errors} parse error(s), "
                f"{s.duplicates} retransmission(s) answered from cache, "
                f"{s.notifications_sent} notification(s) sent, {s.notifications_dropped} dropped, "
                f"{len(self._queue)} queued" + (f"; last error: {s.last_error}" if s.last_error else ""))

    def _transition(self, new: AgentxStatus, why: str) -> None:
        old = self.stats.status
        if old is new:
            return
        assert new is AgentxStatus.CLOSED or (old, new) in _TRANSITIONS, f"{old.name} -> {new.name}"
        self.stats.status = new
        log.debug("AgentX %s -> %s: %s", old.name, new.name, why)

    async def _run(self) -> None:
        self._transition(AgentxStatus.CONNECTING, "started")
        while not self._stopping:
            try:
                await self._connection()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, SessionLost, OSError, EOFError) as exc:
                self._lost(str(exc) or type(exc).__name__)
            except Exception:  # the catch-all at this loop's edge
                log.exception("AgentX session failed; %s", BUG_MARKER)
                self._lost("internal error")
            finally:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                for fut in self._pending.values():
                    fut.cancel()
                self._pending.clear()
            if self._stopping:
                return
            delay = self.backoff.next()
            log.debug("AgentX: next attempt in %.2f s", delay)
            await self._sleep(delay)
            self._transition(AgentxStatus.CONNECTING, "retrying")

    def _lost(self, why: str) -> None:
        s = self.stats
        if s.status is AgentxStatus.REGISTERED:
            log.warning("AgentX session %d with %s lost: %s; reconnecting (%s)", s.session_id,
                        s.master, why, self.describe())
        else:
            s.failed_attempts += 1
            if why != s.last_error:   # a master that stays away is said once, not every 30 s
                log.warning("AgentX: cannot register with %s: %s; retrying with backoff", s.master, why)
        s.last_error = why
        s.session_id = 0
        self._transition(AgentxStatus.BACKOFF, why)

    async def _connection(self) -> None:
        reader, writer = await self._open(self.settings.master, self.settings.timeout_s)
        conn = self._conn = _Connection(reader, writer, self.stats)
        self._answers.clear()
        self.handler.reset()
        tasks = {asyncio.ensure_future(self._read(conn)), asyncio.ensure_future(self._work(conn))}
        try:
            handshake = asyncio.ensure_future(self._handshake(conn))
            done, _ = await asyncio.wait(tasks | {handshake}, return_when=asyncio.FIRST_COMPLETED)
            if handshake not in done:
                handshake.cancel()
                _raise_first(done)
            handshake.result()
            self._registered(conn)
            tasks |= {asyncio.ensure_future(self._keepalive(conn)),
                      asyncio.ensure_future(self._send_notifications(conn))}
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            _raise_first(done)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _handshake(self, conn: _Connection) -> None:
        s = self.settings
        opened = await self._request(conn, Open(timeout=min(255, math.ceil(s.timeout_s)),
                                                id=s.identity, descr=s.descr))
        if opened.error:
            raise SessionLost(f"Open refused: {_error_name(opened.error)}")
        conn.session_id = opened.session_id
        registered = await self._request(conn, Register(
            subtree=s.subtree, priority=s.priority, timeout=min(255, math.ceil(s.timeout_s))))
        if registered.error:
            raise SessionLost(f"Register of {_dotted(s.subtree)} refused: {_error_name(registered.error)}")
        caps = await self._request(conn, AddAgentCaps(id=s.caps, descr=s.descr))
        if caps.error:   # only the sysORTable row is missing: serve anyway
            log.warning("AgentX: AddAgentCaps refused: %s", _error_name(caps.error))

    def _registered(self, conn: _Connection) -> None:
        s = self.stats
        s.session_id = conn.session_id
        if s.connects:
            s.reconnects += 1
        s.connects += 1
        s.last_error = ""
        self.backoff.reset()
        self._drop_logged = False
        self._transition(AgentxStatus.REGISTERED, "registered")
        log.info("AgentX: registered %s with %s as session %d (priority %d)",
                 _dotted(self.settings.subtree), s.master, s.session_id, self.settings.priority)

    # -- the four tasks of a session -----------------------------------------------------

    async def _read(self, conn: _Connection) -> None:
        while True:
            data = await conn.reader.read(READ_CHUNK)
            if not data:
                raise SessionLost("the master closed the connection")
            conn.decoder.feed(data)
            while True:
                try:
                    pdu = conn.decoder.next_pdu()
                except ParseError as err:
                    self._parse_error(conn, err)
                    continue
                if pdu is None:
                    break
                self.stats.pdus_in += 1
                header = conn.decoder.last_header
                assert header is not None
                if isinstance(pdu, Response):
                    fut = self._pending.pop(pdu.packet_id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(pdu)
                    continue
                if isinstance(pdu, Close):
                    raise SessionLost(f"the master closed the session ({_close_reason(pdu.reason)})")
                try:
                    conn.requests.put_nowait((pdu, header.network_byte_order,
                                              asyncio.get_running_loop().time()))
                except asyncio.QueueFull:
                    raise SessionLost(f"{MAX_QUEUED_REQUESTS} requests unanswered") from None

    def _parse_error(self, conn: _Connection, err: ParseError) -> None:
        self.stats.parse_errors += 1
        self.meter.drop()
        if not err.resumable:
            # No frame marker to resync on: say why, and start a new session.
            try:
                conn.send(Close(session_id=conn.session_id, reason=CloseReason.PARSE_ERROR),
                          self.settings.network_byte_order)
            except SessionLost:
                pass
            raise SessionLost(f"parse error, framing lost: {err.reason}")
        h = err.header
        # A master gone wrong may send thousands: the first of each minute is logged, the
        # rest only counted (haoscarAgentxParseErrors).
        now = asyncio.get_running_loop().time()
        if now - self._parse_logged_at >= PARSE_LOG_EVERY_S:
            self._parse_logged_at = now
            log.warning("AgentX: unreadable PDU from the master skipped (%d so far; at most one "
                        "logged a minute): %s", self.stats.parse_errors, err.reason)
        if h is not None and h.type not in (PduType.RESPONSE, PduType.CLEANUP_SET):
            conn.send(Response(session_id=h.session_id, transaction_id=h.transaction_id,
                               packet_id=h.packet_id, error=ResponseError.PARSE_ERROR),
                      h.network_byte_order)

    async def _work(self, conn: _Connection) -> None:
        while True:
            pdu, network_byte_order, read_at = await conn.requests.get()
            key = (pdu.TYPE, pdu.session_id, pdu.transaction_id, pdu.packet_id)
            if key in self._answers:   # a retransmission: the same answer, not a second run
                self.stats.duplicates += 1
                answer = self._answers[key]
            elif pdu.session_id != conn.session_id:
                answer = Response.answering(pdu, error=ResponseError.NOT_OPEN)
            else:
                answer = await self.handler.answer(pdu)
                self._answers[key] = answer
                if len(self._answers) > RESPONSE_CACHE:
                    self._answers.popitem(last=False)
            if answer is not None and not isinstance(pdu, CleanupSet):
                conn.send(answer, network_byte_order)
                self.meter.add(int((asyncio.get_running_loop().time() - read_at) * 1_000_000))

    async def _keepalive(self, conn: _Connection) -> None:
        missed = 0
        while True:
            await asyncio.sleep(self.settings.ping_interval_s)
            try:
                await self._request(conn, Ping())
                missed = 0
            except TimeoutError:
                missed += 1
                if missed > self.settings.retries:
                    raise SessionLost(f"the master answered none of {missed} pings") from None

    async def _send_notifications(self, conn: _Connection) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            varbinds = self._queue.popleft()
            try:
                answer = await self._request(conn, Notify(varbinds=varbinds))
            except BaseException:
                self._queue.appendleft(varbinds)   # at least once: it goes out after reconnect
                self._trim()
                raise
            if answer.error:
                self.stats.notifications_dropped += 1
                log.warning("AgentX: the master refused a notification: %s", _error_name(answer.error))
            else:
                self.stats.notifications_sent += 1

    async def _request(self, conn: _Connection, pdu: Pdu) -> Response:
        """Send one of our PDUs and wait (bounded) for the master's Response."""
        self._packet_id = self._packet_id % 0xFFFFFFFF + 1
        pdu = dataclasses.replace(pdu, session_id=conn.session_id, packet_id=self._packet_id)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[pdu.packet_id] = fut
        try:
            conn.send(pdu, self.settings.network_byte_order)
            return await asyncio.wait_for(fut, self.settings.timeout_s)
        finally:
            self._pending.pop(pdu.packet_id, None)

    # -- notifications -------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Event-bus consumer: the notification the MIB defines for this event, if any."""
        if self.builder is None:
            return
        varbinds = self.builder.build(event)
        if varbinds is not None:
            self.notify(varbinds)

    def notify(self, varbinds: list[tuple[OID, Any]]) -> None:
        """Queue a notification (snmpTrapOID.0 first, as the builder makes them); the
        values are taken now. Only records and wakes: the sender task sends."""
        self._queue.append(tuple(varbind(name, value) for name, value in varbinds))
        self._trim()
        self._queued.set()

    def _trim(self) -> None:
        while len(self._queue) > self.settings.queue_size:
            self._queue.popleft()
            self.stats.notifications_dropped += 1
            if not self._drop_logged:
                self._drop_logged = True
                log.warning("AgentX: notification queue full (%d) while %s: dropping the oldest",
                            self.settings.queue_size, self.stats.status.name.lower())

    @property
    def queued(self) -> int:
        return len(self._queue)


def _raise_first(done: set[asyncio.Future[Any]]) -> None:
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    raise SessionLost("the session ended")


def _error_name(error: int) -> str:
    try:
        return ResponseError(error).name.lower()
    except ValueError:
        return str(error)


def _close_reason(reason: int) -> str:
    try:
        return CloseReason(reason).name.lower()
    except ValueError:
        return str(reason)


def _dotted(oid: OID) -> str:
    return ".".join(map(str, oid))
