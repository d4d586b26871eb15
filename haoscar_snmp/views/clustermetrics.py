"""The cluster past two heads (haoscarMembership) as metric families, by the naming rules
of metrics.py: base units, booleans as 0/1 gauges, strings only as labels of `_info`
families, HELP from the MIB object each family mirrors.

Only while the membership is watched (members.py), so a pair of heads exports none of
these. Corosync's figures (quorum, votes, members, links) are exported only while it
can be read, and Pacemaker's (online, standby, DC, resources) only while it can be
read: a scraper sees them absent, never as zeros that look like an outage;
`haoscar_corosync_known` and `haoscar_pacemaker_known` say which side is read.
"""

from __future__ import annotations

from typing import Any, Callable

from haoscar_snmp.core.state import State
from haoscar_snmp.views.members import watched
from haoscar_snmp.views.slices import Work, rows

Help = Callable[..., str]


def build(state: State, h: Help, family: Callable[..., Any], labels: Callable[..., str]) -> Work[list[Any]]:
    """The families; `family(name, type, help, unit=...)` makes one (metrics.Family)."""
    if not watched(state):
        return []
    m = state.membership
    corosync = family("haoscar_corosync_known", "gauge", h("haoscarMembershipKnown"))
    corosync.add(1 if m.known else 0)
    pacemaker = family("haoscar_pacemaker_known", "gauge", h("haoscarPlacementKnown"))
    pacemaker.add(1 if m.placement_known else 0)
    changes = family("haoscar_membership_changes", "counter", h("haoscarMembershipChanges"))
    changes.add(m.changes, "_total")
    quorate = family("haoscar_quorate", "gauge", h("haoscarQuorate"))
    expected = family("haoscar_quorum_expected_votes", "gauge", h("haoscarQuorumExpectedVotes"))
    total = family("haoscar_quorum_total_votes", "gauge", h("haoscarQuorumTotalVotes"))
    token = family("haoscar_quorum_token_seconds", "gauge", h("haoscarQuorumToken", unit="seconds"),
                   unit="seconds")
    if m.known:
        quorate.add(1 if m.quorate else 0)
        expected.add(m.expected_votes)
        total.add(m.total_votes)
        token.add(m.token_ms / 1000.0)
    out = [corosync, pacemaker, changes, quorate, expected, total, token]
    node = family("haoscar_cluster_node", "info", h("haoscarClusterNodeName", "A node of the cluster."))
    votes = family("haoscar_cluster_node_votes", "gauge", h("haoscarClusterNodeVotes"))
    member = family("haoscar_cluster_node_member", "gauge", h("haoscarClusterNodeMember"))
    flags = [(family(f"haoscar_cluster_node_{name}", "gauge", h(mib)), name)
             for name, mib in (("online", "haoscarClusterNodeOnline"), ("standby", "haoscarClusterNodeStandby"),
                               ("unclean", "haoscarClusterNodeUnclean"),
                               ("maintenance", "haoscarClusterNodeMaintenance"), ("dc", "haoscarClusterNodeDc"))]
    names: dict[int, str] = {}
    for (node_id,), row in state.cluster_nodes.items():
        name = names[node_id] = row.name or str(node_id)
        where = labels(node=name)
        node.add(1, "_info", labels(node=name, node_id=node_id, this_node="true" if row.is_local else "false"))
        if m.known:
            votes.add(row.votes, "", where)
            member.add(1 if row.member else 0, "", where)
        if m.placement_known:
            for fam, flag in flags:
                fam.add(1 if getattr(row, flag) else 0, "", where)
    out += [node, votes, member] + [fam for fam, _ in flags]
    yield
    connected = family("haoscar_cluster_link_connected", "gauge", h("haoscarClusterLinkConnected"))
    latency = family("haoscar_cluster_link_latency_seconds", "gauge",
                     h("haoscarClusterLinkLatency", unit="seconds"), unit="seconds")
    for (node_id, link), row in state.cluster_links.items():
        where = labels(node=names.get(node_id, str(node_id)), link=link)
        connected.add(1 if row.connected else 0, "", where)
        if row.latency_us:          # 0: knet reports none; absent rather than a false zero
            latency.add(row.latency_us / 1e6, "", where)
    out += [connected, latency]
    yield
    info = family("haoscar_resource", "info", h("haoscarResourceAgent", "A resource as Pacemaker places it."))
    active = family("haoscar_resource_active", "gauge",
                    "1 while the resource is active on a node (started, promoted, or changing while it "
                    "runs) and not marked failed, else 0.")
    failed = family("haoscar_resource_failed", "gauge", h("haoscarResourceIsFailed"))
    fails = family("haoscar_resource_failures", "gauge", h("haoscarResourceFailCount"))
    for piece in rows(state.resources):
        for _, row in piece:
            where = labels(resource=row.resource_id)
            info.add(1, "_info", labels(resource=row.resource_id, agent=row.agent, role=row.role,
                                        node=row.node, address=row.address))
            active.add(1 if row.active else 0, "", where)
            failed.add(1 if row.failed else 0, "", where)
            fails.add(row.fail_count, "", where)
        yield
    return out + [info, active, failed, fails]
