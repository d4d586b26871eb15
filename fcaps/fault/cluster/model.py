"""What the cluster looks like from one head: the records every part of this package shares.

A source (the Corosync reader, the Pacemaker reader) produces them; the differ, the
consistency checks, the state tables and the operator's views consume them. They are
frozen: a new event makes a new record, and two records compare equal exactly when
nothing an operator could see has changed.

Unknown is a value, never a guess: `ClusterView.membership` is None while the local
Corosync cannot be reached (it was stopped, killed or is starting), and
`ClusterView.placement` is None while Pacemaker cannot be read (absent, or `crm_mon`
failed). Quorum in particular is only what Corosync said last while it was reachable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KnetLink:
    """One of Corosync's links (knet) from the local node to a member, as the local node sees it."""

    link: int                   # the link number in corosync.conf (0..7)
    connected: bool
    latency_us: int | None      # knet's average latency, in microseconds; None if not reported


@dataclass(frozen=True, slots=True)
class Member:
    """A node of the Corosync configuration (its nodelist), member of the ring or not."""

    node_id: int
    name: str                   # the nodelist's `name`, else its first ring address
    votes: int
    online: bool                # in the current membership
    links: tuple[KnetLink, ...] = ()    # empty for the local node itself


@dataclass(frozen=True, slots=True)
class Quorum:
    quorate: bool
    expected_votes: int
    total_votes: int
    ring_id: str                # "<representative node id>.<sequence>", as corosync-quorumtool prints it
    token_ms: int               # the effective totem token timeout


@dataclass(frozen=True, slots=True)
class Membership:
    """What the local Corosync says."""

    local_node_id: int
    quorum: Quorum
    members: tuple[Member, ...]  # sorted by node id


@dataclass(frozen=True, slots=True)
class PlacedNode:
    """A node as Pacemaker sees it (`crm_mon`'s nodes section)."""

    name: str
    node_id: int
    online: bool
    standby: bool
    unclean: bool
    maintenance: bool
    dc: bool


@dataclass(frozen=True, slots=True)
class Resource:
    """A primitive resource as Pacemaker places it (clones and groups flattened to their primitives)."""

    resource_id: str
    agent: str                  # e.g. "ocf:heartbeat:IPaddr2"
    role: str                   # Pacemaker's role: Started, Stopped, Promoted, Unpromoted, ...
    node: str                   # where it runs; "" when stopped
    failed: bool
    fail_count: int             # on `node` (or the highest on any node when stopped)
    last_result: str            # the last operation's result, e.g. "ok", "not running", "error"
    address: str = ""           # for an address resource (IPaddr2): its `ip` parameter


@dataclass(frozen=True, slots=True)
class Placement:
    """What the local Pacemaker says."""

    dc: str                     # the designated controller's node name; "" if none
    nodes: tuple[PlacedNode, ...]        # sorted by name
    resources: tuple[Resource, ...]      # sorted by resource id


@dataclass(frozen=True, slots=True)
class ClusterView:
    """One head's whole view of the cluster at one moment."""

    membership: Membership | None = None     # None: Corosync unknown
    placement: Placement | None = None       # None: Pacemaker unknown or absent
