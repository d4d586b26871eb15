"""The event history: every event, kept in SQLite and published in haoscarEventTable.

Retention rule: the MIB table shows the newest `table_size` events; the SQLite file
(WAL mode, in the state directory) keeps the newest `keep` events and deletes older ones
as new ones arrive. Event indexes keep counting across restarts, so an NMS that remembers
haoscarEventLastIndex can tell exactly which events it missed.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from pathlib import Path

from haoscar_snmp.core.events import Event, Severity
from haoscar_snmp.core.state import EventRow, State

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order, survives the index wrapping
    idx INTEGER NOT NULL,                   -- haoscarEventIndex
    time REAL NOT NULL,
    type INTEGER NOT NULL,
    subject TEXT NOT NULL,
    severity INTEGER NOT NULL,
    text TEXT NOT NULL
)
"""


class EventHistory:
    """Event-bus consumer and sole writer of `state.events` / `state.event_last_index`."""

    def __init__(self, state: State, db_path: Path | None, *, table_size: int = 500,
                 keep: int = 100_000) -> None:
        self.state = state
        self.table_size = table_size
        self.keep = keep
        self._db: sqlite3.Connection | None = None
        self._order: deque[tuple[int]] = deque()  # table keys, oldest first
        self._unwritten: list[tuple] = []
        self._flush_scheduled = False
        if db_path is not None:
            self._db = sqlite3.connect(db_path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoint, never corrupt
            self._migrate()
            self._restore()

    def _migrate(self) -> None:
        """Bring an older history file to the current schema (PRAGMA user_version)."""
        assert self._db is not None
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(events)")]
        if columns and "seq" not in columns:
            # Version 0 keyed rows by idx alone; keep its rows, in index order.
            self._db.execute("ALTER TABLE events RENAME TO events_v0")
            self._db.execute(_SCHEMA)
            self._db.execute("INSERT INTO events (idx, time, type, subject, severity, text) "
                             "SELECT idx, time, type, subject, severity, text FROM events_v0 ORDER BY idx")
            self._db.execute("DROP TABLE events_v0")
            log.info("event history migrated to schema version %d", SCHEMA_VERSION)
        else:
            self._db.execute(_SCHEMA)
        if version != SCHEMA_VERSION:
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _restore(self) -> None:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT idx, time, type, subject, severity, text FROM events "
            "ORDER BY seq DESC LIMIT ?", (self.table_size,)).fetchall()
        for idx, time, etype, subject, severity, text in reversed(rows):
            self.state.events.put((idx,), EventRow(time, etype, subject[:128], severity, text[:255]))
            self._order.append((idx,))
        if rows:
            self.state.event_last_index = rows[0][0]

    def __call__(self, event: Event) -> None:
        idx = self.state.event_last_index + 1
        if idx > 0xFFFFFFFF:  # the index is Unsigned32; wrap as the MIB describes
            idx = 1
        text, subject = event.text[:255], event.subject[:128]  # the MIB's SIZE limits
        self.state.events.put((idx,), EventRow(event.time, int(event.type), subject,
                                               int(event.severity), text))
        self._order.append((idx,))
        self.state.event_last_index = idx
        while len(self._order) > self.table_size:  # oldest out, by arrival, not by index
            self.state.events.remove(self._order.popleft())
        level = logging.INFO if event.severity in (Severity.CLEARED, Severity.INFO) else logging.WARNING
        log.log(level, "event %d %s %s: %s", idx, event.type.name, event.subject, event.text)
        if self._db is None:
            return
        self._unwritten.append((idx, event.time, int(event.type), subject, int(event.severity), text))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (unit tests, shutdown): write at once
            self._flush()
            return
        if not self._flush_scheduled:
            # One transaction per loop turn: a failover publishes about ten events, and
            # writing each on its own would sit in the takeover's path.
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        rows, self._unwritten = self._unwritten, []
        if self._db is None or not rows:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO events (idx, time, type, subject, severity, text) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
                last = self._db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
                if last // 1000 != (last - len(rows)) // 1000:  # every ~1000 events
                    self._db.execute("DELETE FROM events WHERE seq <= ?", (last - self.keep,))
        except sqlite3.Error:
            log.exception("could not record %d event(s) in the history database", len(rows))

    def close(self) -> None:
        self._flush()
        if self._db is not None:
            self._db.close()
            self._db = None


def read_events(path: Path, types: set[int], since: float, until: float) -> list[dict[str, object]]:
    """The events of `types` recorded in the history file between two wall-clock times,
    oldest first; read-only, so it works while the daemon writes (WAL)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(types))
        rows = db.execute(f"SELECT idx, time, type, subject, severity, text FROM events "
                          f"WHERE type IN ({marks}) AND time >= ? AND time <= ? ORDER BY seq",
                          (*sorted(types), since, until)).fetchall()
    finally:
        db.close()
    return [{"index": idx, "time": time, "type": etype, "subject": subject, "severity": severity, "text": text}
            for idx, time, etype, subject, severity, text in rows]
