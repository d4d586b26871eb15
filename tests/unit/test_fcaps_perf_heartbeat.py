"""The heartbeat's round trips per path, measured where the heartbeat runs (HeartbeatCore
on a fake clock): last, min, max, smoothed mean and the count, reset by resetCounters."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_fcaps_heartbeat import Pair

from haoscar_snmp.core.state import Lan


def approx(us: float) -> object:
    return pytest.approx(us, abs=1)


def exchange(p: Pair, one_way_s: float, cut: tuple[Lan, ...] = ()) -> None:
    """head1 sends; head2 hears it `one_way_s` later and answers at once (holding the echo
    for no time); head1 hears the answer `one_way_s` after that: a round trip of twice
    `one_way_s` for head1 on every path not `cut`."""
    sent = list(p.h1.core.messages(p.h1.local))
    p.clock.advance(one_way_s)
    for lan, data, _remote in sent:
        if lan not in cut:
            p.h2.core.receive(data, lan)
    replies = list(p.h2.core.messages(p.h2.local))
    p.clock.advance(one_way_s)
    for lan, data, _remote in replies:
        if lan not in cut:
            p.h1.core.receive(data, lan)


def test_each_path_keeps_its_round_trips(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)                                   # the handshake; round trips of zero
    p.h1.core.reset_path_figures()
    for one_way_ms in (1, 3, 2):
        exchange(p, one_way_ms / 1000)
    figures = p.h1.core.path_figures()
    rtt, low, high, mean, jitter, replies = figures[Lan.LAN_A]
    # Times in microseconds are truncated: a float sum may land one below.
    assert (rtt, low, high, replies) == (approx(4000), approx(2000), approx(6000), 3)
    assert mean == approx(2000 + (6000 - 2000) / 8 + (4000 - 2500) / 8)   # smoothed by 1/8
    assert jitter > 0
    assert figures[Lan.LAN_B] == figures[Lan.LAN_A]


def test_a_path_that_carries_nothing_keeps_its_figures_and_the_others_go_on(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    p.h1.core.reset_path_figures()
    exchange(p, 0.001)
    exchange(p, 0.002, cut=(Lan.LAN_B,))
    figures = p.h1.core.path_figures()
    assert figures[Lan.LAN_A][0] == approx(4000) and figures[Lan.LAN_A][5] == 2
    assert figures[Lan.LAN_B][0] == approx(2000) and figures[Lan.LAN_B][5] == 1


def test_reset_starts_the_extremes_and_the_count_again(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.run(0.5)
    exchange(p, 0.005)
    p.h1.core.reset_path_figures()
    assert p.h1.core.path_figures()[Lan.LAN_A][1:3] == (0, 0)
    assert p.h1.core.path_figures()[Lan.LAN_A][5] == 0
    exchange(p, 0.001)
    _rtt, low, high, _mean, _jitter, replies = p.h1.core.path_figures()[Lan.LAN_A]
    assert (low, high, replies) == (approx(2000), approx(2000), 1)
