"""fcaps.performance.looplag: a stall of the event loop shows as lag, and ages out."""

from __future__ import annotations

import asyncio
import time

from fakes import FakeClock

from fcaps.configuration.control import OperatorActions
from fcaps.performance import looplag
from fcaps.performance.looplag import LoopLag
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import ControlAction, State


def test_a_stalled_loop_is_measured_and_the_worst_is_kept() -> None:
    state = State()
    probe = LoopLag(state)

    async def main() -> None:
        probe.start()
        await asyncio.sleep(0.15)
        time.sleep(0.25)                     # the loop is stuck for 250 ms: a timer is late >= 150 ms
        await asyncio.sleep(0.25)
        probe.stop()
    asyncio.run(main())
    assert state.loop.lag_max_us >= 150_000
    assert state.loop.lag_us == state.loop.lag_max_us


def test_an_old_stall_leaves_the_recent_figure_but_not_the_maximum(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(looplag, "WINDOW_S", 2)
    monkeypatch.setattr(looplag, "PERIOD_S", 0.02)     # 50 ticks a second: a short test
    state = State()
    probe = LoopLag(state)

    async def main() -> None:
        probe.start()
        await asyncio.sleep(0.05)
        time.sleep(0.08)
        await asyncio.sleep(2.5)                       # more than the window
        probe.stop()
    asyncio.run(main())
    assert state.loop.lag_max_us >= 60_000 and state.loop.lag_us < 60_000


def test_reset_counters_clears_the_maximum() -> None:
    state = State()
    state.loop.lag_max_us = 123_456
    bus = EventBus()
    bus.subscribe("loop", LoopLag(state).on_event)
    OperatorActions(state, bus, FakeClock()).handle(ControlAction.RESET_COUNTERS, "v3:admin@nms")
    assert state.loop.lag_max_us == 0
