"""fcaps.fault.role.placed: the head and alias rows written from Pacemaker's placement, so
that the corosync mode shows the same objects as the heads' own role machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from clusterviews import membership, placement, resource, view, vip
from fakes import FakeClock

from fcaps.configuration.apply import apply_to_state
from fcaps.fault.cluster.model import ClusterView
from fcaps.fault.role.placed import PlacedRoles
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import Event, EventBus, EventType
from haoscar_snmp.core.state import AliasStatus, ClusterStatus, HeadStatus, State

CONFIG = """
[cluster]
name = "c"
local_head = "node1"
state_dir = "/var/lib/x"

[[heads]]
name = "node1"
preferred_role = "primary"

[[heads]]
name = "node2"
preferred_role = "standby"

[[aliases]]
address = "192.0.2.10"
prefix_length = 24
interface = "eth0"

[membership]
backend = "corosync"

[snmp]
listen = ["127.0.0.1:16161"]
"""


class World:
    def __init__(self, text: str = CONFIG) -> None:
        self.cfg: Config = parse_config(text, label="t", base_dir=Path("/etc"), environ={})
        self.state = State()
        apply_to_state(self.cfg, self.state)
        self.bus = EventBus()
        self.events: list[Event] = []
        self.bus.subscribe("test", self.events.append)
        self.rows = PlacedRoles(self.state, lambda: self.cfg, self.bus, FakeClock())

    def head(self, name: str) -> HeadStatus:
        return self.state.heads[(self.cfg.head_index(name),)].status

    @property
    def alias(self) -> tuple[str, AliasStatus]:
        row = self.state.aliases[(1,)]
        return row.owner, row.status


@pytest.fixture
def w() -> World:
    return World()


def test_the_head_where_the_address_runs_is_active(w: World) -> None:
    w.rows.update(view())
    assert (w.head("node1"), w.head("node2")) == (HeadStatus.ACTIVE, HeadStatus.STANDBY)
    assert w.alias == ("node1", AliasStatus.HELD)
    assert (w.state.cluster.active_head, w.state.cluster.status) == ("node1", ClusterStatus.NORMAL)
    assert [e.type for e in w.events] == [EventType.ROLE_CHANGED]      # this head only
    assert w.events[0].subject == "node1" and "unknown -> active" in w.events[0].text


def test_a_move_makes_the_peer_active_and_counts_a_failover(w: World) -> None:
    w.rows.update(view())
    w.rows.update(view(p=placement(vip("node2"))))
    assert (w.head("node1"), w.head("node2")) == (HeadStatus.STANDBY, HeadStatus.ACTIVE)
    assert w.alias == ("node2", AliasStatus.HELD)
    assert w.state.cluster.failover_count == 1
    assert w.state.cluster.last_failover_reason == "Pacemaker moved the alias from node1 to node2"
    assert w.state.heads[(1,)].role_changes == 2


def test_a_move_seen_through_a_stopped_alias_counts_one_failover(w: World) -> None:
    """Pacemaker stops the address, then starts it on the peer: a reader may see the
    step between, where no node holds it."""
    w.rows.update(view())
    w.rows.update(view(p=placement(vip("node1", role="Stopping"))))
    assert w.alias == ("", AliasStatus.RELEASED) and w.state.cluster.failover_count == 0
    w.rows.update(view(p=placement(vip("node2"))))
    assert w.state.cluster.failover_count == 1
    assert w.state.cluster.last_failover_reason == "Pacemaker moved the alias from node1 to node2"
    w.rows.update(view(p=placement(vip("", role="Stopped"))))
    w.rows.update(view(p=placement(vip("node2"))))          # back where it was: no move
    assert w.state.cluster.failover_count == 1


def test_no_address_started_leaves_both_standby_and_the_service_out(w: World) -> None:
    w.rows.update(view(p=placement(vip("", role="Stopped"), resource("web", "node2"))))
    assert (w.head("node1"), w.head("node2")) == (HeadStatus.STANDBY, HeadStatus.STANDBY)
    assert w.alias == ("", AliasStatus.RELEASED)
    assert (w.state.cluster.active_head, w.state.cluster.status) == ("", ClusterStatus.FAILED)


def test_an_address_on_a_third_node_is_its_holder(w: World) -> None:
    w.rows.update(view(p=placement(vip("node3"))))
    assert (w.head("node1"), w.head("node2")) == (HeadStatus.STANDBY, HeadStatus.STANDBY)
    assert w.alias == ("node3", AliasStatus.HELD)
    assert w.state.cluster.active_head == "node3" and w.state.cluster.status is ClusterStatus.NORMAL


def test_a_head_out_of_the_membership_has_failed(w: World) -> None:
    w.rows.update(view(membership(online=("node1", "node3")), placement(online=("node1", "node3"))))
    assert (w.head("node1"), w.head("node2")) == (HeadStatus.ACTIVE, HeadStatus.FAILED)
    assert w.state.cluster.status is ClusterStatus.DEGRADED


def test_unknown_is_never_guessed(w: World) -> None:
    w.rows.update(view())
    w.rows.update(ClusterView(membership(), None))          # Pacemaker unknown
    assert (w.head("node1"), w.head("node2")) == (HeadStatus.UNKNOWN, HeadStatus.UNKNOWN)
    assert w.alias == ("", AliasStatus.UNKNOWN)
    assert w.state.cluster.status is ClusterStatus.UNKNOWN
    assert w.state.cluster.active_head == "node1"           # the last known holder stands
    w.rows.update(ClusterView(None, placement()))           # Corosync unknown
    assert w.head("node2") is HeadStatus.UNKNOWN and w.state.cluster.status is ClusterStatus.UNKNOWN
    w.rows.update(view())
    assert w.head("node1") is HeadStatus.ACTIVE and w.state.cluster.failover_count == 0


def test_an_ipv6_alias_matches_in_its_canonical_form() -> None:
    w = World(CONFIG.replace('"192.0.2.10"', '"2001:db8:0::10"').replace("= 24", "= 64"))
    w.rows.update(view(p=placement(vip("node2", address="2001:DB8::10"))))
    assert w.alias == ("node2", AliasStatus.HELD) and w.head("node2") is HeadStatus.ACTIVE


def test_the_resource_carrying_the_alias_is_named_for_the_accounting(w: World) -> None:
    assert w.rows.service_resource() == ""
    w.rows.update(view())
    assert w.rows.service_resource() == "vip"
    w.rows.update(ClusterView(membership(), None))          # Pacemaker unknown: the last one known
    assert w.rows.service_resource() == "vip"
    w.rows.update(view(p=placement(resource("web", "node2"))))
    assert w.rows.service_resource() == ""
    w.rows.update(view(p=placement(vip("node2", resource_id="vip:node2"), vip("node3", resource_id="vip:node3"))))
    assert w.rows.service_resource() == "vip"               # a cloned address: its primitive
