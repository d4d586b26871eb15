"""The daemon's side of the heartbeat process: start it, feed it, and take what it reports.

The heartbeat runs in a process of its own (`fcaps/fault/heartbeat/child.py` says why). This
side starts it over a SOCK_SEQPACKET socket pair, sends it its settings and key once,
then what this head advertises at every role cycle (the daemon's sign of life), and
turns every `snap` it sends back into state: the counters into the path rows, the peer
and link views and the notices into the sink (`HeartbeatMonitor`). Nothing here blocks.

The daemon watches the process both ways round: the process fences the daemon when the
daemon stops speaking (heartbeat/child.py), and the daemon watches the process for silence as
well as for exit. The process reports at every heartbeat it sends; when nothing has come
from it for `silence_bound_ms` (two and a half intervals, or half the dead time and half
an interval when that is longer), or it exits, this head can no longer hear its peer and its peer may no longer
hear it: the monitor marks the head deaf (the role machine releases any alias at once,
with HANDOVER, and takes nothing over), and this side kills the process and starts a new
one, with a new boot counter. The peer, hearing nothing, takes over one dead time after
our last heartbeat; the release comes at least half an interval before that. More than
`MAX_RESTARTS` new processes within `RESTART_WINDOW_S` stop the daemon instead, for the
service manager to start afresh.

The settings exchange rides on the process too (`fcaps/configuration/sync.py`). This side
is given, when it is built, what this head advertises of its settings (`config_advert`)
and the exchange's channel (`SettingsInbox`), into which it reports the nonces and key
IDs and hands the peer's datagrams. It never calls the exchange: the exchange, built
after it, sends through `send_config` and reads the channel.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import Clock, Timer
from haoscar_snmp.core.events import Event, is_counter_reset
from haoscar_snmp.core.files import atomic_write
from haoscar_snmp.core.measure import HbPathSample, HbSendSample, Measurements
from haoscar_snmp.core.state import (
    HbPathRow,
    HeadStatus,
    JobRow,
    Lan,
    LinkView,
    PeerView,
    State,
)

from . import wire
from .proto import Flag
from .peer import HbSettings, LocalView, Notice

if TYPE_CHECKING:
    from haoscar_snmp.config.schema import Config

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 3.0
# The heartbeat process falls silent when the daemon has not spoken for this long (at
# least; the dead time when that is longer): long enough for any pause of a busy daemon
# (a full garbage collection: up to 150 ms measured), short enough that a hung daemon
# hands its aliases over within seconds.
MIN_DAEMON_TIMEOUT_MS = 1000
# A replaced heartbeat process: at most this many in this long, else the daemon stops.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 600.0
# How long a new process waits for the role machine to release before the old one is
# killed: a process that is only late still carries the release (HANDOVER) to the peer.
RELEASE_WAIT_S = 1.0
HOLDING = (HeadStatus.ACTIVE, HeadStatus.TAKING_OVER, HeadStatus.RELEASING)


class SettingsInbox(Protocol):
    """Where the settings exchange's side of each report goes (fcaps/configuration/channel.py)."""

    def report(self, nonces: tuple[int, int], key_ids: tuple[int, ...], relay_dropped: int) -> None:
        """This run's heartbeat nonce and the peer's (0: not heard), the key IDs the
        heartbeat sends with then those it accepts, and the relayed datagrams dropped."""

    def deliver(self, data: bytes) -> None:
        """A datagram of the settings exchange from the peer."""


class NoExchange:
    """No settings exchange listens: what it would be told is dropped."""

    def report(self, nonces: tuple[int, int], key_ids: tuple[int, ...], relay_dropped: int) -> None:
        pass

    def deliver(self, data: bytes) -> None:
        pass


def no_advert() -> tuple[int, str, int]:
    """The settings advert of a head that has no settings exchange."""
    return 0, "", 0


class Sink(Protocol):
    """Where the process's reports go (the heartbeat monitor)."""

    def __call__(self, view: PeerView, links: LinkView, notices: list[Notice], fenced: bool) -> None: ...

    def silent(self, reason: str) -> None: ...

    def running(self) -> None: ...


def settings_of(config: "Config") -> HbSettings:
    peer = config.peer_head_config
    assert peer is not None, "the heartbeat runs only with two heads"
    t = config.timing
    return HbSettings(config.cluster.local_head, peer.name, str(peer.preferred_role) == "primary",
                      t.heartbeat_interval_ms, t.heartbeat_dead_time_ms, t.initdead_ms)


def daemon_timeout_ms(config: "Config") -> int:
    return max(MIN_DAEMON_TIMEOUT_MS, config.timing.heartbeat_dead_time_ms)


def silence_bound_ms(config: "Config") -> int:
    """How long the heartbeat process may say nothing before the daemon counts it silent.

    It reports at every heartbeat it sends, so this is two reports missed, and half an
    interval more: with exactly two, a process one interval late (a busy machine) already
    counted as silent (measured at 10 ms / 30 ms under load). The peer declares this head
    dead one dead time after the last heartbeat it received; the dead time is at least
    three intervals, so the release has half an interval at least, and half the dead time
    less half an interval when the dead time is longer than four intervals."""
    t = config.timing
    return max(2 * t.heartbeat_interval_ms, t.heartbeat_dead_time_ms // 2) + t.heartbeat_interval_ms // 2


class HeartbeatProcess:
    """Starts, talks to and watches the heartbeat process; the role machine's advertiser."""

    name = "heartbeat"

    def __init__(self, config: Callable[[], "Config"], make_init: Callable[[dict[str, Any]], dict[str, Any]],
                 local: dict[str, Any], state: State, peer_index: int, rows: dict[Lan, HbPathRow], sink: Sink,
                 row: JobRow, clock: Clock, on_exit: Callable[[], None],
                 channel: Measurements | None = None, *,
                 config_advert: Callable[[], tuple[int, str, int]] = no_advert,
                 settings_inbox: SettingsInbox | None = None) -> None:
        self.config = config
        self.channel = channel or Measurements()   # round trips per path, send lag: to performance
        self.make_init = make_init      # a process's first message, from what to advertise
        self.state = state
        self.peer_index = peer_index
        self.rows = rows
        self.sink = sink
        self.row = row
        self.clock = clock
        self.on_exit = on_exit
        self.proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._ready: asyncio.Future[None] | None = None
        self._stopping = False
        self._local = local                        # what this head advertises (wire form)
        self._last_report = float("-inf")          # monotonic time of the process's last message
        self._watch: Timer | None = None
        self._replacing: asyncio.Task[None] | None = None
        self._restarts: list[float] = []           # monotonic times new processes were started
        # The settings exchange's part (fcaps/configuration/sync.py): what this head
        # advertises of its settings, and where the peer's datagrams and the nonces go.
        self.config_advert = config_advert
        self.settings_inbox: SettingsInbox = settings_inbox or NoExchange()

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the process; returns once every socket is bound (raises OSError if one
        cannot be, with the process's own words)."""
        loop = asyncio.get_running_loop()
        # Nothing goes to a new process before its init: `_send` waits for this start's
        # `_ready` (a replaced process's is done, and advertising goes on meanwhile).
        self._ready = None
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = mine
        # An asyncio subprocess: waiting for it never sleeps (time.sleep fails under a
        # faked wall clock stepped back, and would block the loop anyway).
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fcaps.fault.heartbeat.child", str(theirs.fileno()),
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        mine.setblocking(False)
        mine.send(wire.pack("init", **self.make_init(self._local)))
        self._ready = loop.create_future()
        loop.add_reader(mine.fileno(), self._readable, mine)
        try:
            await asyncio.wait_for(self._ready, START_TIMEOUT_S)
        except BaseException:
            await self._end()
            raise
        self._last_report = self.clock.monotonic()
        self._arm_watch()

    async def stop(self) -> None:
        """Stop the process (it also stops by itself when our end closes)."""
        self._stopping = True
        if self._replacing is not None:
            self._replacing.cancel()
            try:
                await self._replacing
            except asyncio.CancelledError:
                pass
        await self._end()

    async def _end(self) -> None:
        """Close our end (the process stops when it sees that) and wait for it; killed if
        it does not stop in time (a frozen process never reads)."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        sock = self._sock
        if sock is not None:
            self._sock = None
            try:
                asyncio.get_running_loop().remove_reader(sock.fileno())
            except (RuntimeError, ValueError):
                pass
            try:
                sock.send(wire.pack("stop"))
            except OSError:
                pass
            sock.close()
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                self.proc.kill()
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)

    # -- to the process ------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self._sock is None or self._ready is None or not self._ready.done():
            return
        try:
            self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            if not self.state.hb_process.silent:
                log.warning("heartbeat process not reading; a message to it was dropped")
        except OSError:
            pass   # it died: _readable reports it

    def advertise(self, local: LocalView) -> None:
        """What this head advertises; called at every role cycle, so also a sign of life."""
        cfg = self.config()
        by_address = {str(a.address): (a.prefix_length, a.interface) for a in cfg.aliases}
        held = [(a, *by_address[a]) for a in local.aliases if a in by_address]
        local = dataclasses.replace(local, config=self.config_advert())
        self._local = wire.local_to_wire(local, held)
        self._send(wire.pack("local", **self._local))

    def reconfigure(self) -> None:
        """Timing or key changed (SET or reload): the process uses the new values (a new
        key is rotated in, see `heartbeat.KeyRing`)."""
        cfg = self.config()
        self._send(wire.pack("settings", settings=wire.settings_to_wire(settings_of(cfg)),
                               daemon_timeout_ms=daemon_timeout_ms(cfg)))
        if cfg.heartbeat.key:
            self._send(wire.pack("key", key=cfg.heartbeat.key.hex()))

    def send_config(self, data: bytes) -> None:
        """A datagram of the settings exchange, to the peer on the private LANs."""
        self._send(wire.pack("cfgsend", data=base64.b64encode(data).decode("ascii")))

    def on_event(self, event: Event) -> None:
        """Event-bus subscriber: an operator's resetCounters reaches the counters here
        (the heartbeat process owns them; its next report carries the zeroes)."""
        if is_counter_reset(event):
            self._send(wire.pack("reset"))

    # -- from the process ----------------------------------------------------------------

    def _readable(self, sock: socket.socket) -> None:
        if sock is not self._sock:
            return
        for _ in range(64):
            try:
                data = sock.recv(wire.MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            self._last_report = self.clock.monotonic()
            try:
                self._message(wire.unpack(data))
            except Exception:  # noqa: BLE001 - a bad message must not stop the next
                log.exception("bad message from the heartbeat process; %s", BUG_MARKER)

    def _message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("t")
        if kind == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif kind == "error":
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(OSError(msg.get("text", "heartbeat process failed")))
        elif kind == "snap":
            self._snap(msg)
        elif kind == "cfg":
            self.settings_inbox.deliver(base64.b64decode(msg["data"]))
        # "beat": a sign of life only (the time of it is taken above)

    def _snap(self, msg: dict[str, Any]) -> None:
        for lan, values in msg["rows"].items():
            row = self.rows.get(Lan(int(lan)))
            if row is not None:
                wire.row_from_wire(values, row)
        sec = self.state.security
        sec.hb_auth_failures, sec.hb_replays, sec.malformed_packets, sec.hb_last_refused = msg["security"]
        self.state.hb_figures.rtt_us, self.state.hb_figures.jitter_us = msg["perf"]
        for lan, figures in msg.get("paths", {}).items():
            rtt, low, high, mean, jitter, replies = (int(v) for v in figures)
            self.channel.publish(HbPathSample(self.peer_index, int(lan), rtt, low, high, mean, jitter, replies))
        if "send_lag" in msg:
            self.channel.publish(HbSendSample(int(msg["send_lag"][0]), int(msg["send_lag"][1])))
        head = self.state.heads.get((self.peer_index,))
        if head is not None:
            head.last_heartbeat = msg["last_heartbeat"]
        for key, value in msg["job"].items():
            setattr(self.row, key, value)
        self.settings_inbox.report((int(msg["nonces"][0]), int(msg["nonces"][1])),
                                   tuple(int(k) for k in msg["key_ids"]), int(msg["relay_dropped"]))
        self.sink(wire.peer_from_wire(msg["peer"]), wire.links_from_wire(msg["links"]),
                  [wire.notice_from_wire(n) for n in msg["notices"]], bool(msg["fenced"]))

    def _lost(self) -> None:
        sock = self._sock
        if sock is not None:
            asyncio.get_running_loop().remove_reader(sock.fileno())
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(OSError("the heartbeat process exited during start-up"))
            return
        if self._stopping:
            return
        code = self.proc.returncode if self.proc else None
        self._replace("the heartbeat process exited" + (f" (code {code})" if code is not None else ""))

    # -- watching it for silence -----------------------------------------------------------

    def _arm_watch(self) -> None:
        """A timer at the moment the process would have been silent for the bound; when it
        fires after a report came, it is armed again from that report."""
        bound = silence_bound_ms(self.config()) / 1000.0
        self._watch = self.clock.call_at(self._last_report + bound, self._look)

    def _look(self) -> None:
        self._watch = None
        if self._stopping or self._replacing is not None:
            return
        if self._sock is not None:
            self._readable(self._sock)     # what it sent and the loop has not read yet counts
        if self._stopping or self._replacing is not None:
            return
        bound = silence_bound_ms(self.config())
        quiet = (self.clock.monotonic() - self._last_report) * 1000.0
        if quiet >= bound:
            self._replace(f"the heartbeat process has sent nothing for {quiet:.0f} ms "
                          f"(it reports at every heartbeat; the bound is {bound} ms)")
        else:
            self._arm_watch()

    def _replace(self, reason: str) -> None:
        """This head is deaf: say so (the role machine releases), then a new process."""
        if self._replacing is not None or self._stopping:
            return
        self.sink.silent(reason)
        self._replacing = asyncio.get_running_loop().create_task(self._new_process(reason))

    async def _new_process(self, reason: str) -> None:
        try:
            await self._released()
            old = self.proc
            if old is not None and old.returncode is None:
                old.kill()                 # a stopped process is killed too (SIGKILL)
            await self._end()
            if old is not None and old.returncode is not None and old.returncode > 0:
                log.error("the heartbeat process ended with code %s; %s", old.returncode, BUG_MARKER)
            now = self.clock.monotonic()
            self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(self._restarts) > MAX_RESTARTS:
                log.error("%d new heartbeat processes within %.0f s: stopping the daemon for the service "
                          "manager to start afresh", MAX_RESTARTS, RESTART_WINDOW_S)
                self._stopping = True
                self.on_exit()
                return
            try:
                await self.start()
            except (OSError, asyncio.TimeoutError) as exc:
                log.error("cannot start a new heartbeat process (%s): stopping the daemon for the service "
                          "manager to start afresh", exc or "no answer")
                self._stopping = True
                self.on_exit()
                return
            self.sink.running()
        finally:
            self._replacing = None

    async def _released(self) -> None:
        """Until this head holds no alias (the role machine, woken, releases at once),
        at most RELEASE_WAIT_S: meanwhile a process that is only late, not frozen, still
        tells the peer that this head released and hands over."""
        head = self.state.heads.get((self.config().head_index(self.config().cluster.local_head),))
        deadline = self.clock.monotonic() + RELEASE_WAIT_S
        while head is not None and head.status in HOLDING:
            if self.clock.monotonic() >= deadline:
                log.error("this head still holds its aliases %.0f s after its heartbeat process fell silent",
                          RELEASE_WAIT_S)
                break
            await self.clock.sleep(0.01)
        await self.clock.sleep(0.02)       # the release's last word, to a process that still reads


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


def build(config: Callable[[], "Config"], state: State, state_dir: Path, sink: Sink, row: JobRow,
          clock: Clock, log_level: str, on_exit: Callable[[], None],
          channel: Measurements | None = None, *,
          config_advert: Callable[[], tuple[int, str, int]] = no_advert,
          settings_inbox: SettingsInbox | None = None) -> HeartbeatProcess:
    """The heartbeat of a two-head cluster: paths from the configuration, rows in the
    state (this is their one creator), this start's boot counter."""
    cfg = config()
    me, peer = cfg.local_head_config, cfg.peer_head_config
    assert peer is not None and me.lan_a is not None and me.lan_b is not None
    assert peer.lan_a is not None and peer.lan_b is not None
    paths = [(Lan.LAN_A, str(me.lan_a), str(peer.lan_a)), (Lan.LAN_B, str(me.lan_b), str(peer.lan_b))]
    public = cfg.public_heartbeat_path()
    if public is not None:
        paths.append((Lan.PUBLIC, *public))
    peer_index = cfg.head_index(peer.name)
    rows: dict[Lan, HbPathRow] = {}
    for lan, _local, _remote in paths:
        rows[lan] = state.hb_paths.get((peer_index, int(lan))) or HbPathRow()
        state.hb_paths.put((peer_index, int(lan)), rows[lan])
    key = cfg.heartbeat.key
    assert key, "heartbeat.key_file is required with two heads"
    # Until the role machine's first cycle: starting, and as fit as the configuration says
    # (the first heartbeats go out before it runs, and the peer judges us by them).
    flags = Flag.QUORUM_OK | (Flag.PREFERRED_PRIMARY if str(me.preferred_role) == "primary" else Flag(0))
    first = wire.local_to_wire(LocalView(HeadStatus.STARTING, flags), [])

    def make_init(local: dict[str, Any]) -> dict[str, Any]:
        """A process's first message: the settings and key as they are now, a boot counter
        above every earlier one (a new process is a new run to the peer), and what this
        head advertises now (a new process tells the peer at once that it released)."""
        now = config()
        assert now.heartbeat.key, "heartbeat.key_file is required with two heads"
        return {"settings": wire.settings_to_wire(settings_of(now)), "key": now.heartbeat.key.hex(),
                "local": local, "port": cfg.heartbeat.port, "epoch": next_epoch(state_dir),
                "epoch_file": str(state_dir / "heartbeat.epoch"), "daemon_timeout_ms": daemon_timeout_ms(now),
                "watch": sorted({a.interface for a in now.aliases}), "log_level": log_level,
                "paths": [{"lan": int(lan), "local": local, "remote": remote} for lan, local, remote in paths]}

    return HeartbeatProcess(config, make_init, first, state, peer_index, rows, sink, row, clock, on_exit,
                            channel, config_advert=config_advert, settings_inbox=settings_inbox)
