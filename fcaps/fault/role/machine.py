"""The role state machine: carries out what `decide()` says, one named transition at a time.

Sole writer of this head's status and role changes, of the cluster summary (active head,
failover count and timings, cluster state), of the alias table's runtime columns and of
the takeover generation, with its parts: the takeover and release effects and the
aliases held (fault/role/effects.py), split brain and the cluster summary
(fault/role/report.py); the advertiser and the generation file are in
fault/role/advertise.py. It reads only snapshots: the peer as the heartbeat last saw it
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
from typing import Callable

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import ControlAction, HeadStatus, PeerView, State

from fcaps.fault.alarms import Alarms
from .advertise import Advertiser, GenerationFile
from .decide import ISOLATION_SETTLE_MS, Action, Decision, Me, Peer, decide
from .effects import RoleEffects
from .report import RoleReport
from fcaps.fault.heartbeat.peer import LocalView
from fcaps.fault.heartbeat.proto import Flag
from fcaps.fault.takeover import Alias, AliasOps

S = HeadStatus
ALLOWED: dict[HeadStatus, set[HeadStatus]] = {
    S.STARTING: {S.STANDBY, S.TAKING_OVER},
    S.STANDBY: {S.TAKING_OVER},
    S.TAKING_OVER: {S.ACTIVE, S.STANDBY},
    S.ACTIVE: {S.RELEASING},
    S.RELEASING: {S.STANDBY},
}

PERIOD_FLOOR_S = 0.1        # the machine's period, at least (see RoleMachine.interval)
REANNOUNCE_MIN_S = 1.0      # re-announcing (split brain won, alias defended) at most this often


def claim_window(config: Config) -> float:
    """How long an alias announcement from another head counts as "it holds it now"."""
    announce = config.timing.alias_announce_ms / 1000.0
    return 3 * announce if announce else 3.0


class RoleMachine(RoleEffects, RoleReport):
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

    async def shutdown(self) -> None:
        """The daemon stops: an active head releases (and says HANDOVER), so that the peer
        takes over at once instead of sharing the address with a head nobody manages."""
        if self.status == S.ACTIVE:
            self._advertise(flags=self.local.flags | Flag.HANDOVER)
            self.handing_over_since = self.clock.monotonic()
            await self._release("the daemon is stopping")

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
