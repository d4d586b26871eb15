"""Who should be active: the pure decision behind the role state machine.

`decide()` looks at this head (`Me`) and at what the heartbeats say about the peer
(`Peer`), and answers one of: wait, become standby, take over, release, or re-announce.
It has no side effects and reads no clock, so every rule below is unit-tested directly.

Fitness. A head may hold the alias only if it can be told apart from a dead one:
* *isolated*: no carrier on either private heartbeat link. Its peer may be alive and
  unable to hear it, so an isolated head does not take over, and an active one hands
  over, unless the public LAN arbitrates: a peer heard there and isolated too means
  both are cut off alike (the active one keeps the alias); a peer silent there while
  this head's public link is up is as dead as this head can tell (it keeps or takes).
* *public down*: no carrier on an interface that carries an alias. Clients cannot reach
  such a head; it hands over to a peer whose public links are up.
* *public lost*: the head reaches none of its public targets (fault/role/publicreach.py),
  though its links are up. An active head hands over to a standby that reaches one; if
  neither reaches any, nothing moves. Such a head is not made active by failback or
  switchover, and loses a standby tie.
* *quorum*: a configured quorum command failed; the head does not take over.
* *service failed*: a service's recovery ladder gave up on this head (restarts did not
  help). Such a head hands the active role to a peer that can serve, is not made active
  by failback or switchover, and loses a standby tie; but it still takes over from a
  dead peer (a cluster with one failed service beats a cluster with none).
A head whose private links just came back waits a dead time, and one whose heartbeat
process was just replaced waits the start-up wait, before it believes that a silent peer
is dead: the silence it heard while cut off (or deaf) says nothing about the peer.
Each head advertises its own fitness in its flags (ISOLATED, PUBLIC_DOWN, QUORUM_OK,
SERVICE_FAILED), so
both heads judge each other by the same facts.

Rules, in order:
* A single-head cluster is active as soon as it starts.
* STARTING (the seed's initdead): follow an active peer; otherwise the preferred primary
  takes over when it hears a peer that is not active, and anybody takes over once the
  start-up wait has passed without hearing a peer. A rebooting head never steals the
  alias from a healthy peer.
* STANDBY: take over when the peer is silent on every path (unless a live head keeps
  announcing an alias this head yielded), when it has released and hands over, or when
  both heads are standby and this one wins the tie (or the winner is unfit). While the
  peer is active, ask for the active role (WANTS_ACTIVE) for auto-failback once its
  delay has passed, or for an operator switchover. (An unfit active peer hands over by
  itself; asking because of its flags could act on flags that are already out of date.)
* ACTIVE: a head whose heartbeat process fell silent (the daemon hung) releases, and so
  does a head whose daemon hears nothing from its heartbeat process (deaf); an
  isolated head hands over (see above). If the peer is active as well (split
  brain, e.g. after a partition healed), one keeps the alias by `keeps()`. An alias of
  ours announced by another live head while the peer is not heard (a duplicate address
  on the public LAN) is settled by the same rule, from what each head knew at the last
  contact. A standby peer that asks (failback, switchover) or is fitter gets the alias.

Who keeps the alias when both hold it (`keeps()`): with auto-failback on and no failback
delay, the preferred primary, as the failback policy would do at once anyway. Otherwise
the head that took over last keeps it: each takeover raises the head's *generation*
above every generation it has seen, and heartbeats carry it. A tie (both took over
without hearing each other) goes to the preferred primary, then to the smaller name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from haoscar_snmp.core.state import HeadStatus

from fcaps.fault.heartbeat.proto import Flag

S = HeadStatus
# An isolated active head waits this long before handing over to a peer heard on the
# public LAN: long enough for the peer's own word (isolated too?) to arrive.
ISOLATION_SETTLE_MS = 100


class Action(enum.Enum):
    WAIT = "wait"
    BECOME_STANDBY = "become standby"   # STARTING -> STANDBY (also drops orphaned aliases)
    TAKE_OVER = "take over"
    RELEASE = "release"
    REANNOUNCE = "re-announce"          # keeps the alias in a split brain: gratuitous ARP again


@dataclass(frozen=True)
class Me:
    name: str
    preferred_primary: bool
    status: HeadStatus
    started_for_ms: int            # time since this daemon started
    initdead_ms: int
    auto_failback: bool
    failback_delay_ms: int
    switchover_requested: bool     # operator asked (on this head) to move the active role
    quorum_ok: bool = True
    generation: int = 0            # this head's takeover generation
    contact_generation: int = 0    # this head's generation when the peer was last heard
    isolated: bool = False         # no carrier on either private heartbeat link
    isolated_for_ms: int = 0       # for how long
    settling: bool = False         # its private links came back less than a dead time ago, or
                                   # a new heartbeat process started less than the start-up
                                   # wait ago and has not heard the peer yet
    fenced: bool = False           # its heartbeat process fell silent and removed its aliases
    deaf: str = ""                 # its own heartbeat process does not report (why): it cannot
                                   # hear the peer, whatever the last report said
    public_down: bool = False      # no carrier on an interface that carries an alias
    public_path: bool = False      # the public LAN arbitrates and this head's link to it is up
    handing_over: bool = False     # this head released for the peer, which has not taken over yet
    conflict: str = ""             # an alias we hold is announced by another live head (its MAC)
    stray: str = ""                # the same, for two heartbeat intervals at least
    yielded: str = ""              # a live head keeps announcing an alias we yielded (its MAC)
    service_unfit: str = ""        # a service failed on this head beyond its restarts (why)
    peer_lans_down: str = ""       # this head's LAN poller finds the peer's private interfaces
                                   # all down and its own up (why; only when the rule is on)
    public_lost: str = ""          # this head reaches none of its public targets, or reaches one
                                   # again since less than the hold-down (why)
    public_reached: int = 0        # targets it reaches now
    public_lost_for_ms: int = 0    # for how long
    public_settle_ms: int = 0      # how long the peer's word may lag behind (see _active)


@dataclass(frozen=True)
class Peer:
    name: str
    alive: bool                    # heard on some path within the dead time
    status: HeadStatus             # as last heard (kept once it falls silent)
    flags: Flag
    alive_for_ms: int              # how long it has been heard continuously
    preferred_primary: bool
    generation: int = 0            # as last heard
    ever_heard: bool = True
    public_only: bool = False      # heard on the public LAN only
    public_reached: int | None = None   # public targets it reaches, as it advertises (None: it does not)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    flags: Flag = Flag(0)          # what this head advertises in its heartbeats


def wins_tie(me: Me, peer: Peer) -> bool:
    """The deterministic winner when nothing else tells the heads apart."""
    if me.preferred_primary != peer.preferred_primary:
        return me.preferred_primary
    return me.name < peer.name


def keeps(me: Me, peer: Peer, peer_generation: int) -> bool:
    """Whether this head keeps the alias when both heads hold it (see the module text)."""
    if me.auto_failback and me.failback_delay_ms == 0:
        return wins_tie(me, peer)
    if me.generation != peer_generation:
        return me.generation > peer_generation
    return wins_tie(me, peer)


def blind_peer_generation(me: Me, peer: Peer) -> int:
    """The peer's generation as this head can infer it without hearing it: unchanged if
    it was active at the last contact, else one above what both knew then (it took over
    since). Both heads infer each other's the same way, so they agree on `keeps()`."""
    if peer.status in (S.ACTIVE, S.TAKING_OVER):
        return peer.generation
    return max(peer.generation, me.contact_generation) + 1


def peer_fit(peer: Peer) -> bool:
    """The peer's own word (flags) that it could hold the alias."""
    return bool(peer.flags & Flag.QUORUM_OK) and not peer.flags & (Flag.ISOLATED | Flag.PUBLIC_DOWN
                                                                    | Flag.PUBLIC_LOST)


def serves(peer: Peer) -> bool:
    """The peer's own word that none of its services has failed beyond its restarts."""
    return not peer.flags & Flag.SERVICE_FAILED


def _unfit(me: Me, peer: Peer | None) -> str:
    """Why this head must not take over now ("" = it may)."""
    if me.fenced:
        return "its heartbeats are silent (the daemon did not answer its heartbeat process)"
    if me.deaf:
        return me.deaf
    if me.isolated and not (peer is not None and not peer.alive and me.public_path):
        return "it is isolated (no carrier on either private heartbeat link)"
    if me.settling and peer is not None and not peer.alive:
        # Silence heard while this head was cut off says nothing about the peer.
        return ("its private links came back less than a dead time ago, or its heartbeat process was "
                "replaced less than the start-up wait ago")
    if not me.quorum_ok:
        return "the quorum check fails"
    return ""


def _flags(me: Me) -> Flag:
    flags = Flag(0)
    if me.preferred_primary:
        flags |= Flag.PREFERRED_PRIMARY
    if me.quorum_ok:
        flags |= Flag.QUORUM_OK
    if me.isolated:
        flags |= Flag.ISOLATED
    if me.public_down:
        flags |= Flag.PUBLIC_DOWN
    if me.handing_over:
        flags |= Flag.HANDOVER
    if me.service_unfit:
        flags |= Flag.SERVICE_FAILED
    if me.peer_lans_down:
        flags |= Flag.PEER_LANS_DOWN
    if me.public_lost:
        flags |= Flag.PUBLIC_LOST
    return flags


def decide(me: Me, peer: Peer | None) -> Decision:
    base = _flags(me)
    s = me.status
    if s in (S.TAKING_OVER, S.RELEASING):
        return Decision(Action.WAIT, f"{s.name.lower().replace('_', ' ')} in progress", base)
    if peer is None:
        if s != S.ACTIVE:
            return _take(me, None, base, "single-head cluster: no peer to wait for")
        return Decision(Action.WAIT, "active (single-head cluster)", base)
    if s == S.STARTING:
        return _starting(me, peer, base)
    if s == S.STANDBY:
        return _standby(me, peer, base)
    if s == S.ACTIVE:
        return _active(me, peer, base)
    return Decision(Action.WAIT, f"no rule for state {s.name}", base)


def _starting(me: Me, peer: Peer, base: Flag) -> Decision:
    if peer.alive and peer.status in (S.ACTIVE, S.TAKING_OVER):
        return Decision(Action.BECOME_STANDBY, f"peer {peer.name} is active", base)
    if peer.alive and me.service_unfit and peer_fit(peer) and serves(peer):
        return Decision(Action.BECOME_STANDBY, f"{me.service_unfit}; peer {peer.name} can serve", base)
    if peer.alive and me.public_lost and peer_fit(peer) and (peer.public_reached or 0) > 0:
        return Decision(Action.BECOME_STANDBY, f"{me.public_lost}; peer {peer.name} reaches the public LAN", base)
    if peer.alive and me.preferred_primary:
        return _take(me, peer, base, f"preferred primary; peer {peer.name} is {peer.status.name.lower()}")
    if peer.alive and peer.status == S.STANDBY:
        return _take(me, peer, base, f"peer {peer.name} is standby and nobody is active")
    if peer.alive and not peer_fit(peer):
        return _take(me, peer, base, f"peer {peer.name} is starting too, but it is unfit "
                                     f"({_peer_unfit_text(peer)})")
    if peer.alive:  # peer starting too: the preferred primary moves first
        return Decision(Action.WAIT, f"peer {peer.name} is starting too; it is preferred", base)
    if me.started_for_ms >= me.initdead_ms:
        return _take(me, peer, base, f"no heartbeat from {peer.name} during the start-up wait "
                                     f"of {me.initdead_ms} ms")
    return Decision(Action.WAIT, f"start-up wait: {me.started_for_ms}/{me.initdead_ms} ms, "
                                 f"peer {peer.name} not heard yet", base)


def _standby(me: Me, peer: Peer, base: Flag) -> Decision:
    if not peer.alive:
        if me.yielded:
            return Decision(Action.WAIT, f"peer {peer.name} not heard, but a live head at {me.yielded} "
                                         f"keeps announcing the alias this head yielded", base)
        return _take(me, peer, base, f"peer {peer.name} is dead: no heartbeat on any path")
    if me.handing_over:
        return Decision(Action.WAIT, f"handing over to {peer.name}", base)
    if peer.status == S.STANDBY and peer.flags & Flag.HANDOVER:
        return _take(me, peer, base, f"peer {peer.name} released the alias and hands over")
    if peer.status == S.STANDBY:
        if not peer_fit(peer):
            return _take(me, peer, base, f"both heads standby; {peer.name} is unfit")
        if me.public_lost:
            return Decision(Action.WAIT, f"both heads standby; {me.public_lost}, {peer.name} does not", base)
        if bool(me.service_unfit) != (not serves(peer)):
            if me.service_unfit:
                return Decision(Action.WAIT, f"both heads standby; {me.service_unfit}, "
                                             f"{peer.name} can serve", base)
            return _take(me, peer, base, f"both heads standby; a service failed on {peer.name}")
        if wins_tie(me, peer):
            return _take(me, peer, base, "both heads standby; this head is preferred")
        return Decision(Action.WAIT, f"both heads standby; {peer.name} is preferred", base)
    if peer.status == S.ACTIVE and me.service_unfit:
        return Decision(Action.WAIT, f"standby; {me.service_unfit}: not asking to become active", base)
    if peer.status == S.ACTIVE and me.public_lost:
        return Decision(Action.WAIT, f"standby; {me.public_lost}: not asking to become active", base)
    if peer.status == S.ACTIVE and not _unfit(me, peer) and not me.public_down:
        why = ""
        if me.switchover_requested:
            why = "operator switchover"
        elif me.preferred_primary and me.auto_failback and peer.alive_for_ms >= me.failback_delay_ms:
            why = "auto-failback"
        if why:
            return Decision(Action.WAIT, f"standby; asking {peer.name} to hand over ({why})",
                            base | Flag.WANTS_ACTIVE)
    return Decision(Action.WAIT, f"standby; peer {peer.name} is {peer.status.name.lower()}", base)


def _active(me: Me, peer: Peer, base: Flag) -> Decision:
    if me.fenced:
        return Decision(Action.RELEASE, "the daemon did not answer its heartbeat process in time: "
                                        "heartbeats stopped and the aliases were removed", base)
    if me.deaf:
        # The peer may hear nothing from this head and take over at its dead time: let go
        # first. HANDOVER, for a process that is only late: the peer then takes over at once.
        return Decision(Action.RELEASE, f"{me.deaf}: this head cannot hear {peer.name}",
                        base | Flag.HANDOVER)
    if me.isolated:
        if peer.alive and peer.flags & Flag.ISOLATED:
            return Decision(Action.WAIT, f"active; both heads isolated, {peer.name} heard on the "
                                         f"public LAN: keeping the alias", base)
        if peer.alive and me.isolated_for_ms < ISOLATION_SETTLE_MS:
            # Both switches may have died at once: wait until the peer has had time to
            # say whether it is isolated too, rather than move the service for nothing.
            return Decision(Action.WAIT, f"isolated for {me.isolated_for_ms} ms; waiting to hear "
                                         f"whether {peer.name} is isolated too", base)
        if peer.alive:
            return Decision(Action.RELEASE, f"isolated: no carrier on either private heartbeat link; "
                                            f"handing over to {peer.name} (heard on the public LAN)",
                            base | Flag.HANDOVER)
        if me.public_path:
            return Decision(Action.WAIT, f"isolated, but {peer.name} is silent on the public LAN "
                                         f"too: keeping the alias", base)
        return Decision(Action.RELEASE, "isolated: no carrier on either private heartbeat link, "
                                        f"and {peer.name} may be alive", base)
    if not peer.alive:
        if me.conflict:
            if keeps(me, peer, blind_peer_generation(me, peer) if peer.ever_heard else me.generation):
                return Decision(Action.REANNOUNCE, f"alias also announced by {me.conflict} "
                                                   f"({peer.name} not heard): {me.name} keeps it", base)
            return Decision(Action.RELEASE, f"alias also announced by {me.conflict} "
                                            f"({peer.name} not heard): {peer.name} keeps it", base)
        return Decision(Action.WAIT, f"active; peer {peer.name} is dead", base)
    if peer.status in (S.ACTIVE, S.TAKING_OVER):
        if keeps(me, peer, peer.generation):
            return Decision(Action.REANNOUNCE, f"split brain with {peer.name}: {me.name} keeps the alias", base)
        return Decision(Action.RELEASE, f"split brain with {peer.name}: {peer.name} keeps the alias",
                        base | Flag.HANDOVER)
    if peer.status == S.STANDBY and peer_fit(peer):
        if me.public_down:
            return Decision(Action.RELEASE, f"no carrier on an alias interface; handing over to {peer.name}",
                            base | Flag.HANDOVER)
        if me.service_unfit and serves(peer):
            return Decision(Action.RELEASE, f"{me.service_unfit}; handing over to {peer.name}",
                            base | Flag.HANDOVER)
        if me.public_lost and not me.public_reached and (peer.public_reached or 0) > 0 and serves(peer):
            if me.public_lost_for_ms < me.public_settle_ms:
                # The targets may have gone for both heads at once (the gateway died):
                # the peer's verdict comes up to a probe interval later, and a heartbeat
                # after that. Moving the service before it would move it for nothing.
                return Decision(Action.WAIT, f"{me.public_lost}; waiting {me.public_settle_ms} ms "
                                             f"to hear whether {peer.name} still reaches them", base)
            return Decision(Action.RELEASE, f"{me.public_lost} while {peer.name} reaches "
                                            f"{peer.public_reached}: handing over", base | Flag.HANDOVER)
        if peer.flags & Flag.PEER_LANS_DOWN and serves(peer) and not me.peer_lans_down:
            # Each head finding the other's interfaces down is a split of the LANs, not a
            # failed head: nobody moves then.
            return Decision(Action.RELEASE, f"peer {peer.name} finds every private LAN interface of "
                                            f"{me.name} down and its own up; handing over", base | Flag.HANDOVER)
        if me.peer_lans_down:
            return Decision(Action.WAIT, f"active; not handing over to {peer.name}: {me.peer_lans_down}", base)
        if peer.flags & Flag.WANTS_ACTIVE and serves(peer):
            return Decision(Action.RELEASE, f"peer {peer.name} asks to become active", base | Flag.HANDOVER)
        if me.switchover_requested and serves(peer):
            return Decision(Action.RELEASE, "operator switchover", base | Flag.HANDOVER)
    if me.stray:
        # The peer is heard and, two intervals on, still does not hold the alias: whoever
        # else announces it is in the wrong (a stray address on the standby, another
        # host); defend the address. (Sooner, the announcement may be the peer's takeover
        # that its heartbeats have not reported yet.)
        return Decision(Action.REANNOUNCE, f"active; defending the alias against {me.stray} "
                                           f"({peer.name} is {peer.status.name.lower()})", base)
    if me.public_lost and not me.public_reached:
        # (A head back within its hold-down keeps the alias: the hold-down keeps the
        # service from moving back to a flapping head, not from staying on one.)
        why = (f"{peer.name} does not say what it reaches" if peer.public_reached is None
               else f"{peer.name} reaches none either" if peer.public_reached == 0 or peer.flags & Flag.PUBLIC_LOST
               else f"{peer.name} cannot take it now")
        return Decision(Action.WAIT, f"active; {me.public_lost}, but {why}: keeping the alias", base)
    return Decision(Action.WAIT, f"active; peer {peer.name} is {peer.status.name.lower()}", base)


def _peer_unfit_text(peer: Peer) -> str:
    if peer.flags & Flag.ISOLATED:
        return "isolated"
    if peer.flags & Flag.PUBLIC_DOWN:
        return "no carrier on an alias interface"
    if peer.flags & Flag.PUBLIC_LOST:
        return "it reaches none of its public targets"
    return "quorum check fails"


def _take(me: Me, peer: Peer | None, flags: Flag, reason: str) -> Decision:
    why_not = _unfit(me, peer)
    if why_not:
        return Decision(Action.WAIT, f"would take over ({reason}) but {why_not}", flags)
    return Decision(Action.TAKE_OVER, reason, flags)
