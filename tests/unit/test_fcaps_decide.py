"""Who should be active: every rule of decide(), without clocks or sockets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fcaps.fault.decide import Action, Me, Peer, decide, wins_tie
from fcaps.fault.hbproto import Flag
from haoscar_snmp.core.state import HeadStatus as S

PRIMARY = Me(name="head1", preferred_primary=True, status=S.STANDBY, started_for_ms=60_000,
             initdead_ms=30_000, auto_failback=True, failback_delay_ms=0, switchover_requested=False)
STANDBY = replace(PRIMARY, name="head2", preferred_primary=False)


def peer(status: S, alive: bool = True, flags: Flag = Flag(0), preferred: bool = False,
         name: str = "head2", alive_for_ms: int = 10_000) -> Peer:
    return Peer(name=name, alive=alive, status=status, flags=flags, alive_for_ms=alive_for_ms,
                preferred_primary=preferred)


def test_single_head_takes_over_at_once() -> None:
    assert decide(replace(PRIMARY, status=S.STARTING, started_for_ms=0), None).action is Action.TAKE_OVER
    assert decide(replace(PRIMARY, status=S.ACTIVE), None).action is Action.WAIT


def test_starting_head_follows_an_active_peer_even_when_preferred() -> None:
    d = decide(replace(PRIMARY, status=S.STARTING, started_for_ms=0), peer(S.ACTIVE))
    assert d.action is Action.BECOME_STANDBY


def test_starting_head_waits_for_initdead_before_taking_over_alone() -> None:
    me = replace(STANDBY, status=S.STARTING, started_for_ms=10_000)
    assert decide(me, peer(S.UNKNOWN, alive=False, name="head1")).action is Action.WAIT
    me = replace(me, started_for_ms=30_000)
    d = decide(me, peer(S.UNKNOWN, alive=False, name="head1"))
    assert d.action is Action.TAKE_OVER and "start-up wait" in d.reason


def test_starting_preferred_primary_takes_over_from_a_standby_peer() -> None:
    d = decide(replace(PRIMARY, status=S.STARTING, started_for_ms=0), peer(S.STANDBY))
    assert d.action is Action.TAKE_OVER


def test_starting_standby_lets_a_starting_preferred_peer_go_first() -> None:
    me = replace(STANDBY, status=S.STARTING, started_for_ms=0)
    assert decide(me, peer(S.STARTING, preferred=True, name="head1")).action is Action.WAIT


def test_standby_takes_over_from_a_dead_peer() -> None:
    d = decide(STANDBY, peer(S.FAILED, alive=False, preferred=True, name="head1"))
    assert d.action is Action.TAKE_OVER and "dead" in d.reason


def test_standby_never_takes_over_from_a_live_active_peer() -> None:
    assert decide(STANDBY, peer(S.ACTIVE, preferred=True, name="head1")).action is Action.WAIT


def test_quorum_failure_blocks_takeover() -> None:
    d = decide(replace(STANDBY, quorum_ok=False), peer(S.FAILED, alive=False, name="head1"))
    assert d.action is Action.WAIT and "quorum" in d.reason


def test_standby_takes_over_on_handover() -> None:
    d = decide(STANDBY, peer(S.RELEASING, flags=Flag.HANDOVER, preferred=True, name="head1"))
    assert d.action is Action.TAKE_OVER


def test_primary_asks_for_failback_after_the_delay_only_with_auto_failback() -> None:
    delayed = replace(PRIMARY, failback_delay_ms=30_000)
    assert not decide(delayed, peer(S.ACTIVE, alive_for_ms=10_000)).flags & Flag.WANTS_ACTIVE
    assert decide(delayed, peer(S.ACTIVE, alive_for_ms=30_000)).flags & Flag.WANTS_ACTIVE
    off = replace(PRIMARY, auto_failback=False)
    assert not decide(off, peer(S.ACTIVE)).flags & Flag.WANTS_ACTIVE
    assert decide(replace(off, switchover_requested=True), peer(S.ACTIVE)).flags & Flag.WANTS_ACTIVE


def test_active_standby_hands_over_when_the_primary_asks() -> None:
    me = replace(STANDBY, status=S.ACTIVE)
    d = decide(me, peer(S.STANDBY, flags=Flag.WANTS_ACTIVE, preferred=True, name="head1"))
    assert d.action is Action.RELEASE and d.flags & Flag.HANDOVER


def test_operator_switchover_on_the_active_head() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, switchover_requested=True)
    assert decide(me, peer(S.STANDBY)).action is Action.RELEASE


@pytest.mark.parametrize("me_primary, peer_primary, me_name, peer_name, me_wins", [
    (True, False, "head2", "head1", True),    # preference beats names
    (False, True, "head1", "head2", False),
    (False, False, "head1", "head2", True),   # then the smaller name
    (True, True, "headB", "headA", False),
])
def test_split_brain_has_one_deterministic_winner(me_primary: bool, peer_primary: bool,
                                                  me_name: str, peer_name: str, me_wins: bool) -> None:
    me = replace(PRIMARY, name=me_name, preferred_primary=me_primary, status=S.ACTIVE)
    other = peer(S.ACTIVE, preferred=peer_primary, name=peer_name)
    d = decide(me, other)
    assert d.action is (Action.REANNOUNCE if me_wins else Action.RELEASE)
    # ... and the peer, deciding with the same facts, reaches the opposite answer.
    mirrored = replace(me, name=peer_name, preferred_primary=peer_primary)
    assert wins_tie(mirrored, replace(other, name=me_name, preferred_primary=me_primary)) is not me_wins


def test_both_standby_the_preferred_one_takes_over() -> None:
    assert decide(PRIMARY, peer(S.STANDBY)).action is Action.TAKE_OVER
    assert decide(STANDBY, peer(S.STANDBY, preferred=True, name="head1")).action is Action.WAIT


def test_transient_states_wait() -> None:
    for s in (S.TAKING_OVER, S.RELEASING):
        assert decide(replace(PRIMARY, status=s), peer(S.FAILED, alive=False)).action is Action.WAIT
