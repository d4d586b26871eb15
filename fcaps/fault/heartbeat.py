"""Heartbeats to the peer head over both private LANs, and what they tell about it.

Sole writer of the heartbeat path table, of the peer's head row (status, last heartbeat),
and of the heartbeat security counters. Every interval the job sends one authenticated
message per LAN; every message received is verified (HMAC, known sender, increasing
(epoch, seq), fresh time stamp) before it counts. A path is down when no valid message
arrived on it for the dead time; the peer is dead only when every path is down. Losing one
LAN is a degraded path (event, alarm), never a failover.

Detection does not wait for the next cycle: each valid message re-arms a timer at
"last heard + dead time" on the event loop, so the peer is declared dead within a
millisecond or so of its dead time, and the role machine is woken at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from haoscar_snmp.config.persist import atomic_write
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import HbPathRow, HeadStatus, Lan, LinkStatus, State

from . import hbproto
from .alarms import Alarms, AlarmType, ProbableCause
from .decide import Peer

log = logging.getLogger(__name__)

LANS = (Lan.LAN_A, Lan.LAN_B)
LAN_NAMES = {Lan.LAN_A: "lanA", Lan.LAN_B: "lanB"}


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


@dataclass
class LocalView:
    """What this head advertises; the role machine keeps it current."""

    status: HeadStatus = HeadStatus.STARTING
    flags: hbproto.Flag = hbproto.Flag(0)
    aliases: tuple[str, ...] = ()


@dataclass
class _PathTrack:
    """Per-LAN bookkeeping that the MIB does not show."""

    sent_at: dict[int, float] = field(default_factory=dict)  # seq -> monotonic send time
    last_rx_seq: int = 0
    last_rx_epoch: int = -1
    last_rx_mono: float = 0.0
    timer: asyncio.TimerHandle | None = None
    jitter_us: float = 0.0
    last_rtt_us: int = 0


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, owner: "Heartbeat", lan: Lan) -> None:
        self.owner = owner
        self.lan = lan
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.owner.received(data, addr, self.lan)

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable from a dead peer lands here: normal during failures.
        log.debug("heartbeat socket on %s: %s", LAN_NAMES[self.lan], exc)


class Heartbeat:
    """The heartbeat job: sends every interval, receives all the time."""

    name = "heartbeat"

    def __init__(self, state: State, config: Callable[[], Config], bus: EventBus, alarms: Alarms,
                 clock: Clock, epoch: int, local: LocalView,
                 on_change: Callable[[], None]) -> None:
        self.state = state
        self.config = config
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self.epoch = epoch
        self.local = local
        self.on_change = on_change
        cfg = config()
        self.me = cfg.cluster.local_head
        peer_cfg = cfg.peer_head_config
        assert peer_cfg is not None, "the heartbeat runs only with two heads"
        self.peer_name = peer_cfg.name
        self.peer_index = cfg.head_index(peer_cfg.name)
        self.peer_preferred = str(peer_cfg.preferred_role) == "primary"
        key = cfg.heartbeat.key
        assert key, "heartbeat.key_file is required with two heads"
        self.key = key
        self.guard = hbproto.ReplayGuard({self.peer_name}, window_ms=self._window_ms())
        self.seq = 0
        self.peer_status = HeadStatus.UNKNOWN
        self.peer_flags = hbproto.Flag(0)
        self.peer_aliases: tuple[str, ...] = ()
        self.peer_alive = False
        self.peer_alive_since = 0.0
        self.peer_dead_since = 0.0   # monotonic time the peer was declared dead
        self._tracks = {lan: _PathTrack() for lan in LANS}
        self._endpoints: dict[Lan, _Endpoint] = {}
        self._started = clock.monotonic()

    def _window_ms(self) -> int:
        # Accept time stamps up to a minute off: heads are NTP-synchronised in practice,
        # and (epoch, seq) ordering already stops replays within the window.
        return 60_000 + self.config().timing.heartbeat_dead_time_ms

    # -- sockets -----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config()
        me, peer = cfg.local_head_config, cfg.peer_head_config
        assert peer is not None
        for lan in LANS:
            local_ip = str(me.lan_a if lan == Lan.LAN_A else me.lan_b)
            family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
            transport, proto = await loop.create_datagram_endpoint(
                lambda lan=lan: _Endpoint(self, lan), local_addr=(local_ip, cfg.heartbeat.port),
                family=family)
            self._endpoints[lan] = proto
            self.path(lan)  # the row exists from the start, status unknown
        log.info("heartbeat to %s on lanA %s, lanB %s, port %d", peer.name, peer.lan_a, peer.lan_b,
                 cfg.heartbeat.port)

    def close(self) -> None:
        for ep in self._endpoints.values():
            if ep.transport:
                ep.transport.close()
        for track in self._tracks.values():
            if track.timer:
                track.timer.cancel()

    def path(self, lan: Lan) -> HbPathRow:
        key = (self.peer_index, int(lan))
        row = self.state.hb_paths.get(key)
        if row is None:
            row = HbPathRow()
            self.state.hb_paths.put(key, row)
        return row

    # -- the job -------------------------------------------------------------------------

    def interval(self) -> float:
        return self.config().timing.heartbeat_interval_ms / 1000.0

    async def run_cycle(self) -> str:
        self.send_now()
        self.check()
        up = [LAN_NAMES[lan] for lan in LANS if self.path(lan).status == LinkStatus.UP]
        if not self.peer_alive:
            return f"peer {self.peer_name} not heard on any LAN"
        down = [LAN_NAMES[lan] for lan in LANS if LAN_NAMES[lan] not in up]
        text = f"peer {self.peer_name} {self.peer_status.name.lower()}, alive on {', '.join(up)}"
        return text + (f"; lost on {', '.join(down)}" if down else "")

    def send_now(self) -> None:
        """Send one heartbeat on each LAN now (every interval, and on every role change)."""
        cfg = self.config()
        peer = cfg.peer_head_config
        assert peer is not None
        self.seq += 1
        now = self.clock.monotonic()
        for lan, ep in self._endpoints.items():
            track = self._tracks[lan]
            hold_us = int((now - track.last_rx_mono) * 1e6) if track.last_rx_mono else 0
            msg = hbproto.Heartbeat(
                sender=self.me, lan=int(lan), state=int(self.local.status), flags=self.local.flags,
                epoch=self.epoch, seq=self.seq, sent_wall_ms=int(self.clock.time() * 1000),
                echo_seq=track.last_rx_seq if track.last_rx_epoch >= 0 else 0,
                echo_hold_us=hold_us, aliases=self.local.aliases)
            address = str(peer.lan_a if lan == Lan.LAN_A else peer.lan_b)
            track.sent_at[self.seq] = now
            if len(track.sent_at) > 64:
                del track.sent_at[min(track.sent_at)]
            if ep.transport is not None:
                ep.transport.sendto(hbproto.encode(msg, self.key), (address, cfg.heartbeat.port))
                self.path(lan).sent += 1

    # -- receiving ---------------------------------------------------------------------

    def received(self, data: bytes, addr: tuple, lan: Lan) -> None:
        sec = self.state.security
        row = self.path(lan)
        try:
            msg = hbproto.decode(data, self.key)
        except hbproto.AuthError:
            sec.hb_auth_failures += 1
            row.rejected += 1
            log.debug("heartbeat with a bad HMAC from %s on %s", addr, LAN_NAMES[lan])
            return
        except hbproto.DecodeError:
            sec.malformed_packets += 1
            row.rejected += 1
            return
        verdict = self.guard.check(msg, int(self.clock.time() * 1000))
        if verdict is not hbproto.Verdict.OK:
            sec.hb_replays += 1
            row.rejected += 1
            log.debug("heartbeat from %s on %s rejected: %s", addr, LAN_NAMES[lan], verdict.value)
            return
        self._accept(msg, lan, row)

    def _accept(self, msg: hbproto.Heartbeat, lan: Lan, row: HbPathRow) -> None:
        now = self.clock.monotonic()
        track = self._tracks[lan]
        if msg.epoch == track.last_rx_epoch and msg.seq > track.last_rx_seq + 1:
            row.lost += msg.seq - track.last_rx_seq - 1
        track.last_rx_epoch, track.last_rx_seq, track.last_rx_mono = msg.epoch, msg.seq, now
        row.received += 1
        row.last_heard = self.clock.time()
        sent = track.sent_at.get(msg.echo_seq)
        if sent is not None:
            rtt = max(int((now - sent) * 1e6) - msg.echo_hold_us, 0)
            if track.last_rtt_us:
                track.jitter_us += (abs(rtt - track.last_rtt_us) - track.jitter_us) / 16
            track.last_rtt_us = rtt
            row.rtt_us = rtt
            self._publish_rtt()
        changed = False
        if row.status != LinkStatus.UP:
            self._path_up(lan, row)
        if (msg.state, msg.flags, msg.aliases) != (int(self.peer_status), self.peer_flags, self.peer_aliases):
            changed = True
        self.peer_status = HeadStatus(msg.state)
        self.peer_flags = msg.flags
        self.peer_aliases = msg.aliases
        head = self.state.heads.get((self.peer_index,))
        if head is not None:
            head.last_heartbeat = row.last_heard
            head.status = self.peer_status
        if not self.peer_alive:
            self.peer_alive = True
            self.peer_alive_since = now
            changed = True
            self._peer_up()
        self._arm(lan, now)
        if changed:
            self.on_change()

    def _publish_rtt(self) -> None:
        live = [t for lan, t in self._tracks.items() if self.path(lan).status == LinkStatus.UP and t.last_rtt_us]
        if live:
            self.state.perf.hb_rtt_us = int(sum(t.last_rtt_us for t in live) / len(live))
            self.state.perf.hb_jitter_us = int(sum(t.jitter_us for t in live) / len(live))

    # -- deadlines ---------------------------------------------------------------------

    def _arm(self, lan: Lan, heard: float) -> None:
        track = self._tracks[lan]
        if track.timer:
            track.timer.cancel()
        delay = self.config().timing.heartbeat_dead_time_ms / 1000.0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # unit tests drive check() with a fake clock instead
            return
        track.timer = loop.call_later(max(heard + delay - self.clock.monotonic(), 0), self.check)

    def check(self) -> None:
        """Declare paths (and the peer) down whose dead time has passed."""
        now = self.clock.monotonic()
        timing = self.config().timing
        dead_time = timing.heartbeat_dead_time_ms / 1000.0
        went_down: list[tuple[Lan, HbPathRow, float]] = []
        for lan in LANS:
            row, track = self.path(lan), self._tracks[lan]
            # A path never heard counts from our start, and gets the start-up wait, so a
            # peer that boots a little later is not reported; one that never shows up is.
            last = track.last_rx_mono or self._started
            limit = dead_time if track.last_rx_mono else max(dead_time, timing.initdead_ms / 1000.0)
            if row.status != LinkStatus.DOWN and now - last >= limit:
                row.status = LinkStatus.DOWN  # UNKNOWN/UP -> DOWN
                went_down.append((lan, row, now - last))
        peer_died = self.peer_alive and all(self.path(lan).status == LinkStatus.DOWN for lan in LANS)
        if peer_died:
            self.peer_alive = False
            self.peer_dead_since = now
            self.peer_status = HeadStatus.FAILED
            head = self.state.heads.get((self.peer_index,))
            if head is not None:
                head.status = HeadStatus.FAILED
            # Wake the role machine before anything else: its takeover task runs first,
            # and the events below (history, alarms, notifications) follow it.
            self.on_change()
        for lan, row, silent_for in went_down:
            self._path_down(lan, row, silent_for)
        if peer_died:
            self._peer_down(dead_time)

    # -- events ------------------------------------------------------------------------

    def _subject(self, lan: Lan) -> str:
        return f"{self.peer_name}/{LAN_NAMES[lan]}"

    def _path_up(self, lan: Lan, row: HbPathRow) -> None:
        was = row.status
        row.status = LinkStatus.UP  # UNKNOWN/DOWN -> UP
        if was == LinkStatus.DOWN:
            self.bus.publish(Event(EventType.HB_PATH_UP, self._subject(lan), Severity.INFO,
                                   f"heartbeat path to {self.peer_name} on {LAN_NAMES[lan]} is up",
                                   self.clock.time(), {"path_key": (self.peer_index, int(lan))}))
            self.alarms.clear(ProbableCause.HEARTBEAT_PATH_FAILURE, self._subject(lan))

    def _path_down(self, lan: Lan, row: HbPathRow, silent_for: float) -> None:
        reason = f"no valid heartbeat on {LAN_NAMES[lan]} for {int(silent_for * 1000)} ms"
        self.bus.publish(Event(EventType.HB_PATH_DOWN, self._subject(lan), Severity.MAJOR,
                               f"heartbeat path to {self.peer_name} down: {reason}", self.clock.time(),
                               {"path_key": (self.peer_index, int(lan)), "reason": reason}))
        self.alarms.raise_alarm(ProbableCause.HEARTBEAT_PATH_FAILURE, self._subject(lan),
                                Severity.MAJOR, AlarmType.COMMUNICATIONS,
                                f"heartbeat path to {self.peer_name} down: {reason}")

    def _peer_up(self) -> None:
        self.bus.publish(Event(EventType.HEAD_UP, self.peer_name, Severity.INFO,
                               f"head {self.peer_name} is up ({self.peer_status.name.lower()})",
                               self.clock.time(), {"head_index": self.peer_index}))
        self.alarms.clear(ProbableCause.HEAD_FAILURE, self.peer_name)

    def _peer_down(self, dead_time: float) -> None:
        reason = f"no valid heartbeat on any LAN for {int(dead_time * 1000)} ms"
        self.bus.publish(Event(EventType.HEAD_DOWN, self.peer_name, Severity.CRITICAL,
                               f"head {self.peer_name} is down: {reason}", self.clock.time(),
                               {"head_index": self.peer_index, "reason": reason}))
        self.alarms.raise_alarm(ProbableCause.HEAD_FAILURE, self.peer_name, Severity.CRITICAL,
                                AlarmType.EQUIPMENT, f"head {self.peer_name} is down: {reason}")

    # -- what the role machine reads ---------------------------------------------------

    def peer(self) -> Peer:
        now = self.clock.monotonic()
        return Peer(name=self.peer_name, alive=self.peer_alive, status=self.peer_status,
                    flags=self.peer_flags,
                    alive_for_ms=int((now - self.peer_alive_since) * 1000) if self.peer_alive else 0,
                    preferred_primary=self.peer_preferred)
