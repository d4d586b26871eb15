"""Views of a three-node cluster for the unit tests of fcaps/fault/cluster: small
builders, so that a test says only what differs from a healthy cluster."""

from __future__ import annotations

from dataclasses import replace

from fcaps.fault.cluster.model import (
    ClusterView,
    KnetLink,
    Member,
    Membership,
    Placement,
    PlacedNode,
    Quorum,
    Resource,
)

NAMES = ("node1", "node2", "node3")


def membership(online: tuple[str, ...] = NAMES, quorate: bool = True, local: int = 1,
               latency: int = 300) -> Membership:
    members = tuple(Member(i, name, 1, name in online,
                           () if i == local else (KnetLink(0, name in online, latency),
                                                  KnetLink(1, name in online, None)))
                    for i, name in enumerate(NAMES, start=1))
    total = sum(1 for name in NAMES if name in online)
    return Membership(local, Quorum(quorate, 3, total, f"1.{8 + total}", 3000), members)


def resource(rid: str, node: str = "node1", **kw: object) -> Resource:
    base = Resource(rid, "ocf:pacemaker:Dummy", "Started" if node else "Stopped", node, False, 0,
                    "ok" if node else "")
    return replace(base, **kw)  # type: ignore[arg-type]


def vip(node: str = "node1", address: str = "192.0.2.10", **kw: object) -> Resource:
    return resource("vip", node, agent="ocf:heartbeat:IPaddr2", address=address, **kw)


def placement(*resources: Resource, online: tuple[str, ...] = NAMES, dc: str = "node1",
              **node_flags: dict[str, bool]) -> Placement:
    nodes = tuple(PlacedNode(name, i, name in online, False, False, False, name == dc)
                  for i, name in enumerate(NAMES, start=1))
    nodes = tuple(replace(n, **node_flags.get(n.name, {})) for n in nodes)
    rows = resources or (vip(), resource("web", "node2"))
    return Placement(dc, nodes, tuple(sorted(rows, key=lambda r: r.resource_id)))


def view(m: Membership | None = None, p: Placement | None = None, *, known: bool = True) -> ClusterView:
    if not known:
        return ClusterView(m, p)
    return ClusterView(m or membership(), p or placement())
