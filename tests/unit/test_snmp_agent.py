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
from haoscar_snmp.snmp.bounds import bound_usm_timeline
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


def _bare_agent(tmp_path: Path) -> Agent:
    unused: Any = None
    return Agent(load_config(None, state_dir=tmp_path), unused, unused, unused, unused)


def _v2c_inform(community: str, request_id: int) -> bytes:
    from pyasn1.codec.ber import encoder
    from pysnmp.proto import api
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = p.InformRequestPDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, request_id)
    p.apiPDU.set_varbinds(pdu, [("1.3.6.1.2.1.1.3.0", p.TimeTicks(1))])
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, community)
    p.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def test_an_inform_to_the_agent_is_dropped_and_nothing_of_it_is_kept(tmp_path: Path) -> None:
    """pysnmp never released an unanswerable v1/v2c inform's security state (a fuzz grew
    the agent by 800 bytes an inform): the agent drops them at once, counted as pysnmp
    counts them."""
    from pysnmp.carrier.asyncio.dgram import udp
    from pysnmp.entity import config as pconfig
    from pysnmp.entity.rfc3413 import context

    agent = _bare_agent(tmp_path)
    engine = agent.engine
    pconfig.add_v1_system(engine, "community1", "public", securityName="community1")
    agent._drop_informs(context.SnmpContext(engine))
    (unknown,) = engine.get_mib_builder().import_symbols("__SNMP-MPD-MIB", "snmpUnknownPDUHandlers")
    for n in range(50):
        engine.message_dispatcher.receive_message(engine, udp.DOMAIN_NAME, ("127.0.0.1", 9), _v2c_inform("public", n))
    assert int(unknown.syntax) == 50
    for mp in engine.message_processing_subsystems.values():
        assert not mp._cache._Cache__stateReferenceIndex
    for sm in engine.security_models.values():
        assert sm._cache.is_empty()


def test_the_usm_keeps_one_copy_of_an_engine_id_per_tick(tmp_path: Path) -> None:
    """pysnmp's USM appended the sender's engine ID to a tick's expiry list once per
    authenticated message and kept it 300 s; the agent's lists keep one copy each."""
    agent = _bare_agent(tmp_path)
    assert bound_usm_timeline(agent.engine)
    usm = agent.engine.security_models[3]
    queue = usm._SnmpUSMSecurityModel__timelineExpQueue
    # What pysnmp does for each authenticated message (rfc3414/service.py, 3.2.7):
    for _ in range(1000):
        if 3000 not in queue:
            queue[3000] = []
        queue[3000].append(b"engine-a")
    queue[3000].append(b"engine-b")
    assert queue[3000] == [b"engine-a", b"engine-b"]
    # ... and its expiry still walks and drops the list.
    usm._SnmpUSMSecurityModel__timeline[b"engine-a"] = (0, 0, 0, 0)
    usm._SnmpUSMSecurityModel__expirationTimer = 3000
    usm._SnmpUSMSecurityModel__expire_timeline_info()
    assert 3000 not in queue and b"engine-a" not in usm._SnmpUSMSecurityModel__timeline
