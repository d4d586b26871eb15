"""The heads' and aliases' rows from Pacemaker's placement (the corosync backend).

With `membership.backend = "corosync"` no role state machine runs: Corosync decides who
is a member and Pacemaker where the service addresses run. So that an NMS reads the same
objects in both modes, `PlacedRoles` writes what the role machine writes in the other
(haoscarHeadTable's status and role changes, the cluster summary's active head and
state, the alias rows' holder), from the cluster watch's view:

* A configured alias is held by the node where Pacemaker has an address resource
  (IPaddr2) with that address Started (or Promoted). Pacemaker's node names are the
  heads' names.
* A head that holds a configured alias is active; a member that holds none is standby;
  a head that is not in Corosync's membership has failed. While Corosync is unknown
  every head is unknown; while Pacemaker is unknown (or not read) a member is unknown.
* The cluster is normal while every head is a member and an alias is held (or none is
  configured), degraded while a head is missing, failed while no configured alias is
  held anywhere (its service is out), unknown while either side is.
* A change of this head's status publishes ROLE_CHANGED, as a transition of the role
  machine does (the service monitor starts checking active-only services on it). An
  active head that moves to another head counts one failover, also when the views
  between show the alias held nowhere (Pacemaker stops it, then starts it elsewhere).

It moves nothing: this daemon adds or removes no address in this mode.
"""

from __future__ import annotations

import ipaddress
from typing import Callable

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import AliasStatus, ClusterStatus, HeadStatus, State

from fcaps.fault.cluster.model import ClusterView

RUNNING = ("Started", "Promoted")


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def holders(view: ClusterView) -> dict[str, tuple[str, str]] | None:
    """Address -> (the node where its address resource runs, the resource); None while
    Pacemaker is unknown. A stopped address resource holds nothing."""
    if view.placement is None:
        return None
    out: dict[str, tuple[str, str]] = {}
    for r in view.placement.resources:
        if r.address and r.node and r.role in RUNNING:
            out.setdefault(_canonical(r.address), (r.node, r.resource_id))
    return out


class PlacedRoles:
    """In corosync mode, sole writer of the head rows' status and role changes, of the
    cluster summary's active head, state and failover count, and of the alias rows'
    holder and status. `update(view)` after every view of the cluster watch, and after
    every reload (the aliases are live keys)."""

    def __init__(self, state: State, config: Callable[[], Config], bus: EventBus, clock: Clock) -> None:
        self.state = state
        self.config = config
        self.bus = bus
        self.clock = clock
        self._view = ClusterView()
        self._service = ""
        self._holder = ""       # the last node seen holding an alias, kept while none does

    def service_resource(self) -> str:
        """The Pacemaker resource that carries the first configured alias's address (a
        clone's primitive, for its instances `ip:node2`); the last one known while
        Pacemaker is unknown; "" when none carries it. The accounting judges the
        cluster's service by it."""
        return self._service

    def update(self, view: ClusterView | None = None) -> None:
        if view is not None:
            self._view = view
        view, cfg = self._view, self.config()
        held = holders(view)
        aliases = {a.index: _canonical(str(a.address)) for a in cfg.active_aliases()}
        if view.placement is not None:
            first = aliases[min(aliases)] if aliases else ""
            self._service = next((r.resource_id.partition(":")[0] for r in view.placement.resources
                                  if r.address and _canonical(r.address) == first), "")
        owners = {index: (held or {}).get(address, ("", ""))[0] for index, address in aliases.items()}
        for (index,), alias_row in self.state.aliases.items():
            owner = owners.get(index, "")
            alias_row.owner = owner if held is not None else ""
            alias_row.status = (AliasStatus.UNKNOWN if held is None or index not in aliases
                          else AliasStatus.HELD if owner else AliasStatus.RELEASED)
        active = sorted({owner for owner in owners.values() if owner})
        members = ({m.name for m in view.membership.members if m.online}
                   if view.membership is not None else None)
        for head in cfg.heads:
            status = self._status(head.name, members, held, active)
            self._set(cfg, head.name, status)
        self._summary(cfg, members, held, active)

    @staticmethod
    def _status(name: str, members: set[str] | None, held: dict[str, tuple[str, str]] | None,
                active: list[str]) -> HeadStatus:
        if members is None:
            return HeadStatus.UNKNOWN
        if name not in members:
            return HeadStatus.FAILED
        if held is None:
            return HeadStatus.UNKNOWN
        return HeadStatus.ACTIVE if name in active else HeadStatus.STANDBY

    def _set(self, cfg: Config, name: str, status: HeadStatus) -> None:
        index = cfg.head_index(name)
        row = self.state.heads.get((index,))
        if row is None or row.status == status:
            return
        old, row.status = row.status, status
        row.role_changes += 1
        if row.is_local:
            text = f"{name}: {old.name.lower()} -> {status.name.lower()} (as Pacemaker placed the aliases)"
            self.bus.publish(Event(EventType.ROLE_CHANGED, name, Severity.INFO, text, self.clock.time(),
                                   {"head_index": index, "reason": "Pacemaker's placement"}))

    def _summary(self, cfg: Config, members: set[str] | None, held: dict[str, tuple[str, str]] | None,
                 active: list[str]) -> None:
        c = self.state.cluster
        heads = {h.name for h in cfg.heads}
        now = next((name for name in active if name in heads), active[0] if active else "")
        # Pacemaker moves an address by stopping it, then starting it elsewhere: the views
        # between show no holder. A move is counted against the last holder seen.
        if self._holder and now and now != self._holder:
            c.failover_count += 1
            c.last_failover_time = self.clock.time()
            c.last_failover_duration_ms = 0         # Pacemaker's move: its duration is not seen here
            c.last_failover_reason = f"Pacemaker moved the alias from {self._holder} to {now}"[:255]
        if now:
            self._holder = now
        if held is not None:
            c.active_head = now
        if members is None or held is None:
            c.status = ClusterStatus.UNKNOWN
        elif cfg.active_aliases() and not active:
            c.status = ClusterStatus.FAILED
        elif heads - members:
            c.status = ClusterStatus.DEGRADED
        else:
            c.status = ClusterStatus.NORMAL
