"""The cluster watch: each new view of the cluster becomes MIB rows, events and a check.

It is given every new `ClusterView`, whole (`update`) or by side (`set_membership` from
the Corosync listener, `set_placement` from the Pacemaker refresh), keeps the last one,
and for each:

1. writes the haoscarMembership scalars and tables (it is their only writer): rows
   changed, added or removed, never rewritten when equal;
2. counts a change (haoscarMembershipChanges, haoscarMembershipLastChanged) when
   anything an NMS reads changed, a link's latency alone excepted (it moves at every
   reading and would make the counter useless);
3. publishes the differences (`changes.diff`) as events, after the rows are written,
   so that a notification reads the new row; a row that is gone (a resource removed, a
   clone instance stopped) is sent with its last values; a move says where the resource
   last was settled (not "Stopping on node1"), and a resource that settles where it was
   (restarted in place) is not told moved;
4. runs the stale-address check (`stale.StaleAddresses`), one at a time: views that
   arrive while one runs make one more run after it.

A resource keeps the index it was first given for the whole run of the agent, even
while it is out of the table, so an NMS's row stays the same resource. Nothing here
starts anything: the daemon builds the watch, hands it views and calls `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import Any

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import ClusterLinkRow, ClusterNodeRow, ResourceRow, State, Table

from fcaps.fault.alarms import Alarms

from .changes import PENDING, Change, ChangeKind, diff, where
from .model import ClusterView, Membership, Placement, Resource
from .stale import LocalAddresses, StaleAddresses

log = logging.getLogger(__name__)

# Each kind of change: its event type and severity.
EVENTS: dict[ChangeKind, tuple[EventType, Severity]] = {
    ChangeKind.MEMBERSHIP_UNKNOWN: (EventType.MEMBERSHIP_UNKNOWN, Severity.MAJOR),
    ChangeKind.MEMBERSHIP_RECOVERED: (EventType.MEMBERSHIP_RECOVERED, Severity.CLEARED),
    ChangeKind.NODE_JOINED: (EventType.CLUSTER_NODE_JOINED, Severity.CLEARED),
    ChangeKind.NODE_LEFT: (EventType.CLUSTER_NODE_LEFT, Severity.MAJOR),
    ChangeKind.QUORUM_LOST: (EventType.QUORUM_LOST, Severity.CRITICAL),
    ChangeKind.QUORUM_REGAINED: (EventType.QUORUM_REGAINED, Severity.CLEARED),
    ChangeKind.RESOURCE_MOVED: (EventType.RESOURCE_MOVED, Severity.INFO),
    ChangeKind.RESOURCE_FAILED: (EventType.RESOURCE_FAILED, Severity.MAJOR),
    ChangeKind.RESOURCE_RECOVERED: (EventType.RESOURCE_RECOVERED, Severity.CLEARED),
}


class ClusterWatch:
    """Sole writer of `state.membership`, `state.cluster_nodes`, `state.cluster_links`
    and `state.resources`."""

    def __init__(self, state: State, bus: EventBus, clock: Clock, alarms: Alarms,
                 addresses: LocalAddresses, local_node: str, *, stale_hold: float = 5.0) -> None:
        self.state = state
        self.bus = bus
        self.clock = clock
        self.local_node = local_node        # Pacemaker's name of this node, while Corosync is unknown
        self.stale = StaleAddresses(alarms, bus, clock, addresses, local_node, self.resource_index,
                                    hold=stale_hold)
        self._view = ClusterView()
        self._indexes: dict[str, int] = {}
        self._settled: dict[str, str] = {}      # resource id -> its last settled place, in words
        self._next_index = 1
        self._check: asyncio.Task[None] | None = None
        self._check_again = False
        self._closed = False

    @property
    def view(self) -> ClusterView:
        return self._view

    def resource_index(self, resource_id: str) -> int | None:
        return self._indexes.get(resource_id)

    def set_membership(self, membership: Membership | None) -> None:
        self.update(replace(self._view, membership=membership))

    def set_placement(self, placement: Placement | None) -> None:
        self.update(replace(self._view, placement=placement))

    def update(self, view: ClusterView) -> None:
        old, self._view = self._view, view
        if view != old:
            changes = diff(old, view)
            gone = {r.resource_id: r for r in (old.placement.resources if old.placement else ())}
            if self._write(view):
                self.state.membership.changes += 1
                self.state.membership.last_changed = self.clock.monotonic()
            for change in changes:
                self._publish(change, gone)
            self._remember_settled(view)
        self._start_check()

    def _remember_settled(self, view: ClusterView) -> None:
        if view.placement is None:
            return
        now = {r.resource_id: r for r in view.placement.resources}
        for rid in list(self._settled):
            if rid not in now:
                self._settled[rid] = "Stopped"
        for rid, row in now.items():
            if row.role not in PENDING:
                self._settled[rid] = where(row)

    # -- the tables ------------------------------------------------------------------------

    def _write(self, view: ClusterView) -> bool:
        """Write the scalars and rows of `view`; whether anything but a latency changed."""
        m, p, s = view.membership, view.placement, self.state.membership
        before = replace(s)
        s.known, s.placement_known = m is not None, p is not None
        if m is not None:
            q = m.quorum
            s.quorate, s.expected_votes, s.total_votes = q.quorate, q.expected_votes, q.total_votes
            s.ring_id, s.token_ms, s.local_node_id = q.ring_id, q.token_ms, m.local_node_id
        s.dc = p.dc if p is not None else ""
        changed = s != before
        changed |= _sync(self.state.cluster_nodes, self._node_rows(view))
        links = {(member.node_id, link.link): ClusterLinkRow(link.connected, link.latency_us or 0)
                 for member in (m.members if m else ()) for link in member.links}
        before_links = {k: replace(r, latency_us=0) for k, r in self.state.cluster_links.items()}
        _sync(self.state.cluster_links, links)
        changed |= before_links != {k: replace(r, latency_us=0) for k, r in links.items()}
        changed |= _sync(self.state.resources,
                         {(self._index(r.resource_id),): _row(r) for r in (p.resources if p else ())})
        return changed

    def _node_rows(self, view: ClusterView) -> dict[tuple[int], ClusterNodeRow]:
        m, p = view.membership, view.placement
        members = {x.node_id: x for x in (m.members if m else ()) if x.node_id > 0}
        placed = {x.node_id: x for x in (p.nodes if p else ()) if x.node_id > 0}
        rows = {}
        for node_id in members.keys() | placed.keys():
            member, node = members.get(node_id), placed.get(node_id)
            name = node.name if node else member.name if member else ""
            local = node_id == m.local_node_id if m is not None else name == self.local_node
            rows[(node_id,)] = ClusterNodeRow(
                name=name, votes=member.votes if member else 0, member=bool(member and member.online),
                online=bool(node and node.online), standby=bool(node and node.standby),
                unclean=bool(node and node.unclean), maintenance=bool(node and node.maintenance),
                dc=bool(node and node.dc), is_local=local)
        return rows

    def _index(self, resource_id: str) -> int:
        index = self._indexes.get(resource_id)
        if index is None:
            index = self._indexes[resource_id] = self._next_index
            self._next_index += 1
        return index

    # -- the events ------------------------------------------------------------------------

    def _publish(self, change: Change, gone: dict[str, Resource]) -> None:
        event_type, severity = EVENTS[change.kind]
        data: dict[str, Any] = {"reason": change.text}
        if change.node_id:
            data["node_id"] = change.node_id
            if (change.node_id,) not in self.state.cluster_nodes:
                data["haoscarClusterNodeName"] = change.subject
                data["haoscarClusterNodeMember"] = False
        text = change.text
        if change.kind in (ChangeKind.RESOURCE_MOVED, ChangeKind.RESOURCE_FAILED, ChangeKind.RESOURCE_RECOVERED):
            data["resource_index"] = self._indexes.get(change.subject, 0)
            data["old"], data["new"] = change.old, change.new
            if change.kind is ChangeKind.RESOURCE_MOVED:
                data["old"] = self._settled.get(change.subject, change.old)
                if data["old"] == change.new:
                    return                      # settled where it was: restarted in place
                text = data["reason"] = f"resource {change.subject}: {data['old']} -> {change.new}"
            if change.after is None and change.subject in gone:
                last = gone[change.subject]
                data.update(haoscarResourceId=last.resource_id, haoscarResourceRole="Stopped",
                            haoscarResourceNode="")
        self.bus.publish(Event(event_type, change.subject, severity, text, self.clock.time(), data))

    # -- the stale-address check -------------------------------------------------------------

    def _start_check(self) -> None:
        if self._closed:
            return
        if self._check is not None and not self._check.done():
            self._check_again = True
            return
        self._check_again = False
        self._check = asyncio.get_running_loop().create_task(self._run_check())

    async def _run_check(self) -> None:
        try:
            await self.stale.check(self._view)
        except Exception:
            log.exception("the stale-address check failed")
        if self._check_again and not self._closed:
            self._check = None
            self._start_check()

    async def settled(self) -> None:
        """Wait until no stale-address check runs (tests, and an orderly stop)."""
        while self._check is not None and not self._check.done():
            await asyncio.shield(self._check)

    async def stop(self) -> None:
        self._closed = True
        if self._check is not None:
            self._check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._check


def _row(r: Resource) -> ResourceRow:
    return ResourceRow(r.resource_id, r.agent, r.role, r.node, r.failed, r.fail_count, r.last_result, r.address)


def _sync(table: Table[Any, Any], rows: dict[Any, Any]) -> bool:
    """Make `table` hold exactly `rows`, writing only what differs; whether anything did."""
    changed = False
    for key in [k for k in table.keys() if k not in rows]:
        table.remove(key)
        changed = True
    for key, row in rows.items():
        if table.get(key) != row:
            table.put(key, row)
            changed = True
    return changed
