"""What this head can see of each accounted subject, read from the state (pure).

One look gives, per subject (kind, name), whether it is up, down or not known, and for
a subject found down, since when it may be taken to be down (a monotonic time) and why.
The ledger (`ledger.py`) turns changes into outages. Subjects:

* this head: up while the agent runs (its downtime is found at the next start);
* the peer head: down from its last heartbeat (declared silent minus the dead time)
  until it is heard again; not known before it was first heard, nor while this head's
  own heartbeat process is silent (then this head is deaf, not the peer dead);
* each heartbeat path and each watched LAN interface: as its row says (up, down,
  unknown); a path is not known while this head's heartbeat process is silent;
* each service (enabled and active rows): up while running, down while failed or
  recovering, not known otherwise (stopped on a standby, not checked yet);
* each alias (active rows): up while some head holds it, this head (its row says
  held by it) or the peer (heard, and advertising the address in its heartbeats). When
  no head holds it, the outage starts at the peer's last heartbeat if the peer held it
  and fell silent, else at the moment this head saw the address without a holder. It
  ends when a head holds it again: this head's takeover completed (its row says held,
  after the addresses, the first gratuitous ARP burst and the services' start), or the
  peer's heartbeat advertising it. A takeover by this head completes within
  milliseconds, often between two looks: an alias that the peer held and this head
  holds now had an outage from the peer's last heartbeat (it fell silent) or from
  this head's decision to take over (the peer released it: a switchover) until this
  head became active. Not known while this head is still starting. With the corosync
  backend the alias rows come from Pacemaker's placement, which names the holder: up
  while the row says held (by any node), down while released, unknown while the
  placement is;
* the cluster: down while some active alias has no holder; with no alias configured,
  while no head is active.
"""

from __future__ import annotations

from dataclasses import dataclass

from haoscar_snmp.core.state import (
    AcctKind,
    AliasStatus,
    HeadStatus,
    Lan,
    LinkStatus,
    RowStatus,
    ServiceStatus,
    State,
)

Key = tuple[AcctKind, str]
UNSETTLED = (HeadStatus.UNKNOWN, HeadStatus.STARTING)


@dataclass(frozen=True)
class Seen:
    up: bool | None                 # None: not known now
    since: float | None = None      # monotonic: when it went down (or came up), if earlier than now
    cause: str = ""
    # Up, after an outage that may have come and gone between two looks (a takeover
    # completes within milliseconds): when it began (monotonic).
    began: float | None = None


@dataclass(frozen=True)
class RoleTimes:
    """When this head last began a takeover and last became active (monotonic; None:
    not in this run), as the role changes were published."""

    taking_over: float | None = None
    active: float | None = None


UP = Seen(True)
UNKNOWN = Seen(None)


class Observer:
    """Reads the state; remembers which head last held each alias (to date an outage
    back to the peer's last heartbeat)."""

    def __init__(self, placed: bool = False) -> None:
        """`placed`: the alias rows are written from Pacemaker's placement (the corosync
        backend), which names the holder whichever node it is; an alias is then up while
        its row says held, by any node, and unknown while the placement is."""
        self._peer_held: dict[str, bool] = {}       # alias -> the peer held it when last seen held
        self._peer_active = False
        self._placed = placed

    def look(self, state: State, dead_time_s: float, role: RoleTimes = RoleTimes()) -> dict[Key, Seen]:
        me = state.cluster.local_head
        seen: dict[Key, Seen] = {(AcctKind.HEAD, me): Seen(True)}
        peer = state.peer
        deaf = bool(state.hb_process.silent)
        peer_known = peer is not None and not deaf and peer.ever_heard
        peer_gone = peer_known and peer is not None and not peer.heard
        last_heard = (peer.silent_since - dead_time_s) if peer_gone and peer and peer.silent_since else None
        if peer is not None:
            seen[(AcctKind.HEAD, peer.name)] = (
                Seen(None) if not peer_known else Seen(True) if peer.heard else
                Seen(False, last_heard, f"no heartbeat from {peer.name} on any path"))
        names = {key: row.name for key, row in state.heads.items()}
        for (head, lan), path in state.hb_paths.items():
            name = f"{names.get((head,), 'peer')}/{Lan(lan).label}"
            seen[(AcctKind.HEARTBEAT_PATH, name)] = UNKNOWN if deaf else _link(path.status, "heartbeat path down")
        for row in state.lan_ifs.values():
            seen[(AcctKind.LAN_INTERFACE, f"{row.node}/{row.lan.label}")] = (
                UP if row.status is LinkStatus.UP else _link(row.status, row.last_error or "no echo reply"))
        for row in state.services.values():
            if not row.enabled or row.row_status is not RowStatus.ACTIVE:
                continue
            up = (True if row.status is ServiceStatus.RUNNING else
                  False if row.status in (ServiceStatus.FAILED, ServiceStatus.RECOVERING) else None)
            seen[(AcctKind.SERVICE, row.name)] = Seen(up, None, row.last_reason or "check failed")

        mine = state.heads.get((next((k for k, h in state.heads.items() if h.is_local), (0,))))
        my_status = mine.status if mine is not None else HeadStatus.UNKNOWN
        peer_aliases = set(peer.aliases) if peer is not None and peer.heard and not deaf else set()
        aliases: list[Seen] = []
        for row in state.aliases.values():
            if row.row_status is not RowStatus.ACTIVE:
                continue
            address = str(row.address)
            if self._placed:
                one = (UP if row.status is AliasStatus.HELD else UNKNOWN if row.status is AliasStatus.UNKNOWN
                       else Seen(False, None, f"no node holds {address}"))
                seen[(AcctKind.ALIAS, address)] = one
                aliases.append(one)
                continue
            by_me = row.status is AliasStatus.HELD and row.owner == me
            by_peer = address in peer_aliases
            if by_me or by_peer:
                one = UP
                if by_me and self._peer_held.get(address) and role.active is not None:
                    one = self._taken(address, peer.name if peer else "the peer", peer_gone, last_heard, role)
                self._peer_held[address] = by_peer and not by_me
            elif my_status in UNSETTLED:
                one = Seen(None)
            elif self._peer_held.get(address) and peer_gone:
                one = Seen(False, last_heard, f"no head holds {address}: {peer.name if peer else 'the peer'} "
                                              f"fell silent and this head has not completed its takeover")
            else:
                one = Seen(False, None, f"no head holds {address}")
            seen[(AcctKind.ALIAS, address)] = one
            aliases.append(one)
        seen[(AcctKind.CLUSTER, state.cluster.name)] = self._cluster(
            aliases, my_status, peer is not None and peer.heard and not deaf
            and peer.status is HeadStatus.ACTIVE, peer_gone, last_heard, role)
        return seen

    @staticmethod
    def _taken(what: str, peer: str, peer_gone: bool, last_heard: float | None, role: RoleTimes) -> Seen:
        """Held by the peer at the last look, by this head now: out of service from the
        peer's last heartbeat (or this head's decision) to this head's takeover."""
        began = last_heard if peer_gone and last_heard is not None else role.taking_over
        if began is None or role.active is None or began >= role.active:
            return UP
        why = (f"{peer} fell silent; {what} was taken over by this head" if peer_gone else
               f"{peer} handed {what} over to this head")
        return Seen(True, role.active, why, began)

    def _cluster(self, aliases: list[Seen], my_status: HeadStatus, peer_active: bool, peer_gone: bool,
                 last_heard: float | None, role: RoleTimes) -> Seen:
        if aliases:
            down = [a for a in aliases if a.up is False]
            if down:
                starts = [a.since for a in down if a.since is not None]
                return Seen(False, min(starts) if starts else None, down[0].cause)
            if not all(a.up for a in aliases):
                return UNKNOWN
            gaps = [a for a in aliases if a.began is not None]
            if not gaps:
                return UP
            return Seen(True, max(a.since for a in gaps if a.since is not None), gaps[0].cause,
                        min(a.began for a in gaps if a.began is not None))
        if my_status is HeadStatus.ACTIVE or peer_active:
            one = UP
            if my_status is HeadStatus.ACTIVE and self._peer_active:
                one = self._taken("the active role", "the peer", peer_gone, last_heard, role)
            self._peer_active = peer_active and my_status is not HeadStatus.ACTIVE
            return one
        if my_status in UNSETTLED:
            return Seen(None)
        if self._peer_active and peer_gone:
            return Seen(False, last_heard, "no head is active: the active peer fell silent")
        return Seen(False, None, "no head is active")


def _link(status: LinkStatus, cause: str) -> Seen:
    return UP if status is LinkStatus.UP else Seen(False, None, cause) if status is LinkStatus.DOWN else UNKNOWN
