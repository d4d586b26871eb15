"""The LAN watch (fcaps.fault.lan.watch): interface states, the hold-down, LAN failures and
the head-failure input, driven round by round by a hand-written prober, with times given
by the test."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import pytest

from fcaps.fault.lan.watch import (
    LanWatch,
    Policy,
    Reading,
    Step,
    StepKind,
    polls_here,
    running_on,
)
from haoscar_snmp.config.lanrows import IfKey
from haoscar_snmp.config.schema import Config, Poller
from haoscar_snmp.core.state import Lan, LinkStatus

K = StepKind
A, B = Lan.LAN_A, Lan.LAN_B
SECOND = Policy(poll_interval_s=1, down_after_s=2.5, rise=3, hold_down_s=60)


class FakeProber:
    """One echo per interface per round; an interface the test `cut` does not answer.

    Replies land anywhere in the round's interval (`spread`), so one cut is detected on
    different interfaces in different rounds, as it is on a real network."""

    def __init__(self, keys: Iterable[IfKey], interval: float, spread: bool = True) -> None:
        self.keys = list(keys)
        self.interval = interval
        self.spread = spread
        self.cut: set[IfKey] = set()
        self.sent = dict.fromkeys(self.keys, 0)
        self.received = dict.fromkeys(self.keys, 0)
        self.last: dict[IfKey, float | None] = dict.fromkeys(self.keys, None)

    def round(self, now: float) -> dict[IfKey, Reading]:
        out = {}
        for i, key in enumerate(self.keys):
            self.sent[key] += 1
            if key not in self.cut:
                self.received[key] += 1
                self.last[key] = now - (i % 10) / 10 * self.interval if self.spread else now
            out[key] = Reading(self.sent[key], self.received[key], self.last[key], 0.0003)
        return out


class Run:
    """A watch and its prober, stepped round by round; every step is kept with its time."""

    def __init__(self, keys: Iterable[IfKey], policy: Policy = SECOND, spread: bool = True) -> None:
        self.keys = list(keys)
        self.policy = policy
        self.watch = LanWatch(policy)
        self.prober = FakeProber(self.keys, policy.poll_interval_s, spread)
        self.round = 0
        self.watch.configure(self.keys, self.now)
        self.steps: list[tuple[float, Step]] = []

    @property
    def now(self) -> float:
        return 1000.0 + self.round * self.policy.poll_interval_s

    def until(self, t: float, cut: Callable[[float], Iterable[IfKey]] | None = None) -> list[Step]:
        """Rounds up to 1000 + t; `cut(t)` says which interfaces do not answer at t (none
        without it)."""
        new: list[Step] = []
        while self.now - 1000.0 < t - 1e-9:
            self.round += 1
            self.prober.cut = set(cut(self.now - 1000.0)) if cut is not None else set()
            steps = self.watch.step(self.now, self.prober.round(self.now))
            self.steps += [(self.now, step) for step in steps]
            new += steps
        return new


def notices(steps: list[Step]) -> list[Step]:
    return [step for step in steps if step.kind.notice]


def kinds(steps: list[Step]) -> list[StepKind]:
    return [step.kind for step in steps]


def cluster(nodes: int) -> list[IfKey]:
    """Two heads and `nodes` compute nodes, each on both private LANs."""
    names = ["head1", "head2"] + [f"node{n:03d}" for n in range(1, nodes + 1)]
    return [(name, lan) for name in names for lan in (A, B)]


# -- one interface -----------------------------------------------------------------------

def test_an_interface_is_down_within_down_after_plus_one_interval_and_told_after_the_window() -> None:
    policy = Policy(poll_interval_s=1, down_after_s=3)
    run = Run([("node001", A)], policy)
    assert kinds(run.until(1)) == [K.UP]                           # the first reply
    assert run.until(10) == []
    steps = run.until(30, cut=lambda t: [("node001", A)] if t > 10 else [])
    down_at = next(t for t, s in run.steps if s.kind is K.DOWN) - 1000
    assert 10 < down_at <= 10 + 3 + 1
    told_at = next(t for t, s in run.steps if s.kind is K.TELL_DOWN) - 1000
    assert told_at == down_at + policy.window_s
    assert kinds(steps) == [K.DOWN, K.TELL_DOWN] and steps[0].reason == "no reply for 3 s"
    assert run.watch.status(("node001", A)) is LinkStatus.DOWN


def test_unknown_until_the_first_reply_or_down_after_without_one() -> None:
    run = Run([("node001", A), ("node002", B)], SECOND)
    assert run.watch.status(("node001", A)) is LinkStatus.UNKNOWN
    steps = run.until(5, cut=lambda t: [("node002", B)])
    assert [(s.kind, s.node) for s in steps] == [
        (K.UP, "node001"), (K.DOWN, "node002"), (K.TELL_DOWN, "node002")]
    assert [t - 1000 for t, s in run.steps] == [1, 3, 5]           # down_after 2.5 s, told 2 rounds later


def test_up_again_only_after_rise_replies_in_a_row() -> None:
    key = ("node001", A)
    run = Run([key], SECOND)
    run.until(10, cut=lambda t: [key])
    assert run.watch.status(key) is LinkStatus.DOWN
    # Every other echo answered: never three in a row, so it stays down.
    assert run.until(30, cut=lambda t: [key] if int(t) % 2 else []) == []
    steps = run.until(40)
    assert kinds(steps) == [K.UP, K.TELL_UP] and steps[0].reason == "3 replies in a row"
    assert [t - 1000 for t, s in run.steps[-2:]] == [32, 32]


def test_a_link_that_loses_every_other_echo_does_not_flap() -> None:
    key = ("node001", A)
    run = Run([key], Policy(poll_interval_s=1, down_after_s=2))
    run.until(1)
    assert run.until(120, cut=lambda t: [key] if int(t) % 2 else []) == []
    assert run.watch.status(key) is LinkStatus.UP


@pytest.mark.parametrize("ends, told", [
    ("up", [K.TELL_DOWN, K.TELL_UP]),
    ("down", [K.TELL_DOWN, K.TELL_UP, K.TELL_DOWN]),
])
def test_a_link_flapping_every_second_for_a_minute_gives_at_most_three_notices(ends: str,
                                                                               told: list[StepKind]) -> None:
    key = ("node001", A)
    policy = Policy(poll_interval_s=0.1, down_after_s=0.3, rise=3, hold_down_s=60)
    run = Run([key], policy, spread=False)
    run.until(1)

    def flapping(t: float) -> list[IfKey]:
        if t < 61:                                  # a minute of one second down, one second up
            return [key] if int(t) % 2 else []
        return [key] if ends == "down" else []

    run.until(200, cut=flapping)
    states = [s for _, s in run.steps if not s.kind.notice]
    assert len(states) >= 58                        # the state follows every flap ...
    said = [(t - 1000, s) for t, s in run.steps if s.kind.notice]
    assert [s.kind for _, s in said] == told        # ... the notices do not
    assert len(said) <= 2 * math.ceil(60 / policy.hold_down_s) + 1
    assert said[-1][1].kind is (K.TELL_UP if ends == "up" else K.TELL_DOWN)   # the final state is told
    assert said[-1][0] < 61 + policy.hold_down_s + 1
    assert run.watch.status(key) is (LinkStatus.UP if ends == "up" else LinkStatus.DOWN)


def test_without_hold_down_every_flap_is_told() -> None:
    key = ("node001", A)
    run = Run([key], Policy(poll_interval_s=0.1, down_after_s=0.3, hold_down_s=0), spread=False)
    run.until(1)
    run.until(61, cut=lambda t: [key] if int(t) % 2 else [])
    assert len(notices([s for _, s in run.steps])) == 60


def test_a_down_shorter_than_the_window_is_never_told() -> None:
    key = ("node001", A)
    run = Run([key], Policy(poll_interval_s=1, down_after_s=2, rise=1), spread=False)
    run.until(1)
    steps = run.until(20, cut=lambda t: [key] if 5 <= t < 7 else [])
    assert kinds(steps) == [K.DOWN, K.UP]                           # no notice at all
    assert [t - 1000 for t, _ in run.steps[-2:]] == [6, 7]          # down 1 s, the window is 2 s


# -- a LAN -------------------------------------------------------------------------------

def test_a_whole_lan_cut_is_one_lan_failure_without_a_storm_and_one_recovery() -> None:
    keys = cluster(100)
    on_a = [key for key in keys if key[1] is A]
    run = Run(keys, SECOND)
    run.until(20)
    steps = run.until(60, cut=lambda t: on_a)
    assert kinds(steps).count(K.DOWN) == 102
    assert kinds(notices(steps)) == [K.TELL_LAN_FAILED] and notices(steps)[0].lan is A
    assert kinds(steps).count(K.LAN_FAILED) == 1
    assert "102 of 102 interfaces went down within 2 s" in notices(steps)[0].reason
    downs = sorted({t for t, s in run.steps if s.kind is K.DOWN})
    assert len(downs) == 2                                          # detected over two rounds
    summary = run.watch.summary()
    assert (summary[A].total, summary[A].up, summary[A].down, summary[A].unknown, summary[A].failed) == (
        102, 0, 102, 0, True)
    assert not summary[B].failed and summary[B].up == 102
    assert running_on(summary) is B                                 # the cluster runs on LAN B only
    assert run.watch.sentence() == "lan_a 0/102 up (failed), lan_b 102/102 up"

    steps = run.until(120)
    assert kinds(notices(steps)) == [K.TELL_LAN_RECOVERED]          # no per-interface "up" either
    assert kinds(steps).count(K.UP) == 102
    assert not run.watch.summary()[A].failed and running_on(run.watch.summary()) is None


def test_a_cut_below_the_share_is_told_interface_by_interface() -> None:
    keys = cluster(100)
    some = [(f"node{n:03d}", A) for n in range(1, 11)]
    run = Run(keys, SECOND)
    run.until(20)
    steps = run.until(60, cut=lambda t: some)
    assert kinds(notices(steps)) == [K.TELL_DOWN] * 10
    assert {(s.node, s.lan) for s in notices(steps)} == set(some)
    assert K.LAN_FAILED not in kinds(steps) and running_on(run.watch.summary()) is None
    steps = run.until(100)
    assert kinds(notices(steps)) == [K.TELL_UP] * 10


def test_nodes_going_down_one_by_one_are_no_lan_failure_but_the_rest_going_at_once_is() -> None:
    keys = cluster(10)                               # 12 interfaces on each LAN
    nodes_a = [(f"node{n:03d}", A) for n in range(1, 11)]
    run = Run(keys, SECOND)
    run.until(10)
    steps = run.until(120, cut=lambda t: nodes_a[:max(0, int((t - 10) // 10))])
    assert kinds(notices(steps)) == [K.TELL_DOWN] * 10 and K.LAN_FAILED not in kinds(steps)
    summary = run.watch.summary()[A]
    assert (summary.up, summary.down, summary.failed) == (2, 10, False)
    # Both heads' LAN A interfaces now go at once: 2 of the 2 that were up, the minimum.
    steps = run.until(140, cut=lambda t: [key for key in keys if key[1] is A])
    assert kinds(notices(steps)) == [K.TELL_LAN_FAILED]
    assert "2 of 2 interfaces" in notices(steps)[0].reason
    assert running_on(run.watch.summary()) is B


def test_a_node_still_dead_when_its_lan_recovers_is_told_on_its_own() -> None:
    keys = cluster(20)
    dead = ("node007", A)
    run = Run(keys, SECOND)
    run.until(10)
    run.until(40, cut=lambda t: [key for key in keys if key[1] is A])
    steps = run.until(80, cut=lambda t: [dead])
    assert [(s.kind, s.node) for s in notices(steps)] == [(K.TELL_LAN_RECOVERED, ""), (K.TELL_DOWN, "node007")]
    recovered = next(t for t, s in run.steps if s.kind is K.TELL_LAN_RECOVERED)
    told = next(t for t, s in run.steps if s.kind is K.TELL_DOWN and s.node == "node007")
    assert told - recovered >= SECOND.window_s                      # the others had a window to come back
    assert "21 of 22 interfaces that went down with it are back" in notices(steps)[0].reason


def test_the_lan_notices_have_a_hold_down_too() -> None:
    keys = cluster(4)
    on_a = [key for key in keys if key[1] is A]
    run = Run(keys, SECOND)
    run.until(5)
    # The switch of LAN A goes away for 10 s every 20 s, for two minutes.
    run.until(125, cut=lambda t: on_a if t < 120 and int(t) % 20 < 10 else [])
    states = [s.kind for _, s in run.steps]
    said = [s.kind for _, s in run.steps if s.kind.notice]
    assert states.count(K.LAN_FAILED) == 6
    assert said == [K.TELL_LAN_FAILED, K.TELL_LAN_RECOVERED] * 2   # once at the start, once a minute later
    assert K.TELL_DOWN not in said


# -- reloads -----------------------------------------------------------------------------

def test_an_interface_removed_from_the_configuration_is_forgotten() -> None:
    keys = cluster(2)
    run = Run(keys, SECOND)
    run.until(5)
    gone = ("node002", B)
    run.watch.configure([key for key in keys if key != gone], run.now)
    assert gone not in {(v.node, v.lan) for v in run.watch.view()}
    assert run.watch.summary()[B].total == 3
    assert run.watch.status(gone) is LinkStatus.UNKNOWN
    # Back in the configuration: unknown again; the prober's old counts are not a reply.
    run.watch.configure(keys, run.now)
    stale = {gone: Reading(sent=5, received=5, last_reply=run.now - 100)}
    assert run.watch.step(run.now + 1, stale) == []
    assert run.watch.status(gone) is LinkStatus.UNKNOWN


def test_removing_the_interfaces_of_a_lan_failure_ends_it() -> None:
    keys = cluster(4)
    on_a = [key for key in keys if key[1] is A]
    run = Run(keys, SECOND)
    run.until(5)
    run.until(20, cut=lambda t: on_a)
    assert run.watch.summary()[A].failed
    run.watch.configure([key for key in keys if key[1] is B], run.now)
    run.prober = FakeProber([key for key in keys if key[1] is B], 1)
    steps = run.until(25)
    assert kinds(steps) == [K.LAN_RECOVERED, K.TELL_LAN_RECOVERED]
    assert "0 of 0" in steps[0].reason and A not in run.watch.summary()


def test_counts_that_go_back_mean_the_prober_counts_afresh() -> None:
    key = ("node001", A)
    watch = LanWatch(SECOND)
    watch.configure([key], 0)
    assert kinds(watch.step(1, {key: Reading(1000, 1000, 1)})) == [K.UP]
    assert watch.step(2, {key: Reading(1, 1, 2)}) == []             # restarted prober: a reply
    assert watch.step(4, {key: Reading(3, 3, 4)}) == []
    assert watch.status(key) is LinkStatus.UP
    assert [(v.sent, v.received, v.rtt_s) for v in watch.view()] == [(3, 3, None)]


def test_a_request_still_on_its_way_is_not_a_miss() -> None:
    key = ("node001", A)
    for waiting, rises in ((True, True), (False, False)):
        watch = LanWatch(Policy(poll_interval_s=1, down_after_s=2, rise=3))
        watch.configure([key], 0)
        watch.step(3, {key: Reading(3, 0)})
        assert watch.status(key) is LinkStatus.DOWN
        assert watch.step(4, {key: Reading(4, 1, 3.9)}) == []
        # Judged while the fifth request is out: with `waiting` that is no news, without
        # it a miss that starts the count again.
        assert kinds(watch.step(5, {key: Reading(5, 1, 3.9, waiting=waiting)})) == [K.TELL_DOWN]
        assert (K.UP in kinds(watch.step(6, {key: Reading(6, 3, 5.9)}))) is rises


# -- the failover and the poller ---------------------------------------------------------

@pytest.mark.parametrize("poller, active, peer, polls", [
    (Poller.STANDBY, False, True, True),
    (Poller.STANDBY, True, True, False),
    (Poller.STANDBY, True, False, True),            # no standby: the active head polls
    (Poller.ACTIVE, True, True, True),
    (Poller.ACTIVE, False, True, False),
    (Poller.BOTH, False, True, True),
    (Poller.BOTH, True, True, True),
])
def test_which_head_polls(poller: Poller, active: bool, peer: bool, polls: bool) -> None:
    assert polls_here(poller, active, peer) is polls


def test_the_policy_is_read_from_the_configuration(cfg: Config) -> None:
    config = cfg.model_copy(update={
        "lan": cfg.lan.model_copy(update={"rise": 5, "hold_down_ms": 30000, "failure_percent": 75}),
        "failover": cfg.failover.model_copy(update={"lan_failure_is_head_failure": True})})
    policy = Policy.of(config)
    assert policy == Policy(poll_interval_s=5.0, down_after_s=15.0, rise=5, hold_down_s=30.0,
                            failure_percent=75, failure_min=2)
    assert policy.window_s == 10.0
    assert Policy.of(cfg).hold_down_s == 60.0
