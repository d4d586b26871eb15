"""haoscarAcctTable, haoscarAcctWindowTable and the headline figures, from the ledger's
memory of its subjects' outages (`ledger.py` keeps it; `figures.py` computes).

Sole writer of `state.accounting`, `state.acct_windows` and `state.acct_headline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import AcctHeadline, AcctKind, AcctRow, AcctWindowRow, State

from .figures import Figures, monitored_spans, window_figures

SLICE = 250                     # subjects whose rows are computed in one loop pass


@dataclass
class Subject:
    """One accounted subject as the ledger remembers it."""

    id: int                                           # haoscarAcctIndex, kept in the file
    kind: AcctKind
    name: str
    first_seen: float
    continuous: bool = False                          # watched all the time: this head
    spans: list[list] = field(default_factory=list)   # [start, end | None, cause], by start
    open_id: int = 0                                  # the open outage's row id, 0 = none

    @property
    def open(self) -> bool:
        return self.open_id != 0


class AcctRows:
    def __init__(self, state: State, config: Callable[[], Config]) -> None:
        self.state = state
        self.config = config

    def publish_windows(self) -> None:
        acct = self.config().accounting
        wanted = {(i,): AcctWindowRow(name, length)
                  for i, (name, length) in enumerate(zip(acct.windows, acct.window_seconds), start=1)}
        for key in [k for k in self.state.acct_windows.keys() if k not in wanted]:
            self.state.acct_windows.remove(key)
        for key, row in wanted.items():
            self.state.acct_windows.put(key, row)

    def write(self, now: float, subjects: list[Subject], runs: list[tuple[float, float]]) -> Iterator[None]:
        """Every subject's row per window (subjects not given lose theirs), and the
        cluster's headline figures over the longest window; yields after every SLICE
        subjects. `runs`: the agent's runs (start, end), the current one ending now.

        What subjects share is computed once per window (a subject without outages, seen
        since a given time, has the figures of every other such subject)."""
        self.publish_windows()
        windows = [(key[0], row) for key, row in self.state.acct_windows.items()]
        shared: dict[tuple[int, float], Figures] = {}     # (window, watched since) -> figures without outages
        table = self.state.accounting
        keep = set()
        longest = max(windows, key=lambda w: w[1].length_s)[0]
        for n, subject in enumerate(subjects, start=1):
            last = subject.spans[-1] if subject.spans else None
            for index, window in windows:
                if last is None and not subject.continuous:
                    since = max(subject.first_seen, now - window.length_s)
                    f = shared.get((index, since))
                    if f is None:
                        f = shared[(index, since)] = window_figures(
                            now, window.length_s, monitored_spans(since, False, runs, now), [])
                else:
                    f = window_figures(now, window.length_s,
                                       monitored_spans(subject.first_seen, subject.continuous, runs, now),
                                       [(s[0], s[1]) for s in subject.spans])
                figures = (f.outages, round(f.downtime_s), round(f.monitored_s), f.availability_ppm,
                           round(f.mttr_s), round(f.mtbf_s), last[0] if last else 0.0,
                           round((now if last[1] is None else last[1]) - last[0]) if last else 0,
                           last[2] if last else "", subject.open)
                row = table.get((subject.id, index))
                if row is None or row.kind != subject.kind or row.subject != subject.name[:128]:
                    row = AcctRow(subject.kind, subject.name[:128], *figures)
                    table.put((subject.id, index), row)
                else:                       # the same row, its figures updated in place
                    (row.outages, row.downtime_s, row.monitored_s, row.availability_ppm, row.mttr_s,
                     row.mtbf_s, row.last_outage_start, row.last_outage_duration_s, row.last_outage_cause,
                     row.in_outage) = figures
                keep.add((subject.id, index))
                if subject.kind is AcctKind.CLUSTER and index == longest:
                    self.state.acct_headline = AcctHeadline(window.name, row.mttr_s, row.mtbf_s,
                                                            row.availability_ppm)
            if n % SLICE == 0:
                yield
        if len(keep) != len(table):
            for key in [k for k in table.keys() if k not in keep]:
                table.remove(key)
