"""The fast read path in the real daemon, read with net-snmp's own tools, beside the same
daemon with the fast path switched off (HAOSCAR_SNMP_FASTPATH=0, the benchmark switch).

Both daemons run the same configuration; what net-snmp's snmpwalk (v1 and v2c),
snmpbulkwalk (several max-repetitions) and snmpget show of HAOSCAR-MIB must be the same
objects with the same types, and the same values wherever a value does not move by
itself. The fine comparison, var-bind by var-bind and with the RFC differences, is the
unit test tests/unit/test_fastpath_equivalence.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.snmp.agent import FASTPATH_SWITCH
from haoscar_snmp.snmp.mib import MibModel

from .conftest import make_agent
from .harness import R, Agent, TrapReceiver

# Objects whose values stay put while both daemons run (most others are times, counters
# and figures that move by themselves between two reads of two daemons).
FIXED = tuple("." + ".".join(map(str, MibModel.load()[name].oid)) + "."
              for name in ("haoscarClusterName", "haoscarLocalHead", "haoscarAgentVersion",
                           "haoscarHeadName", "haoscarHeadPreferredRole", "haoscarServiceName",
                           "haoscarServiceCheck", "haoscarServiceRecovery", "haoscarLanIfName",
                           "haoscarLanIfAddress", "haoscarPubProbeInterval", "haoscarAcctRetention"))


@pytest.fixture
def pair(tmp_path: Path, trapd: TrapReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Agent]]:
    agents: dict[str, Agent] = {}
    try:
        for name, switch in (("fast", "1"), ("pysnmp", "0")):
            monkeypatch.setenv(FASTPATH_SWITCH, switch)
            (tmp_path / name).mkdir()
            agents[name] = make_agent(tmp_path / name, trapd.port)
            agents[name].start()
        yield agents
    finally:
        for agent in agents.values():
            agent.stop()
    for agent in agents.values():
        assert BUG_MARKER not in agent.log_text(), agent.log_text()


def shape(text: str) -> list[tuple[str, str]]:
    """(OID, type) of every line of a numeric walk; lines that continue a value are skipped."""
    out = []
    for line in text.splitlines():
        if line.startswith(".1.") and " = " in line:
            oid, _, value = line.partition(" = ")
            out.append((oid, value.split(":")[0] if ":" in value else value))
    return out


def fixed(text: str) -> list[str]:
    """The lines of the objects whose values stay put."""
    return [line for line in text.splitlines() if line.startswith(FIXED)]


def test_net_snmp_tools_see_the_same_mib_through_both_paths(pair: dict[str, Agent]) -> None:
    fast, slow = pair["fast"], pair["pysnmp"]
    runs = [("snmpwalk", "-v1", "-c", "public"), ("snmpwalk", "-v2c", "-c", "public")]
    runs += [("snmpbulkwalk", "-v2c", "-c", "public", f"-Cr{r}") for r in (1, 7, 25, 64, 100)]
    for tool, *args in runs:
        a = fast.tool(tool, "-On", *args, fast.address, R, mib=False)
        b = slow.tool(tool, "-On", *args, slow.address, R, mib=False)
        assert a.rc == b.rc == 0, (a.text, b.text)
        assert shape(a.out) == shape(b.out), (tool, args)
        assert fixed(a.out) == fixed(b.out) and len(fixed(a.out)) >= 10, (tool, args)
        assert len(shape(a.out)) > 200
        if args[0] == "-v1":
            assert "Counter64" not in a.out
        else:
            assert "Counter64" in a.out


def test_gets_exceptions_and_errors_are_the_same_through_both_paths(pair: dict[str, Agent]) -> None:
    fast, slow = pair["fast"], pair["pysnmp"]
    names = [f"{R}.1.1.1.0", f"{R}.1.1.99.0", f"{R}.1.2.1.1.2.1", f"{R}.1.2.1.1.2.99", f"{R}.1.99.1.0"]
    for version in ("-v1", "-v2c"):
        for name in names:
            a = fast.tool("snmpget", "-On", version, "-c", "public", fast.address, name, mib=False)
            b = slow.tool("snmpget", "-On", version, "-c", "public", slow.address, name, mib=False)
            assert (a.rc, a.out) == (b.rc, b.out), (version, name, a.text, b.text)
    a = fast.tool("snmpgetnext", "-On", "-v2c", "-c", "public", fast.address, *names, mib=False)
    b = slow.tool("snmpgetnext", "-On", "-v2c", "-c", "public", slow.address, *names, mib=False)
    assert shape(a.out) == shape(b.out) and a.rc == b.rc == 0
