"""snmp.agent.Agent: what the agent counts its own time from; snmp.credentials: the
credentials a reload replaces in the running engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fakes import FakeClock
from pysnmp.entity import engine as pengine
from pysnmp.proto import rfc1905

from haoscar_snmp.config.loader import load_config
from haoscar_snmp.snmp.agent import Agent
from haoscar_snmp.snmp.credentials import credentials_of, register, unregister


def test_uptime_ticks_count_from_the_start_on_the_agents_clock(tmp_path: Path) -> None:
    """The daemon turns times of its clock into ticks (haoscarAlarmLastChanged): the
    agent's start must be a time of that clock too, even seconds after boot."""
    clock = FakeClock(monotonic=3.0)
    unused: Any = None
    agent = Agent(load_config(None, state_dir=tmp_path), unused, unused, unused, unused, clock=clock)
    assert agent.uptime() == 0
    clock.advance(2.5)
    assert agent.uptime() == 250 and agent.uptime_ticks(clock.monotonic() - 1.0) == 150


def _column(engine: Any, module: str, entry: str, column: int) -> list[Any]:
    """Every value of one column of one of pysnmp's own configuration tables."""
    (row,) = engine.get_mib_builder().import_symbols(module, entry)
    prefix = row.name + (column,)
    instrum = engine.message_dispatcher.mib_instrum_controller
    values, name = [], prefix
    for _ in range(1000):   # bounded: the tables hold a handful of rows
        ((name, value),) = instrum.read_next_variables((name, None), snmpEngine=engine)
        if name[:len(prefix)] != prefix or value.isSameTypeWith(rfc1905.endOfMibView):
            return values
        values.append(value.prettyPrint())
    raise AssertionError("table walk did not end")


def test_credentials_are_replaced_in_the_running_engine(tmp_path: Path) -> None:
    """register / unregister leave exactly the new communities, users and targets, and
    can run again and again (a reload after a reload)."""
    asyncio.run(_replace_twice(load_config(None, state_dir=tmp_path).snmp))


async def _replace_twice(old: Any) -> None:
    # In a running loop, as in the daemon: a target's client transport is opened on it.
    engine = pengine.SnmpEngine()
    try:
        registered = register(engine, old)
        assert _column(engine, "SNMP-COMMUNITY-MIB", "snmpCommunityEntry", 3) == ["community1"]  # security names
        assert "admin" in _column(engine, "SNMP-USER-BASED-SM-MIB", "usmUserEntry", 2)
        assert registered.targets == [("n1", "p1", "a1")]
        renamed = old.model_copy(update={"users": tuple(u.model_copy(update={"name": "operator"})
                                                        for u in old.users)})
        assert credentials_of(renamed) != credentials_of(old)
        for _ in range(2):
            unregister(engine, registered)
            assert _column(engine, "SNMP-USER-BASED-SM-MIB", "usmUserEntry", 2) == []
            assert _column(engine, "SNMP-COMMUNITY-MIB", "snmpCommunityEntry", 3) == []
            assert _column(engine, "SNMP-TARGET-MIB", "snmpTargetAddrEntry", 2) == []
            registered = register(engine, renamed)
        assert _column(engine, "SNMP-USER-BASED-SM-MIB", "usmUserEntry", 2) == ["operator"]
        assert credentials_of(renamed) == credentials_of(renamed.model_copy())
    finally:
        engine.close_dispatcher()
