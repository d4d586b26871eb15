"""What this head can see of a cluster past two heads, read from the membership tables
(pure). The cluster watch (fcaps/fault/cluster/watch.py) writes those tables from what
Corosync and Pacemaker say; this module only reads them, as `observe.py` reads the rest.

Subjects, each up, down or not known (`Seen`):

* each node of Corosync's nodelist (`clusterNode`): down while it is not a member of the
  membership (from its leaving to its joining). Not known while Corosync cannot be read.
* the cluster's quorum (`quorum`, named after the cluster): down while this partition
  is not quorate. Not known while Corosync cannot be read: quorum is never guessed.
* each resource row (`resource`): down while it is not active on some node (Stopped,
  Starting, no node) or Pacemaker marks it failed (`ResourceRow.active`). Not known
  while Pacemaker cannot be read. A clone instance is its own row (`vip:node1`); a
  clone with no instance running is one row named after the primitive, so that row is
  down while it exists.
* the cluster's service (`cluster`, named after the cluster), only when the
  configuration names the resource that carries the cluster's address: down while no
  row of that resource (its own, or its clone instances') is active and unfailed. Not
  known while Pacemaker cannot be read.
* Corosync and Pacemaker themselves (`membershipView`, subjects `corosync` and
  `pacemaker`): down while this head cannot read them. That is the agent being blind,
  not an outage of the cluster: it opens no node, quorum or resource outage. A side is
  judged from the first time it was read in this run of the agent, so a head without
  Pacemaker (or a start before Corosync answers) records no blindness.
"""

from __future__ import annotations

from haoscar_snmp.core.state import AcctKind, ResourceRow, State

from .observe import UNKNOWN, Key, Seen

COROSYNC, PACEMAKER = "corosync", "pacemaker"


def where(row: ResourceRow) -> str:
    text = f"{row.role} on {row.node}" if row.node else row.role or "Stopped"
    return text + (f", failed ({row.last_result or 'no result'})" if row.failed else "")


class MembershipObserver:
    """Remembers which side was ever read in this run; the rest is read from the state."""

    def __init__(self) -> None:
        self._read: set[str] = set()
        # Subjects of each side as it last showed them: while it cannot be read they are
        # not known (their rows may be gone from the tables), never "stopped being watched".
        self._nodes: set[str] = set()
        self._resources: set[str] = set()

    def look(self, state: State, service_resource: str = "") -> dict[Key, Seen]:
        m = state.membership
        cluster = state.cluster.name
        seen: dict[Key, Seen] = {}
        for side, known in ((COROSYNC, m.known), (PACEMAKER, m.placement_known)):
            if known:
                self._read.add(side)
            if side in self._read:
                seen[(AcctKind.MEMBERSHIP_VIEW, side)] = (
                    Seen(True) if known else Seen(False, None, f"{side} cannot be read: the agent is blind to it"))
        nodes = {}
        for (node_id,), row in state.cluster_nodes.items():
            name = row.name or f"node{node_id}"
            nodes[name] = (UNKNOWN if not m.known else Seen(True) if row.member
                           else Seen(False, None, f"node {name} is not a member of the membership"))
        if m.known:
            self._nodes = set(nodes)
        else:
            nodes.update((name, UNKNOWN) for name in self._nodes)
        seen.update(((AcctKind.CLUSTER_NODE, name), what) for name, what in nodes.items())
        if COROSYNC in self._read:
            seen[(AcctKind.QUORUM, cluster)] = (
                UNKNOWN if not m.known else Seen(True) if m.quorate else
                Seen(False, None, f"not quorate: {m.total_votes} of {m.expected_votes} expected votes"))
        rows = list(state.resources.values())
        if m.placement_known:
            self._resources = {row.resource_id for row in rows}
            for row in rows:
                seen[(AcctKind.RESOURCE, row.resource_id)] = (
                    Seen(True) if row.active else Seen(False, None, f"resource {row.resource_id}: {where(row)}"))
        else:
            seen.update(((AcctKind.RESOURCE, rid), UNKNOWN) for rid in self._resources)
        if service_resource:
            seen[(AcctKind.CLUSTER, cluster)] = self._service(m.placement_known, rows, service_resource)
        return seen

    @staticmethod
    def _service(known: bool, rows: list[ResourceRow], name: str) -> Seen:
        if not known:
            return UNKNOWN
        mine = [r for r in rows if r.resource_id == name or r.resource_id.startswith(name + ":")]
        if any(r.active for r in mine):
            return Seen(True)
        state = "; ".join(where(r) for r in mine) or "not in Pacemaker's configuration"
        return Seen(False, None, f"no node holds {name}: {state}")
