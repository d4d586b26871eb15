"""`haoscar-snmp report`: the outage ledger read from the state directory, as CSV or JSON.

It opens `accounting.sqlite` read-only, with or without the daemon running (WAL lets
a reader in while the daemon writes). The daemon's current run counts up to its last
mark (at most `mark_interval_s` old); an outage still open counts up to the last mark
of its run, and says so (`open`).

Two listings: figures per subject and window (each configured window ending at
`until`, the range [since, until] when `since` is given, and `all`: the totals of
everything the ledger keeps), or the outages that overlap [since, until].
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from haoscar_snmp.config.schema import duration_seconds
from haoscar_snmp.core.state import AcctKind

from .figures import monitored_spans, range_figures
from .ledgerdb import LedgerFile

LEDGER_FILE = "accounting.sqlite"


def parse_time(text: str, now: float) -> float:
    """An ISO 8601 date or time (UTC unless it names a zone), or a duration before now
    ("7d" = seven days ago). Raises ValueError saying what is accepted."""
    try:
        return now - duration_seconds(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a date and time (ISO 8601, e.g. 2026-12-01 or "
                         f"2026-12-01T08:00:00Z) nor a duration before now (e.g. 7d)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def iso(when: float | None) -> str:
    if when is None:
        return ""
    return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FigureRow:
    subject_type: str
    subject: str
    window: str
    window_start: str
    window_end: str
    outages: int
    downtime_s: float
    monitored_s: float
    availability_ppm: int
    mttr_s: float
    mtbf_s: float


@dataclass(frozen=True)
class OutageRow:
    subject_type: str
    subject: str
    start: str
    end: str
    duration_s: float
    open: bool
    cause: str
    note: str
    start_wall: str
    end_wall: str


def open_ledger(state_dir: Path) -> LedgerFile:
    path = state_dir / LEDGER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no outage ledger (has the daemon run with this state directory?)")
    return LedgerFile(path, readonly=True)


def figures(ledger: LedgerFile, windows: Iterable[str], since: float | None, until: float) -> list[FigureRow]:
    runs = ledger.runs()
    run_end = {run.id: run.last for run in runs}
    spans = [(run.start, min(run.last, until)) for run in runs if run.start <= until]
    ended: dict[int, list[tuple[float, float | None]]] = {}
    still_open: dict[int, list[tuple[float, float]]] = {}
    for o in ledger.outages(until=until):
        if o.end is not None and o.end <= until:
            ended.setdefault(o.subject, []).append((o.start, o.end))
        else:   # open, or repaired after `until`: known up to the last mark, or to `until`
            end = o.end if o.end is not None else run_end.get(o.run, o.start)
            still_open.setdefault(o.subject, []).append((o.start, max(o.start, min(end, until))))
    ranges = [(w, until - duration_seconds(w)) for w in windows]
    if since is not None:
        ranges.append(("range", since))
    if runs:                                # the totals: everything the ledger keeps
        ranges.append(("all", min(run.start for run in runs)))
    rows = []
    for subject in ledger.subjects():
        latest = max((e for _, e in spans), default=subject.first_seen)
        watched = monitored_spans(subject.first_seen, subject.continuous, spans, min(until, latest))
        for name, lo in ranges:
            f = range_figures(lo, until, until, watched, ended.get(subject.id, []), still_open.get(subject.id, []))
            rows.append(FigureRow(AcctKind(subject.kind).name.lower(), subject.name, name, iso(lo), iso(until),
                                  f.outages, round(f.downtime_s, 3), round(f.monitored_s, 3), f.availability_ppm,
                                  round(f.mttr_s, 3), round(f.mtbf_s, 3)))
    return rows


def outages(ledger: LedgerFile, since: float | None, until: float) -> list[OutageRow]:
    subjects = {s.id: s for s in ledger.subjects()}
    run_end = {run.id: run.last for run in ledger.runs()}
    rows = []
    for o in ledger.outages(since if since is not None else float("-inf"), until):
        s = subjects[o.subject]
        end = o.end if o.end is not None else max(o.start, run_end.get(o.run, o.start))
        rows.append(OutageRow(AcctKind(s.kind).name.lower(), s.name, iso(o.start), iso(end),
                              round(end - o.start, 3), o.end is None, o.cause, o.note,
                              iso(o.start_wall), iso(o.end_wall)))
    return rows


def render(rows: list[Any], fmt: str, fields: list[str], extra: dict[str, Any] | None = None) -> str:
    """CSV (a header line, then one line per row) or JSON (an object with the rows)."""
    if fmt == "json":
        return json.dumps({**(extra or {}), "rows": [asdict(r) if not isinstance(r, dict) else r for r in rows]},
                          indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row) if not isinstance(row, dict) else row)
    return out.getvalue()
