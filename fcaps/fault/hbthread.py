"""The heartbeat's own thread: sockets, a monotonic send timer, dead-time timers, carrier.

Heartbeats must not wait behind SNMP work (a GETBULK, a flood of junk datagrams) or a
slow job on the daemon's event loop: at a 20 ms interval, a 40 ms stall on the loop is
a false failover. So the heartbeat runs on an event loop of its own, in its own thread,
as keepalived keeps VRRP apart from its checkers:

* a send timer on the monotonic clock, re-armed in phase (never a burst of catch-ups);
* one UDP socket per path; every datagram is judged at once by `HeartbeatCore`;
* a timer at the next path deadline, so a silent peer is declared at its dead time;
* a netlink subscription (pyroute2) to link changes, so a carrier lost on this head's
  own heartbeat or alias interfaces is seen within milliseconds.

The thread shares nothing mutable with the loop but the path rows' counters (single
ints, written here only). What the loop needs, a new `PeerView` or `LinkView` and the
notices, is handed over with `call_soon_threadsafe`, and the loop hands back only a new
`LocalView` (what to advertise), swapped in as one reference.

Python runs one thread at a time; a thread that wakes gets its turn within the
interpreter's switch interval, which the daemon lowers to 1 ms, so a busy loop delays
a heartbeat by about that much (measured: docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from haoscar_snmp.config.persist import atomic_write
from haoscar_snmp.core.scheduler import BUG_MARKER
from haoscar_snmp.core.state import JobRow, Lan, LinkView, PeerView

from .heartbeat import LAN_NAMES, HeartbeatCore, LocalView, Notice

if TYPE_CHECKING:
    from haoscar_snmp.config.schema import Config
    from haoscar_snmp.core.clock import Clock
    from haoscar_snmp.core.state import State

log = logging.getLogger(__name__)

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
STOP_TIMEOUT_S = 2.0
START_TIMEOUT_S = 10.0

Sink = Callable[[PeerView, LinkView, list[Notice]], None]


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, service: "HeartbeatThread", lan: Lan) -> None:
        self.service = service
        self.lan = lan
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.service.received(data, self.lan)

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable from a dead peer lands here: normal during failures.
        log.debug("heartbeat socket on %s: %s", LAN_NAMES[self.lan], exc)


class HeartbeatThread:
    """Runs a `HeartbeatCore` in a thread; posts what changes to the daemon's loop."""

    name = "heartbeat"

    def __init__(self, core: HeartbeatCore, port: int, sink: Sink, row: JobRow,
                 watch: Iterable[str] = (), epoch_file: Path | None = None) -> None:
        self.core = core
        self.port = port
        self.sink = sink
        self.row = row
        self.watch = set(watch)         # alias interfaces whose carrier matters
        self.epoch_file = epoch_file
        self.local = LocalView()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._endpoints: dict[Lan, _Endpoint] = {}
        self._send_handle: asyncio.TimerHandle | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._links = LinkView()
        self._carrier: dict[str, bool] = {}
        self._nl: object | None = None
        self._nl_task: asyncio.Task[None] | None = None
        self._outbox: deque[list[Notice]] = deque()
        self._last_sentence = ""
        self._last_tick = 0.0

    # -- life cycle (called from the daemon's loop) ----------------------------------------

    async def start(self) -> None:
        """Start the thread; returns once every socket is bound (raises OSError if one
        cannot be)."""
        self._main = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._main.create_future()

        def report(error: BaseException | None) -> None:
            if not ready.done():
                if error is None:
                    ready.set_result(None)
                else:
                    ready.set_exception(error)

        self._thread = threading.Thread(target=self._run, args=(report,), name="heartbeat", daemon=True)
        self._thread.start()
        await asyncio.wait_for(ready, START_TIMEOUT_S)

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)

    def advertise(self, local: LocalView) -> None:
        """Called from the loop when the role changes what this head advertises: the next
        heartbeat carries it, and one goes out at once if it changed."""
        changed = local != self.local
        self.local = local
        if changed and self._loop is not None:
            self._loop.call_soon_threadsafe(self._send)

    def reconfigure(self) -> None:
        """Timing changed (SET or reload): re-arm the deadline with the new dead time."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._arm_deadline)

    # -- the thread ------------------------------------------------------------------------

    def _run(self, report: Callable[[BaseException | None], None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        main = self._main
        assert main is not None
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:  # noqa: BLE001 - handed to the starter, which exits 2
            main.call_soon_threadsafe(report, exc)
            self._close(loop)
            return
        main.call_soon_threadsafe(report, None)
        try:
            loop.run_forever()
        finally:
            self._close(loop)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        for lan, path in self.core.paths.items():
            family = socket.AF_INET6 if ipaddress.ip_address(path.local).version == 6 else socket.AF_INET
            _transport, proto = await loop.create_datagram_endpoint(
                lambda lan=lan: _Endpoint(self, lan), local_addr=(path.local, self.port), family=family)
            self._endpoints[lan] = proto
        await self._open_netlink()
        self._due = loop.time()
        self._tick()
        self._arm_deadline()

    def _close(self, loop: asyncio.AbstractEventLoop) -> None:
        for handle in (self._send_handle, self._deadline_handle):
            if handle is not None:
                handle.cancel()
        for ep in self._endpoints.values():
            if ep.transport is not None:
                ep.transport.close()
        if self._nl_task is not None:
            self._nl_task.cancel()
        if self._nl is not None:
            try:
                self._nl.close()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - closing at exit; nothing left to do
                pass
        try:
            loop.run_until_complete(asyncio.sleep(0))
        except RuntimeError:
            pass
        loop.close()

    # -- sending ---------------------------------------------------------------------------

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        interval = self.core.config().timing.heartbeat_interval_ms / 1000.0
        now = loop.time()
        following = self._due + interval
        self._due = following if following > now else now + interval
        self._send_handle = loop.call_at(self._due, self._tick)
        self._guarded(self._send_and_check)

    def _send_and_check(self) -> str:
        start = time.monotonic()
        self._send()
        self._check()
        row = self.row
        row.runs += 1
        row.last_run = self.core.clock.time()
        took = int((time.monotonic() - start) * 1e6)
        row.last_duration_us = took
        row.max_duration_us = max(row.max_duration_us, took)
        return self.core.summary()

    def _send(self) -> None:
        for lan, data, remote in self.core.messages(self.local):
            ep = self._endpoints.get(lan)
            if ep is not None and ep.transport is not None:
                ep.transport.sendto(data, (remote, self.port))

    # -- receiving and deadlines -----------------------------------------------------------

    def received(self, data: bytes, lan: Lan) -> None:
        def judge() -> str:
            if self.core.receive(data, lan) or self.core.has_notices():
                self._post()
            self._arm_deadline()
            self._persist_epoch()
            return ""
        self._guarded(judge)

    def _check(self) -> None:
        if self.core.check() or self.core.has_notices():
            self._post()
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
        when = self.core.next_deadline()
        if when is not None:
            self._deadline_handle = loop.call_at(when, lambda: self._guarded(self._deadline))

    def _deadline(self) -> str:
        self._check()
        return ""

    def _persist_epoch(self) -> None:
        session = self.core.session
        if session.bumped_epoch and self.epoch_file is not None:
            session.bumped_epoch = False
            atomic_write(self.epoch_file, f"{session.epoch}\n".encode())
            log.warning("heartbeat boot counter raised to %d: the peer had seen a higher one "
                        "(was the state directory wiped?)", session.epoch)

    # -- carrier (netlink) -----------------------------------------------------------------

    async def _open_netlink(self) -> None:
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink.rtnl import RTMGRP_LINK

        ipr = AsyncIPRoute()
        await ipr.bind(groups=RTMGRP_LINK)
        self._nl = ipr
        names: dict[int, str] = {}
        async for link in await ipr.link("dump"):
            names[link["index"]] = link.get("ifname")
            self._link_seen(link)
        lan_if = {}
        async for addr in await ipr.addr("dump"):
            for lan, path in self.core.paths.items():
                if addr.get("address") == path.local:
                    lan_if[lan] = names.get(addr["index"], "")
        self._links = LinkView(lan_a=lan_if.get(Lan.LAN_A, ""), lan_b=lan_if.get(Lan.LAN_B, ""),
                               public=lan_if.get(Lan.PUBLIC, ""))
        self.watch |= {name for name in lan_if.values() if name}
        self._links = self._link_view()
        self._nl_task = asyncio.get_running_loop().create_task(self._netlink_events(ipr))

    async def _netlink_events(self, ipr: object) -> None:
        try:
            while True:   # each get() yields one batch of messages
                async for msg in ipr.get():  # type: ignore[attr-defined]
                    if msg.get("event") in ("RTM_NEWLINK", "RTM_DELLINK"):
                        self._guarded(lambda msg=msg: self._link_event(msg))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the socket broke: say so, carry on without it
            log.exception("netlink link watch stopped; carrier changes are no longer seen; %s",
                          BUG_MARKER)

    def _link_seen(self, msg: dict) -> None:
        flags = msg.get("flags", 0)
        up = msg.get("event") != "RTM_DELLINK" and (flags & (IFF_UP | IFF_LOWER_UP)) == IFF_UP | IFF_LOWER_UP
        self._carrier[msg.get("ifname")] = up

    def _link_view(self) -> LinkView:
        carrier = tuple(sorted((n, self._carrier.get(n, False)) for n in self.watch if n in self._carrier))
        return LinkView(lan_a=self._links.lan_a, lan_b=self._links.lan_b, public=self._links.public,
                        carrier=carrier)

    def _link_event(self, msg: dict) -> str:
        if msg.get("ifname") not in self.watch:
            return ""
        self._link_seen(msg)
        view = self._link_view()
        if view != self._links:
            self._links = view
            self._post()
        return ""

    # -- handing over to the loop ----------------------------------------------------------

    def _post(self) -> None:
        notices = self.core.drain()
        self._outbox.append(notices)
        main = self._main
        if main is not None and not main.is_closed():
            main.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        """Runs on the daemon's loop: hand the newest views and every notice to the sink."""
        notices: list[Notice] = []
        while self._outbox:
            notices.extend(self._outbox.popleft())
        self.sink(self.core.view(), self._links, notices)

    def _guarded(self, work: Callable[[], str]) -> None:
        """The thread's catch-all: a bug in one heartbeat must not stop the next."""
        try:
            sentence = work()
        except Exception:  # noqa: BLE001 - the one catch-all of this thread
            self.row.failures += 1
            log.exception("heartbeat thread raised; %s", BUG_MARKER)
            return
        if sentence and sentence != self._last_sentence:
            self._last_sentence = sentence
            self.row.last_result = sentence[:255]
            log.info("%s: %s", self.name, sentence)


def next_epoch(state_dir: Path) -> int:
    """This start's boot counter: one more than the last, persisted before first use."""
    path = state_dir / "heartbeat.epoch"
    try:
        last = int(path.read_text().strip())
    except (OSError, ValueError):
        last = 0
    epoch = last + 1
    atomic_write(path, f"{epoch}\n".encode())
    return epoch


def build(config: Callable[[], "Config"], state: "State", clock: "Clock", state_dir: Path,
          sink: Sink, row: JobRow) -> HeartbeatThread:
    """The heartbeat of a two-head cluster: paths from the configuration, rows in the
    state (this is their one creator), a session with this start's epoch."""
    from haoscar_snmp.core.state import HbPathRow

    from .heartbeat import PathSpec
    from .hbsession import Session

    cfg = config()
    me, peer = cfg.local_head_config, cfg.peer_head_config
    assert peer is not None and me.lan_a is not None and me.lan_b is not None
    assert peer.lan_a is not None and peer.lan_b is not None
    specs = [PathSpec(Lan.LAN_A, str(me.lan_a), str(peer.lan_a)),
             PathSpec(Lan.LAN_B, str(me.lan_b), str(peer.lan_b))]
    public = cfg.public_heartbeat_path()
    if public is not None:
        specs.append(PathSpec(Lan.PUBLIC, public[0], public[1]))
    peer_index = cfg.head_index(peer.name)
    rows = {}
    for spec in specs:
        rows[spec.lan] = state.hb_paths.get((peer_index, int(spec.lan))) or HbPathRow()
        state.hb_paths.put((peer_index, int(spec.lan)), rows[spec.lan])
    epoch_file = state_dir / "heartbeat.epoch"
    session = Session(peer.name, next_epoch(state_dir))

    def keys() -> tuple[bytes, ...]:
        key = config().heartbeat.key
        assert key, "heartbeat.key_file is required with two heads"
        return (key,)

    core = HeartbeatCore(config, clock, session, specs, rows, state.heads[(peer_index,)],
                         state.security, state.perf, keys)
    watch = {a.interface for a in cfg.aliases}
    return HeartbeatThread(core, cfg.heartbeat.port, sink, row, watch=watch, epoch_file=epoch_file)
