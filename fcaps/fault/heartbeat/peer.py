"""What the heartbeats say about the peer head: paths, counters, dead times. No I/O.

Heartbeats travel on up to three paths: LAN A and LAN B (the private LANs), and, where
both heads have a public address and `[heartbeat] public_path` is on, the public LAN.
The public path only arbitrates: a peer heard there is alive, so the standby does not
take over, but the heads run "on the public LAN only", a degraded state with an alarm.

A path is down when no valid message arrived on it for the dead time; the peer is
silent (dead, as far as this head can tell) only when every path is down. Losing one
path is a degraded path (event, alarm), never a failover.

`HeartbeatCore` is the logic, driven by a clock it is given: `messages()` at every
interval, `receive()` for every datagram, `check()` when the deadline it names in
`next_deadline()` comes. It keeps the path counters and status and returns whether the
peer view changed; what else happened (a path or the peer went up or down, a clock
difference) it queues as notices for the daemon to turn into events and alarms
(`fcaps/fault/heartbeat/monitor.py`). It runs in the heartbeat process (`fcaps/fault/heartbeat/child.py`),
which imports nothing heavy, so nothing here may import the configuration or SNMP code.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Sequence

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.keys import key_id
from haoscar_snmp.core.state import (
    HbPathRow,
    HeadRow,
    HeadStatus,
    HeartbeatFigures,
    Lan,
    LinkStatus,
    PeerView,
    SecurityCounters,
)

from . import proto
from .session import Session, Verdict

log = logging.getLogger(__name__)


# A clock difference above this is reported (alarm); back below half of it, cleared.
CLOCK_OFFSET_ALARM_MS = 2000


@dataclass(frozen=True)
class HbSettings:
    """What the heartbeat needs of the configuration (sent to the heartbeat process, and
    again whenever a SET or a reload changes the timing)."""

    me: str
    peer: str
    peer_preferred: bool
    interval_ms: int
    dead_ms: int
    initdead_ms: int


@dataclass(frozen=True)
class LocalView:
    """What this head advertises; the role state machine makes a new one at each change."""

    status: HeadStatus = HeadStatus.STARTING
    flags: proto.Flag = proto.Flag(0)
    generation: int = 0
    aliases: tuple[str, ...] = ()
    # This head's cluster-wide settings: (version counter, head of the version, fingerprint).
    config: tuple[int, str, int] = (0, "", 0)
    # This head's public targets: (watched, reached, mask of those reached).
    public: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class Notice:
    """Something the loop turns into an event (and maybe an alarm)."""

    kind: str                       # path-up, path-down, peer-up, peer-down, clock-offset
    lan: Lan | None = None
    text: str = ""
    value: int = 0                  # silent time (ms), or clock offset (ms)
    flag: bool = False              # clock-offset: True = too large


@dataclass
class _Path:
    """One path's bookkeeping that the MIB does not show."""

    lan: Lan
    row: HbPathRow
    local: str
    remote: str
    sent_at: dict[int, float] = field(default_factory=dict)  # seq -> monotonic send time
    last_rx: float = 0.0            # monotonic time of the last valid message (0: never)
    last_epoch: int = -1
    last_seq: int = 0
    counted_lost: int = 0           # lost already counted during the current silence
    jitter_us: float = 0.0
    last_rtt_us: int = 0
    # Round-trip figures of this path for the performance area: since the start or the
    # last resetCounters (min, max, replies), smoothed (mean, gain 1/8 as TCP's SRTT).
    rtt_min_us: int = 0
    rtt_max_us: int = 0
    rtt_mean_us: float = 0.0
    replies: int = 0


class KeyRing:
    """This head's heartbeat keys: the current one and, during a rotation, the one before.

    A rotation is done with a reload on each head, in any order and at any interval:
    a head that has the new key accepts both, and goes on *sending* with the old one until
    the peer's heartbeats say (`key_id`) that the peer has the new one too; then both send
    with the new key, and the old one is dropped a dead time later (messages in flight).
    """

    def __init__(self, key: bytes) -> None:
        self.current = key
        self.previous: bytes | None = None
        self.current_id = key_id(key)
        self.peer_id = 0                 # the peer's newest key, as it last said
        self._both_since = 0.0           # monotonic: since when both have the current key

    def rotate(self, key: bytes) -> bool:
        """A new key from a reload; False if it is the one in use."""
        if key == self.current:
            return False
        self.previous, self.current = self.current, key
        self.current_id = key_id(key)
        self._both_since = 0.0
        return True

    def accepting(self) -> tuple[bytes, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)

    def sending(self) -> bytes:
        if self.previous is not None and self.peer_id != self.current_id:
            return self.previous         # the peer does not have the new key yet
        return self.current

    def heard(self, peer_key_id: int, now: float, dead_time: float) -> str:
        """The peer's word on its newest key; returns a sentence when something changed."""
        self.peer_id = peer_key_id
        if self.previous is None or peer_key_id != self.current_id:
            return ""
        if not self._both_since:
            self._both_since = now
            return "the peer has the new heartbeat key too: sending with it"
        if now - self._both_since > dead_time:
            self.previous = None
            return "heartbeat key rotation done: the old key is no longer accepted"
        return ""


@dataclass(frozen=True)
class PathSpec:
    """A path to set up: which LAN, from which local address to which remote one."""

    lan: Lan
    local: str
    remote: str


class HeartbeatCore:
    """Paths, session and peer view of one peer head."""

    def __init__(self, settings: HbSettings, clock: Clock, session: Session,
                 paths: Sequence[PathSpec], rows: dict[Lan, HbPathRow], peer_row: HeadRow,
                 security: SecurityCounters, perf: HeartbeatFigures, keys: KeyRing) -> None:
        self.settings = settings
        self.clock = clock
        self.session = session
        self.peer_row = peer_row    # its last_heartbeat only
        self.security = security    # its hb_* and malformed counters only
        self.perf = perf            # round-trip time and jitter
        self.keys = keys
        self.me = settings.me
        self.peer_name = settings.peer
        self.paths = {p.lan: _Path(p.lan, rows[p.lan], p.local, p.remote) for p in paths}
        self.seq = 0
        self.peer_reads = proto.OLDEST_VERSION   # the newest format its last message said it reads
        self.started = clock.monotonic()
        self._view = PeerView(name=settings.peer, preferred_primary=settings.peer_preferred)
        self._summary: tuple[PeerView | None, str] = (None, "")
        self._notices: list[Notice] = []
        self._offset_ms = 0.0
        self._offset_alarm = False

    # -- what the loop reads -------------------------------------------------------------

    def view(self) -> PeerView:
        return self._view

    def drain(self) -> list[Notice]:
        notices, self._notices = self._notices, []
        return notices

    def has_notices(self) -> bool:
        return bool(self._notices)

    def summary(self) -> str:
        """The heartbeat's sentence, made anew only when the view changed (it is asked
        at every heartbeat sent)."""
        if self._summary[0] is not self._view:
            self._summary = (self._view, self._sentence())
        return self._summary[1]

    def _sentence(self) -> str:
        v = self._view
        if not v.heard:
            return f"peer {self.peer_name} not heard on any path"
        up = [lan.label for lan in self.paths if int(lan) in v.paths_up]
        down = [lan.label for lan in self.paths if int(lan) not in v.paths_up]
        text = f"peer {self.peer_name} {v.status.name.lower()}, heard on {', '.join(up)}"
        return text + (f"; lost on {', '.join(down)}" if down else "")

    # -- sending ---------------------------------------------------------------------------

    def messages(self, local: LocalView) -> list[tuple[Lan, bytes, str]]:
        """One heartbeat per path, to send now: (path, datagram, remote address)."""
        now, wall = self.clock.monotonic(), self.clock.time()
        interval = self.settings.interval_ms / 1000.0
        key = self.keys.sending()
        self.seq += 1
        out = []
        for lan, path in self.paths.items():
            self._count_missing(path, now, interval)
            hold_us = int((now - path.last_rx) * 1e6) if path.last_rx else 0
            msg = proto.Heartbeat(
                sender=self.me, lan=int(lan), state=int(local.status), flags=local.flags,
                epoch=self.session.epoch, seq=self.seq, nonce=self.session.nonce,
                echo_nonce=self.session.peer_nonce, peer_epoch=self.session.peer_epoch,
                generation=local.generation, sent_wall_ms=int(wall * 1000),
                echo_seq=path.last_seq if path.last_epoch >= 0 else 0, echo_hold_us=hold_us,
                aliases=local.aliases, key_id=self.keys.current_id,
                config_counter=local.config[0], config_head=local.config[1], config_fp=local.config[2],
                public_targets=local.public[0], public_reached=local.public[1], public_mask=local.public[2],
                version=self.peer_reads)
            path.sent_at[self.seq] = now
            if len(path.sent_at) > 64:
                del path.sent_at[min(path.sent_at)]
            path.row.sent += 1
            out.append((lan, proto.encode(msg, key), path.remote))
        return out

    def _count_missing(self, path: _Path, now: float, interval: float) -> None:
        """While a path is silent, count the heartbeats that should have come by now."""
        if not path.last_rx or interval <= 0:
            return
        missing = int((now - path.last_rx) / interval + 0.5) - 1
        if missing > path.counted_lost:
            path.row.lost += missing - path.counted_lost
            path.counted_lost = missing

    # -- receiving -------------------------------------------------------------------------

    def receive(self, data: bytes, lan: Lan) -> bool:
        """Judge one datagram that arrived on a path; True if the peer view changed."""
        path = self.paths[lan]
        try:
            msg = proto.decode(data, self.keys.accepting())
        except proto.AuthError:
            self.security.hb_auth_failures += 1
            self.security.hb_last_refused = f"{lan.label}: authentication failed"
            path.row.rejected += 1
            return False
        except proto.DecodeError:
            self.security.malformed_packets += 1
            self.security.hb_last_refused = f"{lan.label}: malformed"
            path.row.rejected += 1
            return False
        if msg.sender == self.peer_name:
            # Follows the peer's latest word, also before the handshake: a peer that
            # restarted with an older release is written to in its format at once.
            self.peer_reads = msg.reads
        verdict = self.session.check(msg, int(lan), self._view.heard)
        if verdict in (Verdict.REPLAY, Verdict.UNKNOWN_SENDER):
            self.security.hb_replays += 1
            self.security.hb_last_refused = f"{lan.label}: {verdict.value}"
            path.row.rejected += 1
            log.debug("heartbeat on %s rejected: %s", lan.label, verdict.value)
            return False
        if verdict is not Verdict.OK:
            log.debug("heartbeat on %s not counted: %s", lan.label, verdict.value)
            return False
        return self._accept(msg, path)

    def _accept(self, msg: proto.Heartbeat, path: _Path) -> bool:
        now, wall = self.clock.monotonic(), self.clock.time()
        said = self.keys.heard(msg.key_id, now, self.settings.dead_ms / 1000.0)
        if said:
            log.info("%s", said)
        row = path.row
        if path.last_rx and row.status == LinkStatus.UP:
            row.max_gap_us = max(row.max_gap_us, int((now - path.last_rx) * 1e6))
        if msg.epoch == path.last_epoch and msg.seq > path.last_seq + 1:
            row.lost += max(msg.seq - path.last_seq - 1 - path.counted_lost, 0)
        path.counted_lost = 0
        path.last_epoch, path.last_seq, path.last_rx = msg.epoch, msg.seq, now
        row.received += 1
        row.last_heard = self.peer_row.last_heartbeat = wall
        sent = path.sent_at.get(msg.echo_seq)
        if sent is not None:
            rtt = max(int((now - sent) * 1e6) - msg.echo_hold_us, 0)
            if path.last_rtt_us:
                path.jitter_us += (abs(rtt - path.last_rtt_us) - path.jitter_us) / 16
            path.last_rtt_us = row.rtt_us = rtt
            path.replies += 1
            path.rtt_min_us = rtt if path.replies == 1 else min(path.rtt_min_us, rtt)
            path.rtt_max_us = max(path.rtt_max_us, rtt)
            path.rtt_mean_us = rtt if path.replies == 1 else path.rtt_mean_us + (rtt - path.rtt_mean_us) / 8
            self.perf.rtt_us, self.perf.jitter_us = self.rtt_and_jitter_us()
        self._clock_offset(msg.sent_wall_ms - wall * 1000)
        if row.status != LinkStatus.UP:
            if row.status == LinkStatus.DOWN:
                self._notices.append(Notice("path-up", path.lan,
                                            f"heartbeat path to {self.peer_name} on "
                                            f"{path.lan.label} is up"))
            row.status = LinkStatus.UP  # UNKNOWN/DOWN -> UP
        old = self._view
        heard_since = old.heard_since if old.heard else now
        if not old.heard:
            self._notices.append(Notice("peer-up", text=f"head {self.peer_name} is up "
                                                       f"({HeadStatus(msg.state).name.lower()})"))
        config = (msg.config_counter, msg.config_head, msg.config_fp) if msg.version >= 3 else None
        public = (msg.public_targets, msg.public_reached, msg.public_mask) if msg.version >= 4 else None
        paths_up = self._paths_up()
        if (old.heard and old.status == msg.state and old.flags == msg.flags and old.paths_up == paths_up
                and old.generation == msg.generation and old.aliases == msg.aliases
                and old.config == config and old.public == public):
            return False         # the usual case: nothing new (the view is made anew only on a change)
        new = PeerView(name=old.name, preferred_primary=old.preferred_primary, heard=True,
                       paths_up=paths_up, status=HeadStatus(msg.state), flags=int(msg.flags),
                       generation=msg.generation, aliases=msg.aliases, heard_since=heard_since,
                       silent_since=old.silent_since, ever_heard=True, config=config, public=public)
        self._view = new
        return new != old

    def _clock_offset(self, offset_ms: float) -> None:
        # Smoothed over ~8 messages; only reported, never used for a decision.
        self._offset_ms += (offset_ms - self._offset_ms) / 8 if self._offset_ms else offset_ms
        big = abs(self._offset_ms) > CLOCK_OFFSET_ALARM_MS
        small = abs(self._offset_ms) < CLOCK_OFFSET_ALARM_MS / 2
        if big and not self._offset_alarm or small and self._offset_alarm:
            self._offset_alarm = big
            self._notices.append(Notice("clock-offset", value=int(self._offset_ms), flag=big,
                                        text=f"the wall clock of {self.peer_name} differs from "
                                             f"ours by {self._offset_ms / 1000:+.1f} s"))

    @property
    def clock_offset_ms(self) -> int:
        return int(self._offset_ms)

    def _paths_up(self) -> frozenset[int]:
        return frozenset(int(lan) for lan, p in self.paths.items() if p.row.status == LinkStatus.UP)

    # -- deadlines -------------------------------------------------------------------------

    def _limit(self, path: _Path) -> tuple[float, float]:
        """(time counted from, allowed silence) for one path."""
        dead = self.settings.dead_ms / 1000.0
        if path.last_rx:
            return path.last_rx, dead
        # A path never heard counts from our start, and gets the start-up wait, so a
        # peer that boots a little later is not reported; one that never shows up is.
        return self.started, max(dead, self.settings.initdead_ms / 1000.0)

    def next_deadline(self) -> float | None:
        """Monotonic time at which some path goes down if nothing arrives before."""
        times = [sum(self._limit(p)) for p in self.paths.values() if p.row.status != LinkStatus.DOWN]
        return min(times) if times else None

    def check(self) -> bool:
        """Declare paths (and the peer) down whose dead time has passed; True if the
        peer view changed."""
        now = self.clock.monotonic()
        changed = False
        for path in self.paths.values():
            since, limit = self._limit(path)
            if path.row.status != LinkStatus.DOWN and now - since >= limit:
                path.row.status = LinkStatus.DOWN  # UNKNOWN/UP -> DOWN
                silent_ms = int((now - since) * 1000)
                self._notices.append(Notice("path-down", path.lan, value=silent_ms,
                                            text=f"no valid heartbeat on {path.lan.label} "
                                                 f"for {silent_ms} ms"))
                changed = True
        old = self._view
        if not changed:
            return False
        heard = old.heard and any(p.row.status == LinkStatus.UP for p in self.paths.values())
        if old.heard and not heard:
            dead_ms = self.settings.dead_ms
            self._notices.append(Notice("peer-down", value=dead_ms,
                                        text=f"no valid heartbeat on any path for {dead_ms} ms"))
        # What the peer said last is kept (status, flags, its settings and public reach).
        self._view = dataclasses.replace(old, heard=heard, paths_up=self._paths_up(),
                                         heard_since=old.heard_since if heard else 0.0,
                                         silent_since=old.silent_since if heard else now)
        return self._view != old

    def path_figures(self) -> dict[Lan, tuple[int, int, int, int, int, int]]:
        """Per path: (last round trip, min, max, smoothed mean, jitter, replies), in us."""
        return {lan: (p.last_rtt_us, p.rtt_min_us, p.rtt_max_us, int(p.rtt_mean_us), int(p.jitter_us),
                      p.replies) for lan, p in self.paths.items()}

    def reset_path_figures(self) -> None:
        """resetCounters: the extremes and the count start again (the mean and jitter go on)."""
        for p in self.paths.values():
            p.rtt_min_us = p.rtt_max_us = p.replies = 0

    def rtt_and_jitter_us(self) -> tuple[int, int]:
        """Mean round-trip time and jitter over the paths that are up (performance)."""
        live = [p for p in self.paths.values() if p.row.status == LinkStatus.UP and p.last_rtt_us]
        if not live:
            return 0, 0
        return (int(sum(p.last_rtt_us for p in live) / len(live)),
                int(sum(p.jitter_us for p in live) / len(live)))
