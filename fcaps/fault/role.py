"""The role state machine: carries out what `decide()` says, one named transition at a time.

Sole writer of this head's status and role changes, of the cluster summary (active head,
failover count and timings, cluster state) and of the alias table's runtime columns.

    STARTING    -> STANDBY       peer is active (orphaned aliases from a crash are dropped)
    STARTING    -> TAKING_OVER   start-up rules say this head should be active
    STANDBY     -> TAKING_OVER   peer dead, peer hands over, or both standby and we win
    TAKING_OVER -> ACTIVE        aliases added and announced
    TAKING_OVER -> STANDBY       fence command, quorum check or an alias add failed
    ACTIVE      -> RELEASING     split brain lost, failback or switchover to the peer
    RELEASING   -> STANDBY       aliases removed

Each transition is asserted against that table and publishes one event. The machine is
evaluated every heartbeat interval and whenever the heartbeat reports a change (woken,
never called from inside a socket callback).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import (AliasStatus, ClusterStatus, ControlAction, HeadStatus, LinkStatus,
                                     State)

from .alarms import Alarms, AlarmType, ProbableCause
from .decide import Action, Decision, Me, Peer, decide
from .hbproto import Flag
from .heartbeat import LocalView
from .takeover import Alias, AliasOps

log = logging.getLogger(__name__)

S = HeadStatus
ALLOWED: dict[HeadStatus, set[HeadStatus]] = {
    S.STARTING: {S.STANDBY, S.TAKING_OVER},
    S.STANDBY: {S.TAKING_OVER},
    S.TAKING_OVER: {S.ACTIVE, S.STANDBY},
    S.ACTIVE: {S.RELEASING},
    S.RELEASING: {S.STANDBY},
}


class RoleMachine:
    """Decides and acts; the heartbeat and the operator only wake it."""

    name = "role"

    def __init__(self, state: State, config: Callable[[], Config], peer: Callable[[], Peer | None],
                 peer_dead_since: Callable[[], float], aliases: AliasOps, bus: EventBus,
                 alarms: Alarms, clock: Clock, runner: Runner, local: LocalView,
                 announce: Callable[[], None]) -> None:
        self.state = state
        self.config = config
        self.peer = peer
        self.peer_dead_since = peer_dead_since
        self.aliases = aliases
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self.runner = runner
        self.local = local
        self.announce = announce
        cfg = config()
        self.me = cfg.cluster.local_head
        self.index = cfg.head_index(self.me)
        self.preferred = str(cfg.local_head_config.preferred_role) == "primary"
        self.started = clock.monotonic()
        self.switchover_requested = False
        self.split_brain = False
        self._lock = asyncio.Lock()
        self._last_reason = "starting"
        self._garp_tasks: set[asyncio.Task[None]] = set()
        self.state.heads[(self.index,)].status = S.STARTING
        self.local.status = S.STARTING

    @property
    def status(self) -> HeadStatus:
        return self.local.status

    # -- the job -------------------------------------------------------------------------

    def interval(self) -> float:
        return self.config().timing.heartbeat_interval_ms / 1000.0

    async def run_cycle(self) -> str:
        return await self.evaluate()

    def wake(self) -> None:
        """Ask for an evaluation soon (from a socket callback, a timer or a SET)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.create_task(self.evaluate())

    async def evaluate(self) -> str:
        if self._lock.locked():
            return self._last_reason  # a wake-up is already being handled
        async with self._lock:
            cfg = self.config()
            now = self.clock.monotonic()
            peer = self.peer()
            me = Me(name=self.me, preferred_primary=self.preferred, status=self.status,
                    started_for_ms=int((now - self.started) * 1000),
                    initdead_ms=cfg.timing.initdead_ms, auto_failback=cfg.timing.auto_failback,
                    failback_delay_ms=cfg.timing.failback_delay_s * 1000,
                    switchover_requested=self.switchover_requested)
            decision = decide(me, peer)
            if self.local.flags != decision.flags:
                self.local.flags = decision.flags
                self.announce()
            self._split_brain(peer)      # detected before acting: the loser reports it too
            await self._act(decision, peer)
            self._split_brain(self.peer())
            self._cluster_status(peer)
            self._last_reason = decision.reason
            return decision.reason

    async def _act(self, decision: Decision, peer: Peer | None) -> None:
        if decision.action == Action.TAKE_OVER:
            await self._take_over(decision.reason, peer)
        elif decision.action == Action.RELEASE:
            await self._release(decision.reason)
        elif decision.action == Action.BECOME_STANDBY:
            await self._drop_orphans()
            self._transition(S.STANDBY, decision.reason)
        elif decision.action == Action.REANNOUNCE and not self.split_brain:
            self._announce_aliases()

    # -- transitions -------------------------------------------------------------------

    def _transition(self, new: HeadStatus, reason: str) -> None:
        old = self.status
        assert new in ALLOWED[old], f"role transition {old.name} -> {new.name} is not allowed"
        self.local.status = new
        head = self.state.heads[(self.index,)]
        head.status = new
        head.role_changes += 1
        if new == S.ACTIVE:
            self.state.cluster.active_head = self.me
        elif old == S.ACTIVE or (new == S.STANDBY and self.state.cluster.active_head == self.me):
            self.state.cluster.active_head = ""
        if new in (S.ACTIVE, S.STANDBY):
            self.switchover_requested = False
        self.bus.publish(Event(EventType.ROLE_CHANGED, self.me, Severity.INFO,
                               f"{self.me}: {old.name.lower()} -> {new.name.lower()} ({reason})",
                               self.clock.time(), {"head_index": self.index, "reason": reason}))
        self.announce()

    async def _take_over(self, reason: str, peer: Peer | None) -> None:
        cfg = self.config()
        # A failover is a takeover from a peer that was alive and died; taking over at
        # start-up from a peer never heard is not one.
        detected = self.peer_dead_since() if peer is not None and not peer.alive else 0.0
        failover = bool(detected)
        # A failback is a takeover by the preferred primary from a peer that handed over.
        handover = peer is not None and peer.alive and (
            bool(peer.flags & Flag.HANDOVER) or peer.status == S.RELEASING)
        begin = detected or self.clock.monotonic()
        self._transition(S.TAKING_OVER, reason)
        if failover:
            self.bus.publish(Event(EventType.FAILOVER_STARTED, self.me, Severity.MAJOR,
                                   f"failover to {self.me} started: {reason}", self.clock.time(),
                                   {"head_index": self.index, "reason": reason}))
        problem = await self._preconditions(cfg, failover)
        added: list[Alias] = []
        if problem is None:
            try:
                for alias in self._alias_list(cfg):
                    await self.aliases.add(alias)
                    added.append(alias)
                    self._alias_row(alias, AliasStatus.HELD, self.me)
            except OSError as exc:
                problem = f"could not add alias: {exc}"
        if problem is not None:
            for alias in added:
                await self.aliases.remove(alias)
                self._alias_row(alias, AliasStatus.RELEASED, "")
            self._transition(S.STANDBY, f"takeover failed: {problem}")
            self.bus.publish(Event(EventType.FAILOVER_FAILED, self.me, Severity.CRITICAL,
                                   f"takeover by {self.me} failed: {problem}", self.clock.time(),
                                   {"head_index": self.index, "reason": problem}))
            self.alarms.raise_alarm(ProbableCause.FAILOVER_FAILURE, self.me, Severity.CRITICAL,
                                    AlarmType.PROCESSING_ERROR, f"takeover failed: {problem}")
            return
        # The first burst is part of the takeover (and of its measured duration): clients
        # reach this head only once they have heard it. The repeat goes in the background.
        await self._garp_burst()
        self._announce_aliases(now=False)
        duration_ms = round((self.clock.monotonic() - begin) * 1000)
        await self._services("start", cfg)
        self._transition(S.ACTIVE, reason)
        self.alarms.clear(ProbableCause.FAILOVER_FAILURE, self.me)
        if failover:
            self._record_failover(duration_ms, reason)
        elif self.preferred and handover:
            self.bus.publish(Event(EventType.FAILBACK_COMPLETED, self.me, Severity.INFO,
                                   f"failback to {self.me} completed in {duration_ms} ms ({reason})",
                                   self.clock.time(), {"head_index": self.index, "reason": reason,
                                                       "duration_ms": duration_ms}))

    async def _preconditions(self, cfg: Config, failover: bool) -> str | None:
        timeout = cfg.failover.command_timeout_ms / 1000.0
        if failover and cfg.failover.fence_command:
            result = await self.runner.run(cfg.failover.fence_command, timeout)
            if not result.ok:
                return f"fence command failed ({'timeout' if result.timed_out else result.returncode})"
        if cfg.failover.quorum_command:
            result = await self.runner.run(cfg.failover.quorum_command, timeout)
            if not result.ok:
                return "quorum check failed"
        return None

    async def _release(self, reason: str) -> None:
        self._transition(S.RELEASING, reason)
        await self._services("stop", self.config())
        for alias in self._alias_list(self.config()):
            try:
                await self.aliases.remove(alias)
            except OSError as exc:  # keep going: leaving one alias is better than leaving all
                log.error("could not remove alias %s: %s", alias.address, exc)
            self._alias_row(alias, AliasStatus.RELEASED, "")
        self._transition(S.STANDBY, reason)

    async def _drop_orphans(self) -> None:
        """Aliases left configured by a daemon that was killed: the active peer owns them."""
        for alias in self._alias_list(self.config()):
            if await self.aliases.present(alias):
                log.warning("removing alias %s left over from an earlier run: %s is active",
                            alias.address, self.peer().name if self.peer() else "the peer")
                await self.aliases.remove(alias)
            self._alias_row(alias, AliasStatus.RELEASED, "")

    async def _services(self, which: str, cfg: Config) -> None:
        """Start (on takeover) or stop (on release) the services that run only on the
        active head. A failure is logged and left to the service monitor: it must not
        keep the alias from moving."""
        timeout = cfg.failover.command_timeout_ms / 1000.0
        for svc in cfg.active_services():
            command = svc.start if which == "start" else svc.stop
            if not (svc.active_only and svc.enabled and command):
                continue
            result = await self.runner.run(command, timeout)
            if not result.ok:
                log.error("%s of service %s failed (%s): %s", which, svc.name,
                          "timeout" if result.timed_out else f"exit {result.returncode}", result.output)

    # -- aliases -------------------------------------------------------------------------

    def _alias_list(self, cfg: Config) -> list[Alias]:
        return [Alias(str(a.address), a.prefix_length, a.interface, a.index) for a in cfg.active_aliases()]

    def _alias_row(self, alias: Alias, status: AliasStatus, owner: str) -> None:
        row = self.state.aliases.get((alias.index,))
        if row is not None:
            row.status, row.owner = status, owner
        self.local.aliases = tuple(a.address for a in self._alias_list(self.config())
                                   if (r := self.state.aliases.get((a.index,))) and r.status == AliasStatus.HELD)

    async def _garp_burst(self, delay: float = 0.0) -> None:
        """One burst of garp_count gratuitous ARPs for every alias this head holds."""
        if delay:
            await asyncio.sleep(delay)
        if self.status not in (S.TAKING_OVER, S.ACTIVE):
            return  # released meanwhile: announcing now would steal the traffic back
        cfg = self.config()
        for alias in self._alias_list(cfg):
            sent = await self.aliases.garp(alias, cfg.timing.garp_count)
            row = self.state.aliases.get((alias.index,))
            if row is not None:
                row.garp_sent += sent

    def _announce_aliases(self, now: bool = True) -> None:
        """Gratuitous ARP in the background: a burst now (unless already sent), another
        after garp_repeat_ms, for switches and clients that missed or ignored the first."""
        delays = [self.config().timing.garp_repeat_ms / 1000.0]
        if now:
            delays.insert(0, 0.0)
        loop = asyncio.get_running_loop()
        for delay in delays:
            task = loop.create_task(self._garp_burst(delay))
            self._garp_tasks.add(task)
            task.add_done_callback(self._garp_tasks.discard)

    # -- bookkeeping -----------------------------------------------------------------------

    def _record_failover(self, duration_ms: int, reason: str) -> None:
        c, p = self.state.cluster, self.state.perf
        c.failover_count += 1
        c.last_failover_time = self.clock.time()
        c.last_failover_duration_ms = duration_ms
        c.last_failover_reason = reason[:255]
        n = c.failover_count
        p.failover_last_ms = duration_ms
        p.failover_min_ms = duration_ms if n == 1 else min(p.failover_min_ms, duration_ms)
        p.failover_max_ms = max(p.failover_max_ms, duration_ms)
        p.failover_mean_ms = int(p.failover_mean_ms + (duration_ms - p.failover_mean_ms) / n)
        self.bus.publish(Event(EventType.FAILOVER_COMPLETED, self.me, Severity.WARNING,
                               f"failover to {self.me} completed in {duration_ms} ms: {reason}",
                               c.last_failover_time, {"head_index": self.index, "reason": reason,
                                                      "duration_ms": duration_ms}))

    def _split_brain(self, peer: Peer | None) -> None:
        both = (peer is not None and peer.alive and self.status == S.ACTIVE
                and peer.status in (S.ACTIVE, S.TAKING_OVER))
        if both and not self.split_brain:
            self.split_brain = True
            text = f"split brain: {self.me} and {peer.name} both active"
            self.bus.publish(Event(EventType.SPLIT_BRAIN_DETECTED, self.me, Severity.CRITICAL, text,
                                   self.clock.time(), {"reason": text}))
            self.alarms.raise_alarm(ProbableCause.SPLIT_BRAIN, "cluster", Severity.CRITICAL,
                                    AlarmType.PROCESSING_ERROR, text)
        elif self.split_brain and not both and (
                self.status == S.ACTIVE or (peer is not None and peer.alive and peer.status == S.ACTIVE)):
            # Resolved: exactly one head is active again.
            self.split_brain = False
            winner = self.me if self.status == S.ACTIVE else (peer.name if peer else "the peer")
            self.bus.publish(Event(EventType.SPLIT_BRAIN_RESOLVED, self.me, Severity.INFO,
                                   f"split brain resolved: {winner} is active",
                                   self.clock.time()))
            self.alarms.clear(ProbableCause.SPLIT_BRAIN, "cluster")
            if self.status == S.ACTIVE:
                self._announce_aliases()  # the winner re-announces: clients may hold the loser's MAC

    def _cluster_status(self, peer: Peer | None) -> None:
        c = self.state.cluster
        if self.split_brain:
            c.status = ClusterStatus.SPLIT_BRAIN
        elif self.status == S.TAKING_OVER:
            c.status = ClusterStatus.FAILING_OVER
        elif self.status != S.ACTIVE and not (peer and peer.alive and peer.status == S.ACTIVE):
            c.status = ClusterStatus.FAILED if self.status != S.STARTING else ClusterStatus.UNKNOWN
        elif peer is None:
            c.status = ClusterStatus.NORMAL
        elif not peer.alive or any(p.status == LinkStatus.DOWN for p in self.state.hb_paths.values()):
            c.status = ClusterStatus.DEGRADED
        else:
            c.status = ClusterStatus.NORMAL
        if peer is not None and peer.alive and peer.status == S.ACTIVE:
            c.active_head = peer.name

    # -- operator actions --------------------------------------------------------------

    def request(self, action: ControlAction, principal: str) -> tuple[bool, str]:
        """haoscarControlAction switchover/failback: record, wake, and say what will happen."""
        peer = self.peer()
        if peer is None:
            return False, "no peer head: nothing to switch over to"
        if not peer.alive:
            return False, f"peer {peer.name} is not alive"
        if action == ControlAction.FAILBACK:
            on_primary = (self.status == S.ACTIVE) == self.preferred
            if on_primary:
                return False, "the preferred primary is already active"
        if self.status not in (S.ACTIVE, S.STANDBY):
            return False, f"{self.me} is {self.status.name.lower()}; try again shortly"
        self.switchover_requested = True
        self.wake()
        target = peer.name if self.status == S.ACTIVE else self.me
        return True, f"{action.name.lower()} to {target} requested by {principal}"
