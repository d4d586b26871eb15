"""The heartbeat process: sockets, a monotonic send timer, dead-time timers, carrier, watchdog.

Heartbeats must not wait behind anything the daemon does. Measured on the daemon under
SNMP walks: a full garbage collection holds every Python thread for 60 to 150 ms, longer
than a 60 ms dead time, and a busy interpreter hands a waiting thread its turn late. So
the heartbeat runs in a process of its own, as keepalived keeps VRRP apart from its
checkers: its own interpreter, its own small heap, its own event loop, and (with
CAP_SYS_NICE) round-robin real-time priority. It imports no SNMP and no configuration
code. It runs:

* a send timer on the monotonic clock, re-armed in phase (never a burst of catch-ups);
* one UDP socket per path; every heartbeat is judged at once by `HeartbeatCore`;
* a timer at the next path deadline, so a silent peer is declared at its dead time;
* a netlink subscription to link changes, so a carrier lost on this head's own
  heartbeat or alias interfaces is seen within milliseconds (`carrier.py`);
* the relay of the settings exchange, whose datagrams share the heartbeat port and
  sockets: handed to the daemon unread, bounded, and the daemon's sent on the private
  LANs (the sockets and the relay: `udp.py`);
* a sign of life to the daemon at every heartbeat it sends (a report, or a one-word
  `beat` when there is nothing new), since the daemon watches this process for silence
  as this process watches the daemon;
* a watchdog on the daemon: the daemon sends what to advertise at every role cycle; if
  nothing comes for `daemon_timeout_ms` (the daemon hangs, or is stopped), this process
  removes the aliases the daemon holds and falls silent, so the peer takes over and
  never shares the address with a head that can no longer manage it. It speaks again
  once the daemon, awake, says it holds nothing.

It exits when the daemon's end of the socket pair closes (the daemon died or stopped).
Started by `fcaps/fault/heartbeat/process.py` as `python -m fcaps.fault.heartbeat.child FD`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.files import atomic_write
from haoscar_snmp.core.keys import key_id
from haoscar_snmp.core.state import (
    HbPathRow,
    HeadRole,
    HeadRow,
    HeadStatus,
    HeartbeatFigures,
    Lan,
    SecurityCounters,
)

from . import wire
from .carrier import CarrierWatch
from .peer import HeartbeatCore, KeyRing, Notice, PathSpec
from .session import Session
from .udp import PathSockets
from fcaps.fault.takeover import Alias, NetlinkAliases

log = logging.getLogger("fcaps.fault.heartbeat.peer")

SYNC_S = 0.5                 # counters go to the daemon at least this often
MAX_PENDING_NOTICES = 1000   # kept while the daemon does not read (it may be frozen)
RT_PRIORITY = 10
HOLDING = (HeadStatus.ACTIVE, HeadStatus.TAKING_OVER)
BEAT = wire.pack("beat")


class Child:
    """The heartbeat process's state and event loop work."""

    def __init__(self, sock: socket.socket, init: dict[str, Any]) -> None:
        self.sock = sock
        settings = wire.settings_from_wire(init["settings"])
        self.keys = KeyRing(bytes.fromhex(init["key"]))
        self.port = int(init["port"])
        self.epoch_file = init["epoch_file"]
        self.daemon_timeout = init["daemon_timeout_ms"] / 1000.0
        specs = [PathSpec(Lan(p["lan"]), p["local"], p["remote"]) for p in init["paths"]]
        self.rows = {spec.lan: HbPathRow() for spec in specs}
        self.security = SecurityCounters()
        self.perf = HeartbeatFigures()
        self.peer_row = HeadRow(name=settings.peer, preferred_role=HeadRole.STANDBY)
        self.core = HeartbeatCore(settings, SystemClock(), Session(settings.peer, int(init["epoch"])), specs,
                                  self.rows, self.peer_row, self.security, self.perf, self.keys)
        self.local, self.held = wire.local_from_wire(init["local"])
        self.fenced = False
        self.job = {"runs": 0, "failures": 0, "last_duration_us": 0, "max_duration_us": 0,
                    "last_run": 0.0, "last_result": ""}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sockets = PathSockets(self.port, self.received, self._send)
        self.carrier = CarrierWatch(set(init["watch"]), self._links_changed, self._guarded)
        self._notices: list[Notice] = []
        self._dirty = True
        self._last_sync = float("-inf")
        self._sent_at = float("-inf")      # monotonic time of the last message to the daemon
        self._last_daemon = time.monotonic()
        self._due = 0.0
        self._send_handle: asyncio.TimerHandle | None = None
        # How late the send timer fired: worst since the last report, and ever (or since
        # resetCounters), in microseconds.
        self._lag_us = 0
        self._lag_max_us = 0
        self._deadline_handle: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[None] | None = None
        self._nonces_sent: list[int] = []
        self._key_ids: dict[bytes, int] = {}

    # -- life cycle ----------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = loop.create_future()
        try:
            await self.sockets.open({lan: (path.local, path.remote) for lan, path in self.core.paths.items()})
            await self.carrier.open({lan: path.local for lan, path in self.core.paths.items()})
        except OSError as exc:
            self._send(wire.pack("error", text=str(exc)))
            return
        self.sock.setblocking(False)
        loop.add_reader(self.sock.fileno(), self._from_daemon)
        self._send(wire.pack("ready"))
        self._due = loop.time()
        self._tick()
        self._arm_deadline()
        try:
            await self._done
        finally:
            for handle in (self._send_handle, self._deadline_handle):
                if handle is not None:
                    handle.cancel()
            self.sockets.close()
            self.carrier.close()

    def _stop(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # -- the daemon's messages -----------------------------------------------------------

    def _from_daemon(self) -> None:
        for _ in range(64):
            try:
                data = self.sock.recv(wire.MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                log.info("the daemon closed its end; the heartbeat process stops")
                if self._loop is not None:
                    self._loop.remove_reader(self.sock.fileno())
                self._stop()
                return
            self._guarded(lambda data=data: self._message(wire.unpack(data)))

    def _message(self, msg: dict[str, Any]) -> str:
        kind = msg.get("t")
        self._last_daemon = time.monotonic()
        if kind == "local":
            local, held = wire.local_from_wire(msg)
            if self.fenced and local.status not in HOLDING:
                self.fenced = False          # the daemon is back and holds nothing: speak again
                self._dirty = True
                log.warning("the daemon answers again and holds no alias: heartbeats resume")
            changed = local != self.local
            self.local, self.held = local, held
            if changed:
                self._send_heartbeats()
        elif kind == "settings":
            self.core.settings = wire.settings_from_wire(msg["settings"])
            self.daemon_timeout = msg["daemon_timeout_ms"] / 1000.0
            self._arm_deadline()
        elif kind == "key":
            if self.keys.rotate(bytes.fromhex(msg["key"])):
                log.warning("new heartbeat key: both keys accepted; sending with the old one until "
                            "the peer has the new one")
        elif kind == "cfgsend":
            self.sockets.send_config(base64.b64decode(msg["data"]), silent=self.fenced)
        elif kind == "reset":
            for row in self.rows.values():
                row.sent = row.received = row.lost = row.rejected = row.max_gap_us = 0
            self.job.update(runs=0, failures=0, max_duration_us=0)
            self.core.reset_path_figures()
            self._lag_max_us = self._lag_us
            self._dirty = True
        elif kind == "stop":
            self._stop()
        return ""

    # -- sending -------------------------------------------------------------------------

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        interval = self.core.settings.interval_ms / 1000.0
        now = loop.time()
        lag = max(int((now - self._due) * 1e6), 0)    # the first tick is due when it is called
        self._lag_us = max(self._lag_us, lag)
        self._lag_max_us = max(self._lag_max_us, lag)
        following = self._due + interval
        self._due = following if following > now else now + interval
        self._send_handle = loop.call_at(self._due, self._tick)
        self._guarded(self._cycle)

    def _cycle(self) -> str:
        start = time.monotonic()
        if not self.fenced and start - self._last_daemon > self.daemon_timeout:
            self._fence(start - self._last_daemon)
        self._send_heartbeats()
        self._check()
        if self._dirty or start - self._last_sync >= SYNC_S:
            self._sync()
        if self._sent_at < start:
            self._send(BEAT)               # nothing else went to the daemon in this cycle
        took = int((time.monotonic() - start) * 1e6)
        job = self.job
        job["runs"] += 1
        job["last_run"] = time.time()
        job["last_duration_us"] = took
        job["max_duration_us"] = max(job["max_duration_us"], took)
        return ("silent: the daemon does not answer" if self.fenced else self.core.summary())

    def _send_heartbeats(self) -> None:
        if self.fenced:
            return
        for lan, data, remote in self.core.messages(self.local):
            self.sockets.sendto(lan, data, remote)

    def _fence(self, silent_for: float) -> None:
        """The daemon stopped answering: let go of its aliases and fall silent."""
        self.fenced = True
        self._dirty = True
        held = self.held if self.local.status in HOLDING else []
        log.error("the daemon has not answered for %.1f s: removing its aliases (%s) and stopping "
                  "heartbeats, so that the peer takes over alone", silent_for,
                  ", ".join(a for a, _, _ in held) or "none held")
        if held and self._loop is not None:
            self._loop.create_task(self._remove(held))

    async def _remove(self, held: list[tuple[str, int, str]]) -> None:
        ops = NetlinkAliases()
        for address, prefix, interface in held:
            try:
                await ops.remove(Alias(address, prefix, interface))
            except OSError as exc:
                log.error("could not remove alias %s: %s", address, exc)
        ops.close()

    # -- receiving and deadlines ---------------------------------------------------------

    def received(self, data: bytes, lan: Lan) -> None:
        """A heartbeat datagram from one path (the sockets sort out the others)."""

        def judge() -> str:
            if (self.core.receive(data, lan) or self.core.has_notices()
                    or self._nonces() != self._nonces_sent):
                # A new run of the peer (its nonce) is told at once: the settings
                # exchange binds its requests to it.
                self._dirty = True
                self._sync()
            self._arm_deadline()
            self._persist_epoch()
            return ""
        self._guarded(judge)

    def _check(self) -> None:
        if self.core.check() or self.core.has_notices():
            self._dirty = True
            self._sync()
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
        if session.bumped_epoch:
            session.bumped_epoch = False
            atomic_write(Path(self.epoch_file), f"{session.epoch}\n".encode())
            log.warning("heartbeat boot counter raised to %d: the peer had seen a higher one "
                        "(was the state directory wiped?)", session.epoch)

    def _links_changed(self) -> None:
        """The carrier watch saw a change of this head's links: told at once."""
        self._dirty = True
        self._sync()

    # -- to the daemon -------------------------------------------------------------------

    def _sync(self) -> None:
        """Send the views, new notices and the counters; keep the notices if the daemon
        cannot take them now (it may be frozen), bounded."""
        self._notices.extend(self.core.drain())
        del self._notices[:-MAX_PENDING_NOTICES]
        msg = wire.pack(
            "snap", peer=wire.peer_to_wire(self.core.view()), links=wire.links_to_wire(self.carrier.view),
            notices=[wire.notice_to_wire(n) for n in self._notices], fenced=self.fenced,
            rows={str(int(lan)): wire.row_to_wire(row) for lan, row in self.rows.items()},
            security=[self.security.hb_auth_failures, self.security.hb_replays,
                      self.security.malformed_packets, self.security.hb_last_refused],
            perf=[self.perf.rtt_us, self.perf.jitter_us], last_heartbeat=self.peer_row.last_heartbeat,
            paths={str(int(lan)): list(f) for lan, f in self.core.path_figures().items()},
            send_lag=[self._lag_us, self._lag_max_us],
            job=self.job, nonces=self._nonces(), relay_dropped=self.sockets.relay_dropped,
            key_ids=[self._key_id(self.keys.sending()), *map(self._key_id, self.keys.accepting())])
        if self._send(msg):
            self._nonces_sent = self._nonces()
            self._notices.clear()
            self._dirty = False
            self._last_sync = time.monotonic()
            self._lag_us = 0

    def _key_id(self, key: bytes) -> int:
        """key_id, once per key (an HMAC; snaps go out at every change)."""
        if key not in self._key_ids:
            self._key_ids = {k: v for k, v in self._key_ids.items() if k in self.keys.accepting()}
            self._key_ids[key] = key_id(key)
        return self._key_ids[key]

    def _nonces(self) -> list[int]:
        """This run's nonce and the peer's current one (0 while the peer is not heard):
        the settings exchange binds its requests to them, as heartbeats are bound."""
        session = self.core.session
        return [session.nonce, session.peer_nonce if self.core.view().heard else 0]

    def _send(self, data: bytes) -> bool:
        try:
            self.sock.send(data)
            self._sent_at = time.monotonic()
            return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._stop()
            return False

    def _guarded(self, work: Callable[[], str]) -> None:
        """The process's catch-all: a bug in one heartbeat must not stop the next."""
        try:
            sentence = work()
        except Exception:  # noqa: BLE001 - the one catch-all of this process
            self.job["failures"] += 1
            log.exception("heartbeat process raised; %s", BUG_MARKER)
            return
        if sentence and sentence != self.job["last_result"]:
            self.job["last_result"] = sentence[:255]
            log.info("heartbeat: %s", sentence)


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    init = wire.unpack(sock.recv(wire.MAX_MESSAGE))
    logging.basicConfig(level=init.get("log_level", "INFO").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Ctrl-C and SIGTERM to the whole group are for the daemon, which releases what it
    # holds and then stops us (we also stop when its end of the socket closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
    except OSError as exc:
        log.warning("the heartbeat process runs at normal priority (%s): with the CPUs saturated, "
                    "heartbeats were measured up to 43 ms late; keep the dead time well above the "
                    "interval plus that", exc.strerror)
    asyncio.run(Child(sock, init).run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
