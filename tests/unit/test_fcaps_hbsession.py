"""Replay protection by nonce handshake: no wall clock involved, restarts and wiped state."""

from __future__ import annotations

from dataclasses import replace

from fcaps.fault.heartbeat.proto import Flag, Heartbeat
from fcaps.fault.heartbeat.session import Session, Verdict

LAN_A, LAN_B = 1, 2


class Head:
    """One side of the handshake: its session and the messages it would send."""

    def __init__(self, name: str, peer: str, epoch: int, nonce: int) -> None:
        self.name = name
        self.session = Session(peer, epoch, nonce)
        self.seq = 0

    def send(self, lan: int = LAN_A, wall_ms: int = 0) -> Heartbeat:
        self.seq += 1
        s = self.session
        return Heartbeat(self.name, lan, 4, Flag(0), s.epoch, self.seq, s.nonce, s.peer_nonce,
                         s.peer_epoch, 0, wall_ms)

    def hears(self, msg: Heartbeat, lan: int = LAN_A, heard: bool = False) -> Verdict:
        return self.session.check(msg, lan, heard)


def handshake(a: Head, b: Head) -> None:
    """Messages both ways until each accepts the other (bounded)."""
    for _ in range(4):
        va, vb = b.hears(a.send()), a.hears(b.send())
        if va is vb is Verdict.OK:
            return
    raise AssertionError("no handshake")


def test_first_contact_takes_one_round_trip_then_both_accept() -> None:
    a, b = Head("head1", "head2", 5, 111), Head("head2", "head1", 9, 222)
    assert b.hears(a.send()) is Verdict.UNCONFIRMED   # a does not know b's nonce yet
    assert a.hears(b.send()) is Verdict.OK            # b echoed a's nonce, learnt just now
    assert b.hears(a.send()) is Verdict.OK            # a now echoes b's nonce


def test_a_recording_from_before_our_start_is_never_accepted() -> None:
    a, b = Head("head1", "head2", 5, 111), Head("head2", "head1", 9, 222)
    handshake(a, b)
    recorded = [a.send() for _ in range(5)]
    # b restarts: new nonce, higher epoch. The recordings echo b's old nonce.
    b2 = Head("head2", "head1", 10, 333)
    for msg in recorded:
        assert b2.hears(msg) is Verdict.UNCONFIRMED
    handshake(a, b2)
    for msg in recorded:
        assert b2.hears(msg, heard=True) is not Verdict.OK


def test_a_recording_from_this_run_is_a_replay() -> None:
    a, b = Head("head1", "head2", 5, 111), Head("head2", "head1", 9, 222)
    handshake(a, b)
    msg = a.send()
    assert b.hears(msg, heard=True) is Verdict.OK
    assert b.hears(msg, heard=True) is Verdict.REPLAY
    assert b.hears(replace(msg, lan=LAN_B), LAN_B, heard=True) is Verdict.OK   # its own order per path
    assert b.hears(replace(msg, lan=LAN_B), LAN_B, heard=True) is Verdict.REPLAY


def test_the_peer_restarting_is_accepted_at_once_and_its_old_run_is_retired() -> None:
    a, b = Head("head1", "head2", 5, 111), Head("head2", "head1", 9, 222)
    handshake(a, b)
    old_run = a.send()
    a2 = Head("head1", "head2", 6, 444)                 # a restarts (epoch + 1, new nonce)
    assert a.hears(b.send(), heard=True) is Verdict.OK  # (the old a heard b once more)
    first = a2.send()
    assert b.hears(first, heard=True) is Verdict.UNCONFIRMED   # a2 does not know b's nonce yet
    assert a2.hears(b.send()) is Verdict.UNCONFIRMED           # b still echoes a's old nonce
    assert b.hears(a2.send(), heard=True) is Verdict.OK        # a2 learnt b's nonce: new run accepted
    assert b.hears(replace(old_run, seq=10**6), heard=True) is Verdict.REPLAY  # old run retired


def test_clocks_an_hour_apart_do_not_matter() -> None:
    a, b = Head("head1", "head2", 5, 111), Head("head2", "head1", 9, 222)
    b.hears(a.send(wall_ms=0))
    assert a.hears(b.send(wall_ms=3_600_000)) is Verdict.OK
    assert b.hears(a.send(wall_ms=-3_600_000)) is Verdict.OK


def test_a_peer_that_lost_its_boot_counter_learns_where_to_continue() -> None:
    a, b = Head("head1", "head2", 57, 111), Head("head2", "head1", 9, 222)
    handshake(a, b)
    assert b.session.peer_epoch == 57
    wiped = Head("head1", "head2", 1, 555)               # state directory wiped: epoch 1 again
    msg = wiped.send()
    assert b.hears(msg, heard=False) is Verdict.UNCONFIRMED   # learn its nonce to echo it
    assert wiped.hears(b.send()) is Verdict.OK                # b's reply echoes it: fresh, says 57
    assert wiped.session.epoch == 58 and wiped.session.bumped_epoch
    assert b.hears(wiped.send(), heard=False) is Verdict.OK


def test_unknown_sender_is_refused() -> None:
    a = Head("head1", "head2", 5, 111)
    assert a.hears(Heartbeat("intruder", 1, 4, Flag(0), 1, 1, 7, 111)) is Verdict.UNKNOWN_SENDER


def test_after_the_handshake_a_message_echoing_a_foreign_nonce_counts_as_a_replay() -> None:
    a, b = Head("head1", "head2", 5, 111), Head("head2", "head1", 9, 222)
    assert b.hears(a.send()) is Verdict.UNCONFIRMED       # before any handshake: not counted
    handshake(a, b)
    recording = replace(a.send(), echo_nonce=999)          # made for an earlier run of b
    assert b.hears(recording, heard=True) is Verdict.REPLAY
    restarted = replace(a.send(), echo_nonce=0, nonce=777, epoch=6)   # a new run of a: handshake
    assert b.hears(restarted, heard=True) is Verdict.UNCONFIRMED
