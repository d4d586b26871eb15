"""core.state.Table: rows kept by MIB index, the sorted key order cached between changes."""

from __future__ import annotations

from haoscar_snmp.core.state import Table


def make_table(*keys: tuple[int, ...]) -> Table:
    table: Table = Table()
    for key in keys:
        table.put(key, f"row{key}")
    return table


def test_keys_are_sorted_whatever_the_insertion_order() -> None:
    table = make_table((10,), (2,), (33,), (1,))
    assert table.keys() == [(1,), (2,), (10,), (33,)]
    assert list(table) == [(1,), (2,), (10,), (33,)]


def test_multi_part_keys_sort_lexicographically_like_oids() -> None:
    table = make_table((2, 1), (1, 2), (1, 1), (10, 1))
    assert table.keys() == [(1, 1), (1, 2), (2, 1), (10, 1)]


def test_sorted_keys_are_cached_between_reads() -> None:
    table = make_table((3,), (1,))
    assert table.keys() is table.keys()


def test_replacing_an_existing_row_keeps_the_cached_order() -> None:
    table = make_table((3,), (1,))
    before = table.keys()
    table.put((3,), "replaced")
    assert table.keys() is before
    assert table[(3,)] == "replaced"


def test_adding_a_row_invalidates_the_cached_order() -> None:
    table = make_table((3,), (1,))
    before = table.keys()
    table.put((2,), "new")
    assert table.keys() is not before
    assert table.keys() == [(1,), (2,), (3,)]


def test_removing_a_row_invalidates_the_cached_order() -> None:
    table = make_table((3,), (1,), (2,))
    before = table.keys()
    assert table.remove((2,)) == "row(2,)"
    assert table.keys() is not before
    assert table.keys() == [(1,), (3,)]


def test_removing_a_missing_row_changes_nothing() -> None:
    table = make_table((1,))
    before = table.keys()
    assert table.remove((7,)) is None
    assert table.keys() is before
    assert len(table) == 1


def test_clear_empties_the_table() -> None:
    table = make_table((1,), (2,))
    table.keys()
    table.clear()
    assert len(table) == 0
    assert table.keys() == []
    table.put((5,), "again")
    assert table.keys() == [(5,)]


def test_items_and_values_follow_key_order() -> None:
    table: Table = Table()
    table.put((3,), "c")
    table.put((1,), "a")
    table.put((2,), "b")
    assert table.items() == [((1,), "a"), ((2,), "b"), ((3,), "c")]
    assert table.values() == ["a", "b", "c"]
    table.put((2,), "B")  # replaced in place: same position, new value
    assert table.values() == ["a", "B", "c"]


def test_get_contains_len_and_getitem() -> None:
    table = make_table((4,))
    assert (4,) in table
    assert (5,) not in table
    assert table.get((5,)) is None
    assert table.get((4,)) == "row(4,)"
    assert table[(4,)] == "row(4,)"
    assert len(table) == 1
