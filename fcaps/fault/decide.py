"""Who should be active: the pure decision behind the role state machine.

`decide()` looks at this head and at what the heartbeats say about the peer, and answers
one of: wait, take over, release, or (when active in a split brain it wins) re-announce.
It has no side effects and reads no clock, so every rule below is unit-tested directly.

Rules, in order:
* A single-head cluster is active as soon as it starts.
* STARTING (the seed's initdead): follow an active peer; otherwise the preferred primary
  takes over when it hears a peer that is not active, and anybody takes over once the
  start-up wait has passed without hearing a peer. This keeps a rebooting head from
  stealing the alias from a healthy peer.
* STANDBY: take over when the peer is dead (no valid heartbeat on any LAN for the dead
  time), when it hands over, or when both heads are standby and this one wins the tie.
  While the peer is active, the preferred primary asks for failback (WANTS_ACTIVE) once
  auto-failback's delay has passed; an operator switchover asks too.
* ACTIVE: if the peer is active as well (split brain, e.g. after both private LANs
  healed), the loser releases: the preferred primary wins, then the smaller name. If the
  standby peer asks to become active (failback or switchover), hand over.
* Taking over needs the quorum check to pass; with a dead peer, also the fence command.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from haoscar_snmp.core.state import HeadStatus

from .hbproto import Flag


class Action(enum.Enum):
    WAIT = "wait"
    BECOME_STANDBY = "become standby"   # STARTING -> STANDBY (also drops orphaned aliases)
    TAKE_OVER = "take over"
    RELEASE = "release"
    REANNOUNCE = "re-announce"          # split-brain winner: gratuitous ARP again


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


@dataclass(frozen=True)
class Peer:
    name: str
    alive: bool
    status: HeadStatus
    flags: Flag
    alive_for_ms: int              # how long it has been heard continuously
    preferred_primary: bool


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    flags: Flag = Flag(0)          # what this head advertises in its heartbeats


def wins_tie(me: Me, peer: Peer) -> bool:
    """The deterministic winner when both heads want (or both hold) the active role."""
    if me.preferred_primary != peer.preferred_primary:
        return me.preferred_primary
    return me.name < peer.name


def decide(me: Me, peer: Peer | None) -> Decision:
    base = Flag.PREFERRED_PRIMARY if me.preferred_primary else Flag(0)
    if me.quorum_ok:
        base |= Flag.QUORUM_OK
    s = me.status
    if s in (HeadStatus.TAKING_OVER, HeadStatus.RELEASING):
        return Decision(Action.WAIT, f"{s.name.lower().replace('_', ' ')} in progress", base)

    if peer is None:
        if s != HeadStatus.ACTIVE:
            return _take(me, base, "single-head cluster: no peer to wait for")
        return Decision(Action.WAIT, "active (single-head cluster)", base)

    if s == HeadStatus.STARTING:
        if peer.alive and peer.status in (HeadStatus.ACTIVE, HeadStatus.TAKING_OVER):
            return Decision(Action.BECOME_STANDBY, f"peer {peer.name} is active", base)
        if peer.alive and me.preferred_primary:
            return _take(me, base, f"preferred primary; peer {peer.name} is {peer.status.name.lower()}")
        if peer.alive and peer.status == HeadStatus.STANDBY:
            return _take(me, base, f"peer {peer.name} is standby and nobody is active")
        if peer.alive:  # peer starting too: the preferred primary moves first
            return Decision(Action.WAIT, f"peer {peer.name} is starting too; it is preferred", base)
        if me.started_for_ms >= me.initdead_ms:
            return _take(me, base, f"no heartbeat from {peer.name} during the start-up wait "
                                   f"of {me.initdead_ms} ms")
        return Decision(Action.WAIT, f"start-up wait: {me.started_for_ms}/{me.initdead_ms} ms, "
                                     f"peer {peer.name} not heard yet", base)

    if s == HeadStatus.STANDBY:
        if not peer.alive:
            return _take(me, base, f"peer {peer.name} is dead: no heartbeat on any LAN")
        if peer.flags & Flag.HANDOVER or peer.status == HeadStatus.RELEASING:
            return _take(me, base, f"peer {peer.name} hands over")
        if peer.status == HeadStatus.STANDBY and wins_tie(me, peer):
            return _take(me, base, f"both heads standby; {me.name} is preferred")
        wants = me.switchover_requested or (
            me.preferred_primary and me.auto_failback and peer.status == HeadStatus.ACTIVE
            and peer.alive_for_ms >= me.failback_delay_ms)
        if wants:
            why = "operator switchover" if me.switchover_requested else "auto-failback"
            return Decision(Action.WAIT, f"standby; asking {peer.name} to hand over ({why})",
                            base | Flag.WANTS_ACTIVE)
        return Decision(Action.WAIT, f"standby; peer {peer.name} is {peer.status.name.lower()}", base)

    if s == HeadStatus.ACTIVE:
        if not peer.alive:
            return Decision(Action.WAIT, f"active; peer {peer.name} is dead", base)
        if peer.status in (HeadStatus.ACTIVE, HeadStatus.TAKING_OVER):
            if wins_tie(me, peer):
                return Decision(Action.REANNOUNCE, f"split brain with {peer.name}: {me.name} wins", base)
            return Decision(Action.RELEASE, f"split brain with {peer.name}: {peer.name} wins",
                            base | Flag.HANDOVER)
        if peer.flags & Flag.WANTS_ACTIVE and peer.status == HeadStatus.STANDBY:
            return Decision(Action.RELEASE, f"peer {peer.name} asks to become active",
                            base | Flag.HANDOVER)
        if me.switchover_requested and peer.status == HeadStatus.STANDBY:
            return Decision(Action.RELEASE, "operator switchover", base | Flag.HANDOVER)
        return Decision(Action.WAIT, f"active; peer {peer.name} is {peer.status.name.lower()}", base)

    return Decision(Action.WAIT, f"no rule for state {s.name}", base)


def _take(me: Me, flags: Flag, reason: str) -> Decision:
    if not me.quorum_ok:
        return Decision(Action.WAIT, f"would take over ({reason}) but the quorum check fails", flags)
    return Decision(Action.TAKE_OVER, reason, flags)
