"""Rendering a view in slices, so a big state never holds the daemon's loop for long.

The loop that serves a scrape or a status call also runs the role state machine and
answers the heartbeat process: a render that keeps it for 40 ms delays a takeover by as
much. So a view is written as a generator (`Work`) that does a bounded piece of work,
usually `CHUNK` rows, between two bare `yield`s; `Pacer.run` drives it and gives the
loop back (`await asyncio.sleep(0)`) once a stretch has lasted `SLICE_S`. `drain`
drives the same generator without pausing, for callers that are not on the loop (the
console's tests, the benchmarks).

Rules:

* a stretch between two yields is bounded by rows, never by the state's size: every
  table is walked in `chunks`; only small fixed parts (the cluster, the two heads, the
  four heartbeat paths) are done in one piece;
* the pacer measures work, not waiting: its counter is the process' performance
  counter (`time.perf_counter`), injected so that a test can count rows instead; no
  timer and no failover decision depends on it;
* one render at a time per kind (`Shared`): a request that finds the same render under
  way waits for it and gets its result, so a burst of scrapes costs one render, and a
  request that gives up does not cancel the render for the others;
* `encode` is `json.dumps(value, separators=(",", ":"))` in slices, byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Generator, Hashable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Work = Generator[None, None, T]

CHUNK = 64          # rows per piece of work: 64 services take about 0.3 ms in a snapshot here
SLICE_S = 0.001     # a stretch on the loop ends at the first yield after this much work
COMPACT = (",", ":")


def chunks(rows: Sequence[T], size: int = CHUNK) -> Generator[Sequence[T], None, None]:
    """`rows` in consecutive pieces of at most `size`."""
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def rows(table: Any, size: int = CHUNK) -> Generator[list[tuple[Any, Any]], None, None]:
    """A `Table`'s (key, row) pairs in index order, `size` at a time. The keys are taken
    at the start and each piece reads its rows when it comes: a row removed in between
    is left out, a row added in between waits for the next render."""
    for part in chunks(table.keys(), size):
        found = [(key, table.get(key)) for key in part]
        yield [pair for pair in found if pair[1] is not None]


def drain(work: Work[T]) -> T:
    """Run `work` to its end without pausing; its result."""
    while True:
        try:
            next(work)
        except StopIteration as done:
            return done.value


class Pacer:
    """Drives `Work` on the loop, yielding to it once a stretch reaches `budget`.

    `longest` is the longest stretch it has seen and `stretches` how many it ran, both
    by its `counter` (seconds of work by default; a test may count rows)."""

    def __init__(self, budget: float = SLICE_S, counter: Callable[[], float] = time.perf_counter) -> None:
        self.budget = budget
        self.counter = counter
        self.longest = 0.0
        self.stretches = 0

    async def run(self, work: Work[T]) -> T:
        start = self.counter()
        while True:
            try:
                next(work)
            except StopIteration as done:
                self._ended(self.counter() - start)
                return done.value
            now = self.counter()
            if now - start >= self.budget:
                self._ended(now - start)
                await asyncio.sleep(0)
                start = self.counter()

    def _ended(self, stretch: float) -> None:
        self.stretches += 1
        self.longest = max(self.longest, stretch)


class Shared(Generic[T]):
    """One render at a time per key: callers that find it under way share its result."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}
        self.renders = 0        # renders started
        self.joined = 0         # requests that shared one under way

    async def get(self, key: Hashable, render: Callable[[], Awaitable[T]]) -> T:
        future = self._running.get(key)
        if future is None:
            self.renders += 1
            future = asyncio.ensure_future(render())
            self._running[key] = future
            future.add_done_callback(lambda _: self._running.pop(key, None))
        else:
            self.joined += 1
        return await asyncio.shield(future)


class Raw(str):
    """Text that is JSON already: `encode` puts it in as it is."""


class Collect:
    """Rows gathered a piece at a time: as a list, or (`text`) as JSON text at once, so
    the pieces' dicts are dropped as soon as they are encoded."""

    def __init__(self, text: bool) -> None:
        self.text = text
        self.parts: list[Any] = []

    def add(self, rows: list[Any]) -> None:
        if not self.text:
            self.parts += rows
        elif rows:
            self.parts.append(json.dumps(rows, separators=COMPACT)[1:-1])

    def result(self) -> Any:
        return Raw("[" + ",".join(self.parts) + "]") if self.text else self.parts


def encode(value: Any, size: int = CHUNK) -> Work[str]:
    """Compact JSON of `value`; a list longer than `size` is encoded `size` items at a time."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict) and value:
        parts = []
        for key, item in value.items():
            text = yield from encode(item, size)
            parts.append(f"{json.dumps(key if isinstance(key, str) else str(key))}:{text}")
            yield
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list) and len(value) > size:
        parts = []
        for piece in chunks(value, size):
            parts.append(json.dumps(piece, separators=COMPACT)[1:-1])
            yield
        return "[" + ",".join(parts) + "]"
    return json.dumps(value, separators=COMPACT)


__all__ = ["CHUNK", "SLICE_S", "Collect", "Pacer", "Raw", "Shared", "Work", "chunks", "drain", "encode", "rows"]
