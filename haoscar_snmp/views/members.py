"""The cluster past two heads (haoscarMembership) in the operator's views: its part of the
snapshot and its health reasons.

Shown when the membership is watched (the corosync backend: `MembershipState.watched`,
or anything written by the cluster watch in this run), absent otherwise, so a pair of
heads sees no empty section. Unknown is shown as unknown: while Corosync cannot be read,
quorum is not reported as lost, nor the nodes as gone; the reason says the agent is blind.

Health (`reasons`), by the rules of health.py:

    failed     this partition is not quorate (Pacemaker stops its resources)
    degraded   Corosync or Pacemaker cannot be read; a resource marked failed; a node of
               the nodelist that is not a member, or that Pacemaker calls unclean
"""

from __future__ import annotations

from typing import Any, Callable

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.state import State
from haoscar_snmp.views.slices import Collect, Work, rows


def watched(state: State) -> bool:
    m = state.membership
    return (m.watched or m.known or m.placement_known or m.changes > 0 or len(state.cluster_nodes) > 0
            or len(state.resources) > 0)


def reasons(state: State) -> list[tuple[str, str]]:
    """(level, text) pairs, "failed" or "degraded"; none when the membership is not watched."""
    if not watched(state):
        return []
    m = state.membership
    out: list[tuple[str, str]] = []
    if m.known and not m.quorate:
        out.append(("failed", f"quorum lost: {m.total_votes} of {m.expected_votes} expected votes"))
    if not m.known:
        out.append(("degraded", "Corosync cannot be read: membership and quorum unknown"))
    if not m.placement_known:
        out.append(("degraded", "Pacemaker cannot be read: placement unknown"))
    failed = [row.resource_id for row in state.resources.values() if row.failed]
    if failed:
        out.append(("degraded", _named(failed, "resource", "resources", "failed")))
    if m.known:
        gone = [row.name or str(key[0]) for key, row in state.cluster_nodes.items() if not row.member]
        if gone:
            out.append(("degraded", _named(gone, "node", "nodes", "not a member")))
    unclean = [row.name for row in state.cluster_nodes.values() if row.unclean]
    if unclean:
        out.append(("degraded", _named(unclean, "node", "nodes", "unclean")))
    return out


def _named(names: list[str], one: str, many: str, what: str) -> str:
    shown = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
    return f"{len(names)} {one if len(names) == 1 else many} {what}: {shown}"


def part(state: State, clock: Clock, at: Callable[[float], Any], text: bool) -> Work[dict[str, Any] | None]:
    """The snapshot's `membership`: None when not watched. Nodes carry their links;
    resources go `CHUNK` rows at a time. `at` makes a wall-clock time a snapshot time."""
    if not watched(state):
        return None
    m = state.membership
    changed = None
    if m.last_changed:      # monotonic: shown as the wall-clock time that long ago
        changed = at(clock.time() - max(0.0, clock.monotonic() - m.last_changed))
    links: dict[int, list[dict[str, Any]]] = {}
    for (node_id, link), row in state.cluster_links.items():
        links.setdefault(node_id, []).append({
            "link": link, "connected": row.connected,
            "latency_ms": round(row.latency_us / 1000.0, 3) if row.latency_us else None})
    nodes = [{
        "index": node_id, "name": row.name, "votes": row.votes, "member": row.member,
        "online": row.online, "standby": row.standby, "unclean": row.unclean,
        "maintenance": row.maintenance, "dc": row.dc, "this_node": row.is_local,
        "state": node_state(row.member, row.online, row.standby, row.unclean, row.maintenance, m.known),
        "links": links.get(node_id, []),
    } for (node_id,), row in state.cluster_nodes.items()]
    yield
    out = Collect(text)
    for piece in rows(state.resources):
        out.add([{
            "index": index, "id": row.resource_id, "agent": row.agent, "role": row.role, "node": row.node,
            "failed": row.failed, "fail_count": row.fail_count, "last_result": row.last_result,
            "address": row.address, "active": row.active,
        } for (index,), row in piece])
        yield
    return {
        "corosync": "known" if m.known else "unknown",
        "pacemaker": "known" if m.placement_known else "unknown",
        "quorum": ("unknown" if not m.known else "quorate" if m.quorate else "lost"),
        "expected_votes": m.expected_votes, "total_votes": m.total_votes, "ring_id": m.ring_id,
        "token_ms": m.token_ms, "local_node_id": m.local_node_id, "dc": m.dc,
        "changes": m.changes, "last_changed": changed,
        "nodes": nodes, "resources": out.result(),
    }


def node_state(member: bool, online: bool, standby: bool, unclean: bool, maintenance: bool, known: bool) -> str:
    """One word for a node: unclean, left (not a member), maintenance, standby, online,
    member (Corosync's member, not online in Pacemaker), unknown (Corosync unread)."""
    if unclean:
        return "unclean"
    if not known:
        return "unknown"
    if not member:
        return "left"
    if maintenance:
        return "maintenance"
    if standby:
        return "standby"
    return "online" if online else "member"


__all__ = ["node_state", "part", "reasons", "watched"]
