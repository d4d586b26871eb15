"""Who should be active: every rule of decide(), without clocks or sockets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fcaps.fault.role.decide import (
    Action,
    Me,
    Peer,
    blind_peer_generation,
    decide,
    keeps,
    wins_tie,
)
from fcaps.fault.heartbeat.proto import Flag
from haoscar_snmp.core.state import HeadStatus as S

PRIMARY = Me(name="head1", preferred_primary=True, status=S.STANDBY, started_for_ms=60_000,
             initdead_ms=30_000, auto_failback=True, failback_delay_ms=0, switchover_requested=False)
STANDBY = replace(PRIMARY, name="head2", preferred_primary=False)
FIT = Flag.QUORUM_OK


def peer(status: S, alive: bool = True, flags: Flag = FIT, preferred: bool = False,
         name: str = "head2", alive_for_ms: int = 10_000, generation: int = 0,
         ever_heard: bool = True) -> Peer:
    return Peer(name=name, alive=alive, status=status, flags=flags, alive_for_ms=alive_for_ms,
                preferred_primary=preferred, generation=generation, ever_heard=ever_heard)


def primary_peer(status: S, **kw: object) -> Peer:
    return peer(status, preferred=True, name="head1", **kw)  # type: ignore[arg-type]


# -- start-up, failover, failback (as before) -----------------------------------------------

def test_single_head_takes_over_at_once() -> None:
    assert decide(replace(PRIMARY, status=S.STARTING, started_for_ms=0), None).action is Action.TAKE_OVER
    assert decide(replace(PRIMARY, status=S.ACTIVE), None).action is Action.WAIT


def test_starting_head_follows_an_active_peer_even_when_preferred() -> None:
    d = decide(replace(PRIMARY, status=S.STARTING, started_for_ms=0), peer(S.ACTIVE))
    assert d.action is Action.BECOME_STANDBY


def test_starting_head_waits_for_initdead_before_taking_over_alone() -> None:
    me = replace(STANDBY, status=S.STARTING, started_for_ms=10_000)
    assert decide(me, primary_peer(S.UNKNOWN, alive=False, ever_heard=False)).action is Action.WAIT
    me = replace(me, started_for_ms=30_000)
    d = decide(me, primary_peer(S.UNKNOWN, alive=False, ever_heard=False))
    assert d.action is Action.TAKE_OVER and "start-up wait" in d.reason


def test_starting_preferred_primary_takes_over_from_a_standby_peer() -> None:
    d = decide(replace(PRIMARY, status=S.STARTING, started_for_ms=0), peer(S.STANDBY))
    assert d.action is Action.TAKE_OVER


def test_starting_standby_lets_a_starting_preferred_peer_go_first_unless_it_is_unfit() -> None:
    me = replace(STANDBY, status=S.STARTING, started_for_ms=0)
    assert decide(me, primary_peer(S.STARTING)).action is Action.WAIT
    assert decide(me, primary_peer(S.STARTING, flags=FIT | Flag.ISOLATED)).action is Action.TAKE_OVER


def test_standby_takes_over_from_a_dead_peer() -> None:
    d = decide(STANDBY, primary_peer(S.ACTIVE, alive=False))
    assert d.action is Action.TAKE_OVER and "dead" in d.reason


def test_standby_never_takes_over_from_a_live_active_peer() -> None:
    assert decide(STANDBY, primary_peer(S.ACTIVE)).action is Action.WAIT


def test_quorum_failure_blocks_takeover_and_is_advertised() -> None:
    d = decide(replace(STANDBY, quorum_ok=False), primary_peer(S.ACTIVE, alive=False))
    assert d.action is Action.WAIT and "quorum" in d.reason
    assert not d.flags & Flag.QUORUM_OK
    assert decide(STANDBY, primary_peer(S.ACTIVE)).flags & Flag.QUORUM_OK


def test_standby_takes_over_only_once_the_peer_has_released() -> None:
    # RELEASING still holds the alias: taking over now would make two holders.
    releasing = primary_peer(S.RELEASING, flags=FIT | Flag.HANDOVER)
    assert decide(STANDBY, releasing).action is Action.WAIT
    released = primary_peer(S.STANDBY, flags=FIT | Flag.HANDOVER)
    assert decide(STANDBY, released).action is Action.TAKE_OVER


def test_the_head_that_released_does_not_take_back_while_handing_over() -> None:
    me = replace(PRIMARY, handing_over=True)
    d = decide(me, peer(S.STANDBY))
    assert d.action is Action.WAIT and d.flags & Flag.HANDOVER


def test_primary_asks_for_failback_after_the_delay_only_with_auto_failback() -> None:
    delayed = replace(PRIMARY, failback_delay_ms=30_000)
    assert not decide(delayed, peer(S.ACTIVE, alive_for_ms=10_000)).flags & Flag.WANTS_ACTIVE
    assert decide(delayed, peer(S.ACTIVE, alive_for_ms=30_000)).flags & Flag.WANTS_ACTIVE
    off = replace(PRIMARY, auto_failback=False)
    assert not decide(off, peer(S.ACTIVE)).flags & Flag.WANTS_ACTIVE
    assert decide(replace(off, switchover_requested=True), peer(S.ACTIVE)).flags & Flag.WANTS_ACTIVE


def test_active_standby_hands_over_when_a_fit_primary_asks() -> None:
    me = replace(STANDBY, status=S.ACTIVE)
    d = decide(me, primary_peer(S.STANDBY, flags=FIT | Flag.WANTS_ACTIVE))
    assert d.action is Action.RELEASE and d.flags & Flag.HANDOVER
    unfit = primary_peer(S.STANDBY, flags=Flag.WANTS_ACTIVE)          # its quorum check fails
    assert decide(me, unfit).action is Action.WAIT


def test_operator_switchover_on_the_active_head() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, switchover_requested=True)
    assert decide(me, peer(S.STANDBY)).action is Action.RELEASE


def test_both_standby_the_preferred_one_takes_over_unless_it_is_unfit() -> None:
    assert decide(PRIMARY, peer(S.STANDBY)).action is Action.TAKE_OVER
    assert decide(STANDBY, primary_peer(S.STANDBY)).action is Action.WAIT
    assert decide(STANDBY, primary_peer(S.STANDBY, flags=FIT | Flag.ISOLATED)).action is Action.TAKE_OVER


def test_transient_states_wait() -> None:
    for s in (S.TAKING_OVER, S.RELEASING):
        assert decide(replace(PRIMARY, status=s), peer(S.FAILED, alive=False)).action is Action.WAIT


# -- split brain: who keeps the alias ---------------------------------------------------------

@pytest.mark.parametrize("me_primary, peer_primary, me_name, peer_name, me_wins", [
    (True, False, "head2", "head1", True),    # preference beats names
    (False, True, "head1", "head2", False),
    (False, False, "head1", "head2", True),   # then the smaller name
    (True, True, "headB", "headA", False),
])
def test_split_brain_with_auto_failback_has_one_deterministic_winner(
        me_primary: bool, peer_primary: bool, me_name: str, peer_name: str, me_wins: bool) -> None:
    me = replace(PRIMARY, name=me_name, preferred_primary=me_primary, status=S.ACTIVE)
    other = peer(S.ACTIVE, preferred=peer_primary, name=peer_name)
    d = decide(me, other)
    assert d.action is (Action.REANNOUNCE if me_wins else Action.RELEASE)
    mirrored = replace(me, name=peer_name, preferred_primary=peer_primary)
    assert wins_tie(mirrored, replace(other, name=me_name, preferred_primary=me_primary)) is not me_wins


@pytest.mark.parametrize("auto_failback, delay_ms", [(False, 0), (True, 30_000)])
def test_split_brain_without_immediate_failback_the_later_takeover_keeps_the_alias(
        auto_failback: bool, delay_ms: int) -> None:
    """After a freeze, mute or cut heals: the standby took over (generation 8) while the
    primary kept its older one (7). The policy says the standby keeps the service."""
    primary = replace(PRIMARY, status=S.ACTIVE, auto_failback=auto_failback, failback_delay_ms=delay_ms,
                      generation=7)
    standby = replace(STANDBY, status=S.ACTIVE, auto_failback=auto_failback, failback_delay_ms=delay_ms,
                      generation=8)
    assert decide(primary, peer(S.ACTIVE, generation=8)).action is Action.RELEASE
    assert decide(standby, primary_peer(S.ACTIVE, generation=7)).action is Action.REANNOUNCE
    # with equal generations the tie goes to the preferred primary on both heads
    assert decide(replace(primary, generation=8), peer(S.ACTIVE, generation=8)).action is Action.REANNOUNCE
    assert decide(standby, primary_peer(S.ACTIVE, generation=8)).action is Action.RELEASE


def test_split_brain_with_immediate_failback_goes_to_the_primary_whatever_the_generation() -> None:
    primary = replace(PRIMARY, status=S.ACTIVE, generation=7)
    assert decide(primary, peer(S.ACTIVE, generation=8)).action is Action.REANNOUNCE


# -- isolation and the public path --------------------------------------------------------------

def test_an_isolated_active_head_hands_over_to_a_peer_heard_on_the_public_lan() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, isolated=True, public_path=True, isolated_for_ms=20)
    d = decide(me, peer(S.STANDBY))
    assert d.action is Action.WAIT and "isolated too" in d.reason      # it may be isolated as well
    me = replace(me, isolated_for_ms=150)
    d = decide(me, peer(S.STANDBY))
    assert d.action is Action.RELEASE and d.flags & Flag.HANDOVER and d.flags & Flag.ISOLATED
    assert "isolated" in d.reason


def test_an_isolated_active_head_keeps_the_alias_when_the_peer_is_isolated_too() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, isolated=True, public_path=True)
    assert decide(me, peer(S.STANDBY, flags=FIT | Flag.ISOLATED)).action is Action.WAIT


def test_an_isolated_active_head_without_a_public_path_lets_go() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, isolated=True)
    d = decide(me, peer(S.STANDBY, alive=False))
    assert d.action is Action.RELEASE and "may be alive" in d.reason


def test_an_isolated_active_head_keeps_the_alias_when_the_peer_is_silent_on_public_too() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, isolated=True, public_path=True)
    assert decide(me, peer(S.STANDBY, alive=False)).action is Action.WAIT


def test_an_isolated_standby_does_not_take_over() -> None:
    me = replace(STANDBY, isolated=True)
    assert decide(me, primary_peer(S.ACTIVE, alive=False)).action is Action.WAIT
    assert decide(me, primary_peer(S.STANDBY, flags=FIT | Flag.HANDOVER)).action is Action.WAIT
    # ... unless the public LAN says the peer is gone as well
    assert decide(replace(me, public_path=True), primary_peer(S.ACTIVE, alive=False)).action is Action.TAKE_OVER


def test_a_standby_does_not_ask_an_unfit_active_peer_to_hand_over() -> None:
    """The unfit peer hands over by itself; a request based on its flags could come after
    they stopped being true (links back on both heads at once) and move the service twice."""
    d = decide(STANDBY, primary_peer(S.ACTIVE, flags=FIT | Flag.ISOLATED))
    assert d.action is Action.WAIT and not d.flags & Flag.WANTS_ACTIVE


def test_an_active_head_without_carrier_on_its_alias_interface_hands_over() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, public_down=True)
    d = decide(me, peer(S.STANDBY))
    assert d.action is Action.RELEASE and d.flags & Flag.PUBLIC_DOWN
    assert decide(me, peer(S.STANDBY, flags=FIT | Flag.PUBLIC_DOWN)).action is Action.WAIT


def test_a_peer_heard_on_the_public_lan_only_is_alive_no_takeover() -> None:
    p = replace(primary_peer(S.ACTIVE), public_only=True)
    assert decide(STANDBY, p).action is Action.WAIT


# -- an alias announced by a head we cannot hear ---------------------------------------------------

def test_blind_conflict_the_head_that_took_over_since_the_last_contact_is_newer() -> None:
    """head1 was active at the last contact (generation 7); head2 took over since (8)."""
    h1 = replace(PRIMARY, status=S.ACTIVE, auto_failback=False, generation=7, contact_generation=7,
                 conflict="02:00:00:00:00:02")
    h2 = replace(STANDBY, status=S.ACTIVE, auto_failback=False, generation=8, contact_generation=7,
                 conflict="02:00:00:00:00:01")
    seen_by_h1 = peer(S.STANDBY, alive=False, generation=7)          # head2 as last heard
    seen_by_h2 = primary_peer(S.ACTIVE, alive=False, generation=7)   # head1 as last heard
    assert blind_peer_generation(h1, seen_by_h1) == 8
    assert blind_peer_generation(h2, seen_by_h2) == 7
    assert decide(h1, seen_by_h1).action is Action.RELEASE
    assert decide(h2, seen_by_h2).action is Action.REANNOUNCE


def test_blind_conflict_between_heads_that_never_met_goes_to_the_primary() -> None:
    h1 = replace(PRIMARY, status=S.ACTIVE, auto_failback=False, generation=6, conflict="m2")
    h2 = replace(STANDBY, status=S.ACTIVE, auto_failback=False, generation=4, conflict="m1")
    never = dict(alive=False, ever_heard=False)
    assert decide(h1, peer(S.UNKNOWN, **never)).action is Action.REANNOUNCE   # type: ignore[arg-type]
    assert decide(h2, primary_peer(S.UNKNOWN, **never)).action is Action.RELEASE  # type: ignore[arg-type]


def test_a_standby_that_yielded_does_not_take_over_while_the_holder_announces() -> None:
    me = replace(STANDBY, yielded="02:00:00:00:00:01")
    d = decide(me, primary_peer(S.ACTIVE, alive=False))
    assert d.action is Action.WAIT and "yielded" in d.reason
    assert decide(replace(me, yielded=""), primary_peer(S.ACTIVE, alive=False)).action is Action.TAKE_OVER


def test_keeps_is_antisymmetric() -> None:
    for auto, delay in ((True, 0), (False, 0), (True, 5000)):
        for g1 in range(3):
            for g2 in range(3):
                a = replace(PRIMARY, auto_failback=auto, failback_delay_ms=delay, generation=g1)
                b = replace(STANDBY, auto_failback=auto, failback_delay_ms=delay, generation=g2)
                pa, pb = primary_peer(S.ACTIVE, generation=g1), peer(S.ACTIVE, generation=g2)
                assert keeps(a, pb, g2) is not keeps(b, pa, g1)


def test_a_head_whose_links_just_came_back_waits_before_believing_the_peer_dead() -> None:
    me = replace(STANDBY, settling=True)
    d = decide(me, primary_peer(S.ACTIVE, alive=False))
    assert d.action is Action.WAIT and "came back" in d.reason
    assert decide(me, primary_peer(S.STANDBY, flags=FIT | Flag.HANDOVER)).action is Action.TAKE_OVER


def test_an_active_head_defends_its_alias_but_a_failback_request_comes_first() -> None:
    me = replace(STANDBY, status=S.ACTIVE, conflict="02:00:00:00:00:09")
    assert decide(me, primary_peer(S.STANDBY)).action is Action.WAIT   # not yet: it may be a takeover
    me = replace(me, stray="02:00:00:00:00:09")
    d = decide(me, primary_peer(S.STANDBY))
    assert d.action is Action.REANNOUNCE and "defending" in d.reason
    d = decide(me, primary_peer(S.STANDBY, flags=FIT | Flag.WANTS_ACTIVE))
    assert d.action is Action.RELEASE


def test_a_head_whose_heartbeats_fell_silent_releases_and_does_not_take_over() -> None:
    d = decide(replace(PRIMARY, status=S.ACTIVE, fenced=True), peer(S.ACTIVE))
    assert d.action is Action.RELEASE and "did not answer" in d.reason
    assert decide(replace(STANDBY, fenced=True), primary_peer(S.ACTIVE, alive=False)).action is Action.WAIT


def test_a_head_deaf_to_its_peer_releases_with_handover_and_takes_nothing_over() -> None:
    deaf = "the heartbeat process has sent nothing for 210 ms"
    d = decide(replace(PRIMARY, status=S.ACTIVE, deaf=deaf), peer(S.STANDBY))
    assert d.action is Action.RELEASE and d.flags & Flag.HANDOVER and deaf in d.reason
    # whatever the last report said of the peer: dead, standby, or handing over
    for p in (primary_peer(S.ACTIVE, alive=False), primary_peer(S.STANDBY, flags=FIT | Flag.HANDOVER)):
        d = decide(replace(STANDBY, deaf=deaf), p)
        assert d.action is Action.WAIT and deaf in d.reason
    d = decide(replace(STANDBY, status=S.STARTING, started_for_ms=60_000, deaf=deaf),
               primary_peer(S.UNKNOWN, alive=False, ever_heard=False))
    assert d.action is Action.WAIT


def test_a_new_heartbeat_process_does_not_believe_a_silent_peer_dead_for_a_dead_time() -> None:
    d = decide(replace(STANDBY, settling=True), primary_peer(S.UNKNOWN, alive=False, ever_heard=False))
    assert d.action is Action.WAIT and "heartbeat process was replaced" in d.reason


# -- the public LAN, by its targets ---------------------------------------------------------

LOST_HERE = "head1 reaches none of its 2 public targets (10.71.0.254, 10.71.0.100)"


def reaching(p: Peer, reached: int | None) -> Peer:
    return replace(p, public_reached=reached)


def test_an_active_head_that_lost_the_public_lan_hands_over_to_a_standby_that_reaches_it() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, public_lost=LOST_HERE, public_lost_for_ms=250, public_settle_ms=300)
    d = decide(me, reaching(peer(S.STANDBY), 1))
    assert d.action is Action.WAIT and "waiting 300 ms to hear whether head2 still reaches them" in d.reason
    me = replace(me, public_lost_for_ms=300)
    d = decide(me, reaching(peer(S.STANDBY), 1))
    assert d.action is Action.RELEASE and d.flags & Flag.HANDOVER and d.flags & Flag.PUBLIC_LOST
    assert LOST_HERE in d.reason and "head2 reaches 1" in d.reason


def test_if_neither_reaches_the_public_lan_nothing_moves_and_the_sentence_says_why() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, public_lost=LOST_HERE)
    for p, why in ((reaching(peer(S.STANDBY), 0), "reaches none either"),
                   (reaching(peer(S.STANDBY, flags=FIT | Flag.PUBLIC_LOST), 1), "reaches none either"),
                   (reaching(peer(S.STANDBY), None), "does not say what it reaches"),
                   (reaching(peer(S.STANDBY, flags=FIT | Flag.SERVICE_FAILED), 2), "cannot take it now")):
        d = decide(me, p)
        assert d.action is Action.WAIT and why in d.reason and "keeping the alias" in d.reason, d.reason
    d = decide(me, reaching(peer(S.STANDBY, alive=False), 2))
    assert d.action is Action.WAIT                   # a dead peer takes nothing over


def test_a_head_that_lost_the_public_lan_is_not_made_active_by_failback_or_a_tie() -> None:
    standby = replace(PRIMARY, public_lost=LOST_HERE)
    d = decide(standby, primary_peer(S.ACTIVE))
    assert d.action is Action.WAIT and not d.flags & Flag.WANTS_ACTIVE and LOST_HERE in d.reason
    d = decide(standby, reaching(peer(S.STANDBY), 1))          # both standby: it waits though preferred
    assert d.action is Action.WAIT
    d = decide(STANDBY, reaching(primary_peer(S.STANDBY, flags=FIT | Flag.PUBLIC_LOST), 0))
    assert d.action is Action.TAKE_OVER and "unfit" in d.reason
    # an active head does not hand over to a standby that lost it, whatever it asks
    d = decide(replace(PRIMARY, status=S.ACTIVE, switchover_requested=True),
               reaching(peer(S.STANDBY, flags=FIT | Flag.PUBLIC_LOST | Flag.WANTS_ACTIVE), 0))
    assert d.action is Action.WAIT


def test_an_active_head_back_on_the_public_lan_within_its_hold_down_keeps_the_alias() -> None:
    """Both heads lose the targets, both get them back; the peer's hold-down ends first.
    The hold-down keeps the service from moving to a flapping head, not off a head that
    reaches the targets again."""
    me = replace(PRIMARY, status=S.ACTIVE, public_lost="head1 reaches 2 of its 2 public targets again, "
                 "for 1.9 of the 2 s hold-down", public_reached=2, public_lost_for_ms=5000, public_settle_ms=200)
    d = decide(me, reaching(peer(S.STANDBY), 2))
    assert d.action is Action.WAIT and d.flags & Flag.PUBLIC_LOST


def test_a_head_that_lost_the_public_lan_still_takes_over_from_a_dead_peer() -> None:
    d = decide(replace(STANDBY, public_lost="head2 reaches none"), primary_peer(S.ACTIVE, alive=False))
    assert d.action is Action.TAKE_OVER


def test_a_starting_head_that_lost_the_public_lan_leaves_the_role_to_a_peer_that_reaches_it() -> None:
    me = replace(PRIMARY, status=S.STARTING, started_for_ms=0, public_lost=LOST_HERE)
    assert decide(me, reaching(peer(S.STARTING), 2)).action is Action.BECOME_STANDBY
    assert decide(me, reaching(peer(S.STARTING), 0)).action is Action.TAKE_OVER


# -- a service that failed beyond its restarts --------------------------------------------

FAILED_HERE = "service pbs failed on this head"


def test_an_active_head_with_a_failed_service_hands_over_to_a_standby_that_can_serve() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, service_unfit=FAILED_HERE)
    d = decide(me, peer(S.STANDBY))
    assert d.action is Action.RELEASE and d.flags & Flag.HANDOVER and d.flags & Flag.SERVICE_FAILED
    assert FAILED_HERE in d.reason


def test_it_keeps_the_role_when_the_peer_cannot_serve_either() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, service_unfit=FAILED_HERE)
    assert decide(me, peer(S.STANDBY, flags=FIT | Flag.SERVICE_FAILED)).action is Action.WAIT
    assert decide(me, peer(S.STANDBY, flags=FIT | Flag.ISOLATED)).action is Action.WAIT
    assert decide(me, peer(S.STANDBY, alive=False)).action is Action.WAIT


def test_a_standby_with_a_failed_service_asks_for_no_failback() -> None:
    me = replace(PRIMARY, service_unfit=FAILED_HERE)          # the preferred primary, auto-failback on
    d = decide(me, peer(S.ACTIVE))
    assert d.action is Action.WAIT and not d.flags & Flag.WANTS_ACTIVE
    assert not d.flags & Flag.WANTS_ACTIVE and d.flags & Flag.SERVICE_FAILED
    assert decide(PRIMARY, peer(S.ACTIVE)).flags & Flag.WANTS_ACTIVE       # without it, it would


def test_an_active_head_does_not_hand_over_to_a_peer_whose_service_failed() -> None:
    me = replace(STANDBY, status=S.ACTIVE)
    asking = FIT | Flag.WANTS_ACTIVE | Flag.SERVICE_FAILED | Flag.PREFERRED_PRIMARY
    assert decide(me, primary_peer(S.STANDBY, flags=asking)).action is Action.WAIT
    assert decide(replace(me, switchover_requested=True),
                  primary_peer(S.STANDBY, flags=FIT | Flag.SERVICE_FAILED)).action is Action.WAIT


def test_a_dead_peer_is_taken_over_from_even_with_a_failed_service() -> None:
    me = replace(STANDBY, service_unfit=FAILED_HERE)
    assert decide(me, primary_peer(S.ACTIVE, alive=False)).action is Action.TAKE_OVER


def test_between_two_standbys_the_one_that_can_serve_takes_over() -> None:
    me = replace(PRIMARY, service_unfit=FAILED_HERE)          # would win the tie otherwise
    assert decide(me, peer(S.STANDBY)).action is Action.WAIT
    d = decide(STANDBY, primary_peer(S.STANDBY, flags=FIT | Flag.SERVICE_FAILED | Flag.PREFERRED_PRIMARY))
    assert d.action is Action.TAKE_OVER and "service failed" in d.reason


def test_a_starting_head_with_a_failed_service_lets_a_standby_peer_serve() -> None:
    me = replace(PRIMARY, status=S.STARTING, started_for_ms=0, service_unfit=FAILED_HERE)
    assert decide(me, peer(S.STANDBY)).action is Action.BECOME_STANDBY
    assert decide(me, peer(S.STANDBY, flags=FIT | Flag.SERVICE_FAILED)).action is Action.TAKE_OVER


# -- an active head cut off from the private LANs (failover.lan_failure_is_head_failure) --

PEER_CUT = "head1 answers on none of its private interfaces (lanA and lanB) while head2 reaches the nodes there"


def test_a_standby_that_finds_the_active_heads_lans_down_says_so_and_the_active_hands_over() -> None:
    d = decide(replace(STANDBY, peer_lans_down=PEER_CUT), primary_peer(S.ACTIVE))
    assert d.action is Action.WAIT and d.flags & Flag.PEER_LANS_DOWN      # the standby only tells
    me = replace(PRIMARY, status=S.ACTIVE)
    d = decide(me, peer(S.STANDBY, flags=FIT | Flag.PEER_LANS_DOWN))
    assert d.action is Action.RELEASE and d.flags & Flag.HANDOVER and "private LAN interface" in d.reason
    assert decide(me, peer(S.STANDBY)).action is Action.WAIT              # without the word: nothing


def test_when_each_head_finds_the_others_lans_down_nobody_moves() -> None:
    me = replace(PRIMARY, status=S.ACTIVE, peer_lans_down="head2 answers on none of its private interfaces")
    assert decide(me, peer(S.STANDBY, flags=FIT | Flag.PEER_LANS_DOWN)).action is Action.WAIT


def test_no_handover_for_lans_to_an_unfit_peer_or_one_whose_service_failed() -> None:
    me = replace(PRIMARY, status=S.ACTIVE)
    assert decide(me, peer(S.STANDBY, flags=Flag.PEER_LANS_DOWN)).action is Action.WAIT     # no quorum
    assert decide(me, peer(S.STANDBY, flags=FIT | Flag.PEER_LANS_DOWN | Flag.SERVICE_FAILED)).action \
        is Action.WAIT


def test_an_active_head_refuses_failback_and_switchover_to_a_peer_whose_lans_it_finds_down() -> None:
    me = replace(STANDBY, status=S.ACTIVE, peer_lans_down=PEER_CUT)
    asking = FIT | Flag.WANTS_ACTIVE | Flag.PREFERRED_PRIMARY
    d = decide(me, primary_peer(S.STANDBY, flags=asking))
    assert d.action is Action.WAIT and PEER_CUT in d.reason
    assert decide(replace(me, switchover_requested=True), primary_peer(S.STANDBY)).action is Action.WAIT
    assert decide(replace(me, peer_lans_down=""), primary_peer(S.STANDBY, flags=asking)).action is Action.RELEASE
