"""The cluster watch and its stale-address check, on fakes: the tables it writes, the
events it publishes, the alarm it raises and clears; and every new MIB object served
through the bindings with a view in the state."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import pytest
from clusterviews import membership, placement, resource, view, vip
from fakes import EventRecorder, FakeClock

from fcaps.configuration.mibmap import CONFIG_MAP
from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.fault.cluster.model import ClusterView
from fcaps.fault.cluster.watch import ClusterWatch
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import EventBus, EventType, Severity
from haoscar_snmp.core.state import ClusterLinkRow, ClusterNodeRow, ResourceRow, State
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.notify import NotificationBuilder
from haoscar_snmp.snmp.view import MibView

T = EventType


class FakeAddresses:
    """This node's addresses, as a test sets them; `fail` makes the next read fail."""

    def __init__(self, **addresses: str) -> None:
        self.map: dict[str, str] = dict(addresses)
        self.reads = 0
        self.fail = False

    async def addresses(self) -> dict[str, str]:
        self.reads += 1
        if self.fail:
            raise OSError("netlink: no answer")
        return dict(self.map)


class Rig:
    def __init__(self, local: dict[str, str] | None = None, hold: float = 5.0) -> None:
        self.state, self.bus, self.clock = State(), EventBus(), FakeClock()
        self.events = EventRecorder()
        self.bus.subscribe("test", self.events)
        self.alarms = Alarms(self.state, self.bus, self.clock)
        self.local = FakeAddresses(**(local or {}))
        self.watch = ClusterWatch(self.state, self.bus, self.clock, self.alarms, self.local, "node1",
                                  stale_hold=hold)

    async def give(self, v: ClusterView) -> None:
        self.watch.update(v)
        await self.watch.settled()

    def types(self) -> list[EventType]:
        return [t for t in self.events.types() if t not in (T.ALARM_RAISED, T.ALARM_CLEARED)]


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 5.0))


def test_the_first_view_fills_the_tables() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        s = rig.state
        assert (s.membership.known, s.membership.placement_known, s.membership.quorate) == (True, True, True)
        assert (s.membership.expected_votes, s.membership.total_votes, s.membership.ring_id,
                s.membership.token_ms, s.membership.local_node_id, s.membership.dc) == (3, 3, "1.11", 3000, 1, "node1")
        assert s.cluster_nodes[(1,)] == ClusterNodeRow("node1", 1, True, True, False, False, False, True, True)
        assert s.cluster_nodes[(3,)] == ClusterNodeRow("node3", 1, True, True, False, False, False, False, False)
        assert s.cluster_links.keys() == [(2, 0), (2, 1), (3, 0), (3, 1)]
        assert s.cluster_links[(2, 0)] == ClusterLinkRow(True, 300)
        assert s.cluster_links[(2, 1)] == ClusterLinkRow(True, 0)     # latency not reported
        assert [r.resource_id for r in s.resources.values()] == ["vip", "web"]
        assert s.resources[(1,)] == ResourceRow("vip", "ocf:heartbeat:IPaddr2", "Started", "node1", False, 0,
                                                "ok", "192.0.2.10")
        assert s.membership.changes == 1 and s.membership.last_changed == rig.clock.monotonic()
        assert rig.types() == [T.MEMBERSHIP_RECOVERED, T.MEMBERSHIP_RECOVERED]
    run(body)


def test_an_equal_view_writes_nothing_and_a_latency_counts_no_change() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        await rig.give(view())
        assert rig.state.membership.changes == 1
        await rig.give(view(membership(latency=750)))
        assert rig.state.cluster_links[(2, 0)].latency_us == 750
        assert rig.state.membership.changes == 1 and len(rig.types()) == 2
        await rig.give(view(p=placement(node2={"standby": True})))    # no notification, but a change
        assert rig.state.cluster_nodes[(2,)].standby and rig.state.membership.changes == 2
        assert len(rig.types()) == 2
    run(body)


def test_a_node_leaving_writes_the_row_then_tells() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        seen: list[bool] = []
        rig.bus.subscribe("row", lambda e: seen.append(rig.state.cluster_nodes[(3,)].member))
        await rig.give(view(membership(online=("node1", "node2"))))
        left = rig.events.events[-1]
        assert (left.type, left.subject, left.severity, left.data["node_id"]) == (
            T.CLUSTER_NODE_LEFT, "node3", Severity.MAJOR, 3)
        assert seen == [False]
        assert rig.state.cluster_links[(3, 0)] == ClusterLinkRow(False, 300)
    run(body)


def test_quorum_lost_then_regained() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        await rig.give(view(membership(online=("node1",), quorate=False)))
        assert rig.types()[-1] == T.QUORUM_LOST and not rig.state.membership.quorate
        assert rig.state.membership.total_votes == 1
        await rig.give(view())
        assert rig.types()[-1] == T.QUORUM_REGAINED
    run(body)


def test_corosync_unknown_keeps_the_last_quorum_and_empties_the_links() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        rig.watch.set_membership(None)
        await rig.watch.settled()
        s = rig.state
        assert rig.types()[-1] == T.MEMBERSHIP_UNKNOWN and rig.events.events[-1].subject == "corosync"
        assert not s.membership.known and s.membership.quorate and s.membership.ring_id == "1.11"
        assert len(s.cluster_links) == 0
        assert [(k, r.member, r.online, r.votes) for k, r in s.cluster_nodes.items()] == [
            ((1,), False, True, 0), ((2,), False, True, 0), ((3,), False, True, 0)]
        assert s.cluster_nodes[(1,)].is_local     # by name, while Corosync is unknown
    run(body)


def test_pacemaker_unknown_empties_the_resources_and_keeps_their_indexes() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        rig.watch.set_placement(None)
        await rig.watch.settled()
        assert len(rig.state.resources) == 0 and rig.state.membership.dc == ""
        assert not rig.state.membership.placement_known
        assert rig.types()[-1] == T.MEMBERSHIP_UNKNOWN and rig.events.events[-1].subject == "pacemaker"
        rig.watch.set_placement(placement(resource("db", "node3"), vip(), resource("web", "node2")))
        await rig.watch.settled()
        assert {r.resource_id: k for k, r in rig.state.resources.items()} == {"vip": (1,), "web": (2,), "db": (3,)}
    run(body)


def test_resource_events_carry_the_row_index_and_a_gone_row_its_last_values() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        await rig.give(view(p=placement(vip("node2"))))
        moved, gone = rig.events.events[-2:]
        assert (moved.type, moved.subject, moved.data["resource_index"], moved.data["old"], moved.data["new"]) == (
            T.RESOURCE_MOVED, "vip", 1, "Started on node1", "Started on node2")
        assert gone.subject == "web" and gone.data["resource_index"] == 2
        assert gone.data["haoscarResourceId"] == "web" and gone.data["haoscarResourceNode"] == ""
        assert (2,) not in rig.state.resources
    run(body)


def test_a_move_through_transitional_roles_is_one_event_from_the_settled_place() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        for v in (placement(vip(role="Stopping"), resource("web", "node2")),
                  placement(vip("node2", role="Starting"), resource("web", "node2")),
                  placement(vip("node2"), resource("web", "node2"))):
            await rig.give(view(p=v))
        moved = [e for e in rig.events.events if e.type == T.RESOURCE_MOVED]
        assert [(e.data["old"], e.data["new"]) for e in moved] == [("Started on node1", "Started on node2")]
        assert moved[0].text == "resource vip: Started on node1 -> Started on node2"
        # a restart in place: nothing told
        for v in (placement(vip("node2", role="Stopping"), resource("web", "node2")),
                  placement(vip("node2", role="Starting"), resource("web", "node2")),
                  placement(vip("node2"), resource("web", "node2"))):
            await rig.give(view(p=v))
        assert len([e for e in rig.events.events if e.type == T.RESOURCE_MOVED]) == 1
    run(body)


def test_a_failure_recovered_in_place() -> None:
    async def body() -> None:
        rig = Rig()
        await rig.give(view())
        await rig.give(view(p=placement(vip(), resource("web", "node2", fail_count=1))))
        assert rig.types()[-2:] == [T.RESOURCE_FAILED, T.RESOURCE_RECOVERED]
        assert rig.state.resources[(2,)].fail_count == 1
    run(body)


# -- the stale-address check ---------------------------------------------------------------

def stale_alarm(rig: Rig) -> bool:
    return rig.alarms.active(ProbableCause.STALE_ADDRESS, "192.0.2.10")


def test_an_address_left_here_is_raised_after_the_hold_and_cleared_when_gone() -> None:
    async def body() -> None:
        rig = Rig({"192.0.2.10": "eth1"})
        await rig.give(view())                      # vip runs here: right
        assert not stale_alarm(rig)
        moved = view(p=placement(vip("node2"), resource("web", "node2")))
        await rig.give(moved)                       # the stop left it: suspected only
        assert not stale_alarm(rig)
        rig.clock.advance(5)
        await rig.give(moved)
        assert stale_alarm(rig)
        stale = [e for e in rig.events.events if e.type == T.ADDRESS_STALE]
        assert len(stale) == 1 and stale[0].subject == "192.0.2.10" and stale[0].data["resource_index"] == 1
        assert "eth1" in stale[0].text and "started on node2" in stale[0].text
        rig.clock.advance(30)
        await rig.give(moved)                       # still on: one alarm, one event
        assert [e.type for e in rig.events.events].count(T.ADDRESS_STALE) == 1
        index = next(k for k, r in rig.state.alarms.items() if r.probable_cause == ProbableCause.STALE_ADDRESS)
        del rig.local.map["192.0.2.10"]
        await rig.give(moved)
        assert not stale_alarm(rig) and rig.types()[-1] == T.ADDRESS_STALE_CLEARED
        cleared = next(e for e in rig.events.events if e.type == T.ALARM_CLEARED)
        assert cleared.data["alarm_index"] == index[0]
    run(body)


def test_a_stopped_resource_with_its_address_here_is_stale_and_clears_when_placed_here() -> None:
    async def body() -> None:
        rig = Rig({"192.0.2.10": "eth1"}, hold=0)
        await rig.give(view(p=placement(vip(""), resource("web", "node2"))))
        assert stale_alarm(rig)
        await rig.give(view())
        assert not stale_alarm(rig)
    run(body)


def test_a_blip_shorter_than_the_hold_is_nothing() -> None:
    async def body() -> None:
        rig = Rig({"192.0.2.10": "eth1"})
        await rig.give(view(p=placement(vip("node2"), resource("web", "node2"))))
        rig.clock.advance(2)
        del rig.local.map["192.0.2.10"]
        await rig.give(view(p=placement(vip("node2"), resource("web", "node2"))))
        rig.clock.advance(10)
        await rig.give(view(p=placement(vip("node2"), resource("web", "node2"))))
        assert not stale_alarm(rig) and T.ADDRESS_STALE not in rig.types()
    run(body)


def test_ipv6_addresses_compare_in_canonical_form() -> None:
    async def body() -> None:
        rig = Rig({"2001:db8::20": "eth1"}, hold=0)
        await rig.give(view(p=placement(vip("node2", address="2001:DB8:0::20"))))
        assert rig.alarms.active(ProbableCause.STALE_ADDRESS, "2001:db8::20")
    run(body)


def test_unknown_placement_decides_nothing_and_a_failed_read_neither() -> None:
    async def body() -> None:
        rig = Rig({"192.0.2.10": "eth1"}, hold=0)
        await rig.give(view(p=placement(vip("node2"))))
        assert stale_alarm(rig)
        await rig.give(ClusterView(membership(), None))
        assert stale_alarm(rig)                         # stands while unknown
        rig.local.fail = True
        await rig.give(view(p=placement(vip("node1"))))
        assert stale_alarm(rig)                         # cannot tell: stands
        rig.local.fail = False
        await rig.give(view(p=placement(vip("node1"))))
        assert not stale_alarm(rig)
    run(body)


def test_a_cloned_address_running_here_is_not_stale_for_its_other_instances() -> None:
    async def body() -> None:
        rig = Rig({"192.0.2.10": "eth1"}, hold=0)
        clone = [resource(f"ip:{n}", n, agent="ocf:heartbeat:IPaddr2", address="192.0.2.10")
                 for n in ("node1", "node2")]
        await rig.give(view(p=placement(*clone)))
        assert not stale_alarm(rig)
        await rig.give(view(p=placement(clone[1])))     # the instance here stopped, the address stayed
        assert stale_alarm(rig)
    run(body)


def test_the_local_node_is_corosyncs_local_id() -> None:
    async def body() -> None:
        rig = Rig({"192.0.2.10": "eth1"}, hold=0)
        await rig.give(view(membership(local=2), placement(vip("node2"))))
        assert not stale_alarm(rig)                     # this is node2, where it runs
    run(body)


def test_checks_run_one_at_a_time_and_coalesce() -> None:
    async def body() -> None:
        rig = Rig()
        for _ in range(5):
            rig.watch.update(view())
        await rig.watch.settled()
        assert rig.local.reads == 2
        await rig.watch.stop()
    run(body)


# -- the MIB ---------------------------------------------------------------------------------

@pytest.fixture
def served(mib: MibModel, cfg: Config) -> tuple[Rig, MibView]:
    rig = Rig()

    async def body() -> None:
        await rig.give(view())
        await rig.give(view(p=placement(vip(), resource("web", "node2", failed=True, fail_count=3,
                                                        last_result="error"))))
    run(body)
    mib_view = MibView(mib)
    bind_all(mib_view, rig.state, lambda: cfg, CONFIG_MAP, lambda m: 4200, lambda: 0)
    return rig, mib_view


def test_every_object_of_the_subtree_is_in_a_walk(mib: MibModel, served: tuple[Rig, MibView]) -> None:
    _, mib_view = served
    root = mib["haoscarMembershipKnown"].oid[:-1]         # haoscarMembership
    walked, oid = [], root
    for _ in range(1000):
        found = mib_view.next(oid)
        if found is None or found[0][: len(root)] != root:
            break
        oid = found[0]
        walked.append(oid)
    names = {o.name for o in mib.objects.values() if o.oid[: len(root)] == root
             and o.node in ("scalar", "column") and o.access != "not-accessible"}
    seen = {o.name for o in mib.objects.values() for w in walked if w[: len(o.oid)] == o.oid
            and o.node in ("scalar", "column")}
    assert names and seen == names
    assert len(walked) == 11 + 3 * 9 + 4 * 2 + 2 * 8


def test_values_as_the_mib_shows_them(mib: MibModel, served: tuple[Rig, MibView]) -> None:
    _, v = served
    assert int(v.get(mib["haoscarMembershipKnown"].oid + (0,))) == 1          # TruthValue true
    assert int(v.get(mib["haoscarMembershipLastChanged"].oid + (0,))) == 4200
    assert bytes(v.get(mib["haoscarQuorumRingId"].oid + (0,))) == b"1.11"
    assert int(v.get(mib["haoscarClusterNodeStandby"].oid + (2,))) == 2       # false
    assert int(v.get(mib["haoscarClusterLinkLatency"].oid + (2, 0))) == 300
    assert bytes(v.get(mib["haoscarResourceAddress"].oid + (1,))) == b"192.0.2.10"
    assert int(v.get(mib["haoscarResourceIsFailed"].oid + (2,))) == 1
    assert int(v.get(mib["haoscarResourceFailCount"].oid + (2,))) == 3


def test_notifications_carry_the_rows_objects(mib: MibModel, served: tuple[Rig, MibView]) -> None:
    rig, v = served
    builder = NotificationBuilder(mib, v)
    by_name = {o.oid: o.name for o in mib.objects.values()}

    def named(event_type: EventType) -> dict[str, object]:
        event = next(e for e in reversed(rig.events.events) if e.type == event_type)
        binds = builder.build(event)
        assert binds is not None
        return {by_name[oid[:-1]] if oid[:-1] in by_name else by_name[oid[:-2]]: value for oid, value in binds[1:]}

    async def body() -> None:
        await rig.give(view(membership(online=("node1", "node2")),
                            placement(vip("node2"), resource("web", "node2", failed=True, fail_count=3,
                                                              last_result="error"))))
    run(body)
    left = named(T.CLUSTER_NODE_LEFT)
    assert bytes(left["haoscarClusterNodeName"]) == b"node3" and int(left["haoscarClusterNodeMember"]) == 2
    moved = named(T.RESOURCE_MOVED)
    assert bytes(moved["haoscarResourceId"]) == b"vip" and bytes(moved["haoscarResourceNode"]) == b"node2"
    assert bytes(moved["haoscarNotifyOldValue"]) == b"Started on node1"
    failed = named(T.RESOURCE_FAILED)
    assert int(failed["haoscarResourceFailCount"]) == 3 and bytes(failed["haoscarResourceLastResult"]) == b"error"
