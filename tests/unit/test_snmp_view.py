"""snmp.view.MibView over the live state: GET, GETNEXT, and walks in OID order."""

from __future__ import annotations

from typing import Any

import pytest

from fcaps.configuration.apply import apply_to_state
from fcaps.configuration.mibmap import CONFIG_MAP
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import (
    EventRow,
    HbPathRow,
    Lan,
    LanIfRow,
    ServiceRow,
    State,
)
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import OID, MibModel
from haoscar_snmp.snmp.view import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, MibView


@pytest.fixture
def state(cfg: Config) -> State:
    state = State()
    apply_to_state(cfg, state)
    state.lan_ifs.put((1,), LanIfRow(node="head1", lan=Lan.LAN_A, name="lo", address="127.0.0.1"))
    return state


@pytest.fixture
def view(mib: MibModel, cfg: Config, state: State) -> MibView:
    view = MibView(mib)
    bind_all(view, state, lambda: cfg, CONFIG_MAP, lambda m: 0, lambda: 0)
    return view


def walk(view: MibView, start: OID, prefix: OID | None = None) -> list[tuple[OID, Any]]:
    """GETNEXT from `start` until the end of the MIB (or until leaving `prefix`)."""
    out = []
    oid = start
    while True:
        found = view.next(oid)
        if found is None or (prefix is not None and found[0][: len(prefix)] != prefix):
            return out
        out.append(found)
        oid = found[0]


def col(mib: MibModel, name: str, *index: int) -> OID:
    return mib[name].oid + index


def scalar(mib: MibModel, name: str) -> OID:
    return mib[name].oid + (0,)


def test_a_full_walk_is_strictly_increasing_and_agrees_with_get(view: MibView, mib: MibModel) -> None:
    visited = walk(view, mib.root)
    oids = [oid for oid, _ in visited]
    assert oids == sorted(set(oids))  # strictly increasing: no repeats, no going back
    assert all(oid[: len(mib.root)] == mib.root for oid in oids)
    assert view.next(oids[-1]) is None
    for oid, value in visited:
        assert view.get(oid) == value, oid


def test_walk_raw_gives_what_next_gives_step_by_step(view: MibView, mib: MibModel, state: State) -> None:
    """The fast path's streaming walk reads a column's rows in turn; it must visit exactly
    the instances, values and order that GETNEXT one step at a time does, from anywhere."""
    state.lan_ifs.put((3,), LanIfRow(node="head2", lan=Lan.LAN_B, name="eth1", address="10.0.0.3"))
    stepped = walk(view, mib.root)
    for start in (mib.root, stepped[5][0], col(mib, "haoscarLanIfName"), col(mib, "haoscarLanIfName", 1),
                  stepped[-2][0], stepped[-1][0]):
        expected = [(oid, value) for oid, value in stepped if oid > start]
        got = [(oid, node.encode(raw)) for oid, node, raw in view.walk_raw(start)]
        assert got == expected, start


def test_a_full_walk_visits_every_readable_scalar_and_configured_row(view: MibView, mib: MibModel,
                                                                    state: State) -> None:
    oids = {oid for oid, _ in walk(view, mib.root)}
    readable = [o for o in mib.objects.values() if o.node == "scalar" and o.readable]
    assert all(o.oid + (0,) in oids for o in readable)
    assert {col(mib, "haoscarServiceName", k[0]) for k in state.services.keys()} <= oids
    assert col(mib, "haoscarServiceName", 1) in oids and col(mib, "haoscarServiceName", 2) in oids
    assert col(mib, "haoscarLanIfName", 1) in oids


def test_a_walk_from_before_the_mib_starts_at_its_first_instance(view: MibView, mib: MibModel) -> None:
    first = view.next((1, 3))
    assert first is not None
    assert first[0] == scalar(mib, "haoscarClusterName")
    assert first == view.next(mib.root)


def test_next_past_the_end_of_the_mib_is_none(view: MibView) -> None:
    assert view.next((1, 3, 6, 1, 4, 1, 32473, 2)) is None
    assert view.next((2,)) is None


def test_get_answers_no_such_object_for_names_that_are_not_objects(view: MibView, mib: MibModel) -> None:
    for oid in (mib.root,
                mib["haoscarServiceTable"].oid,
                mib["haoscarServiceEntry"].oid,
                col(mib, "haoscarServiceIndex", 1),     # the not-accessible index column
                scalar(mib, "haoscarNotifyTime"),       # accessible-for-notify only
                mib.root + (1, 99, 0),
                (1, 3, 6, 1, 2, 1, 1, 1, 0)):
        assert view.get(oid) is NO_SUCH_OBJECT, oid


def test_get_answers_no_such_instance_for_bad_instances(view: MibView, mib: MibModel) -> None:
    for oid in (mib["haoscarClusterName"].oid + (1,),   # a scalar has only .0
                mib["haoscarClusterName"].oid,          # ... and not the bare name
                mib["haoscarClusterName"].oid + (0, 0),
                col(mib, "haoscarServiceName", 99),     # no such row
                col(mib, "haoscarServiceName"),
                col(mib, "haoscarServiceName", 1, 1)):
        assert view.get(oid) is NO_SUCH_INSTANCE, oid


def test_get_reads_the_state_at_request_time(view: MibView, mib: MibModel, state: State) -> None:
    assert view.get(scalar(mib, "haoscarClusterName")).asOctets() == b"demo"
    assert view.get(col(mib, "haoscarServiceName", 2)).asOctets() == b"tmp-writable"
    state.cluster.name = "renamed"
    state.services[(2,)].name = "tmp-check"
    assert view.get(scalar(mib, "haoscarClusterName")).asOctets() == b"renamed"
    assert view.get(col(mib, "haoscarServiceName", 2)).asOctets() == b"tmp-check"


def test_next_from_a_missing_index_lands_on_the_next_existing_row(view: MibView, mib: MibModel,
                                                                 state: State) -> None:
    state.services.put((7,), ServiceRow(name="seven", check="true"))
    name = mib["haoscarServiceName"].oid
    assert view.next(name + (3,))[0] == name + (7,)        # between rows 2 and 7
    assert view.next(name + (1, 5))[0] == name + (2,)      # a longer name inside row 1's subtree
    assert view.next(name + (0,))[0] == name + (1,)
    # past the last row: the first row of the next column
    assert view.next(name + (8,))[0] == mib["haoscarServiceCheck"].oid + (1,)


def test_next_from_a_partial_two_part_index(view: MibView, mib: MibModel, state: State) -> None:
    state.hb_paths.put((2, 1), HbPathRow())
    state.hb_paths.put((2, 2), HbPathRow())
    status = mib["haoscarHbPathStatus"].oid
    assert view.next(status + (2,))[0] == status + (2, 1)
    assert view.next(status + (2, 1))[0] == status + (2, 2)
    assert view.get(status + (2,)) is NO_SUCH_INSTANCE


def test_rows_added_after_a_walk_appear_in_the_next_walk(view: MibView, mib: MibModel,
                                                         state: State) -> None:
    name = mib["haoscarServiceName"].oid
    first = [oid for oid, _ in walk(view, name, name)]
    assert first == [name + (1,), name + (2,)]
    state.services.put((5,), ServiceRow(name="five", check="true"))
    state.services.put((3,), ServiceRow(name="three", check="true"))
    second = [oid for oid, _ in walk(view, name, name)]
    assert second == [name + (1,), name + (2,), name + (3,), name + (5,)]
    state.services.remove((2,))
    third = [oid for oid, _ in walk(view, name, name)]
    assert third == [name + (1,), name + (3,), name + (5,)]


def test_a_table_of_5000_rows_is_walked_completely(view: MibView, mib: MibModel, state: State) -> None:
    for i in range(1, 5001):
        state.events.put((i,), EventRow(1_700_000_000.0 + i, 12, f"svc{i}", 4, f"event {i}"))
    state.event_last_index = 5000
    table = mib["haoscarEventTable"].oid
    visited = walk(view, table, table)
    readable_columns = [c for c in mib.columns("haoscarEventEntry") if c.readable]
    assert len(visited) == 5000 * len(readable_columns)
    text = mib["haoscarEventText"].oid
    texts = [(oid, v) for oid, v in visited if oid[: len(text)] == text]
    assert [oid[-1] for oid, _ in texts] == list(range(1, 5001))
    assert texts[-1][1].asOctets() == b"event 5000"
    # the walk goes on past the table into the next object
    after = view.next(visited[-1][0])
    assert after is not None and after[0][: len(table)] != table
