"""fcaps.fault.history.EventHistory: numbered, bounded, persisted in SQLite, restored on start."""

from __future__ import annotations

from pathlib import Path

from fcaps.fault.history import EventHistory
from haoscar_snmp.core.events import Event, EventType, Severity
from haoscar_snmp.core.state import State

T0 = 1_700_000_000.0


def event(n: int, subject: str = "web", kind: EventType = EventType.SERVICE_DOWN) -> Event:
    return Event(kind, subject, Severity.MAJOR, f"event {n}", T0 + n)


def test_indexes_start_at_one_and_increase() -> None:
    state = State()
    history = EventHistory(state, None)
    for n in range(3):
        history(event(n))
    assert state.events.keys() == [(1,), (2,), (3,)]
    assert state.event_last_index == 3
    row = state.events[(2,)]
    assert (row.time, row.type, row.subject, row.severity, row.text) == (
        T0 + 1, int(EventType.SERVICE_DOWN), "web", int(Severity.MAJOR), "event 1")


def test_the_table_keeps_only_the_newest_table_size_events() -> None:
    state = State()
    history = EventHistory(state, None, table_size=3)
    for n in range(1, 6):
        history(event(n))
    assert state.events.keys() == [(3,), (4,), (5,)]
    assert [r.text for r in state.events.values()] == ["event 3", "event 4", "event 5"]
    assert state.event_last_index == 5


def test_texts_and_subjects_are_cut_to_the_mib_sizes() -> None:
    state = State()
    history = EventHistory(state, None)
    history(Event(EventType.HEAD_DOWN, "h" * 300, Severity.MAJOR, "t" * 300, T0))
    row = state.events[(1,)]
    assert len(row.subject) == 128 and len(row.text) == 255


def test_history_is_restored_with_the_same_last_index(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    first = State()
    history = EventHistory(first, db, table_size=4)
    for n in range(1, 7):
        history(event(n))
    history.close()

    second = State()
    restored = EventHistory(second, db, table_size=4)
    assert second.event_last_index == 6
    assert second.events.items() == first.events.items()  # the newest 4, same rows
    restored(event(7))
    assert second.events.keys() == [(4,), (5,), (6,), (7,)]
    assert second.event_last_index == 7
    restored.close()


def test_a_smaller_table_after_restart_shows_the_newest_rows(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    history = EventHistory(State(), db, table_size=10)
    for n in range(1, 9):
        history(event(n))
    history.close()
    state = State()
    EventHistory(state, db, table_size=3).close()
    assert state.events.keys() == [(6,), (7,), (8,)]
    assert state.event_last_index == 8


def test_an_empty_database_starts_at_zero(tmp_path: Path) -> None:
    state = State()
    EventHistory(state, tmp_path / "events.db").close()
    assert state.event_last_index == 0
    assert len(state.events) == 0



def test_a_restored_subject_is_still_cut_to_the_mib_size(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    history = EventHistory(State(), db)
    history(Event(EventType.HEAD_DOWN, "h" * 300, Severity.MAJOR, "down", T0))
    history.close()
    state = State()
    EventHistory(state, db).close()
    assert len(state.events[(1,)].subject) <= 128


def test_events_after_the_index_wraps_stay_in_the_table() -> None:
    state = State()
    history = EventHistory(state, None, table_size=3)
    state.event_last_index = 0xFFFFFFFF - 3
    for n in range(4):  # indexes 4294967293, 4294967294, 4294967295, then 1
        history(event(n))
    assert state.event_last_index == 1
    assert len(state.events) == 3
    assert (1,) in state.events  # the newest event must be readable
    assert state.events[(1,)].text == "event 3"


def test_a_version_0_history_file_is_migrated_and_kept(tmp_path) -> None:
    import sqlite3

    from fcaps.fault.history import EventHistory
    from haoscar_snmp.core.state import State

    db = tmp_path / "history.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE events (idx INTEGER PRIMARY KEY, time REAL NOT NULL, type INTEGER NOT NULL, "
                "subject TEXT NOT NULL, severity INTEGER NOT NULL, text TEXT NOT NULL)")
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                    [(i, 1.0 * i, 1, f"s{i}", 7, f"t{i}") for i in (1, 2, 3)])
    con.commit()
    con.close()
    state = State()
    history = EventHistory(state, db)
    assert state.event_last_index == 3 and [k[0] for k in state.events.keys()] == [1, 2, 3]
    history.close()
