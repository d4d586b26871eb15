"""The outage ledger: outages of every accounted subject, kept in SQLite, and the
figures per subject and window in the state (haoscarAcctTable).

An event-bus consumer and a periodic job (`accounting`, every second). What a subject
is and when it counts as down is `observe.py`'s; this module opens an outage when a
subject is seen down and closes it when it is seen up. Events only make the next look
come at once (one look per loop turn, however many events) and give an outage its
cause; the periodic look catches what changes without an event (the peer taking an
alias, a LAN interface row that the poller changed without a notice).

Durations within a run are monotonic (`timeline.py`). At start the previous run is
closed from what it left: an outage still open (the agent was killed or crashed) ends
at that run's last-alive mark, written every `mark_interval_s` and at every change, and
its note says so; the time between that run's end and this start is an outage of this
head. A clean stop closes open outages at the stop, noted so.

The figures go into the state through `rows.py`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Callable, Iterator

from fcaps.fault.alarms import AlarmType, Alarms, ProbableCause
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventType, Severity
from haoscar_snmp.core.state import AcctKind, HeadStatus, State

from .ledgerdb import LedgerFile
from .members import MembershipObserver
from .observe import Key, Observer, RoleTimes, Seen
from .rows import SLICE, AcctRows, Subject
from .timeline import Timeline

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
FIGURES_EVERY_S = 5.0           # figures of open outages grow; recomputed this often at most
PRUNE_EVERY_S = 3600.0
CRASH_NOTE = ("open when the agent ended without stopping (killed or crashed): closed at its "
              "last-alive mark, so the outage may have lasted up to one mark interval longer")
STOP_NOTE = "closed when the agent stopped"
GONE_NOTE = "closed when the subject stopped being watched"

# Events whose text is the best cause of an outage they begin, by the subject's kind.
_CAUSES = {
    EventType.SERVICE_DOWN: AcctKind.SERVICE,
    EventType.HB_PATH_DOWN: AcctKind.HEARTBEAT_PATH,
    EventType.LAN_IF_DOWN: AcctKind.LAN_INTERFACE,
    EventType.HEAD_DOWN: AcctKind.HEAD,
    EventType.CLUSTER_NODE_LEFT: AcctKind.CLUSTER_NODE,
    EventType.QUORUM_LOST: AcctKind.QUORUM,           # subject "": the cluster
    EventType.RESOURCE_FAILED: AcctKind.RESOURCE,
    EventType.RESOURCE_MOVED: AcctKind.RESOURCE,
    EventType.MEMBERSHIP_UNKNOWN: AcctKind.MEMBERSHIP_VIEW,
}


class Ledger:
    """The `accounting` job and event consumer; `start` before the scheduler runs it,
    `stop` after the scheduler stopped."""

    name = "accounting"

    def __init__(self, state: State, config: Callable[[], Config], clock: Clock, ledger: LedgerFile,
                 boot_id: str, alarms: Alarms, *, membership: bool = False,
                 service_resource: Callable[[], str] = lambda: "") -> None:
        """`membership`: the cluster past two heads is watched (haoscarMembership is
        written): its nodes, quorum, resources and views are subjects (`members.py`).
        `service_resource`: the Pacemaker resource that carries the cluster's address
        ("" = none named); with `membership`, the cluster's service is judged by it
        alone, and is no subject while none is named."""
        self.state = state
        self.alarms = alarms
        self.config = config
        self.clock = clock
        self.file = ledger
        self.observer = Observer(placed=membership)
        self.members = MembershipObserver() if membership else None
        self.service_resource = service_resource
        self.rows = AcctRows(state, config)
        self.timeline = Timeline.resume(clock, boot_id, ledger.anchor(), ledger.latest_time())
        self.subjects: dict[Key, Subject] = {}
        self.runs: list[tuple[float, float]] = []     # earlier runs: (start, last-alive mark)
        self.run_id = 0
        self.run_start = 0.0
        self._causes: dict[Key, str] = {}
        self._look_soon = False
        self._role = RoleTimes()
        self._stopped = False
        self._failing = ""                  # why the ledger file cannot be written ("" = it can)
        # The subjects seen at the last look: the long-lived Subject objects, not the keys
        # of that look (new tuples every second would outlive a young collection and
        # make the collector's full passes come sooner).
        self._present: list[Subject] = []
        self._marked = self._figured = self._pruned = float("-inf")

    # -- start and stop --------------------------------------------------------------------

    def start(self) -> str:
        """Open this run, close what the previous one left open, load what the windows need."""
        now = self.timeline.now()
        previous = self.file.runs()
        last = previous[-1] if previous else None
        self.run_start = now
        self.run_id = self.file.begin_run(self.timeline.anchor, now, self.clock.time())
        for row in self.file.subjects():
            self.subjects[(AcctKind(row.kind), row.name)] = Subject(row.id, AcctKind(row.kind), row.name,
                                                                     row.first_seen, row.continuous)
        closed = 0
        ended = {run.id: run for run in previous}
        said = "a new ledger"
        with self.file.transaction():       # the previous run closed all at once, or not at all
            for outage in self.file.open_outages():
                run = ended.get(outage.run)
                end = max(outage.start, run.last if run is not None else outage.start)
                self.file.close_outage(outage.id, end, self.clock.time() - (now - end), CRASH_NOTE)
                closed += 1
            me = self._subject((AcctKind.HEAD, self.state.cluster.local_head), now, continuous=True)
            if last is not None:
                gap = max(0.0, now - last.last)
                how = "stopped" if last.stopped else "ended without stopping (killed or crashed)"
                if gap > 0:
                    self.file.add_outage(me.id, self.run_id, last.last, now, f"the agent was not running ({how})",
                                         "" if last.stopped else "began at the last-alive mark of the run that ended",
                                         self.clock.time() - gap, self.clock.time())
                said = f"the previous run {how}; {gap:.0f} s without the agent"
                if closed:
                    said += f"; {closed} outage(s) it left open closed at its last-alive mark"
        self._load(now)
        self._prune(now)
        self.rows.publish_windows()
        self.look()
        return said

    def stop(self) -> None:
        """A clean stop: a last look, open outages closed now, the run marked stopped."""
        self.look()
        now = self.timeline.now()
        with self.file.transaction():
            for subject in self.subjects.values():
                if subject.open:
                    self._close(subject, now, STOP_NOTE)
            self.file.mark(self.run_id, now, stopped=True)
        self._stopped = True

    def _load(self, now: float) -> None:
        since = now - self.config().accounting.retention_seconds
        self.runs = [(run.start, run.last) for run in self.file.runs(since) if run.id != self.run_id]
        by_id = {s.id: s for s in self.subjects.values()}
        for outage in self.file.outages(since):
            subject = by_id.get(outage.subject)
            if subject is not None:
                subject.spans.append([outage.start, outage.end, outage.cause])

    # -- looking ---------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Quick: note a cause, ask for one look in the next loop turn."""
        kind = _CAUSES.get(event.type)
        if kind is not None:
            self._causes[(kind, event.subject or self.state.cluster.name)] = event.text
        elif event.type == EventType.ROLE_CHANGED and event.subject == self.state.cluster.local_head:
            # A takeover completes between two looks: when it began and ended is noted now.
            mine = next((h for h in self.state.heads.values() if h.is_local), None)
            if mine is not None and mine.status is HeadStatus.TAKING_OVER:
                self._role = RoleTimes(self.clock.monotonic(), self._role.active)
            elif mine is not None and mine.status is HeadStatus.ACTIVE:
                self._role = RoleTimes(self._role.taking_over, self.clock.monotonic())
        if self._look_soon or self._stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:        # no loop (shutdown, unit tests): the next cycle looks
            return
        self._look_soon = True
        loop.call_soon(self._look_now)

    def _look_now(self) -> None:
        self._look_soon = False
        if self._stopped:
            return
        try:
            self.look()
        except sqlite3.Error as exc:
            self._failed(exc)
        except Exception:   # noqa: BLE001 - the next cycle tries again; never break the loop
            log.exception("accounting: a look at the state failed; please report it as a BUG")

    def look(self) -> list[str]:
        """Compare what is seen with the open outages; open and close. What changed, in words."""
        now = self.timeline.now()
        seen = self.observer.look(self.state, self.config().timing.heartbeat_dead_time_ms / 1000.0, self._role)
        if self.members is not None:
            seen.pop((AcctKind.CLUSTER, self.state.cluster.name), None)
            seen.update(self.members.look(self.state, self.service_resource()))
        said = []
        present = []
        with self.file.transaction():
            for key, what in seen.items():
                subject = self._subject(key, now)
                present.append(subject)
                if what.up is False and not subject.open:
                    said.append(self._open(subject, what, now))
                elif what.up is True:
                    self._causes.pop(key, None)
                    end = now if what.since is None else min(now, self.timeline.at(what.since))
                    if subject.open:
                        said.append(self._close(subject, end))
                    elif what.began is not None:
                        said.append(self._gap(subject, what, end, now))
            for key, subject in self.subjects.items():
                if subject.open and key not in seen:
                    said.append(self._close(subject, now, GONE_NOTE))
        self._present = present
        if said:
            if len(self._present) <= SLICE:
                self._refresh(now)
            else:                           # the next cycle, a slice per loop pass
                self._figured = float("-inf")
        return said

    def _subject(self, key: Key, now: float, continuous: bool = False) -> Subject:
        subject = self.subjects.get(key)
        if subject is None or (continuous and not subject.continuous):
            row = self.file.add_subject(int(key[0]), key[1], now, continuous)
            subject = self.subjects[key] = Subject(row.id, key[0], key[1], row.first_seen, continuous,
                                                    subject.spans if subject else [])
        return subject

    def _open(self, subject: Subject, what: Seen, now: float) -> str:
        start = now
        if what.since is not None:
            # Dated back (the peer's last heartbeat), but never before this run, the
            # subject's first sight or the end of its previous outage.
            floor = max(self.run_start, subject.first_seen, *(s[1] for s in subject.spans[-1:] if s[1]))
            start = min(now, max(floor, self.timeline.at(what.since)))
        cause = self._causes.pop((subject.kind, subject.name), "") or what.cause
        wall = self.clock.time() - (now - start)
        subject.open_id = self.file.open_outage(subject.id, self.run_id, start, cause[:255], wall, now)
        subject.spans.append([start, None, cause[:255]])
        self._marked = now
        log.info("accounting: outage of %s %s began %.3f s ago: %s", subject.kind.name.lower(),
                 subject.name, now - start, cause)
        return f"{subject.name} down"

    def _gap(self, subject: Subject, what: Seen, end: float, now: float) -> str:
        """An outage that began and ended between two looks (a takeover)."""
        assert what.began is not None
        floor = max(self.run_start, subject.first_seen, *(s[1] for s in subject.spans[-1:] if s[1]))
        start = min(end, max(floor, self.timeline.at(what.began)))
        self.file.add_outage(subject.id, self.run_id, start, end, what.cause[:255], "",
                             self.clock.time() - (now - start), self.clock.time() - (now - end))
        subject.spans.append([start, end, what.cause[:255]])
        log.info("accounting: outage of %s %s for %.3f s: %s", subject.kind.name.lower(), subject.name,
                 end - start, what.cause)
        return f"{subject.name} down and up"

    def _close(self, subject: Subject, now: float, note: str = "") -> str:
        span = subject.spans[-1]
        end = max(now, span[0])
        self.file.close_outage(subject.open_id, end, self.clock.time() - (self.timeline.now() - end), note)
        span[1] = end
        subject.open_id = 0
        log.info("accounting: outage of %s %s ended after %.3f s%s", subject.kind.name.lower(), subject.name,
                 end - span[0], f" ({note})" if note else "")
        return f"{subject.name} up"

    # -- the periodic job ------------------------------------------------------------------

    def interval(self) -> float:
        return INTERVAL_S

    async def run_cycle(self) -> str:
        try:
            said = self.look()
            now = self.timeline.now()
            if now - self._marked >= self.config().accounting.mark_interval_s:
                self.file.mark(self.run_id, now)
                self._marked = now
            if now - self._pruned >= PRUNE_EVERY_S:
                self._prune(now)
        except sqlite3.Error as exc:
            return self._failed(exc)
        if self._failing:
            self._failing = ""
            log.warning("accounting: the ledger %s can be written again", self.file.path)
            self.alarms.clear(ProbableCause.ACCOUNTING_FAILURE, self.state.cluster.local_head,
                              f"the outage ledger {self.file.path} can be written again")
        if now - self._figured >= FIGURES_EVERY_S:
            await self._refresh_sliced(now)
        down = sum(1 for s in self.subjects.values() if s.open)
        head = self.state.acct_headline
        changes = ", ".join(said[:5]) + (f" and {len(said) - 5} more" if len(said) > 5 else "")
        return (f"{len(self._present)} subject(s), {down} down; {head.window or '-'} availability "
                f"{head.availability_ppm} ppm" + (f"; {changes}" if said else ""))

    def _failed(self, exc: sqlite3.Error) -> str:
        """The file refused a write (disk full, read-only, damaged): nothing of the look is
        kept, the memory is read back from the file, an alarm says so, the next cycle
        tries again. Not a bug: the agent goes on keeping the cluster available."""
        text = (f"the outage ledger {self.file.path} cannot be written ({exc}): outages go "
                f"unrecorded until it can")
        if not self._failing:
            log.error("accounting: %s", text)
        self._failing = str(exc)
        self.alarms.raise_alarm(ProbableCause.ACCOUNTING_FAILURE, self.state.cluster.local_head, Severity.MAJOR,
                                AlarmType.PROCESSING_ERROR, text)
        try:
            self._resync()
        except sqlite3.Error:
            pass                            # read back at the next failure or success
        return f"the ledger cannot be written: {exc}"

    def _resync(self) -> None:
        """The outages and open ones as the file has them (after a write that failed)."""
        for subject in self.subjects.values():
            subject.spans, subject.open_id = [], 0
        self._load(self.timeline.now())
        by_id = {s.id: s for s in self.subjects.values()}
        for outage in self.file.open_outages():
            if outage.subject in by_id:
                by_id[outage.subject].open_id = outage.id

    def _prune(self, now: float) -> None:
        before = now - self.config().accounting.retention_seconds
        deleted = self.file.prune(before, self.run_id)
        self.runs = [(s, e) for s, e in self.runs if e >= before]
        for subject in self.subjects.values():
            subject.spans = [s for s in subject.spans if s[1] is None or s[1] >= before]
        self._pruned = now
        if deleted:
            log.info("accounting: %d outage(s) older than the retention deleted", deleted)

    # -- figures ---------------------------------------------------------------------------

    def _refresh(self, now: float) -> None:
        """All the rows at once (at start, after a change among few subjects)."""
        for _ in self._rows(now):
            pass

    async def _refresh_sliced(self, now: float) -> None:
        """All the rows, a slice of subjects per loop pass (thousands of LAN interfaces
        must not hold up the loop: bench/bench_accounting.py)."""
        for _ in self._rows(now):
            await asyncio.sleep(0)

    def _rows(self, now: float) -> Iterator[None]:
        self._figured = now
        return self.rows.write(now, list(self._present),
                               [*self.runs, (self.run_start, now)])
