"""haoscar_snmp.core.heap: the collect-and-freeze passes after start and after a reload,
and the bench's collector hook (bench/gcwatch) that does nothing unless asked."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Iterator

import pytest
from fakes import FakeClock

from haoscar_snmp.core.heap import HeapSettler, settle_now

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()       # the test process's heap goes back to the collector


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_now_collects_before_it_freezes() -> None:
    gc.unfreeze()
    garbage = weakref.ref(Cycle())              # cyclic garbage: collected, not frozen
    kept = Cycle()
    assert garbage() is not None
    settle_now("test")
    assert garbage() is None
    assert gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())      # frozen: out of the collector's lists
    assert kept.me is kept


def test_one_pass_after_start_and_after_each_reload_the_latest_wins() -> None:
    clock = FakeClock()

    async def main() -> HeapSettler:
        settler = HeapSettler(clock, delay=30.0)
        settler.start()
        clock.advance(29.9)
        await asyncio.sleep(0)
        assert settler.passes == 0
        clock.advance(0.1)
        await asyncio.sleep(0)
        assert settler.passes == 1 and gc.get_freeze_count() > 0
        settler.reloaded()
        clock.advance(20)
        settler.reloaded()                      # a second reload before the pass: one pass, later
        clock.advance(20)
        await asyncio.sleep(0)
        assert settler.passes == 1
        clock.advance(10)
        await asyncio.sleep(0)
        assert settler.passes == 2
        settler.reloaded()
        settler.stop()                          # stopped: no pass
        clock.advance(60)
        await asyncio.sleep(0)
        assert settler.passes == 2
        return settler
    asyncio.run(main())


def test_a_reload_pass_unfreezes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    clock = FakeClock()

    async def main() -> None:
        settler = HeapSettler(clock, delay=1.0)
        settler.start()
        clock.advance(1)
        await asyncio.sleep(0)
        settler.reloaded()
        clock.advance(1)
        await asyncio.sleep(0)
    asyncio.run(main())
    assert calls == ["freeze", "unfreeze", "freeze"]


def test_the_bench_collector_hook_is_off_without_its_variable() -> None:
    code = "import gc, sys, threading; print(len(gc.callbacks), threading.active_count(), 'sitecustomize' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAOSCAR_BENCH")}
    env["PYTHONPATH"] = str(REPO / "bench" / "gcwatch")
    out = subprocess.run([sys.executable, "-c", code, "haoscar_snmp", "run"], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout.split()
    assert out == ["0", "1", "True"]        # loaded, and nothing installed
