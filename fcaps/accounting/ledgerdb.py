"""The outage ledger's file: `STATE_DIR/accounting.sqlite`, SQLite in WAL mode.

WAL lets `haoscar-snmp report` read while the daemon writes. Every change is its own
small transaction, written when it happens (synchronous=NORMAL: a transaction
committed before a `kill -9` is kept; only a power loss can take the last ones back),
so a crash loses at most the time since the last-alive mark of the run. Times are
ledger times (`timeline.py`); `*_wall` columns are the wall clock as read, for people.

    anchor    the ledger time's anchor for the current boot (one row)
    runs      one row per run of the agent: start, last-alive mark, whether it stopped
    subjects  (kind, name) -> a stable index (haoscarAcctIndex), first seen
    outages   subject, run, start, end (NULL while open), cause, note
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .timeline import Anchor

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    boot_id TEXT NOT NULL, wall REAL NOT NULL, mono REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    start REAL NOT NULL, last REAL NOT NULL, stopped INTEGER NOT NULL DEFAULT 0,
    start_wall REAL NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL, name TEXT NOT NULL, first_seen REAL NOT NULL,
    continuous INTEGER NOT NULL DEFAULT 0,      -- watched all the time (this head itself)
    UNIQUE (kind, name));
CREATE TABLE IF NOT EXISTS outages (
    id INTEGER PRIMARY KEY,
    subject INTEGER NOT NULL REFERENCES subjects (id),
    run INTEGER NOT NULL,
    start REAL NOT NULL, "end" REAL,
    cause TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    start_wall REAL NOT NULL, end_wall REAL);
CREATE INDEX IF NOT EXISTS outages_by_end ON outages ("end");
CREATE INDEX IF NOT EXISTS outages_by_subject ON outages (subject, start);
"""


@dataclass(frozen=True)
class Run:
    id: int
    start: float
    last: float
    stopped: bool


@dataclass(frozen=True)
class Subject:
    id: int
    kind: int
    name: str
    first_seen: float
    continuous: bool = False


@dataclass(frozen=True)
class Outage:
    id: int
    subject: int
    run: int
    start: float
    end: float | None
    cause: str
    note: str
    start_wall: float
    end_wall: float | None


class LedgerFile:
    """Reads and writes the ledger; `readonly` for the report command."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            return
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=2000")
        if self._version() != SCHEMA_VERSION:
            self.db.executescript(_SCHEMA)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction for several changes (a LAN failure opens hundreds of outages at
        once: one commit, not hundreds); nested uses join the outer one."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- the anchor and the runs ---------------------------------------------------------

    def anchor(self) -> Anchor | None:
        row = self.db.execute("SELECT boot_id, wall, mono FROM anchor").fetchone()
        return Anchor(*row) if row else None

    def latest_time(self) -> float:
        """The latest ledger time recorded (0 for a new ledger)."""
        row = self.db.execute("SELECT max(last) FROM runs").fetchone()
        return float(row[0] or 0.0)

    def begin_run(self, anchor: Anchor, start: float, wall: float) -> int:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO anchor (id, boot_id, wall, mono) VALUES (1, ?, ?, ?)",
                            (anchor.boot_id, anchor.wall, anchor.mono))
            cur = self.db.execute("INSERT INTO runs (start, last, start_wall) VALUES (?, ?, ?)",
                                  (start, start, wall))
        return int(cur.lastrowid or 0)

    def mark(self, run: int, now: float, *, stopped: bool = False) -> None:
        self.db.execute("UPDATE runs SET last = max(last, ?), stopped = ? WHERE id = ?", (now, int(stopped), run))

    def runs(self, since: float = float("-inf")) -> list[Run]:
        return [Run(i, s, last, bool(stopped)) for i, s, last, stopped in self.db.execute(
            "SELECT id, start, last, stopped FROM runs WHERE last >= ? ORDER BY start", (since,))]

    def run(self, run_id: int) -> Run | None:
        row = self.db.execute("SELECT id, start, last, stopped FROM runs WHERE id = ?", (run_id,)).fetchone()
        return Run(row[0], row[1], row[2], bool(row[3])) if row else None

    # -- subjects and outages -------------------------------------------------------------

    def subjects(self) -> list[Subject]:
        return [Subject(i, kind, name, first, bool(continuous)) for i, kind, name, first, continuous in
                self.db.execute("SELECT id, kind, name, first_seen, continuous FROM subjects ORDER BY id")]

    def add_subject(self, kind: int, name: str, first_seen: float, continuous: bool = False) -> Subject:
        self.db.execute("INSERT OR IGNORE INTO subjects (kind, name, first_seen, continuous) VALUES (?, ?, ?, ?)",
                        (kind, name, first_seen, int(continuous)))
        if continuous:
            self.db.execute("UPDATE subjects SET continuous = 1 WHERE kind = ? AND name = ?", (kind, name))
        i, first = self.db.execute("SELECT id, first_seen FROM subjects WHERE kind = ? AND name = ?",
                                   (kind, name)).fetchone()
        return Subject(i, kind, name, first, continuous)

    def outages(self, since: float = float("-inf"), until: float = float("inf")) -> list[Outage]:
        """Outages that overlap [since, until], open ones included, by start."""
        return [Outage(*row) for row in self.db.execute(
            'SELECT id, subject, run, start, "end", cause, note, start_wall, end_wall FROM outages '
            'WHERE ("end" IS NULL OR "end" >= ?) AND start <= ? ORDER BY start, id', (since, until))]

    def open_outages(self) -> list[Outage]:
        return [Outage(*row) for row in self.db.execute(
            'SELECT id, subject, run, start, "end", cause, note, start_wall, end_wall FROM outages '
            'WHERE "end" IS NULL ORDER BY start')]

    def open_outage(self, subject: int, run: int, start: float, cause: str, start_wall: float,
                    now: float) -> int:
        with self.transaction():
            cur = self.db.execute("INSERT INTO outages (subject, run, start, cause, start_wall) "
                                  "VALUES (?, ?, ?, ?, ?)", (subject, run, start, cause, start_wall))
            self.db.execute("UPDATE runs SET last = max(last, ?) WHERE id = ?", (now, run))
        return int(cur.lastrowid or 0)

    def add_outage(self, subject: int, run: int, start: float, end: float, cause: str, note: str,
                   start_wall: float, end_wall: float) -> int:
        cur = self.db.execute("INSERT INTO outages (subject, run, start, \"end\", cause, note, start_wall, "
                              "end_wall) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (subject, run, start, end, cause, note, start_wall, end_wall))
        return int(cur.lastrowid or 0)

    def close_outage(self, outage: int, end: float, end_wall: float, note: str = "") -> None:
        self.db.execute('UPDATE outages SET "end" = ?, end_wall = ?, note = ? WHERE id = ?',
                        (end, end_wall, note, outage))

    def prune(self, before: float, keep_run: int) -> int:
        """Delete outages that ended, and runs last alive, before `before`; how many outages."""
        with self.transaction():
            cur = self.db.execute('DELETE FROM outages WHERE "end" IS NOT NULL AND "end" < ?', (before,))
            self.db.execute("DELETE FROM runs WHERE last < ? AND id != ?", (before, keep_run))
        return cur.rowcount
