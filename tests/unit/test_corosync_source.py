"""The Corosync membership source on a fake Corosync and a fake clock: a change reaches the
listener, a loss makes the membership unknown once, reconnects follow the backoff, and a
reconnect reads everything afresh. Also the binding's parts that need no Corosync."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
from typing import Any, Awaitable, Callable

import pytest

from fcaps.fault.cluster import corolib
from fcaps.fault.cluster.corosync import CorosyncSource, links_from_stats, nodes_from_cmap, ring_id_text
from fcaps.fault.cluster.model import KnetLink, Member, Membership, Quorum

from fakes import FakeClock


def run(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def sync(**fixtures: Any) -> None:
        asyncio.run(asyncio.wait_for(test(**fixtures), 30))
    return sync


def membership(online: tuple[int, ...] = (1, 2, 3), ring: str = "1.9", link1: bool = True) -> Membership:
    members = tuple(Member(node_id=n, name=f"node{n}", votes=1, online=n in online,
                           links=() if n == 1 else (KnetLink(0, n in online, 150), KnetLink(1, link1, 160)))
                    for n in (1, 2, 3))
    quorum = Quorum(quorate=len(online) >= 2, expected_votes=3, total_votes=len(online), ring_id=ring,
                    token_ms=1650)
    return Membership(local_node_id=1, quorum=quorum, members=members)


class Corosync:
    """Stands for the local Corosync: what it says, whether it runs, and the sessions
    opened to it (each with a pipe whose read end is the session's descriptor)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.state = membership()
        self.alive = True
        self.stall: asyncio.Event | None = None    # while set to an Event, calls hang until it is set
        self.missing = False
        self.opened: list[float] = []        # monotonic time of every connection attempt
        self.sessions: list[Session] = []

    def open(self) -> Session:
        self.opened.append(self.clock.monotonic())
        if self.missing:
            raise corolib.LibraryMissing("cannot load libquorum.so.5")
        if not self.alive:
            raise corolib.CsError("quorum_model_initialize", 2)
        session = Session(self)
        self.sessions.append(session)
        return session

    def notify(self) -> None:
        for session in self.sessions:
            session.poke()

    def change(self, state: Membership) -> None:
        self.state = state
        self.notify()

    def kill(self) -> None:
        """Corosync dies: every session's descriptor wakes up, and every call fails."""
        self.alive = False
        self.notify()

    def close_all(self) -> None:
        for session in self.sessions:
            session.release()


class Session:
    def __init__(self, corosync: Corosync) -> None:
        self.corosync = corosync
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.closed = False
        self.reads = 0

    def poke(self) -> None:
        if not self.closed:
            os.write(self.w, b"x")

    def fds(self) -> tuple[int, ...]:
        return (self.r,)

    def dispatch(self) -> None:
        try:
            os.read(self.r, 4096)
        except BlockingIOError:
            pass
        if not self.corosync.alive:
            raise corolib.CsError("quorum_dispatch", 2)

    def read(self) -> Membership:
        if not self.corosync.alive:
            raise corolib.CsError("votequorum_getinfo", 2)
        self.reads += 1
        return self.corosync.state

    def close(self) -> None:
        self.release()

    def release(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.r)
            os.close(self.w)


class Rig:
    def __init__(self, **options: Any) -> None:
        self.clock = FakeClock()
        self.corosync = Corosync(self.clock)
        self.seen: list[Membership | None] = []
        self.source = CorosyncSource(self.clock, self.seen.append, self.corosync.open,
                                     runner=self.runner, **options)

    async def runner(self, fn: Callable[[], Any]) -> Any:
        if self.corosync.stall is not None:
            await self.corosync.stall.wait()
        return fn()

    async def settle(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.settle()

    async def started(self) -> "Rig":
        self.source.start()
        await self.settle()
        return self

    async def close(self) -> None:
        await self.source.stop()
        self.corosync.close_all()


@run
async def test_the_first_read_reaches_the_listener() -> None:
    rig = await Rig().started()
    assert rig.seen == [membership()]
    assert rig.source.membership == membership()
    await rig.close()


@run
async def test_a_notification_with_a_change_reaches_the_listener_and_one_without_does_not() -> None:
    rig = await Rig().started()
    rig.corosync.change(membership(online=(1, 2), ring="1.d"))
    await rig.settle()
    assert rig.seen == [membership(), membership(online=(1, 2), ring="1.d")]
    rig.corosync.notify()           # nothing changed
    await rig.settle()
    assert len(rig.seen) == 2
    assert rig.corosync.sessions[0].reads == 3
    await rig.close()


@run
async def test_link_state_is_polled_since_knet_does_not_notify_it() -> None:
    rig = await Rig(poll_s=5.0).started()
    rig.corosync.state = membership(link1=False)      # no notification
    await rig.advance(4.9)
    assert rig.seen == [membership()]
    await rig.advance(0.2)
    assert rig.seen == [membership(), membership(link1=False)]
    await rig.advance(5.0)                            # polled again, unchanged: no call
    assert len(rig.seen) == 2
    await rig.close()


@run
async def test_a_loss_makes_the_membership_unknown_once() -> None:
    rig = await Rig(poll_s=1.0).started()
    rig.corosync.kill()
    await rig.settle()
    assert rig.seen == [membership(), None]
    assert rig.source.membership is None
    for _ in range(10):                               # retries and polls: still one None
        await rig.advance(1.0)
    assert rig.seen == [membership(), None]
    assert rig.source.losses == 1
    assert rig.corosync.sessions[0].closed
    await rig.close()


@run
async def test_a_failed_poll_is_a_loss_too() -> None:
    rig = await Rig(poll_s=2.0).started()
    rig.corosync.alive = False                        # dead, but no descriptor woke up
    await rig.advance(2.0)
    assert rig.seen == [membership(), None]
    await rig.close()


@run
async def test_reconnects_back_off_exponentially_up_to_the_bound() -> None:
    rig = await Rig(backoff_min_s=0.5, backoff_max_s=4.0, poll_s=100).started()
    lost_at = rig.clock.monotonic()
    rig.corosync.kill()
    await rig.settle()
    for _ in range(60):                               # 30 s in small steps
        await rig.advance(0.5)
    waits = [round(b - a, 3) for a, b in zip([lost_at] + rig.corosync.opened[1:], rig.corosync.opened[1:])]
    assert waits[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(w == 4.0 for w in waits[3:])
    assert rig.seen == [membership(), None]
    await rig.close()


@run
async def test_a_reconnect_reads_everything_afresh_and_resets_the_backoff() -> None:
    rig = await Rig(backoff_min_s=0.5, backoff_max_s=8.0, poll_s=100).started()
    rig.corosync.kill()
    await rig.settle()
    await rig.advance(0.5)
    await rig.advance(1.0)                            # two failed attempts
    rig.corosync.alive = True
    rig.corosync.state = membership(ring="1.12")
    await rig.advance(2.0)                            # the third succeeds
    assert rig.seen == [membership(), None, membership(ring="1.12")]
    assert len(rig.corosync.sessions) == 2 and rig.corosync.sessions[1].reads == 1
    # It tracks again on the new session...
    rig.corosync.change(membership(online=(1, 3), ring="1.16"))
    await rig.settle()
    assert rig.seen[-1] == membership(online=(1, 3), ring="1.16")
    # ...and the next loss starts the backoff from the bottom again.
    rig.corosync.kill()
    await rig.settle()
    before = len(rig.corosync.opened)
    await rig.advance(0.5)
    assert len(rig.corosync.opened) == before + 1
    await rig.close()


@run
async def test_corosync_down_at_start_stays_unknown_without_a_call_then_comes() -> None:
    rig = Rig(backoff_min_s=0.5)
    rig.corosync.alive = False
    await rig.started()
    await rig.advance(0.5)
    assert rig.seen == [] and rig.source.membership is None
    rig.corosync.alive = True
    await rig.advance(1.0)
    assert rig.seen == [membership()]
    await rig.close()


@run
async def test_a_stalled_corosync_times_out_into_unknown() -> None:
    rig = await Rig(poll_s=1.0, call_timeout_s=0.05).started()
    stall = rig.corosync.stall = asyncio.Event()
    await rig.advance(1.0)
    await asyncio.sleep(0.2)                          # the call's bound is real time
    await rig.settle()
    assert rig.seen == [membership(), None]
    rig.corosync.stall = None
    stall.set()                                       # the stalled read returns late: ignored
    await rig.settle()
    assert rig.seen == [membership(), None]
    await rig.advance(0.5)
    assert rig.seen == [membership(), None, membership()]
    await rig.close()


@run
async def test_a_connection_opened_after_its_attempt_timed_out_is_closed() -> None:
    rig = Rig(call_timeout_s=0.05, backoff_min_s=0.5)
    stall = rig.corosync.stall = asyncio.Event()
    await rig.started()
    await asyncio.sleep(0.2)
    await rig.settle()
    assert rig.seen == [] and rig.corosync.sessions == []
    rig.corosync.stall = None
    stall.set()                                       # the first open completes, too late
    await rig.settle()
    assert len(rig.corosync.sessions) == 1 and rig.corosync.sessions[0].closed
    await rig.advance(0.5)                            # the retry connects for real
    assert rig.seen == [membership()]
    assert len(rig.corosync.sessions) == 2 and not rig.corosync.sessions[1].closed
    await rig.close()


@run
async def test_a_missing_library_is_logged_once_and_stays_unknown(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(backoff_min_s=0.5, backoff_max_s=1.0)
    rig.corosync.missing = True
    with caplog.at_level(logging.ERROR, logger="fcaps.fault.cluster.corosync"):
        await rig.started()
        for _ in range(10):
            await rig.advance(1.0)
    assert rig.seen == [] and len(rig.corosync.opened) >= 5
    assert [r.getMessage() for r in caplog.records].count(
        "corosync: cannot load libquorum.so.5; the membership stays unknown") == 1
    await rig.close()


@run
async def test_a_failing_listener_does_not_stop_the_source() -> None:
    clock = FakeClock()
    corosync = Corosync(clock)
    calls: list[Membership | None] = []

    def listener(m: Membership | None) -> None:
        calls.append(m)
        raise RuntimeError("a bug downstream")

    async def inline(fn: Callable[[], Any]) -> Any:
        return fn()

    source = CorosyncSource(clock, listener, corosync.open, runner=inline)
    source.start()
    for _ in range(20):
        await asyncio.sleep(0)
    corosync.change(membership(online=(1, 2)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert calls == [membership(), membership(online=(1, 2))]
    await source.stop()
    corosync.close_all()


@run
async def test_stop_closes_the_session_and_arms_nothing() -> None:
    rig = await Rig().started()
    await rig.source.stop()
    assert rig.corosync.sessions[0].closed
    assert rig.clock.next_due() is None
    rig.corosync.close_all()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        CorosyncSource(FakeClock(), print, backoff_min_s=2, backoff_max_s=1)
    with pytest.raises(ValueError):
        CorosyncSource(FakeClock(), print, poll_s=0)


# -- the binding, without Corosync ---------------------------------------------------------


def test_ring_ids_read_as_corosync_quorumtool_prints_them() -> None:
    assert ring_id_text(1, 9) == "1.9"
    assert ring_id_text(3, 0x1a) == "3.1a"


def test_cs_errors_carry_the_call_and_the_name() -> None:
    err = corolib.CsError("quorum_dispatch", 2)
    assert (err.call, err.code, err.name) == ("quorum_dispatch", 2, "CS_ERR_LIBRARY")
    assert str(err) == "quorum_dispatch: CS_ERR_LIBRARY"
    assert corolib.CsError("x", 99).name == "cs_error_t 99"


def test_a_missing_library_says_which_package_brings_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(corolib.SONAMES, "quorum", ("libquorum-not-here.so.5", "libquorum5"))
    monkeypatch.setattr(corolib, "_loaded", {})
    with pytest.raises(corolib.LibraryMissing, match="install Debian's libquorum5"):
        corolib.QuorumHandle()


def test_cmap_values_decode_by_type() -> None:
    assert corolib.decode_value(6, bytes(ctypes.c_uint32(1650))) == 1650
    assert corolib.decode_value(5, bytes(ctypes.c_int32(-3))) == -3
    assert corolib.decode_value(2, b"\x01") == 1
    assert corolib.decode_value(8, bytes(ctypes.c_uint64(2**63))) == 2**63
    assert corolib.decode_value(11, b"node1\0") == "node1"
    assert corolib.decode_value(10, bytes(ctypes.c_double(0.5))) == 0.5
    assert corolib.decode_value(12, b"\x00\x01") == b"\x00\x01"


def test_the_votequorum_info_layout_matches_the_header() -> None:
    # struct votequorum_info: nine unsigned ints, then a 255-byte name (padded to 4).
    assert ctypes.sizeof(corolib.VotequorumInfoC) == 9 * 4 + 256
    assert ctypes.sizeof(corolib.RingId) == 16


# -- reading cmap ----------------------------------------------------------------------------


def test_the_nodelist_gives_names_ids_and_links() -> None:
    items = {
        "nodelist.local_node_pos": 0,
        "nodelist.node.0.name": "node1", "nodelist.node.0.nodeid": 1,
        "nodelist.node.0.ring0_addr": "10.71.1.11", "nodelist.node.0.ring1_addr": "10.71.2.11",
        "nodelist.node.1.nodeid": 7, "nodelist.node.1.ring0_addr": "10.71.1.17",    # no name
        "nodelist.node.2.name": "orphan", "nodelist.node.2.ring0_addr": "10.71.1.99",  # no nodeid
    }
    assert nodes_from_cmap(items) == {1: ("node1", (0, 1)), 7: ("10.71.1.17", (0,))}


def test_knet_link_figures_read_as_links() -> None:
    stats = {"stats.knet.node2.link0.connected": 1, "stats.knet.node2.link0.latency_samples": 13,
             "stats.knet.node2.link0.latency_ave": 160,
             "stats.knet.node2.link1.connected": 0, "stats.knet.node2.link1.latency_samples": 0,
             "stats.knet.node2.link1.latency_ave": 0}
    assert links_from_stats(2, (0, 1, 2), stats.get) == (
        KnetLink(0, True, 160), KnetLink(1, False, None), KnetLink(2, False, None))
