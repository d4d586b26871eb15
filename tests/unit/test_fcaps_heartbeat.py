"""HeartbeatCore on a fake clock: paths up and down, the dead time, lost heartbeats counted
while a path is silent, the public path arbitrating, and a wall clock that jumps around."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeClock

from fcaps.fault.heartbeat.session import Session
from fcaps.fault.heartbeat.peer import (
    HbSettings,
    HeartbeatCore,
    KeyRing,
    LocalView,
    PathSpec,
)
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import (
    HbPathRow,
    HeadRole,
    HeadRow,
    HeadStatus,
    HeartbeatFigures,
    Lan,
    LinkStatus,
    SecurityCounters,
)

CONFIG = """
[cluster]
name = "t"
local_head = "{me}"
state_dir = "state"
[[heads]]
name = "head1"
preferred_role = "primary"
lan_a = "10.71.1.1"
lan_b = "10.71.2.1"
public = "10.71.0.1"
[[heads]]
name = "head2"
preferred_role = "standby"
lan_a = "10.71.1.2"
lan_b = "10.71.2.2"
public = "10.71.0.2"
[timing]
heartbeat_interval_ms = 100
heartbeat_dead_time_ms = 300
initdead_ms = 1000
[heartbeat]
key_file = "hb.key"
[snmp]
listen = ["127.0.0.1:1161"]
"""
INTERVAL, DEAD = 0.1, 0.3


def config(tmp_path: Path, me: str) -> Config:
    key = tmp_path / "hb.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    return parse_config(CONFIG.format(me=me), label="t.toml", base_dir=tmp_path, environ={})


class Side:
    def __init__(self, tmp_path: Path, me: str, clock: FakeClock, public: bool = True) -> None:
        cfg = config(tmp_path, me)
        other = "head2" if me == "head1" else "head1"
        lans = [Lan.LAN_A, Lan.LAN_B] + ([Lan.PUBLIC] if public else [])
        self.rows = {lan: HbPathRow() for lan in lans}
        self.security = SecurityCounters()
        self.peer_row = HeadRow(name=other, preferred_role=HeadRole.STANDBY)
        specs = [PathSpec(lan, "x", "y") for lan in lans]
        settings = HbSettings(me, other, other == "head1", cfg.timing.heartbeat_interval_ms,
                              cfg.timing.heartbeat_dead_time_ms, cfg.timing.initdead_ms)
        self.keys = KeyRing(b"k" * 32)
        self.core = HeartbeatCore(settings, clock, Session(other, 1), specs, self.rows,
                                  self.peer_row, self.security, HeartbeatFigures(), self.keys)
        self.local = LocalView(status=HeadStatus.STANDBY)

    def kinds(self) -> list[str]:
        return [f"{n.kind}:{n.lan.name if n.lan else ''}" for n in self.core.drain()]


class Pair:
    """head1 and head2 exchanging heartbeats on a fake clock; `cut` paths carry nothing."""

    def __init__(self, tmp_path: Path, public: bool = True) -> None:
        self.clock = FakeClock()
        self.h1 = Side(tmp_path, "head1", self.clock, public)
        self.h2 = Side(tmp_path, "head2", self.clock, public)
        self.cut: set[Lan] = set()

    def tick(self, seconds: float = INTERVAL) -> None:
        """Both send, both receive what is not cut, then time passes and deadlines run."""
        for src, dst in ((self.h1, self.h2), (self.h2, self.h1)):
            for lan, data, _remote in src.core.messages(src.local):
                if lan not in self.cut:
                    dst.core.receive(data, lan)
        self.clock.advance(seconds)
        self.h1.core.check()
        self.h2.core.check()

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / INTERVAL)):
            self.tick()


def test_paths_come_up_after_the_handshake_and_the_peer_is_heard(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    view = p.h2.core.view()
    assert view.heard and view.status is HeadStatus.STANDBY
    assert view.paths_up == {1, 2, 3}
    assert all(r.status is LinkStatus.UP for r in p.h2.rows.values())
    assert "peer-up:" in p.h2.kinds()
    assert p.h2.peer_row.last_heartbeat == pytest.approx(p.clock.time(), abs=0.2)


def test_one_path_down_is_degraded_never_a_dead_peer(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    p.h2.core.drain()
    p.cut = {Lan.LAN_A}
    p.run(0.5)
    view = p.h2.core.view()
    assert view.heard and view.paths_up == {2, 3}
    assert p.h2.kinds() == ["path-down:LAN_A"]


def test_a_path_going_down_keeps_what_the_peer_said_last(tmp_path: Path) -> None:
    """Its settings version and public reach stay as last heard: a head that loses one
    path (its public link, say) must still know what the peer reaches."""
    p = Pair(tmp_path)
    p.h1.local = LocalView(status=HeadStatus.STANDBY, config=(3, "head1", 77), public=(2, 1, 0b10))
    p.run(0.5)
    assert p.h2.core.view().public == (2, 1, 0b10)
    p.cut = {Lan.PUBLIC}
    for _ in range(round(0.5 / INTERVAL)):
        p.tick()
        assert p.h2.core.view().public == (2, 1, 0b10) and p.h2.core.view().config == (3, "head1", 77)
    assert p.h2.core.view().paths_up == {1, 2}
    p.cut = {Lan.LAN_A, Lan.LAN_B, Lan.PUBLIC}
    p.run(0.5)
    assert not p.h2.core.view().heard and p.h2.core.view().public == (2, 1, 0b10)


def test_private_paths_down_but_heard_on_public_is_alive_and_public_only(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    p.cut = {Lan.LAN_A, Lan.LAN_B}
    p.run(0.6)
    view = p.h2.core.view()
    assert view.heard and view.public_only


def test_peer_is_silent_only_when_every_path_is_down_at_the_dead_time(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    p.h2.core.drain()
    p.cut = {Lan.LAN_A, Lan.LAN_B, Lan.PUBLIC}
    last = max(path.last_rx for path in p.h2.core.paths.values())
    while p.h2.core.view().heard:
        p.tick(0.01)
        assert p.clock.monotonic() - last < DEAD + 0.05
    assert p.clock.monotonic() - last == pytest.approx(DEAD, abs=0.011)
    view = p.h2.core.view()
    assert not view.heard and view.silent_since == pytest.approx(p.clock.monotonic())
    assert view.status is HeadStatus.STANDBY       # as last heard
    assert "peer-down:" in p.h2.kinds()


def test_next_deadline_is_last_heard_plus_the_dead_time(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    heard = p.clock.monotonic() - INTERVAL
    assert p.h2.core.next_deadline() == pytest.approx(heard + DEAD)


def test_lost_counts_while_the_path_is_silent_and_settles_on_recovery(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    row = p.h2.rows[Lan.LAN_B]
    assert row.lost == 0
    p.cut = {Lan.LAN_B}
    p.run(1.0)                              # ten heartbeats do not arrive
    assert row.status is LinkStatus.DOWN
    during = row.lost
    assert 8 <= during <= 10                # counted as they go missing, not after
    p.cut = set()
    p.run(0.3)
    assert row.lost == 10                   # the sequence gap settles the count exactly
    assert row.status is LinkStatus.UP


def test_max_gap_records_the_longest_silence_while_up(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    p.cut = {Lan.LAN_A}
    p.tick()                                # one heartbeat missing: a 0.2 s gap
    p.cut = set()
    p.run(0.3)
    assert p.h2.rows[Lan.LAN_A].max_gap_us == pytest.approx(200_000, abs=1_000)
    assert p.h2.rows[Lan.LAN_B].max_gap_us == pytest.approx(100_000, abs=1_000)


@pytest.mark.parametrize("step", [-3600.0, 3600.0, -30.0])
def test_a_wall_clock_step_changes_nothing_but_the_reported_offset(tmp_path: Path, step: float) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    p.h2.core.drain()
    sent = p.h1.rows[Lan.LAN_A].sent
    # Only head1's wall clock is stepped (one process under faketime): emulate it by
    # stepping the shared fake wall clock, then checking head1's view of head2 too.
    p.clock.step_wall(step)
    p.run(2.0)
    assert p.h1.rows[Lan.LAN_A].sent == sent + 20     # heartbeats kept their pace
    assert p.h2.core.view().heard and p.h1.core.view().heard
    assert all(r.status is LinkStatus.UP for r in p.h2.rows.values())
    assert p.h2.security.hb_replays == 0


def test_clock_offset_between_heads_is_reported_and_cleared(tmp_path: Path) -> None:
    p = Pair(tmp_path)

    class Skewed(FakeClock):
        def __init__(self, base: FakeClock, offset: float) -> None:
            self.base, self.offset = base, offset

        def monotonic(self) -> float:
            return self.base.monotonic()

        def time(self) -> float:
            return self.base.time() + self.offset

    skewed = Skewed(p.clock, 3600.0)
    p.h1.core.clock = skewed                   # head1's wall clock is an hour ahead
    p.run(1.0)
    notes = [n for n in p.h2.core.drain() if n.kind == "clock-offset"]
    assert len(notes) == 1 and notes[0].flag and notes[0].value == pytest.approx(3_600_000, abs=200)
    assert p.h2.core.view().heard            # but heartbeats count all the same
    skewed.offset = 0.0
    p.run(3.0)
    notes = [n for n in p.h2.core.drain() if n.kind == "clock-offset"]
    assert len(notes) == 1 and not notes[0].flag


def test_forged_junk_and_replayed_datagrams_are_counted_not_accepted(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    (lan, data, _), *_ = p.h1.core.messages(p.h1.local)
    p.h2.core.receive(data, lan)                               # the first delivery counts
    before = p.h2.rows[lan].received
    p.h2.core.receive(data, lan)                               # the same datagram again
    assert p.h2.security.hb_last_refused == f"{lan.label}: replayed or out of order"
    p.h2.core.receive(b"junk" * 30, lan)
    assert p.h2.security.hb_last_refused == f"{lan.label}: malformed"
    p.h2.core.receive(data[:-1] + bytes([data[-1] ^ 1]), lan)
    assert p.h2.security.hb_last_refused == f"{lan.label}: authentication failed"
    assert p.h2.rows[lan].received == before
    assert (p.h2.security.hb_replays, p.h2.security.malformed_packets,
            p.h2.security.hb_auth_failures) == (1, 1, 1)
    assert p.h2.rows[lan].rejected == 3


def test_without_the_public_path_there_are_two_paths(tmp_path: Path) -> None:
    p = Pair(tmp_path, public=False)
    p.run(0.5)
    assert p.h2.core.view().paths_up == {1, 2}
    p.cut = {Lan.LAN_A, Lan.LAN_B}
    p.run(0.6)
    assert not p.h2.core.view().heard


def test_a_key_rotated_on_one_head_then_the_other_never_interrupts_the_heartbeat(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    new = b"n" * 32
    p.h1.keys.rotate(new)                   # head1 reloaded: accepts both, still sends the old one
    p.run(2.0)                              # head2 reloads much later than a dead time
    assert p.h2.core.view().heard and p.h1.core.view().heard
    assert p.h1.keys.sending() == b"k" * 32 and p.h2.security.hb_auth_failures == 0
    p.h2.keys.rotate(new)
    p.run(0.2)
    assert p.h1.keys.sending() == new and p.h2.keys.sending() == new
    p.run(0.5)                              # a dead time later the old key is gone
    assert p.h1.keys.accepting() == (new,) and p.h2.keys.accepting() == (new,)
    assert all(r.status is LinkStatus.UP for r in p.h2.rows.values())
    assert p.h2.security.hb_auth_failures == 0 and p.h2.security.hb_replays == 0
    (lan, _data, _), *_ = p.h1.core.messages(p.h1.local)
    old_key_core = HeartbeatCore(p.h1.core.settings, p.clock, Session("head2", 9), [PathSpec(lan, "x", "y")],
                                 {lan: HbPathRow()}, HeadRow("head2", HeadRole.STANDBY), SecurityCounters(),
                                 HeartbeatFigures(), KeyRing(b"k" * 32))
    (_, stale, _), = old_key_core.messages(p.h1.local)
    p.h2.core.receive(stale, lan)
    assert p.h2.security.hb_auth_failures == 1     # the old key no longer passes


def test_the_adverts_reach_the_peer_once_it_says_it_reads_their_format(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.h1.local = LocalView(status=HeadStatus.ACTIVE, config=(4, "head2", 0xABCDEF), public=(3, 2, 0b101))
    first = p.h1.core.messages(p.h1.local)
    assert {data[4] for _lan, data, _r in first} == {2}      # nothing heard yet: the old format
    p.run(0.5)
    assert p.h2.core.view().config == (4, "head2", 0xABCDEF)
    assert p.h2.core.view().public == (3, 2, 0b101)
    assert {data[4] for _lan, data, _r in p.h1.core.messages(p.h1.local)} == {4}


def test_a_peer_that_reads_format_3_is_written_to_in_it_and_advertises_no_public_reach(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fcaps.fault.heartbeat import proto as hbproto

    p = Pair(tmp_path)
    original = hbproto.encode

    def release_before(msg: hbproto.Heartbeat, key: bytes) -> bytes:
        if msg.sender == "head2":
            msg = hbproto.Heartbeat(**{**msg.__dict__, "version": min(msg.version, 3),
                                       "caps": hbproto.CAP_READS_V3})
        return original(msg, key)

    monkeypatch.setattr(hbproto, "encode", release_before)
    p.h2.local = LocalView(status=HeadStatus.STANDBY, config=(1, "", 7), public=(2, 2, 0b11))
    p.run(0.5)
    assert p.h1.core.view().heard and p.h2.core.view().heard
    assert p.h1.core.peer_reads == 3
    assert p.h1.core.view().config == (1, "", 7) and p.h1.core.view().public is None
    assert {data[4] for _lan, data, _r in p.h1.core.messages(p.h1.local)} == {3}


def test_a_peer_of_the_release_before_is_written_to_in_its_format_and_still_heard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its messages are format 2 with no capability bit; ours to it stay format 2, whose
    every byte its parser reads, so a rolling upgrade moves nothing."""
    from fcaps.fault.heartbeat import proto as hbproto

    p = Pair(tmp_path)
    original = hbproto.encode

    def old_release(msg: hbproto.Heartbeat, key: bytes) -> bytes:
        if msg.sender == "head2":
            msg = hbproto.Heartbeat(**{**msg.__dict__, "version": 2, "caps": 0})
        return original(msg, key)

    monkeypatch.setattr(hbproto, "encode", old_release)
    p.run(0.5)
    assert p.h1.core.view().heard and p.h2.core.view().heard
    assert p.h1.core.peer_reads == 2
    assert p.h1.core.view().config is None                  # it advertises no settings
    assert {data[4] for _lan, data, _r in p.h1.core.messages(p.h1.local)} == {2}
