"""Views rendered in slices: the same output as in one go, the loop given back between
bounded pieces (counted in rows read, not timed), one render per kind for concurrent
requests, and the live feed's marker (it moves with what the snapshot shows, only)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeClock
from views_world import NOW, config, healthy

from haoscar_snmp.core.state import (
    AcctKind,
    AcctRow,
    EventRow,
    Lan,
    LanIfRow,
    LinkStatus,
    ServiceRow,
    ServiceStatus,
    State,
    Table,
)
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.views.metrics import MetricsPage
from haoscar_snmp.views.slices import CHUNK, Pacer, Shared, drain, encode
from haoscar_snmp.views.snapshot import build_json, snapshot
from haoscar_snmp.views.source import COUNTED, MARKED, SnapshotSource, mark

MANY = 600          # rows per big table: ten pieces and more


class Counter:
    def __init__(self) -> None:
        self.rows = 0

    def __call__(self) -> float:
        return float(self.rows)


class CountingTable(Table):  # type: ignore[type-arg]
    """A table that counts the rows read one at a time (how a render's pieces read)."""

    def __init__(self, counter: Counter, source: Table) -> None:  # type: ignore[type-arg]
        super().__init__()
        self.counter = counter
        for key, row in source.items():
            self.put(key, row)

    def get(self, key: Any) -> Any:
        self.counter.rows += 1
        return super().get(key)


@pytest.fixture(scope="module")
def mib() -> MibModel:
    return MibModel.load()


@pytest.fixture
def cfg(tmp_path: Path) -> Any:
    return config(tmp_path)


def big(cfg: Any, counter: Counter | None = None) -> State:
    state = healthy(cfg)
    subject = 100
    for i in range(10, 10 + MANY):
        state.services.put((i,), ServiceRow(f"svc{i}", "true", status=ServiceStatus.RUNNING, last_failure=NOW - i))
        state.lan_ifs.put((i,), LanIfRow(f"node{i}", Lan.LAN_A, "eth0", f"10.1.{i // 250}.{i % 250}",
                                         status=LinkStatus.UP, rtt_us=300, last_change=NOW - i))
        for window in (1, 2):
            state.accounting.put((subject, window), AcctRow(AcctKind.SERVICE, f"svc{i}", availability_ppm=999_000))
        subject += 1
    if counter is not None:
        for name in ("services", "lan_ifs", "accounting"):
            setattr(state, name, CountingTable(counter, getattr(state, name)))
    return state


def test_encode_is_compact_json_byte_for_byte() -> None:
    value = {"a": [{"x": i, "s": "é\"\n"} for i in range(3 * CHUNK + 5)], "b": {}, "c": [], "d": {"e": [1, None]},
             "f": 1.5, "g": True}
    assert drain(encode(value)) == json.dumps(value, separators=(",", ":"))


def test_the_sliced_snapshot_is_the_snapshot(cfg: Any) -> None:
    state, clock = big(cfg), FakeClock(start=NOW)
    for events in (0, 3, 20):
        whole = json.dumps(snapshot(state, cfg, clock, events=events), separators=(",", ":"))
        assert drain(build_json(state, cfg, clock, events=events)) == whole
    with pytest.raises(ValueError):
        build_json(state, cfg, clock, events=501)


def test_pieces_are_bounded_and_the_loop_runs_between_them(cfg: Any, mib: MibModel) -> None:
    """The pacer counts rows read instead of time: with a budget of one row it gives the
    loop back after every piece, so its longest stretch is the biggest piece."""
    counter = Counter()
    state, clock = big(cfg, counter), FakeClock(start=NOW)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> None:
        task = asyncio.ensure_future(ticker())
        try:
            for make, biggest in ((lambda: build_json(state, cfg, clock), CHUNK),
                                  (lambda: MetricsPage(state, lambda: cfg, clock, mib)._bytes(True), CHUNK),
                                  (lambda: mark(state, cfg), 4 * CHUNK)):
                pacer = Pacer(budget=1, counter=counter)
                before, counter.rows = ticks, 0
                await pacer.run(make())
                assert counter.rows >= 3 * MANY                   # every row of the three tables read
                assert 0 < pacer.longest <= biggest
                assert ticks - before >= counter.rows // biggest  # the loop ran between the pieces
        finally:
            task.cancel()
    asyncio.run(main())


def test_concurrent_scrapes_share_one_render(cfg: Any, mib: MibModel) -> None:
    page = MetricsPage(big(cfg), lambda: cfg, FakeClock(start=NOW), mib)

    async def main() -> None:
        bodies = await asyncio.gather(*(page.body(True) for _ in range(5)), page.body(False))
        assert len(set(bodies[:5])) == 1 and bodies[5] != bodies[0]
        assert (page.shared.renders, page.shared.joined) == (2, 4)      # one per format
        assert bodies[0].decode() == page.render(True)
        await page.body(True)                                           # the next one renders again
        assert page.shared.renders == 3
    asyncio.run(main())


def test_a_request_that_gives_up_does_not_end_the_shared_render() -> None:
    async def main() -> None:
        shared: Shared[int] = Shared()
        gate = asyncio.Event()

        async def render() -> int:
            await gate.wait()
            return 7
        first = asyncio.ensure_future(shared.get("k", render))
        second = asyncio.ensure_future(shared.get("k", render))
        await asyncio.sleep(0)
        first.cancel()
        gate.set()
        assert await second == 7
    asyncio.run(main())


def test_the_marker_moves_with_what_the_snapshot_shows(cfg: Any) -> None:
    state, clock = big(cfg), FakeClock(start=NOW)
    source = SnapshotSource(state, lambda: cfg, clock)

    async def marker() -> int:
        return await source.marker()
    first = asyncio.run(marker())
    clock.advance(30)                                       # only times relative to now move
    assert asyncio.run(marker()) == first
    state.services[(500,)].restarts += 1                    # a row changed in place
    second = asyncio.run(marker())
    assert second != first
    state.events.put((99,), EventRow(NOW, 1, "head1", 1, "x"))
    state.event_last_index = 99
    assert asyncio.run(marker()) not in (first, second)


def test_the_marker_covers_every_part_the_snapshot_reads(cfg: Any) -> None:
    state = healthy(cfg)
    read: set[str] = set()

    class Spy:
        def __getattr__(self, name: str) -> Any:
            read.add(name)
            return getattr(state, name)
    snapshot(Spy(), cfg, FakeClock(start=NOW))              # type: ignore[arg-type]
    assert read - set(MARKED) - set(COUNTED) == set()


def test_the_live_feed_builds_only_when_the_marker_moves(cfg: Any) -> None:
    from haoscar_snmp.views.web.live import LiveFeed
    state, clock = big(cfg), FakeClock(start=NOW)
    feed = LiveFeed(SnapshotSource(state, lambda: cfg, clock), clock, max_clients=4)

    async def main() -> None:
        queue: asyncio.Queue[str] = asyncio.Queue()
        feed._clients.add(queue)
        for _ in range(5):
            await feed._push()
        assert (feed.builds, feed.pushes) == (1, 1)
        state.services[(20,)].status = ServiceStatus.FAILED
        await feed._push()
        assert (feed.builds, feed.pushes) == (2, 2)
        text, new = await feed._current()                   # a page opening now: no build
        assert not new and feed.builds == 2 and '"failed"' in text
    asyncio.run(main())
