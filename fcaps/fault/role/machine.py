"""The role state machine: carries out what `decide()` says, one named transition at a time.

Sole writer of this head's status and role changes, of the cluster summary (active head,
failover count and timings, cluster state), of the alias table's runtime columns and of
the takeover generation. It reads only snapshots: the peer as the heartbeat last saw it
(`state.peer`), this head's carrier (`state.links`), the quorum result (`state.quorum`)
and alias claims seen on the public LAN (`state.alias_claims`), so what the MIB shows is
what the decision used.

    STARTING    -> STANDBY       peer is active (orphaned aliases from a crash are dropped)
    STARTING    -> TAKING_OVER   start-up rules say this head should be active
    STANDBY     -> TAKING_OVER   peer dead, peer handed over, or both standby and we win
    TAKING_OVER -> ACTIVE        aliases added and announced
    TAKING_OVER -> STANDBY       fence command, quorum check or an alias add failed
    ACTIVE      -> RELEASING     split brain lost, isolated, failback or switchover
    RELEASING   -> STANDBY       aliases removed

Each transition is asserted against that table and publishes one event. The machine is
a steady job (monotonic clock) evaluated every heartbeat interval and whenever the
heartbeat, the alias guard or an operator wakes it; wake-ups coalesce in the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Callable, Protocol

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity, is_counter_reset
from haoscar_snmp.core.files import atomic_write
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import (
    AliasStatus,
    ClusterStatus,
    ControlAction,
    HeadStatus,
    PeerView,
    State,
)

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from .decide import ISOLATION_SETTLE_MS, Action, Decision, Me, Peer, decide
from fcaps.fault.heartbeat.peer import LocalView
from fcaps.fault.heartbeat.proto import Flag
from fcaps.fault.takeover import Alias, AliasOps

log = logging.getLogger(__name__)

S = HeadStatus
ALLOWED: dict[HeadStatus, set[HeadStatus]] = {
    S.STARTING: {S.STANDBY, S.TAKING_OVER},
    S.STANDBY: {S.TAKING_OVER},
    S.TAKING_OVER: {S.ACTIVE, S.STANDBY},
    S.ACTIVE: {S.RELEASING},
    S.RELEASING: {S.STANDBY},
}


class Advertiser(Protocol):
    """Where this head's advertised view goes: the heartbeat thread."""

    def advertise(self, local: LocalView) -> None: ...


class NoPeer:
    """The advertiser of a single-head cluster: nobody listens."""

    def advertise(self, local: LocalView) -> None:
        pass


class GenerationFile:
    """The takeover generation, kept in the state directory across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.value = int(path.read_text().strip())
        except (OSError, ValueError):
            self.value = 0

    async def save(self, value: int) -> None:
        self.value = value
        await asyncio.to_thread(atomic_write, self.path, f"{value}\n".encode())


PERIOD_FLOOR_S = 0.1        # the machine's period, at least (see RoleMachine.interval)
REANNOUNCE_MIN_S = 1.0      # re-announcing (split brain won, alias defended) at most this often
STRAY_CHECK_S = 1.0         # a standby looks for stray aliases this often


def claim_window(config: Config) -> float:
    """How long an alias announcement from another head counts as "it holds it now"."""
    announce = config.timing.alias_announce_ms / 1000.0
    return 3 * announce if announce else 3.0


class RoleMachine:
    """Decides and acts; the heartbeat, the alias guard and the operator only wake it."""

    name = "role"

    def __init__(self, state: State, config: Callable[[], Config], aliases: AliasOps, bus: EventBus,
                 alarms: Alarms, clock: Clock, runner: Runner, advertiser: Advertiser,
                 generation: GenerationFile, wake: Callable[[], None] = lambda: None,
                 config_ready: Callable[[], bool] = lambda: True) -> None:
        self.state = state
        self.config = config
        self.aliases = aliases
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self.runner = runner
        self.advertiser = advertiser
        self.generation = generation
        self.wake = wake            # asks the scheduler for another cycle (a timer of ours)
        cfg = config()
        self.me = cfg.cluster.local_head
        self.index = cfg.head_index(self.me)
        self.preferred = str(cfg.local_head_config.preferred_role) == "primary"
        self.started = clock.monotonic()
        self.switchover_requested = False
        self.split_brain = False
        self.handing_over_since = 0.0       # monotonic; 0 = not handing over
        self.contact_generation = 0
        self.yielded: set[str] = set()      # aliases given up to a head we could not hear
        self.yielded_since = 0.0            # monotonic
        self.holding_since = 0.0            # monotonic start of the current takeover
        self._last_reannounce = float("-inf")
        self._was_isolated = False
        self._links_back_at = float("-inf")       # monotonic time isolation last ended
        self._isolated_since = 0.0
        self._last_orphan_check = float("-inf")
        self._public_wake_for = float("nan")      # the loss (its start) a wake-up was armed for
        self._settle_wake_for = float("nan")      # the end of settling a wake-up was armed for
        self.local = LocalView(generation=generation.value)
        # Whether a starting head may take over yet: it first adopts the peer's newer
        # cluster-wide settings (fcaps/configuration/sync.py ClusterSync.ready).
        self.config_ready = config_ready
        self._held: dict[int, Alias] = {}   # by row index: what this head has configured
        self._garp_tasks: set[asyncio.Task[None]] = set()
        self.state.heads[(self.index,)].status = S.STARTING

    @property
    def status(self) -> HeadStatus:
        return self.local.status

    # -- the job -------------------------------------------------------------------------

    def interval(self) -> float:
        """Every change the decision depends on wakes the machine (the heartbeat monitor, the
        alias guard, the pollers, the service monitor, the operator, a configuration
        change), and the waits that end by time arm a wake of their own; the period only
        catches the rest of the passage of time (the start-up wait, the failback delay)
        and is the daemon's sign of life to its heartbeat process. At fast heartbeats it
        need not follow them: each cycle costs the daemon and wakes the heartbeat process."""
        return max(self.config().timing.heartbeat_interval_ms / 1000.0, PERIOD_FLOOR_S)

    async def run_cycle(self) -> str:
        cfg = self.config()
        now = self.clock.monotonic()
        view = self.state.peer
        peer = self._peer(view, now)
        if view is not None and view.heard:
            self.contact_generation = self.generation.value
        self._handover_done(view, now, cfg)
        me = self._me(cfg, now, peer)
        decision = decide(me, peer)
        if self.status == S.STARTING and decision.action is Action.TAKE_OVER and not self.config_ready():
            decision = Decision(Action.WAIT, "starting: taking the peer's newer cluster-wide settings first",
                                decision.flags)
        self._advertise(flags=decision.flags)
        self._split_brain(peer, me.conflict)   # detected before acting: the loser reports it too
        await self._act(decision, peer)
        if self.status == S.ACTIVE:
            await self._reconcile(cfg)
        now = self.clock.monotonic()
        self._split_brain(self._peer(self.state.peer, now),
                          self._claimed_by(self._held_addresses(), cfg, now, self.holding_since))
        self._cluster_status(self.state.peer)
        return decision.reason

    def _peer(self, view: PeerView | None, now: float) -> Peer | None:
        if view is None:
            return None
        return Peer(name=view.name, alive=view.heard, status=view.status, flags=Flag(view.flags),
                    alive_for_ms=int((now - view.heard_since) * 1000) if view.heard else 0,
                    preferred_primary=view.preferred_primary, generation=view.generation,
                    ever_heard=view.ever_heard, public_only=view.public_only,
                    public_reached=view.public[1] if view.public is not None else None)

    def _me(self, cfg: Config, now: float, peer: Peer | None) -> Me:
        links = self.state.links
        if self._was_isolated and not links.isolated:
            self._links_back_at = now
        if links.isolated and not self._was_isolated:
            self._isolated_since = now
            settle = ISOLATION_SETTLE_MS / 1000.0
            self.clock.call_later(settle + 0.001, self.wake)  # decide again then
        self._was_isolated = links.isolated
        reach = self.state.public_reach
        public_settle_ms = cfg.failover.public_probe_interval_ms + cfg.timing.heartbeat_interval_ms
        if reach.lost and reach.lost_since != self._public_wake_for:
            # Decide again the moment the wait for the peer's word is over.
            self._public_wake_for = reach.lost_since
            self.clock.call_at(reach.lost_since + public_settle_ms / 1000.0 + 0.001, self.wake)
        hb = self.state.hb_process
        # Links back: a dead time. A new heartbeat process: the start-up wait, as a head
        # that starts (its first contact takes a round trip, which under load at fast
        # timings outlasts a dead time), or until it has heard the peer.
        settled_at = self._links_back_at + cfg.timing.heartbeat_dead_time_ms / 1000.0
        if self.state.peer is None or not self.state.peer.ever_heard:
            settled_at = max(settled_at, hb.restarted_at
                             + max(cfg.timing.heartbeat_dead_time_ms, cfg.timing.initdead_ms) / 1000.0)
        settling = now < settled_at
        if settling and settled_at != self._settle_wake_for:
            # A silent peer counts as dead from then on: decide again at that moment.
            self._settle_wake_for = settled_at
            self.clock.call_at(settled_at + 0.001, self.wake)
        public_down = any(links.up(a.interface) is False for a in cfg.active_aliases())
        public_path = cfg.public_heartbeat_path() is not None and links.up(links.public) is not False
        return Me(name=self.me, preferred_primary=self.preferred, status=self.status,
                  started_for_ms=int((now - self.started) * 1000), initdead_ms=cfg.timing.initdead_ms,
                  auto_failback=cfg.timing.auto_failback, failback_delay_ms=cfg.timing.failback_delay_s * 1000,
                  switchover_requested=self.switchover_requested, quorum_ok=self.state.quorum.ok,
                  generation=self.generation.value, contact_generation=self.contact_generation,
                  isolated=links.isolated,
                  isolated_for_ms=int((now - self._isolated_since) * 1000) if links.isolated else 0,
                  settling=settling, fenced=self.state.hb_fenced, deaf=hb.silent,
                  public_down=public_down,
                  public_path=public_path,
                  service_unfit=self.state.service_unfit,
                  peer_lans_down=self.state.peer_lans_down,
                  public_lost=reach.lost, public_reached=reach.reached,
                  public_lost_for_ms=int((now - reach.lost_since) * 1000),
                  public_settle_ms=public_settle_ms,
                  handing_over=bool(self.handing_over_since),
                  conflict=self._claimed_by(self._held_addresses(), cfg, now, self.holding_since),
                  # Defending against a head we still hear as standby waits two intervals:
                  # if it took over, its heartbeats (or their silence) say so first.
                  stray=self._claimed_by(self._held_addresses(), cfg, now, self.holding_since,
                                         older_than=2 * cfg.timing.heartbeat_interval_ms / 1000.0),
                  yielded=self._claimed_by(self.yielded, cfg, now, self.yielded_since))

    def _held_addresses(self) -> set[str]:
        return set(self.local.aliases) if self.status == S.ACTIVE else set()

    def _claimed_by(self, addresses: set[str], cfg: Config, now: float, since: float,
                    older_than: float = 0.0) -> str:
        """The MAC of another head that announced one of `addresses` after `since` and
        recently ("" = none), in a claim that began at least `older_than` ago.
        Announcements from before `since` (a peer that held the alias until it died, say)
        are no claim on what this head did after."""
        window = claim_window(cfg)
        for address in sorted(addresses):
            claim = self.state.alias_claims.get(address)
            if (claim is not None and claim.last > since and now - claim.last <= window
                    and now - claim.first >= older_than):
                return claim.mac
        return ""

    def _handover_done(self, view: PeerView | None, now: float, cfg: Config) -> None:
        """Stop saying HANDOVER once the peer took over, fell silent, or let a dead time pass."""
        if not self.handing_over_since:
            return
        dead = cfg.timing.heartbeat_dead_time_ms / 1000.0
        if (view is None or not view.heard or view.status in (S.TAKING_OVER, S.ACTIVE)
                or now - self.handing_over_since > dead):
            self.handing_over_since = 0.0

    async def _act(self, decision: Decision, peer: Peer | None) -> None:
        if decision.action == Action.TAKE_OVER:
            await self._take_over(decision.reason, peer)
        elif decision.action == Action.RELEASE:
            if decision.flags & Flag.HANDOVER:
                self.handing_over_since = self.clock.monotonic()
            elif peer is not None and not peer.alive:
                self.yielded = set(self.local.aliases)   # gave way to a head we cannot hear
                # The claim that made us yield counts: it came after our takeover began.
                self.yielded_since = self.holding_since
            await self._release(decision.reason)
        elif decision.action == Action.BECOME_STANDBY:
            await self._drop_orphans()
            self._transition(S.STANDBY, decision.reason)
        elif decision.action == Action.REANNOUNCE:
            # At most once a second: the decision repeats every cycle while it holds.
            now = self.clock.monotonic()
            if now - self._last_reannounce >= REANNOUNCE_MIN_S:
                self._last_reannounce = now
                self._announce_aliases()
        elif self.status == S.STANDBY:
            await self._stray_aliases()

    # -- transitions -------------------------------------------------------------------

    def _advertise(self, **changes: object) -> None:
        reach = self.state.public_reach
        fields = {"status": self.local.status, "flags": self.local.flags,
                  "generation": self.generation.value, "aliases": self.local.aliases,
                  "public": (reach.watched, reach.reached, reach.mask)}
        fields.update(changes)
        self.local = LocalView(**fields)  # type: ignore[arg-type]
        self.advertiser.advertise(self.local)

    def _transition(self, new: HeadStatus, reason: str) -> None:
        old = self.status
        assert new in ALLOWED[old], f"role transition {old.name} -> {new.name} is not allowed"
        head = self.state.heads[(self.index,)]
        head.status = new
        head.role_changes += 1
        if new == S.ACTIVE:
            self.state.cluster.active_head = self.me
        elif old == S.ACTIVE or (new == S.STANDBY and self.state.cluster.active_head == self.me):
            self.state.cluster.active_head = ""
        if new in (S.ACTIVE, S.STANDBY):
            self.switchover_requested = False
        if new == S.TAKING_OVER:
            self.yielded = set()
            self.holding_since = self.clock.monotonic()
        self._advertise(status=new)       # the peer hears of it at once
        self.bus.publish(Event(EventType.ROLE_CHANGED, self.me, Severity.INFO,
                               f"{self.me}: {old.name.lower()} -> {new.name.lower()} ({reason})",
                               self.clock.time(), {"head_index": self.index, "reason": reason}))

    async def _take_over(self, reason: str, peer: Peer | None) -> None:
        cfg = self.config()
        view = self.state.peer
        # A failover is a takeover from a peer that was alive and died; taking over at
        # start-up from a peer never heard is not one.
        detected = view.silent_since if view is not None and not view.heard and view.ever_heard else 0.0
        failover = bool(detected)
        handover = peer is not None and peer.alive and bool(peer.flags & Flag.HANDOVER)
        begin = detected or self.clock.monotonic()
        # Above every generation seen, so that "who took over last" is known after a
        # partition; advertised from the first heartbeat of the takeover on.
        generation = max(self.generation.value, view.generation if view else 0) + 1
        self.generation.value = generation
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
        self._background(self.generation.save(generation))
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
            self.state.quorum.record(result.ok, self.clock.time())
            if not result.ok:
                return "quorum check failed"
        return None

    async def _release(self, reason: str) -> None:
        self._transition(S.RELEASING, reason)
        await self._services("stop", self.config())
        configured = {a.index: a for a in self._alias_list(self.config())}
        for alias in {**configured, **self._held}.values():
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
                            alias.address, self.state.peer.name if self.state.peer else "the peer")
                await self.aliases.remove(alias)
            self._alias_row(alias, AliasStatus.RELEASED, "")

    async def _stray_aliases(self) -> None:
        """A standby holds no alias. One that appears anyway (added by hand, or by a
        script) would answer for the address beside the active head: remove it, and say
        so with an aliasConflict alarm raised and cleared. Looked for once a second."""
        now = self.clock.monotonic()
        if now - self._last_orphan_check < STRAY_CHECK_S:
            return
        self._last_orphan_check = now
        for alias in self._alias_list(self.config()):
            if not await self.aliases.present(alias):
                continue
            text = (f"alias {alias.address} was configured on {self.me}, which is standby; removed "
                    f"(it would answer beside the active head)")
            log.warning("%s", text)
            self.alarms.raise_alarm(ProbableCause.ALIAS_CONFLICT, f"{self.me}/{alias.address}",
                                    Severity.MAJOR, AlarmType.PROCESSING_ERROR, text)
            await self.aliases.remove(alias)
            self.alarms.clear(ProbableCause.ALIAS_CONFLICT, f"{self.me}/{alias.address}", text)

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
        if status == AliasStatus.HELD:
            self._held[alias.index] = alias
        else:
            self._held.pop(alias.index, None)
        self._advertise(aliases=tuple(self._held[i].address for i in sorted(self._held)))

    async def _reconcile(self, cfg: Config) -> None:
        """An active head holds exactly the active aliases of the configuration: a row
        added, changed or removed (SNMP SET or reload) is applied at once."""
        wanted = {a.index: a for a in self._alias_list(cfg)}
        for index, alias in list(self._held.items()):
            if wanted.get(index) != alias:
                try:
                    await self.aliases.remove(alias)
                except OSError as exc:
                    log.error("could not remove alias %s: %s", alias.address, exc)
                    continue
                self._alias_row(alias, AliasStatus.RELEASED, "")
                log.info("alias %s removed: the configuration no longer has it", alias.address)
        for index, alias in wanted.items():
            if index not in self._held:
                try:
                    await self.aliases.add(alias)
                except OSError as exc:
                    log.error("could not add alias %s: %s", alias.address, exc)
                    continue
                self._alias_row(alias, AliasStatus.HELD, self.me)
                sent = await self.aliases.announce(alias, cfg.timing.garp_count)
                row = self.state.aliases.get((alias.index,))
                if row is not None:
                    row.garp_sent += sent
                log.info("alias %s added: the configuration has it now", alias.address)

    async def _garp_burst(self, delay: float = 0.0) -> None:
        """One burst of garp_count announcements for every alias this head holds."""
        if delay:
            await self.clock.sleep(delay)
        if self.status not in (S.TAKING_OVER, S.ACTIVE):
            return  # released meanwhile: announcing now would steal the traffic back
        cfg = self.config()
        for alias in list(self._held.values()):
            sent = await self.aliases.announce(alias, cfg.timing.garp_count)
            row = self.state.aliases.get((alias.index,))
            if row is not None:
                row.garp_sent += sent

    def _announce_aliases(self, now: bool = True) -> None:
        """Announce in the background: a burst now (unless already sent), another after
        garp_repeat_ms, for switches and clients that missed or ignored the first."""
        delays = [self.config().timing.garp_repeat_ms / 1000.0]
        if now:
            delays.insert(0, 0.0)
        for delay in delays:
            self._background(self._garp_burst(delay))

    def _background(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._garp_tasks.add(task)
        task.add_done_callback(self._garp_tasks.discard)

    async def shutdown(self) -> None:
        """The daemon stops: an active head releases (and says HANDOVER), so that the peer
        takes over at once instead of sharing the address with a head nobody manages."""
        if self.status == S.ACTIVE:
            self._advertise(flags=self.local.flags | Flag.HANDOVER)
            self.handing_over_since = self.clock.monotonic()
            await self._release("the daemon is stopping")

    async def stop(self) -> None:
        """Cancel background announcements quietly (shutdown)."""
        tasks = list(self._garp_tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass

    # -- bookkeeping -----------------------------------------------------------------------

    def _record_failover(self, duration_ms: int, reason: str) -> None:
        c = self.state.cluster
        c.failover_count += 1
        c.last_failover_time = self.clock.time()
        c.last_failover_duration_ms = duration_ms
        c.last_failover_reason = reason[:255]
        self.bus.publish(Event(EventType.FAILOVER_COMPLETED, self.me, Severity.WARNING,
                               f"failover to {self.me} completed in {duration_ms} ms: {reason}",
                               c.last_failover_time, {"head_index": self.index, "reason": reason,
                                                      "duration_ms": duration_ms}))

    def _split_brain(self, peer: Peer | None, claimed_by: str) -> None:
        """Both heads active, as the heartbeats tell; or, with the peer not heard, an alias
        of ours announced from another MAC (`claimed_by`) on the public LAN."""
        both = (peer is not None and peer.alive and self.status == S.ACTIVE
                and peer.status in (S.ACTIVE, S.TAKING_OVER))
        blind = bool(claimed_by) and self.status == S.ACTIVE and not both
        if (both or blind) and not self.split_brain:
            self.split_brain = True
            other = peer.name if peer is not None else "the peer"
            text = (f"split brain: {self.me} and {other} both active" if both else
                    f"split brain: an alias held by {self.me} is also announced by {claimed_by} "
                    f"on the public LAN ({other} not heard)")
            self.bus.publish(Event(EventType.SPLIT_BRAIN_DETECTED, self.me, Severity.CRITICAL, text,
                                   self.clock.time(), {"reason": text}))
            self.alarms.raise_alarm(ProbableCause.SPLIT_BRAIN, "cluster", Severity.CRITICAL,
                                    AlarmType.PROCESSING_ERROR, text)
        elif self.split_brain and not both and not blind and (
                self.status == S.ACTIVE or self.yielded
                or (peer is not None and peer.alive and peer.status == S.ACTIVE)):
            # Resolved: exactly one head is active again.
            self.split_brain = False
            winner = self.me if self.status == S.ACTIVE else (peer.name if peer else "the peer")
            self.bus.publish(Event(EventType.SPLIT_BRAIN_RESOLVED, self.me, Severity.INFO,
                                   f"split brain resolved: {winner} keeps the alias",
                                   self.clock.time()))
            self.alarms.clear(ProbableCause.SPLIT_BRAIN, "cluster")
            if self.status == S.ACTIVE:
                self._announce_aliases()  # the winner re-announces: clients may hold the loser's MAC

    def _cluster_status(self, view: PeerView | None) -> None:
        c = self.state.cluster
        peer_active = view is not None and view.heard and view.status == S.ACTIVE
        if self.split_brain:
            c.status = ClusterStatus.SPLIT_BRAIN
        elif self.status == S.TAKING_OVER:
            c.status = ClusterStatus.FAILING_OVER
        elif self.status != S.ACTIVE and not peer_active:
            c.status = ClusterStatus.FAILED if self.status != S.STARTING else ClusterStatus.UNKNOWN
        elif view is None:
            c.status = ClusterStatus.NORMAL
        elif not view.heard or len(view.paths_up) < len(self.state.hb_paths) or self.state.links.isolated:
            c.status = ClusterStatus.DEGRADED
        else:
            c.status = ClusterStatus.NORMAL
        if peer_active and view is not None:
            c.active_head = view.name

    def on_event(self, event: Event) -> None:
        """Event-bus subscriber: resetCounters zeroes the failover count (ours to write)."""
        if is_counter_reset(event):
            self.state.cluster.failover_count = 0

    # -- operator actions --------------------------------------------------------------

    def request(self, action: ControlAction, principal: str) -> tuple[bool, str]:
        """haoscarControlAction switchover/failback: record, and say what will happen.
        The caller wakes the role job."""
        view = self.state.peer
        if view is None:
            return False, "no peer head: nothing to switch over to"
        if not view.heard:
            return False, f"peer {view.name} is not alive"
        if action == ControlAction.FAILBACK:
            on_primary = (self.status == S.ACTIVE) == self.preferred
            if on_primary:
                return False, "the preferred primary is already active"
        if self.status not in (S.ACTIVE, S.STANDBY):
            return False, f"{self.me} is {self.status.name.lower()}; try again shortly"
        if self.status == S.STANDBY and self.state.service_unfit:
            return False, f"{self.me} cannot become active: {self.state.service_unfit} (reset the service first)"
        if self.status == S.ACTIVE and view.flags & Flag.SERVICE_FAILED:
            return False, f"{view.name} cannot become active: a service failed there (reset it there first)"
        if self.status == S.ACTIVE and self.state.peer_lans_down:
            return False, f"{view.name} cannot become active: {self.state.peer_lans_down}"
        if self.status == S.STANDBY and self.state.public_reach.lost:
            return False, f"{self.me} cannot become active: {self.state.public_reach.lost}"
        if self.status == S.ACTIVE and view.flags & Flag.PUBLIC_LOST:
            return False, f"{view.name} cannot become active: it reaches none of its public targets"
        self.switchover_requested = True
        target = view.name if self.status == S.ACTIVE else self.me
        return True, f"{action.name.lower()} to {target} requested by {principal}"
