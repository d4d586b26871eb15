"""Public reachability: can clients reach this head? Judged by pinging the public targets.

A head whose public link goes silent while its carrier stays up (a dead switch port, a
wrong VLAN, an upstream failure) looks healthy to everything else: its links are up and
the peer still hears it on the private LANs. Clients cannot reach the alias it holds.
Here each head pings the addresses of `[failover] public_targets` (the gateway, a
router, a few clients) every `public_probe_interval_ms`, from the LAN poller's ICMP
prober (one socket per address family, fault/lan/icmp.py), and judges each target:

* a probe is judged one interval after it was sent: answered (by then or late) or not;
* a target is reachable after `public_rise` answered probes in a row, unreachable after
  `public_fall` unanswered ones (unknown until either);
* the head has lost the public LAN when every target is unreachable, and has it back
  once it has reached one continuously for `public_hold_down_ms`, so that a flapping link
  does not move the service back and forth.

What this head reaches (how many, and which: a mask over the list, which is cluster-wide)
and whether it lost the public LAN go into its heartbeats (`state.public_reach`, read by
the role machine, which advertises it; the flag PUBLIC_LOST). The role decision
(fault/role/decide.py) hands the alias over when the active head lost the public LAN while the
standby reaches a target; when neither reaches any, nothing moves.

The MIB shows each target per head (haoscarPubTargetTable: this head's rows from its own
probes, the peer's from its advertised mask) and each head's count and verdict
(haoscarHeadPublicReached, haoscarHeadPublicState). A loss, this head's or the peer's
(as its heartbeats say), is an event, an alarm (publicLanUnreachable) and a notification
naming the head: the head that lost the public LAN often cannot reach the NMS, the other
one can.

Writer of `state.public_reach`, `state.public_targets` and the heads' public columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Protocol

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import (
    HeadRow,
    LinkStatus,
    PublicReach,
    PublicState,
    PubTargetRow,
    State,
)

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from fcaps.fault.heartbeat.proto import Flag
from fcaps.fault.lan.icmp import TargetStats

log = logging.getLogger(__name__)


class Pinger(Protocol):
    """The LAN poller's ICMP prober, as this job uses it."""

    async def ensure_open(self) -> None: ...
    def probe(self, address: str) -> None: ...
    def stats(self, address: str) -> TargetStats | None: ...
    def forget(self, address: str) -> None: ...


@dataclass
class Target:
    """One target's judgement, on this head."""

    address: str
    status: LinkStatus = LinkStatus.UNKNOWN
    run: int = 0                    # verdicts in a row of the same kind (+ answered, - not)
    received: int = 0               # the prober's count when the last probe went out
    probed: bool = False            # a probe went out in the last cycle


class PublicReachJob:
    """The public-reach job: judge, then probe, once per probe interval (a steady job)."""

    name = "public-reach"

    def __init__(self, state: State, config: Callable[[], Config], bus: EventBus, alarms: Alarms,
                 clock: Clock, pinger: Pinger, wake_role: Callable[[], None]) -> None:
        self.state = state
        self.config = config
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self.pinger = pinger
        self.wake_role = wake_role
        self._targets: list[Target] = []
        self._configured: tuple[str, ...] | None = None
        self._lost_since = float("-inf")     # monotonic: this head counted as cut off since
        self._reached_since = float("-inf")  # monotonic: reaching a target without a break since
        self._peer_lost = False              # the peer's word, as last told
        self._open_error = ""

    def interval(self) -> float:
        return self.config().failover.public_probe_interval_ms / 1000.0

    async def run_cycle(self) -> str:
        cfg = self.config()
        self._configure(cfg)
        me, peer = self._head(True), self._head(False)
        if not self._targets:
            self._publish_own(PublicReach(), me)
            self._peer_rows(cfg, peer)
            return "no public targets"
        try:
            await self.pinger.ensure_open()
        except OSError as exc:
            # Nothing can be judged: the targets stay unknown and nothing moves on it.
            if not self._open_error:
                log.error("public LAN: cannot ping the public targets: %s", exc)
            self._open_error = str(exc)
            return f"cannot ping the public targets: {exc}"
        self._open_error = ""
        now = self.clock.monotonic()
        for target in self._targets:
            self._judge(target, cfg)
        for target in self._targets:
            stats = self.pinger.stats(target.address)
            target.received = stats.received if stats is not None else 0
            target.probed = True
            self.pinger.probe(target.address)
        reach = self._reach(cfg, now)
        self._own_rows(me)
        self._publish_own(reach, me)
        self._peer_rows(cfg, peer)
        return self._sentence(reach, cfg)

    # -- judging -----------------------------------------------------------------------

    def _configure(self, cfg: Config) -> None:
        wanted = tuple(str(a) for a in cfg.failover.public_targets)
        if wanted == self._configured:
            return
        kept = {t.address: t for t in self._targets}
        for address in set(kept) - set(wanted):
            self.pinger.forget(address)
        self._targets = [kept.get(address) or Target(address) for address in wanted]
        self._configured = wanted
        self.state.public_targets.clear()
        if wanted:
            log.info("public LAN: %d targets pinged every %d ms (%s)", len(wanted),
                     cfg.failover.public_probe_interval_ms, ", ".join(wanted))

    def _judge(self, target: Target, cfg: Config) -> None:
        """The probe sent one interval ago: answered (a reply counted since) or not."""
        if not target.probed:
            return
        stats = self.pinger.stats(target.address)
        answered = stats is not None and stats.received > target.received
        if answered:
            target.run = target.run + 1 if target.run > 0 else 1
        else:
            target.run = target.run - 1 if target.run < 0 else -1
        f = cfg.failover
        new = target.status
        if answered and target.run >= f.public_rise:
            new = LinkStatus.UP
        elif not answered and -target.run >= f.public_fall:
            new = LinkStatus.DOWN
        if new != target.status:
            log.info("public target %s %s (%s)", target.address,
                     "reachable" if new == LinkStatus.UP else "unreachable",
                     f"{target.run} answered in a row" if answered else
                     f"{-target.run} unanswered in a row" + (f": {stats.last_error}" if stats and
                                                              stats.last_error else ""))
            target.status = new

    def _reach(self, cfg: Config, now: float) -> PublicReach:
        """This head's verdict, with the hold-down on the way back."""
        up = [i for i, t in enumerate(self._targets) if t.status == LinkStatus.UP]
        mask = sum(1 << i for i in up)
        everything_down = all(t.status == LinkStatus.DOWN for t in self._targets)
        lost = self.state.public_reach.lost
        if up:
            if self._reached_since == float("-inf"):
                self._reached_since = now
        else:
            self._reached_since = float("-inf")
        hold = cfg.failover.public_hold_down_ms / 1000.0
        if everything_down:
            if not lost:
                self._lost_since = now
            lost = (f"{cfg.cluster.local_head} reaches none of its {len(self._targets)} public targets "
                    f"({', '.join(t.address for t in self._targets)})")
        elif lost and up and now - self._reached_since >= hold:
            lost = ""
        elif lost and up:
            lost = (f"{cfg.cluster.local_head} reaches {len(up)} of its {len(self._targets)} public targets "
                    f"again, for {now - self._reached_since:.1f} of the {hold:g} s hold-down")
        return PublicReach(len(self._targets), len(up), mask, lost, self._lost_since if lost else 0.0)

    # -- the state, the MIB, the operator ----------------------------------------------

    def _publish_own(self, reach: PublicReach, me: HeadRow | None) -> None:
        old = self.state.public_reach
        if reach == old:
            return
        self.state.public_reach = reach
        if bool(reach.lost) != bool(old.lost) or (reach.watched, reach.reached) != (old.watched, old.reached):
            self.wake_role()
        if me is not None:
            me.public_reached = reach.reached
            me.public_state = (PublicState.NOT_WATCHED if not reach.watched else
                               PublicState.LOST if reach.lost else
                               PublicState.REACHED if reach.reached else PublicState.UNKNOWN)
            if bool(reach.lost) != bool(old.lost):
                self._tell(me, bool(reach.lost), reach.lost or
                           f"{me.name} reaches {reach.reached} of its {reach.watched} public targets")

    def _own_rows(self, me: HeadRow | None) -> None:
        if me is None:
            return
        index = self._index(me.name)
        wall, mono = self.clock.time(), self.clock.monotonic()
        for i, target in enumerate(self._targets, start=1):
            row = self._row(index, i, target.address)
            if row.status != target.status:
                row.status, row.last_change = target.status, wall
            stats = self.pinger.stats(target.address)
            row.rtt_us = (round(stats.last_rtt * 1e6) if stats is not None and stats.last_rtt is not None
                          and stats.last_reply is not None and mono - stats.last_reply < 10 * self.interval()
                          else 0)

    def _peer_rows(self, cfg: Config, peer: HeadRow | None) -> None:
        """The peer's targets as its heartbeats say: which it reaches, and its verdict."""
        if peer is None:
            return
        view = self.state.peer
        heard = view is not None and view.heard
        public = view.public if view is not None else None
        lost = bool(view is not None and Flag(view.flags) & Flag.PUBLIC_LOST) and public is not None
        if public is not None:
            peer.public_reached = public[1]
        if public is None or not public[0]:
            peer.public_state = PublicState.NOT_WATCHED if heard or public is not None else PublicState.UNKNOWN
        else:
            peer.public_state = (PublicState.UNKNOWN if not heard else PublicState.LOST if lost else
                                 PublicState.REACHED if public[1] else PublicState.UNKNOWN)
        index = self._index(peer.name)
        wall = self.clock.time()
        for i, target in enumerate(self._targets, start=1):
            row = self._row(index, i, target.address)
            status = (LinkStatus.UNKNOWN if not heard or public is None or public[0] != len(self._targets)
                      else LinkStatus.UP if public[2] >> (i - 1) & 1 else LinkStatus.DOWN)
            if status != row.status:
                row.status, row.last_change = status, wall
        # Told when the peer says so; a peer no longer heard keeps its last word.
        if heard and lost != self._peer_lost:
            self._peer_lost = lost
            self._tell(peer, lost, f"{peer.name} reaches none of its public targets (its heartbeats say)"
                       if lost else f"{peer.name} reaches {peer.public_reached} of its public targets again "
                                    f"(its heartbeats say)")

    def _tell(self, head: HeadRow, lost: bool, text: str) -> None:
        index = self._index(head.name)
        if lost:
            log.warning("public LAN lost: %s", text)
            self.alarms.raise_alarm(ProbableCause.PUBLIC_LAN_UNREACHABLE, head.name, Severity.MAJOR,
                                    AlarmType.COMMUNICATIONS, f"public LAN lost: {text}")
        else:
            log.info("public LAN regained: %s", text)
            self.alarms.clear(ProbableCause.PUBLIC_LAN_UNREACHABLE, head.name, f"public LAN regained: {text}")
        self.bus.publish(Event(EventType.PUBLIC_LAN_LOST if lost else EventType.PUBLIC_LAN_REGAINED, head.name,
                               Severity.MAJOR if lost else Severity.CLEARED, text, self.clock.time(),
                               {"head_index": index, "reason": text}))

    # -- helpers -----------------------------------------------------------------------

    def _head(self, local: bool) -> HeadRow | None:
        return next((h for h in self.state.heads.values() if h.is_local == local), None)

    def _index(self, name: str) -> int:
        return next(key[0] for key, head in self.state.heads.items() if head.name == name)

    def _row(self, head: int, target: int, address: str) -> PubTargetRow:
        row = self.state.public_targets.get((head, target))
        if row is None or row.address != address:
            row = PubTargetRow(address)
            self.state.public_targets.put((head, target), row)
        return row

    def _sentence(self, reach: PublicReach, cfg: Config) -> str:
        if reach.lost:
            return reach.lost
        down = [t.address for t in self._targets if t.status == LinkStatus.DOWN]
        text = f"{reach.reached}/{reach.watched} public targets reached"
        return text + (f"; unreachable: {', '.join(down)}" if down else "")
