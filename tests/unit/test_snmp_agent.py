"""snmp.agent.Agent: what the agent counts its own time from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakes import FakeClock

from haoscar_snmp.config.loader import load_config
from haoscar_snmp.snmp.agent import Agent


def test_uptime_ticks_count_from_the_start_on_the_agents_clock(tmp_path: Path) -> None:
    """The daemon turns times of its clock into ticks (haoscarAlarmLastChanged): the
    agent's start must be a time of that clock too, even seconds after boot."""
    clock = FakeClock(monotonic=3.0)
    unused: Any = None
    agent = Agent(load_config(None, state_dir=tmp_path), unused, unused, unused, unused, clock=clock)
    assert agent.uptime() == 0
    clock.advance(2.5)
    assert agent.uptime() == 250 and agent.uptime_ticks(clock.monotonic() - 1.0) == 150
