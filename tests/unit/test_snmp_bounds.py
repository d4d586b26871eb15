"""What pysnmp keeps per message stays bounded: the USM's security state of a refused
SNMPv3 message is released once the datagram has been handled, and the state of a
request still waiting for its response is kept."""

from __future__ import annotations

from typing import Any

import pytest
from pysnmp.proto.mpmod.cache import Cache as MessageCache
from pysnmp.proto.secmod.cache import Cache as SecurityCache
from test_fastpath_equivalence import Pair, pair  # noqa: F401  (pair: the fixture)
from v3wire import Manager, pdu

from haoscar_snmp.snmp.bounds import UsmStateSweeper

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
# An engine ID of four octets is no engine ID (RFC 3411: 5 to 32): pysnmp takes it for
# a discovery, finds the PDU encrypted, refuses the message and keeps its state.
SHORT_ENGINE_ID = b"\x80\x00\x1f\x88"


def _usm_entries(agent: Any) -> dict[Any, Any]:
    return agent.engine.security_models[3]._cache._Cache__cache_entries


def _admin(agent: Any) -> Manager:
    engine_id = bytes(agent.engine.snmpEngineID)
    return Manager.of("admin", "sha256", "aes128", "demo-auth-passphrase", "demo-priv-passphrase", engine_id)


def test_refused_snmpv3_messages_leave_no_security_state(pair: Pair) -> None:
    for name, agent in pair.agents.items():
        spoilt = _admin(agent).request(pdu("get", [SYS_DESCR]), 1, 1, engine_id=SHORT_ENGINE_ID)
        for _ in range(40):
            pair.ask(name, spoilt)
        assert _usm_entries(agent) == {}, name
        assert agent.usm_sweeper.released == 40, name


def test_pysnmp_alone_keeps_that_state(pair: Pair) -> None:
    """Why the sweeper exists: pysnmp's receive path on its own keeps one entry per such
    message. If this fails, pysnmp releases it itself now, and the sweeper can go."""
    agent = pair.agents["slow"]
    spoilt = _admin(agent).request(pdu("get", [SYS_DESCR]), 1, 1, engine_id=SHORT_ENGINE_ID)
    usm = agent.engine.security_models[3]
    mp = agent.engine.message_processing_subsystems[3]
    for _ in range(5):
        with pytest.raises(Exception):
            mp.prepare_data_elements(agent.engine, ("udp",), ("127.0.0.1", 9), spoilt)
    assert len(usm._cache._Cache__cache_entries) == 5


class _Model:
    def __init__(self, cache: Any) -> None:
        self._cache = cache


class _Engine:
    def __init__(self) -> None:
        self.security_models = {3: _Model(SecurityCache())}
        self.message_processing_subsystems = {3: _Model(MessageCache())}


def test_the_state_of_a_request_waiting_for_its_response_is_kept() -> None:
    engine = _Engine()
    usm, mp = engine.security_models[3]._cache, engine.message_processing_subsystems[3]._cache
    waiting = usm.push(msgUserName=b"admin")        # a SET being persisted
    usm.push(msgUserName=b"nobody")                  # a refused message's leftover
    mp.push_by_state_reference(mp.new_state_reference(), securityStateReference=waiting)
    sweeper = UsmStateSweeper(engine)
    sweeper.sweep()
    assert list(usm._Cache__cache_entries) == [waiting] and sweeper.released == 1
    assert usm.pop(waiting) == {"msgUserName": b"admin"}     # its response can still be made
    sweeper.sweep()
    assert sweeper.released == 1


def test_a_pysnmp_without_those_caches_is_said_and_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    engine = _Engine()
    engine.security_models[3] = _Model(object())
    sweeper = UsmStateSweeper(engine)
    sweeper.sweep()
    assert "pysnmp changed" in caplog.text and sweeper.released == 0
