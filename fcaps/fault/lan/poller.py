"""The LAN poller: every watched interface of the cluster pinged, judged, shown and told.

The seed's poller: a head sends packets to every interface on the private LANs; an
interface whose count of answered packets stops growing for `lan_down_after_ms` is down.
Here the packets are ICMP echo requests from one socket per address family
(fault/lan/icmp.py), spread over each poll interval by a `Sweep`; after each interval the
counts go to the watch (fault/lan/watch.py), whose steps are carried out: the rows of
haoscarLanIfTable change at once, and the notices become notifications (haoscarLanIfDown
/ Up, haoscarLanFailed / Recovered), alarms and entries of the event history.

Which interfaces: the rows of `watched_interfaces(config)` ([[interfaces]], [[nodes]],
and the heads' own lan_a / lan_b addresses). This head's own interfaces are not pinged:
the kernel tells of them (fault/lan/ownifs.py, `OwnInterfaces`). The other head's
interfaces are pinged like a node's. The poller makes that netlink watch itself, from
the factory it is given, and hands it its own `link_changed`: the watch calls the
poller, the poller owns the watch, and neither is given the other after it was built.

Every head polls, so that each head's MIB shows the interfaces as that head reaches them
and a change of roles loses nothing: the head that takes over the reporting already has
every interface's state and history. Only the reporting head tells (fault/lan/reporting.py,
`Reporting`). The other head's rows are this head's own view (haoscarLanIfSource =
thisHead) and it says nothing.

With `failover.lan_failure_is_head_failure`, the poller also judges the peer head for
the role machine (`state.peer_lans_down`, advertised in the heartbeats): see `_judge_peer`.

Reload: the watch is a diff (an interface that stays keeps its state), and rows keep
their index (the configuration applier numbers them, haoscar_snmp/config/lanrows.py).

Writer of the runtime fields of haoscarLanIfTable's pinged rows, of haoscarLanTable, of
the cluster's LAN policy and state sentence, and of `state.peer_lans_down`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from haoscar_snmp.config.lanrows import PRIVATE, IfKey, watched_interfaces
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import (
    Lan,
    LanIfRow,
    LanRow,
    LanSource,
    LanStatus,
    LinkStatus,
    PollerPolicy,
    State,
)

from fcaps.fault.alarms import Alarms
from .icmp import Prober, TargetStats
from .ownifs import LinkChanged, Links, Own, OwnInterfaces, local_interface
from .reporting import Reporting
from .sweep import Sweep
from .watch import (
    LanWatch,
    Policy,
    Reading,
    Step,
    StepKind,
    Teller,
    running_on,
)

log = logging.getLogger(__name__)

SLICE = 250                   # interfaces read or written per pass of the event loop
MAX_PROBE_TIMEOUT_S = 1.0     # a reply later than this (or than the interval) is late, still alive


def awaiting_reply(stats: TargetStats, now: float, timeout: float) -> bool:
    """Whether the newest request may still be answered: sent less than `timeout` ago."""
    return stats.waiting_since is not None and stats.last_sent is not None and now - stats.last_sent < timeout


class LanPoller(OwnInterfaces, Reporting):
    """The LAN poller job (`run_cycle` once per poll interval); its parts for this head's
    own interfaces and for telling come from the two mixins."""

    name = "lan-poller"

    def __init__(self, state: State, config: Callable[[], Config], bus: EventBus, alarms: Alarms,
                 clock: Clock, prober: Prober | None = None, links: Callable[[LinkChanged], Links] | None = None,
                 interface_of: Callable[[str], str] | None = None,
                 sweep: Callable[[Prober, float, list[str]], Sweep] = Sweep,
                 wake_role: Callable[[], None] = lambda: None) -> None:
        self.state = state
        self.config = config
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self.prober = prober or Prober(clock=clock)
        self.links = links(self.link_changed) if links is not None else None
        self.interface_of = interface_of or local_interface
        self.watch = LanWatch()
        self.make_sweep = sweep
        self.wake_role = wake_role
        self.sweep: Sweep | None = None
        self._configured: Config | None = None
        self._remote: dict[IfKey, str] = {}       # pinged: key -> address
        self._own: dict[IfKey, Own] = {}          # this head's: key -> interface
        self._index: dict[IfKey, int] = {}        # key -> haoscarLanIfIndex
        self._reporting = False
        self._open_error = ""
        self._opened = False
        self._sweeping = False
        self._configured_once = False

    # -- the job -----------------------------------------------------------------------

    def interval(self) -> float:
        return self.config().timing.lan_poll_interval_ms / 1000.0

    async def _open(self) -> None:
        """Open the ICMP sockets, once there is something to ping. Without them (no
        privilege for raw ICMP, and the group is outside net.ipv4.ping_group_range)
        nothing is pinged: every probe counts as an error with the reason, the rows go
        down in time, haoscarLanState says why, and the log says it once."""
        self._opened = True
        try:
            await self.prober.ensure_open()
            log.info("LAN poller: %s", self.prober.describe())
        except OSError as exc:
            self._open_error = str(exc)
            log.error("LAN poller: cannot ping: %s", exc)

    async def stop(self) -> None:
        if self.sweep is not None:
            self.sweep.stop()
            self.sweep = None
        self.prober.close()

    async def run_cycle(self) -> str:
        config = self.config()
        now = self.clock.monotonic()
        if config is not self._configured:
            self._reconfigure(config, now)
        if self._remote and not self._opened:
            await self._open()
        if self.sweep is not None and not self._sweeping:
            self.sweep.start()
            self._sweeping = True
        reporting = self._reports(config)
        if reporting and not self._reporting and self._configured_once:
            self._take_over_reporting()
        self._reporting, self._configured_once = reporting, True
        timeout = self.prober.timeout
        stats: dict[IfKey, TargetStats] = {}
        readings: dict[IfKey, Reading] = {}
        for n, (key, address) in enumerate(self._remote.items(), start=1):
            found = self.prober.stats(address)
            if found is not None:
                stats[key] = found
                readings[key] = Reading(found.sent, found.received, found.last_reply, found.last_rtt,
                                        awaiting_reply(found, now, timeout))
            if n % SLICE == 0:
                await asyncio.sleep(0)           # let the loop breathe between slices
        steps = self.watch.step(now, readings)
        for step in steps:
            if not step.kind.notice:
                self._carry_out(step)
        await self._mirror(stats)
        tells = await self._own_rows(config, now)
        self._summaries()
        # Told last: a notification reads its rows when it is built, so they must be current.
        for step in steps:
            if step.kind.notice:
                self._carry_out(step)
        for node, lan, down in tells:
            self._tell_interface(node, lan, down, "carrier lost" if down else "carrier back")
        self._judge_peer(config)
        return self.state.cluster.lan_state

    # -- configuration -----------------------------------------------------------------

    def _reconfigure(self, config: Config, now: float) -> None:
        """The watched rows of a new configuration: a diff, kept interfaces keep their state."""
        self._configured = config
        me = config.cluster.local_head
        rows = {(row.node, row.lan): index for (index,), row in self.state.lan_ifs.items()}
        remote: dict[IfKey, str] = {}
        own: dict[IfKey, Own] = {}
        for w in watched_interfaces(config):
            if w.key not in rows or w.address is None:
                continue
            if w.node == me:
                kept = self._own.get(w.key)
                name = w.name or self.interface_of(str(w.address))
                own[w.key] = Own(name, kept.teller if kept is not None else Teller())
            else:
                remote[w.key] = str(w.address)
        for key, address in self._remote.items():
            if remote.get(key) != address:
                self.prober.forget(address)          # gone, or pinged at another address now
        self._remote, self._own, self._index = remote, own, rows
        self.watch.configure(remote, now, Policy.of(config))
        interval = config.timing.lan_poll_interval_ms / 1000.0
        self.prober.timeout = min(MAX_PROBE_TIMEOUT_S, interval)
        targets = list(remote.values())
        if self.sweep is not None and self.sweep.interval != interval:
            self.sweep.stop()
            self.sweep = None
        if self.sweep is None:
            self.sweep = self.make_sweep(self.prober, interval, targets)
            self._sweeping = False                   # started by the round, once the sockets are open
        else:
            self.sweep.set_targets(targets)
        if self.links is not None:
            self.links.set_names(sorted({o.name for o in own.values() if o.name}))
        self.state.cluster.lan_poller_policy = PollerPolicy[config.lan.poller.name]
        log.info("LAN poller: %d interfaces pinged every %g s, %d of this head's watched through netlink",
                 len(remote), interval, len(own))

    # -- steps -------------------------------------------------------------------------

    def _carry_out(self, step: Step) -> None:
        wall = self.clock.time()
        if step.kind in (StepKind.UP, StepKind.DOWN):
            row = self._row((step.node, step.lan))
            if row is not None:
                row.status = LinkStatus.UP if step.kind is StepKind.UP else LinkStatus.DOWN
                row.last_change = wall
            log.info("LAN interface %s/%s %s: %s", step.node, step.lan.label, step.kind.value, step.reason)
        elif step.kind in (StepKind.LAN_FAILED, StepKind.LAN_RECOVERED):
            lan = self.state.lans.get((int(step.lan),))
            if lan is not None:
                lan.last_change = wall
            log.warning("%s %s: %s", step.lan.label, step.kind.value, step.reason)
        elif step.kind in (StepKind.TELL_DOWN, StepKind.TELL_UP):
            self._tell_interface(step.node, step.lan, step.kind is StepKind.TELL_DOWN, step.reason)
        elif step.kind in (StepKind.TELL_LAN_FAILED, StepKind.TELL_LAN_RECOVERED):
            self._tell_lan(step.lan, step.kind is StepKind.TELL_LAN_FAILED, step.reason)

    # -- rows --------------------------------------------------------------------------

    def _row(self, key: IfKey) -> LanIfRow | None:
        index = self._index.get(key)
        return self.state.lan_ifs.get((index,)) if index is not None else None

    async def _mirror(self, stats: dict[IfKey, TargetStats]) -> None:
        """The prober's counts into the pinged rows, a slice per pass of the loop."""
        wall, mono = self.clock.time(), self.clock.monotonic()
        for n, key in enumerate(self._remote, start=1):
            row = self._row(key)
            found = stats.get(key)
            if row is not None:
                row.source = LanSource.THIS_HEAD
                if found is not None:
                    row.probes_sent, row.replies = found.sent, found.received
                    row.probe_errors, row.last_error = found.errors, found.last_error[:64]
                    row.rtt_us = round(found.last_rtt * 1e6) if found.last_rtt is not None else 0
                    if found.last_reply is not None:
                        row.last_reply = wall - (mono - found.last_reply)
            if n % SLICE == 0:
                await asyncio.sleep(0)

    # -- the peer head, for the failover logic ----------------------------------------

    def _judge_peer(self, config: Config) -> None:
        """state.peer_lans_down: whether the peer head counts as failed by this head's
        pings (failover.lan_failure_is_head_failure). It does when every private interface
        of the peer is down while this head reaches those LANs: its own interfaces there
        are up and, on each of them, some other node answers. A head whose own links are
        dead finds everything down, the peer too, and must not blame the peer for it; with
        no other node on a LAN there is no such proof, and the peer is never blamed."""
        why = ""
        peer = self._head(local=False)
        if config.failover.lan_failure_is_head_failure and peer is not None:
            theirs = [(lan, self.watch.status((peer.name, lan))) for lan in PRIVATE
                      if (peer.name, lan) in self._remote]
            mine = {key[1]: row.status for key in self._own if (row := self._row(key)) is not None}
            reached = {lan for (node, lan) in self._remote if node != peer.name
                       and self.watch.status((node, lan)) == LinkStatus.UP}
            if theirs and all(status == LinkStatus.DOWN for _, status in theirs) and all(
                    mine.get(lan) == LinkStatus.UP and lan in reached for lan, _ in theirs):
                lans = " and ".join(lan.label for lan, _ in theirs)
                why = (f"{peer.name} answers on none of its private interfaces ({lans}) while "
                       f"{config.cluster.local_head} reaches the nodes there")
        if why != self.state.peer_lans_down:
            if why:
                log.warning("LAN poller: %s", why)
            elif self.state.peer_lans_down:
                log.info("LAN poller: %s answers on its private interfaces again", peer.name if peer else "the peer")
            self.state.peer_lans_down = why
            self.wake_role()

    # -- summaries ---------------------------------------------------------------------

    def _summaries(self) -> None:
        """haoscarLanTable and the state sentence; this head's own rows count in."""
        summary = self.watch.summary()
        own_count: dict[Lan, list[LinkStatus]] = {}
        for key in self._own:
            row = self._row(key)
            if row is not None:
                own_count.setdefault(key[1], []).append(row.status)
        for lan in PRIVATE:
            row = self.state.lans.get((int(lan),))
            if row is None:
                row = LanRow()
                self.state.lans.put((int(lan),), row)
            s = summary.get(lan)
            mine = own_count.get(lan, [])
            row.interfaces = (s.total if s else 0) + len(mine)
            row.up = (s.up if s else 0) + mine.count(LinkStatus.UP)
            row.down = (s.down if s else 0) + mine.count(LinkStatus.DOWN)
            row.unknown = (s.unknown if s else 0) + mine.count(LinkStatus.UNKNOWN)
            status = (LanStatus.FAILED if s is not None and s.failed else
                      LanStatus.DEGRADED if row.down else
                      LanStatus.OK if row.up else LanStatus.UNKNOWN)
            if status != row.status:
                row.status, row.last_change = status, self.clock.time()
        parts = []
        on = running_on(summary)
        if on is not None:
            other = Lan.LAN_A if on is Lan.LAN_B else Lan.LAN_B
            parts.append(f"{other.label} failed: running on {on.label} only")
        for lan in PRIVATE:
            row = self.state.lans.get((int(lan),))
            if row is not None and row.interfaces:
                parts.append(f"{lan.label} {row.up}/{row.interfaces} up"
                             + (" (failed)" if row.status == LanStatus.FAILED else ""))
        if self._open_error:
            parts.append(f"not pinging: {self._open_error}")
        self.state.cluster.lan_state = ("; ".join(parts) or "no LAN interface watched")[:255]
