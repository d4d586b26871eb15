"""The cluster past two heads (haoscarMembership): what Corosync and Pacemaker say, as
the MIB shows it. Writer of every slice here: the cluster watch
(fcaps/fault/cluster/watch.py), from each new view of the cluster."""

from __future__ import annotations

from dataclasses import dataclass

# Pacemaker roles of a resource that is active on its node: running, or being changed
# while it still runs (a stop, a demotion, a promotion or a migration under way).
ACTIVE_ROLES = frozenset({"Started", "Promoted", "Unpromoted", "Master", "Slave",
                          "Stopping", "Demoting", "Promoting", "Migrating"})


@dataclass
class MembershipState:
    """The haoscarMembership scalars. Quorum figures are those Corosync said last."""

    watched: bool = False           # the cluster watch runs (the corosync backend): the views show this
    known: bool = False             # Corosync can be read
    placement_known: bool = False   # Pacemaker can be read
    quorate: bool = False
    expected_votes: int = 0
    total_votes: int = 0
    ring_id: str = ""
    token_ms: int = 0
    local_node_id: int = 0
    dc: str = ""
    changes: int = 0                # haoscarMembershipChanges
    last_changed: float = 0.0       # monotonic; 0 = never (the view converts to sysUpTime ticks)


@dataclass(frozen=True, slots=True)
class ClusterNodeRow:
    """haoscarClusterNodeTable; key (node id,)."""

    name: str
    votes: int = 0
    member: bool = False            # in Corosync's membership
    online: bool = False            # Pacemaker's word
    standby: bool = False
    unclean: bool = False
    maintenance: bool = False
    dc: bool = False
    is_local: bool = False


@dataclass(frozen=True, slots=True)
class ClusterLinkRow:
    """haoscarClusterLinkTable; key (node id, link number)."""

    connected: bool
    latency_us: int = 0             # 0: not reported


@dataclass(frozen=True, slots=True)
class ResourceRow:
    """haoscarResourceTable; key (resource index,)."""

    resource_id: str
    agent: str
    role: str
    node: str
    failed: bool
    fail_count: int
    last_result: str
    address: str = ""

    @property
    def active(self) -> bool:
        """Active on a node and not marked failed: what accounting counts as up, and
        what the views show as serving."""
        return bool(self.node) and self.role in ACTIVE_ROLES and not self.failed
