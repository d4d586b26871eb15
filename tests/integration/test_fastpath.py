"""The fast read path in the real daemon, read with net-snmp's own tools, beside the same
daemon with the fast path switched off (HAOSCAR_SNMP_FASTPATH=0, the benchmark switch).

Both daemons run the same configuration; what net-snmp's snmpwalk (v1 and v2c),
snmpbulkwalk (several max-repetitions) and snmpget show of HAOSCAR-MIB must be the same
objects with the same types, and the same values wherever a value does not move by
itself. The same for SNMPv3 with net-snmp's snmpwalk, snmpbulkwalk and snmpget at
SHA-256/AES-128 and SHA-512/AES-256, the fast path's share read from the count the
daemon logs when it stops, and a key rotation by reload (the old key refused by
pysnmp, the new one served fast). The fine comparison, var-bind by var-bind and with
the RFC differences, is the unit tests tests/unit/test_fastpath_equivalence.py and
tests/unit/test_fastpath_v3.py.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Iterator

import pytest

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.snmp.agent import FASTPATH_SWITCH
from haoscar_snmp.snmp.mib import MibModel

from .conftest import make_agent
from .harness import R, Agent, TrapReceiver, write_secret

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


# -- SNMPv3 ------------------------------------------------------------------------------

V3_USERS = {"admin SHA-256/AES-128": "v3", "reader SHA-512/AES-256": "reader"}


def _v3(agent: Agent, who: str, tool: str, *args: str) -> object:
    return getattr(agent, V3_USERS[who])(tool, *args, mib=False)


def _served_v3(agent: Agent) -> int:
    """The SNMPv3 requests the fast path answered, as the daemon logs it when it stops."""
    agent.stop()
    found = re.findall(r"fast read path: \d+ requests answered, (\d+) of them SNMPv3", agent.log_text())
    assert found, agent.log_text()
    return int(found[-1])


def test_net_snmp_v3_reads_are_the_same_through_both_paths(pair: dict[str, Agent]) -> None:
    fast, slow = pair["fast"], pair["pysnmp"]
    names = [f"{R}.1.1.1.0", f"{R}.1.1.99.0", f"{R}.1.2.1.1.2.1", f"{R}.1.2.1.1.2.99", f"{R}.1.99.1.0"]
    for who in V3_USERS:
        for tool, *args in [("snmpwalk",)] + [("snmpbulkwalk", f"-Cr{r}") for r in (1, 25, 100)]:
            a, b = _v3(fast, who, tool, *args, R), _v3(slow, who, tool, *args, R)
            assert a.rc == b.rc == 0, (who, tool, a.text, b.text)      # type: ignore[attr-defined]
            assert shape(a.out) == shape(b.out), (who, tool, args)      # type: ignore[attr-defined]
            assert fixed(a.out) == fixed(b.out) and len(fixed(a.out)) >= 10   # type: ignore[attr-defined]
            assert len(shape(a.out)) > 200 and "Counter64" in a.out      # type: ignore[attr-defined]
        for name in names:
            a, b = _v3(fast, who, "snmpget", name), _v3(slow, who, "snmpget", name)
            assert (a.rc, a.out) == (b.rc, b.out), (who, name, a.text, b.text)   # type: ignore[attr-defined]
        a, b = _v3(fast, who, "snmpgetnext", *names), _v3(slow, who, "snmpgetnext", *names)
        assert shape(a.out) == shape(b.out) and a.rc == b.rc == 0       # type: ignore[attr-defined]
        # one GETBULK of 100: both paths fill it (pysnmp's own cap of 64 is not used)
        a, b = _v3(fast, who, "snmpbulkget", "-Cr100", R), _v3(slow, who, "snmpbulkget", "-Cr100", R)
        assert len(shape(a.out)) == 100 and shape(a.out) == shape(b.out)  # type: ignore[attr-defined]
    # every read but the walks' last GETNEXT (past the MIB: pysnmp's) came the fast way
    walked = len(shape(_v3(slow, "reader SHA-512/AES-256", "snmpwalk", R).out))  # type: ignore[attr-defined]
    assert _served_v3(fast) > 2 * walked


def test_a_v3_key_rotation_by_reload_is_served_fast(tmp_path: Path, trapd: TrapReceiver) -> None:
    agent = make_agent(tmp_path, trapd.port)
    try:
        agent.start()
        for _ in range(3):
            r = agent.v3("snmpget", f"{R}.1.1.1.0", mib=False)
            assert r.rc == 0 and "itest" in r.out, r.text
        write_secret(tmp_path / "secrets" / "admin.auth", "rotated-auth-key")
        write_secret(tmp_path / "secrets" / "admin.priv", "rotated-priv-key")
        agent.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in agent.log_text():
            assert time.monotonic() < deadline, agent.log_text()
            time.sleep(0.05)
        old = agent.v3("snmpget", "-t", "0.5", "-r", "0", f"{R}.1.1.1.0", mib=False)
        assert old.rc != 0 and "itest" not in old.out, old.text
        for _ in range(4):
            r = agent.v3("snmpget", f"{R}.1.1.1.0", auth="rotated-auth-key", priv="rotated-priv-key", mib=False)
            assert r.rc == 0 and "itest" in r.out, r.text
        # each snmpget: a discovery (pysnmp's report), then the GET (the fast path's); the
        # old key's GET went to pysnmp and was refused there
        assert _served_v3(agent) == 3 + 4
        assert "refused: wrong authentication key" in agent.log_text()
    finally:
        agent.stop()
    assert BUG_MARKER not in agent.log_text(), agent.log_text()
