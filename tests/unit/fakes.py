"""Hand-written fakes shared by the unit tests (fakes rather than stacks of @patch)."""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Callable

from fcaps.configuration.overrides import apply_overrides
from fcaps.fault.takeover import Alias
from haoscar_snmp.config.mibmap import SetPlan
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import Event, EventType
from haoscar_snmp.core.runner import RunResult


@dataclass(frozen=True)
class FakeProblem:
    """What `ConfigSource.check` returns: something with a key and a message."""

    key: str
    message: str


class FakeConfigSource:
    """The SET path's view of the configuration, without files or a state directory.

    `current()` is the file config with the overrides merged by the real (pure)
    `apply_overrides`, so a sequence of SETs committed with `commit()` behaves like the
    daemon's. `check()` answers whatever the test put in `problems`, and remembers the
    candidates it was asked about.
    """

    def __init__(self, file_config: Config, problems: list[Any] | None = None) -> None:
        self.file_config = file_config
        self.problems: list[Any] = list(problems or [])
        self.checked: list[dict[str, Any]] = []
        self._overrides: dict[str, Any] = {}
        self._pending: dict[str, dict[int, dict[str, Any]]] = {}

    def current(self) -> Config:
        return apply_overrides(self.file_config, self._overrides)

    def overrides(self) -> dict[str, Any]:
        return self._overrides

    def pending(self) -> dict[str, dict[int, dict[str, Any]]]:
        return self._pending

    def check(self, overrides: dict[str, Any]) -> list[Any]:
        self.checked.append(copy.deepcopy(overrides))
        return list(self.problems)

    def file_indexes(self, kind: str) -> set[int]:
        rows = self.file_config.services if kind == "services" else self.file_config.aliases
        return {row.index for row in rows}

    def commit(self, plan: SetPlan) -> None:
        """What the real store does after persisting: the plan becomes the new truth."""
        self._overrides = plan.overrides
        self._pending = plan.pending


class EventRecorder:
    """An event-bus subscriber that keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def types(self) -> list[EventType]:
        return [e.type for e in self.events]


class FakeTimer:
    """A timer armed on a FakeClock: cancellable, like the loop's own timer handles."""

    def __init__(self, when: float, seq: int, loop: asyncio.AbstractEventLoop,
                 callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.seq = seq
        self.loop = loop
        self.callback = callback
        self.args = args
        self._cancelled = False

    def __lt__(self, other: FakeTimer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    def run(self) -> None:
        if not self._cancelled:     # cancelled after it fell due but before the loop ran it
            self.callback(*self.args)


class FakeClock:
    """A clock that moves only when a test says so; its wall clock can also be stepped
    (as NTP or an operator would) while the monotonic clock goes on undisturbed.

    Timers armed on it (`call_at`, `call_later`, `sleep`) wait in a queue ordered by due
    time; `advance` hands every timer it makes due to its event loop with `call_soon`, in
    due order, so the callbacks run as loop callbacks would (in the loop's next pass, not
    inside `advance`), and see the clock as it is after the advance, as callbacks of a
    loop that woke late would. A timer armed for a time already reached is handed over at
    once. The monotonic clock starts at a few seconds by default, as on a machine booted
    moments ago: code that takes a small monotonic time for "never" or "long ago", or that
    mixes this clock with the loop's, fails here on every machine.
    """

    def __init__(self, start: float = 1_700_000_000.0, monotonic: float = 5.0) -> None:
        self._wall = start
        self._mono = monotonic
        self._timers: list[FakeTimer] = []          # a heap, earliest first
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> FakeTimer:
        # Armed on the running loop, as the real clock's timers are (no loop: RuntimeError).
        timer = FakeTimer(when, next(self._seq), asyncio.get_running_loop(), callback, args)
        if when <= self._mono:
            timer.loop.call_soon(timer.run)
        else:
            heapq.heappush(self._timers, timer)
        return timer

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> FakeTimer:
        return self.call_at(self._mono + delay, callback, *args)

    async def sleep(self, seconds: float) -> None:
        done = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            timer.cancel()

    def next_due(self) -> float | None:
        """The due time of the earliest timer still waiting (None: none is)."""
        while self._timers and self._timers[0].cancelled():
            heapq.heappop(self._timers)
        return self._timers[0].when if self._timers else None

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._mono += seconds
        self._wall += seconds
        while self._timers and self._timers[0].when <= self._mono:
            timer = heapq.heappop(self._timers)
            # A timer of a loop that has ended went with it, as the loop's own would.
            if not timer.cancelled() and not timer.loop.is_closed():
                timer.loop.call_soon(timer.run)

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock only, forward or back; the monotonic clock does not move."""
        self._wall += seconds


class FakeRunner:
    """Answers from a table: command -> list of results (the last one repeats).

    An exit code of None answers as a run that timed out; `outputs` gives a command's
    output (empty for any command not in it)."""

    def __init__(self, answers: dict[str, list[int | None]] | None = None,
                 outputs: dict[str, str] | None = None) -> None:
        self.answers = answers or {}
        self.outputs = outputs or {}
        self.calls: list[str] = []

    async def run(self, command: str, timeout: float) -> RunResult:
        self.calls.append(command)
        codes = self.answers.get(command, [0])
        code = codes.pop(0) if len(codes) > 1 else codes[0]
        if code is None:
            return RunResult(command, None, "", timed_out=True)
        return RunResult(command, code, self.outputs.get(command, ""))


class FakeAliases:
    """In-memory AliasOps for unit tests: records every call."""

    def __init__(self, present: set[str] | None = None) -> None:
        self.addresses: set[str] = set(present or ())
        self.calls: list[tuple[str, str]] = []
        self.fail_add = False

    async def add(self, alias: Alias) -> None:
        self.calls.append(("add", alias.address))
        if self.fail_add:
            raise OSError("add failed")
        self.addresses.add(alias.address)

    async def remove(self, alias: Alias) -> None:
        self.calls.append(("remove", alias.address))
        self.addresses.discard(alias.address)

    async def present(self, alias: Alias) -> bool:
        return alias.address in self.addresses

    async def announce(self, alias: Alias, count: int = 1) -> int:
        self.calls.append(("announce", alias.address))
        return count


class FakeOriginator:
    """Stands in for pysnmp's NotificationOriginator: keeps each notification handed to it
    (target entry, var-binds, and how to answer it) until the test answers it, as a
    target would (acknowledged) or pysnmp would after the retries (lost)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[tuple[int, ...], Any]], Callable[..., None], Any]] = []

    def send_varbinds(self, engine: Any, entry: str, context_engine_id: Any, context_name: bytes,
                      varbinds: list[tuple[tuple[int, ...], Any]], callback: Callable[..., None],
                      ctx: Any) -> int:
        assert context_name == b""
        self.sent.append((entry, varbinds, callback, ctx))
        return len(self.sent)

    def take(self) -> list[tuple[str, list[tuple[tuple[int, ...], Any]], Callable[..., None], Any]]:
        """Everything sent since the last take, oldest first."""
        sent, self.sent = self.sent, []
        return sent

    @staticmethod
    def answer(item: tuple[str, Any, Callable[..., None], Any], acknowledged: bool) -> None:
        _, varbinds, callback, ctx = item
        callback(None, 1, None if acknowledged else "requestTimedOut", 0, 0,
                 varbinds if acknowledged else (), ctx)
