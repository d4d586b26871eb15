"""fcaps.accounting: the outage ledger on a fake clock and a real SQLite file.

Outages open and close as the state says; figures per window (ppm, MTTR, MTBF); an
outage open at a crash is closed at the last-alive mark on the next start; the agent's
own downtime is this head's outage; retention; wall-clock steps change no duration.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from fakes import FakeClock

from fcaps.accounting.figures import PPM, window_figures
from fcaps.accounting.ledger import CRASH_NOTE, STOP_NOTE, Ledger
from fcaps.accounting.ledgerdb import LedgerFile
from fcaps.accounting.observe import Observer
from fcaps.accounting.rows import Subject
from fcaps.fault.alarms import Alarms, ProbableCause
from haoscar_snmp.config.schema import AccountingConfig, Config
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import (
    AcctKind,
    AliasRow,
    AliasStatus,
    HbPathRow,
    HeadRole,
    HeadRow,
    HeadStatus,
    LinkStatus,
    PeerView,
    ServiceRow,
    ServiceStatus,
    State,
)

HOUR = 3600.0
BOOT = "boot-1"


def make_state(aliases: bool = False, peer: bool = False) -> State:
    state = State()
    state.cluster.name, state.cluster.local_head = "demo", "head1"
    state.heads.put((1,), HeadRow("head1", HeadRole.PRIMARY, is_local=True, status=HeadStatus.ACTIVE))
    state.services.put((1,), ServiceRow("web", "true", status=ServiceStatus.RUNNING))
    if aliases:
        state.aliases.put((1,), AliasRow("192.0.2.10", 24, "eth0", status=AliasStatus.RELEASED))
    if peer:
        state.heads.put((2,), HeadRow("head2", HeadRole.STANDBY))
        state.peer = PeerView("head2", False)
    return state


def with_accounting(cfg: Config, **values: object) -> Config:
    return cfg.model_copy(update={"accounting": AccountingConfig(**values)})


class Rig:
    """A ledger on a fake clock; `restart` builds a new one on the same file (a crash
    unless `stop` ran first)."""

    def __init__(self, path: Path, cfg: Config, state: State, clock: FakeClock, boot: str = BOOT) -> None:
        self.path, self.cfg, self.state, self.clock = path, cfg, state, clock
        self.file = LedgerFile(path)
        self.alarms = Alarms(state, EventBus(), clock)
        self.ledger = Ledger(state, lambda: self.cfg, clock, self.file, boot, self.alarms)
        self.said = self.ledger.start()

    def cycle(self) -> str:
        return asyncio.run(self.ledger.run_cycle())

    def run_for(self, seconds: float, step: float = 1.0) -> None:
        """Cycles every `step` seconds, as the scheduler would."""
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            self.cycle()

    def restart(self, boot: str = BOOT) -> "Rig":
        self.file.close()
        return Rig(self.path, self.cfg, self.state, self.clock, boot)

    def outages(self, name: str) -> list:
        ids = {s.id for s in self.file.subjects() if s.name == name}
        return [o for o in self.file.outages() if o.subject in ids]

    def row(self, kind: AcctKind, name: str, window: int = 1):
        subject = self.ledger.subjects[(kind, name)]
        return self.state.accounting[(subject.id, window)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fail(state: State, name: str = "web", status: ServiceStatus = ServiceStatus.FAILED) -> None:
    for row in state.services.values():
        if row.name == name:
            row.status, row.last_reason = status, "check exited 1"


def test_window_figures_count_what_lies_in_the_window() -> None:
    f = window_figures(10 * HOUR, 2 * HOUR, [(0.0, 10 * HOUR)],
                       [(7 * HOUR, 7 * HOUR + 60), (9 * HOUR, 9 * HOUR + 120), (10 * HOUR - 30, None)])
    assert f.outages == 2 and f.downtime_s == 150 and f.monitored_s == 2 * HOUR
    assert f.availability_ppm == int((2 * HOUR - 150) * PPM // (2 * HOUR))
    assert f.mttr_s == 120                 # the outage that ended in the window; the open one has not
    assert f.mtbf_s == (2 * HOUR - 150) / 2
    assert window_figures(HOUR, HOUR, [], []).availability_ppm == PPM
    # Any downtime shows: rounded down, never up to a full million.
    assert window_figures(HOUR * 1000, HOUR * 1000, [(0, HOUR * 1000)], [(5, 5.001)]).availability_ppm < PPM


def test_a_service_outage_opens_and_closes_with_its_cause(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    state = make_state()
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(HOUR)
    rig.ledger.on_event(Event(EventType.SERVICE_DOWN, "web", Severity.MAJOR, "service web is down: exit 1",
                              clock.time()))
    fail(state)
    rig.run_for(60)
    row = rig.row(AcctKind.SERVICE, "web")
    assert row.in_outage and row.last_outage_cause == "service web is down: exit 1"
    state.services[(1,)].status = ServiceStatus.RUNNING
    rig.run_for(HOUR)
    [outage] = rig.outages("web")
    assert outage.end - outage.start == pytest.approx(60, abs=1)
    row = rig.row(AcctKind.SERVICE, "web")      # the 24h window
    assert (row.outages, row.downtime_s, row.in_outage) == (1, 60, False)
    assert row.monitored_s == pytest.approx(2 * HOUR + 60, abs=6)     # figures lag up to 5 s
    assert row.availability_ppm == int((row.monitored_s - 60) * PPM // row.monitored_s)
    assert row.mttr_s == 60 and row.mtbf_s == row.monitored_s - 60
    windows = [r.name for r in state.acct_windows.values()]
    assert windows == ["24h", "7d", "30d"]
    assert {k[1] for k in state.accounting.keys()} == {1, 2, 3}


def test_a_wall_clock_step_changes_no_duration(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    state = make_state()
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(10)
    fail(state)
    rig.run_for(30)
    clock.step_wall(-2 * HOUR)           # back, in the middle of the outage
    rig.run_for(30)
    clock.step_wall(+5 * HOUR)           # and far forward
    state.services[(1,)].status = ServiceStatus.RUNNING
    rig.run_for(5)
    [outage] = rig.outages("web")
    assert outage.end - outage.start == pytest.approx(60, abs=1)
    row = rig.row(AcctKind.SERVICE, "web")
    assert 0 <= row.downtime_s <= row.monitored_s <= 80


def test_an_outage_open_at_a_crash_is_closed_at_the_last_alive_mark(tmp_path: Path, cfg: Config,
                                                                      clock: FakeClock) -> None:
    cfg = with_accounting(cfg, mark_interval_s=10)
    state = make_state()
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(20)
    fail(state)
    rig.run_for(25)                        # marks at the outage's start, then every 10 s
    clock.advance(100)                     # killed: nothing runs for 100 s
    clock.step_wall(-HOUR)                 # and the wall clock is stepped meanwhile
    rig2 = rig.restart()
    assert "without stopping" in rig2.said
    [outage] = [o for o in rig2.outages("web") if o.end is not None]
    assert outage.note == CRASH_NOTE
    assert 15 <= outage.end - outage.start <= 25
    [gap] = rig2.outages("head1")
    assert "killed or crashed" in gap.cause
    assert 100 <= gap.end - gap.start <= 110          # measured on the monotonic clock of this boot
    # Still failed after the restart: a new outage, of this run.
    rig2.run_for(2)
    assert len(rig2.outages("web")) == 2 and rig2.outages("web")[-1].end is None
    head = rig2.row(AcctKind.HEAD, "head1")
    assert head.outages == 1 and 100 <= head.downtime_s <= 110


def test_a_clean_stop_closes_outages_and_the_gap_is_counted(tmp_path: Path, cfg: Config,
                                                            clock: FakeClock) -> None:
    state = make_state()
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    fail(state)
    rig.run_for(30)
    rig.ledger.stop()
    [outage] = rig.outages("web")
    assert outage.note == STOP_NOTE and outage.end - outage.start == pytest.approx(30, abs=1)
    clock.advance(50)
    rig2 = rig.restart()
    [gap] = rig2.outages("head1")
    assert "stopped" in gap.cause and gap.end - gap.start == pytest.approx(50, abs=0.01)
    # The service's window does not count the agent's absence as monitored time.
    rig2.run_for(10)
    assert rig2.row(AcctKind.SERVICE, "web").monitored_s == pytest.approx(40, abs=2)


def test_a_new_boot_takes_the_wall_clock_but_never_goes_back(tmp_path: Path, cfg: Config) -> None:
    clock = FakeClock()
    state = make_state()
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(60)
    rig.ledger.stop()
    last = rig.file.latest_time()
    rebooted = FakeClock(start=clock.time() - 10 * HOUR, monotonic=3.0)   # wall clock far behind
    rig.clock = rebooted
    rig2 = rig.restart(boot="boot-2")
    assert rig2.ledger.timeline.now() >= last
    # The wall clock says the agent came back before it went: no negative gap, none at all.
    assert rig2.outages("head1") == []
    rig2.run_for(10)
    assert all(o.end is None or o.end >= o.start for o in rig2.file.outages())


def test_retention_deletes_old_outages(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    cfg = with_accounting(cfg, windows=["1h"], retention="2h")
    state = make_state()
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    fail(state)
    rig.run_for(10)
    state.services[(1,)].status = ServiceStatus.RUNNING
    rig.run_for(10)
    assert len(rig.outages("web")) == 1
    rig.run_for(2 * HOUR + 60, step=60)
    rig.ledger._pruned = float("-inf")     # the hourly prune, now
    rig.cycle()
    assert rig.outages("web") == []
    assert rig.row(AcctKind.SERVICE, "web").outages == 0


def test_a_failover_counts_from_the_peers_last_heartbeat_to_this_heads_takeover(
        tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    state = make_state(aliases=True, peer=True)
    dead = cfg.timing.heartbeat_dead_time_ms / 1000
    me = state.heads[(1,)]
    me.status = HeadStatus.STANDBY
    state.peer = dataclasses.replace(state.peer, heard=True, ever_heard=True, status=HeadStatus.ACTIVE,
                                     aliases=("192.0.2.10",))
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(HOUR, step=60)
    assert not rig.ledger.subjects[(AcctKind.ALIAS, "192.0.2.10")].open
    # The peer's heartbeats stop; it is declared silent one dead time later.
    clock.advance(dead)
    state.peer = dataclasses.replace(state.peer, heard=False, silent_since=clock.monotonic())
    rig.cycle()
    alias = rig.ledger.subjects[(AcctKind.ALIAS, "192.0.2.10")]
    assert alias.open and rig.ledger.subjects[(AcctKind.HEAD, "head2")].open
    clock.advance(2)                       # the takeover takes 2 s
    me.status = HeadStatus.ACTIVE
    state.aliases[(1,)].status, state.aliases[(1,)].owner = AliasStatus.HELD, "head1"
    rig.ledger.on_event(Event(EventType.ROLE_CHANGED, "head1", Severity.INFO, "standby -> active", clock.time()))
    rig.cycle()
    [outage] = rig.outages("192.0.2.10")
    assert outage.end - outage.start == pytest.approx(dead + 2, abs=0.01)
    [cluster] = rig.outages("demo")
    assert cluster.end - cluster.start == pytest.approx(dead + 2, abs=0.01)
    assert state.acct_headline.window == "30d" and state.acct_headline.mttr_s == round(dead + 2)
    assert state.acct_headline.availability_ppm < PPM
    assert rig.outages("head2")[0].end is None          # the peer is still down


def test_a_takeover_between_two_looks_is_still_an_outage(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    """The whole takeover (peer declared silent, aliases added, active) often completes
    before the ledger's next look: it is dated from the role changes as they happened."""
    state = make_state(aliases=True, peer=True)
    dead = cfg.timing.heartbeat_dead_time_ms / 1000
    me = state.heads[(1,)]
    me.status = HeadStatus.STANDBY
    state.peer = dataclasses.replace(state.peer, heard=True, ever_heard=True, status=HeadStatus.ACTIVE,
                                     aliases=("192.0.2.10",))
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(10)
    clock.advance(dead)
    state.peer = dataclasses.replace(state.peer, heard=False, silent_since=clock.monotonic())
    me.status = HeadStatus.TAKING_OVER
    rig.ledger.on_event(Event(EventType.ROLE_CHANGED, "head1", Severity.INFO, "standby -> taking_over", 0))
    clock.advance(0.005)
    me.status = HeadStatus.ACTIVE
    state.aliases[(1,)].status, state.aliases[(1,)].owner = AliasStatus.HELD, "head1"
    rig.ledger.on_event(Event(EventType.ROLE_CHANGED, "head1", Severity.INFO, "taking_over -> active", 0))
    clock.advance(0.5)                     # the next look comes later
    rig.cycle()
    for subject in ("192.0.2.10", "demo"):
        [outage] = rig.outages(subject)
        assert outage.end - outage.start == pytest.approx(dead + 0.005, abs=1e-6), subject
        assert "head2 fell silent" in outage.cause
    rig.run_for(3)
    assert len(rig.outages("192.0.2.10")) == 1          # counted once


def test_a_switchover_counts_on_both_sides_of_the_handover(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    """Releasing: from the release until the peer's heartbeat says it holds the alias.
    Taking over from a live peer: from this head's decision to its takeover completed."""
    state = make_state(aliases=True, peer=True)
    me, alias = state.heads[(1,)], state.aliases[(1,)]
    alias.status, alias.owner = AliasStatus.HELD, "head1"
    state.peer = dataclasses.replace(state.peer, heard=True, ever_heard=True, status=HeadStatus.STANDBY)
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(10)
    me.status, alias.status, alias.owner = HeadStatus.STANDBY, AliasStatus.RELEASED, ""
    rig.ledger.on_event(Event(EventType.ROLE_CHANGED, "head1", Severity.INFO, "releasing -> standby", 0))
    rig.cycle()
    clock.advance(0.3)
    state.peer = dataclasses.replace(state.peer, status=HeadStatus.ACTIVE, aliases=("192.0.2.10",))
    rig.cycle()
    [released] = rig.outages("192.0.2.10")
    assert released.end - released.start == pytest.approx(0.3)
    rig.run_for(10)
    # ... and back: the peer hands over, this head takes the alias within one look.
    state.peer = dataclasses.replace(state.peer, status=HeadStatus.STANDBY, aliases=())
    me.status = HeadStatus.TAKING_OVER
    rig.ledger.on_event(Event(EventType.ROLE_CHANGED, "head1", Severity.INFO, "standby -> taking_over", 0))
    clock.advance(0.02)
    me.status, alias.status, alias.owner = HeadStatus.ACTIVE, AliasStatus.HELD, "head1"
    rig.ledger.on_event(Event(EventType.ROLE_CHANGED, "head1", Severity.INFO, "taking_over -> active", 0))
    rig.run_for(3)
    taken = rig.outages("192.0.2.10")[-1]
    assert taken.end - taken.start == pytest.approx(0.02) and "handed" in taken.cause
    assert len(rig.outages("192.0.2.10")) == 2 and len(rig.outages("demo")) == 2


def test_nothing_is_judged_while_this_head_is_starting(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    state = make_state(aliases=True)
    state.heads[(1,)].status = HeadStatus.STARTING
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(5)
    assert rig.outages("192.0.2.10") == [] and rig.outages("demo") == []
    state.heads[(1,)].status = HeadStatus.STANDBY      # settled, and nobody holds the alias
    rig.run_for(5)
    assert len(rig.outages("192.0.2.10")) == 1


def test_the_peer_is_not_judged_while_this_heads_heartbeat_process_is_silent(
        tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    state = make_state(peer=True)
    state.peer = dataclasses.replace(state.peer, heard=False, ever_heard=True, silent_since=clock.monotonic())
    state.hb_process = dataclasses.replace(state.hb_process, silent="no report for 2 s")
    state.hb_paths.put((2, 1), HbPathRow(status=LinkStatus.DOWN))
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(5)
    assert rig.outages("head2") == [] and rig.outages("head2/lanA") == []
    state.hb_process = dataclasses.replace(state.hb_process, silent="")      # hearing again: judged
    rig.run_for(2)
    assert len(rig.outages("head2")) == 1 and len(rig.outages("head2/lanA")) == 1


def test_the_report_reads_the_ledger_per_subject_window_and_range(tmp_path: Path, cfg: Config,
                                                                  clock: FakeClock) -> None:
    from fcaps.accounting import report

    state = make_state()
    rig = Rig(tmp_path / "accounting.sqlite", cfg, state, clock)
    rig.run_for(HOUR, step=60)
    fail(state)
    rig.run_for(120, step=10)
    state.services[(1,)].status = ServiceStatus.RUNNING
    rig.run_for(HOUR, step=60)
    fail(state)
    rig.run_for(30, step=10)               # still open at the crash
    now = rig.ledger.timeline.now()
    ledger = report.open_ledger(tmp_path)
    rows = report.figures(ledger, ["1h", "24h"], now - 2 * HOUR, now)
    web = {r.window: r for r in rows if r.subject == "web"}
    assert set(web) == {"1h", "24h", "range", "all"}
    assert web["all"].outages == 2 and web["all"].monitored_s == pytest.approx(2 * HOUR + 180, abs=60)
    assert web["24h"].outages == 2 and web["1h"].outages == 1
    listed = report.outages(ledger, now - 2 * HOUR, now)
    assert [(o.subject, o.open) for o in listed] == [("web", False), ("web", True)]
    first, last = listed
    assert first.duration_s == pytest.approx(170)       # looks every 10 s, then every 60 s
    assert 10 <= last.duration_s <= 30                  # open: up to the last mark
    assert web["24h"].downtime_s == pytest.approx(first.duration_s + last.duration_s)
    assert web["24h"].mttr_s == pytest.approx(first.duration_s)
    assert web["range"].monitored_s == pytest.approx(2 * HOUR, abs=60)
    text = report.render(listed, "csv", list(report.OutageRow.__dataclass_fields__))
    assert text.splitlines()[0].startswith("subject_type,subject,start,end,duration_s,open")
    ledger.close()


def test_report_times_are_iso_or_a_duration_before_now() -> None:
    from fcaps.accounting.report import parse_time

    assert parse_time("7d", 1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert parse_time("2026-12-01T00:00:00Z", 0) == parse_time("2026-12-01", 0) == 1796083200.0
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday", 0)


def test_a_ledger_that_cannot_be_written_raises_an_alarm_and_loses_nothing_after(
        tmp_path: Path, cfg: Config, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    state = make_state()
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(5)
    rig.file.db.execute("PRAGMA query_only = 1")       # every write now fails, as on a full disk
    fail(state)
    said = rig.cycle()
    assert "cannot be written" in said
    assert rig.alarms.active(ProbableCause.ACCOUNTING_FAILURE, "head1")
    assert not rig.ledger.subjects[(AcctKind.SERVICE, "web")].open       # memory agrees with the file
    assert "BUG" not in caplog.text
    rig.file.db.execute("PRAGMA query_only = 0")
    rig.run_for(2)
    assert not rig.alarms.active(ProbableCause.ACCOUNTING_FAILURE, "head1")
    [outage] = rig.outages("web")
    assert outage.end is None


def test_recomputed_figures_update_the_same_rows(tmp_path: Path, cfg: Config, clock: FakeClock) -> None:
    """The figures of thousands of rows are recomputed every few seconds: in place, not as
    new rows (which would outlive the collector's young generations)."""
    state = make_state()
    rig = Rig(tmp_path / "a.sqlite", cfg, state, clock)
    rig.run_for(60)
    row = rig.row(AcctKind.SERVICE, "web")
    monitored = row.monitored_s
    rig.run_for(60)
    assert rig.row(AcctKind.SERVICE, "web") is row
    assert row.monitored_s == pytest.approx(monitored + 60, abs=6)
    assert all(isinstance(s, Subject) for s in rig.ledger._present)


def test_with_the_placement_an_alias_held_by_any_node_is_up() -> None:
    """With the corosync backend the alias rows come from Pacemaker's placement, which
    names whichever node holds the address: held by another node is up (not "no head
    holds it" as the two-head rule, which only knows this head and its peer, would say),
    released is down, unknown while the placement is."""
    state = State()
    state.cluster.local_head = "node1"
    state.heads.put((1,), HeadRow("node1", HeadRole.PRIMARY, is_local=True, status=HeadStatus.STANDBY))
    state.aliases.put((1,), AliasRow("10.71.1.100", 24, "lana", owner="node3", status=AliasStatus.HELD))
    state.aliases.put((2,), AliasRow("10.71.1.101", 24, "lana", status=AliasStatus.RELEASED))
    state.aliases.put((3,), AliasRow("10.71.1.102", 24, "lana", status=AliasStatus.UNKNOWN))
    seen = Observer(placed=True).look(state, 3.0)
    assert seen[(AcctKind.ALIAS, "10.71.1.100")].up is True
    assert seen[(AcctKind.ALIAS, "10.71.1.101")].up is False
    assert "no node holds 10.71.1.101" in seen[(AcctKind.ALIAS, "10.71.1.101")].cause
    assert seen[(AcctKind.ALIAS, "10.71.1.102")].up is None
    # the two-head rule, for contrast: a hold by a node that is not its peer is invisible
    assert Observer().look(state, 3.0)[(AcctKind.ALIAS, "10.71.1.100")].up is False
