"""Fixtures for integration tests: a running daemon and a running snmptrapd."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .harness import Agent, TrapReceiver, free_udp_port

REQUIRED_TOOLS = ("snmpget", "snmpwalk", "snmpbulkwalk", "snmpset", "snmptrapd")


@pytest.fixture(scope="session", autouse=True)
def _net_snmp_tools() -> None:
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:  # not a skip: these tests are the product's proof
        pytest.fail(f"net-snmp tools missing: {missing}; run scripts/setup")


@pytest.fixture
def trapd(tmp_path: Path) -> Iterator[TrapReceiver]:
    receiver = TrapReceiver(tmp_path, free_udp_port())
    receiver.start()
    yield receiver
    receiver.stop()


def make_agent(tmp_path: Path, trap_port: int, **kwargs: str) -> Agent:
    agent = Agent(tmp_path, free_udp_port(), trap_port, **kwargs)
    agent.write_config()
    return agent


@pytest.fixture
def agent(tmp_path: Path, trapd: TrapReceiver) -> Iterator[Agent]:
    a = make_agent(tmp_path, trapd.port)
    a.start()
    yield a
    a.stop()
    assert BUG_MARKER not in a.log_text(), a.log_text()
