"""The standalone agent against RFC 3416 (operations), RFC 3415 (VACM), RFC 3414 (USM)
and RFC 1157/2576 (SNMPv1), with the real daemon: net-snmp's tools, and raw datagrams
built with pysnmp's and pyasn1's encoders where a tool cannot send the request (800
var-binds, negative GETBULK counts).

One daemon serves the module. Every SET here is refused, except the creation and
destruction of a notInService alias row (no address is ever configured).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Iterator

import pytest
from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import univ
from pysnmp.proto import api

from haoscar_snmp.core.bug import BUG_MARKER

from .harness import Agent, R, Result, free_udp_port

pytestmark = pytest.mark.integration

V1, V2C = api.SNMP_VERSION_1, api.SNMP_VERSION_2C
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"
USM_UNSUPPORTED_LEVELS = "1.3.6.1.6.3.15.1.1.1.0"     # in no read view of the agent
OUT_TOO_BIGS = "1.3.6.1.2.1.11.20.0"
SILENT_DROPS = "1.3.6.1.2.1.11.31.0"
PARSE_ERRORS = "1.3.6.1.2.1.11.6.0"
ENGINE_MAX = 65507                                   # snmpEngineMaxMessageSize
ALIAS = f"{R}.1.7.1"                                 # haoscarAliasEntry
TRAP_ONLY = """
[[snmp.targets]]
name = "trap-only"
address = "127.0.0.1:9"
version = "v2c"
kind = "trap"
community = "traponly"
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    a = Agent(tmp_path_factory.mktemp("conformance"), free_udp_port(), free_udp_port(), extra_toml=TRAP_ONLY)
    a.write_config()
    a.start()
    yield a
    a.stop()
    assert BUG_MARKER not in a.log_text(), a.log_text()


# -- raw datagrams ----------------------------------------------------------------------

def request(version: int, kind: str, names: list[tuple[int, ...]], *, community: str = "public",
            non_repeaters: int | None = None, max_repetitions: int | None = None) -> bytes:
    mod = api.PROTOCOL_MODULES[version]
    pdu = getattr(mod, kind)()
    mod.apiPDU.set_defaults(pdu)
    for position, value in ((1, non_repeaters), (2, max_repetitions)):
        if value is not None:   # set unchecked: a negative count is what is tested
            pdu.setComponentByPosition(position, univ.Integer(value), verifyConstraints=False,
                                       matchTags=False, matchConstraints=False)
    mod.apiPDU.set_varbinds(pdu, [(name, mod.Null("")) for name in names])
    message = mod.Message()
    mod.apiMessage.set_defaults(message)
    mod.apiMessage.set_community(message, community)
    mod.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def exchange(agent: Agent, datagram: bytes, timeout: float = 3.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(datagram, ("127.0.0.1", agent.port))
        try:
            return s.recv(ENGINE_MAX + 1)
        except socket.timeout:
            return None


def response(version: int, raw: bytes | None) -> tuple[int, int, list[tuple[Any, Any]]]:
    """(error-status, error-index, var-binds) of a response datagram."""
    assert raw is not None, "no response"
    mod = api.PROTOCOL_MODULES[version]
    message, _ = decoder.decode(raw, asn1Spec=mod.Message())
    pdu = mod.apiMessage.get_pdu(message)
    return (int(mod.apiPDU.get_error_status(pdu)), int(mod.apiPDU.get_error_index(pdu)),
            list(mod.apiPDU.get_varbinds(pdu)))


def counter(agent: Agent, oid: str) -> int:
    r = agent.v2c("snmpget", "-Oqv", oid, mib=False)
    assert r.rc == 0, r.text
    return int(r.out.split()[-1])


def failed_object(r: Result) -> str:
    return next((line.split(": ", 1)[1] for line in r.text.splitlines() if line.startswith("Failed object")), "")


def reason(r: Result) -> str:
    return next((line.split()[1] for line in r.text.splitlines() if line.startswith("Reason:")), "")


# -- 1. tooBig and GETBULK cut short ----------------------------------------------------

def test_a_response_over_the_agents_limit_is_toobig_and_counted(agent: Agent) -> None:
    too_bigs, drops = counter(agent, OUT_TOO_BIGS), counter(agent, SILENT_DROPS)
    names = [SYS_DESCR] * 800                      # ~90 bytes each answered: over 65507
    status, index, varbinds = response(V2C, exchange(agent, request(V2C, "GetRequestPDU", names)))
    assert (status, index, varbinds) == (1, 0, [])                     # RFC 3416 4.2.1
    v1_request = request(V1, "GetRequestPDU", names)
    status, index, varbinds = response(V1, exchange(agent, v1_request))
    assert (status, index, len(varbinds)) == (1, 0, 800)              # RFC 1157: the request's form
    assert all(tuple(n) == SYS_DESCR and v.tagSet == univ.Null.tagSet for n, v in varbinds)
    nexts = [SYS_DESCR[:-1]] * 800                 # each answered with sysDescr.0
    status, _, varbinds = response(V2C, exchange(agent, request(V2C, "GetNextRequestPDU", nexts)))
    assert (status, varbinds) == (1, [])
    assert counter(agent, OUT_TOO_BIGS) == too_bigs + 3
    assert counter(agent, SILENT_DROPS) == drops


def test_a_getbulk_over_the_limit_keeps_the_var_binds_that_fit(agent: Agent) -> None:
    too_bigs = counter(agent, OUT_TOO_BIGS)
    names = [SYS_DESCR[:-1]] * 900                 # 900 non-repeaters, each sysDescr.0
    raw = exchange(agent, request(V2C, "GetBulkRequestPDU", names, non_repeaters=900, max_repetitions=5))
    status, index, varbinds = response(V2C, raw)
    assert (status, index) == (0, 0) and 0 < len(varbinds) < 900
    assert all(tuple(n) == SYS_DESCR for n, _ in varbinds)
    assert raw is not None and len(raw) <= ENGINE_MAX
    one = len(raw) // len(varbinds)                # all alike: one more would not fit
    assert len(raw) + one > ENGINE_MAX
    assert counter(agent, OUT_TOO_BIGS) == too_bigs    # cut short, not tooBig


def test_v3_responses_respect_the_managers_msgmaxsize(agent: Agent) -> None:
    too_bigs = counter(agent, OUT_TOO_BIGS)
    small = ("-YsendMessageMaxSize=600",)          # net-snmp's msgMaxSize in the request
    r = agent.v3("snmpbulkget", *small, "-Cn0", "-Cr40", "-d", "1.3.6.1.2.1.1", mib=False)
    assert r.rc == 0, r.text
    received = [int(line.split()[1]) for line in r.text.splitlines() if line.startswith("Received ")]
    lines = [line for line in r.out.splitlines() if " = " in line]
    assert received and received[-1] <= 600 and 0 < len(lines) < 40, r.text
    r = agent.v3("snmpbulkget", "-YsendMessageMaxSize=5000", "-Cn0", "-Cr40", "1.3.6.1.2.1.1", mib=False)
    assert len([line for line in r.out.splitlines() if " = " in line]) == 40, r.text
    r = agent.v3("snmpget", "-YsendMessageMaxSize=484", *[".".join(map(str, SYS_DESCR))] * 6, mib=False)
    assert reason(r) == "(tooBig)", r.text
    assert counter(agent, OUT_TOO_BIGS) == too_bigs + 1


# -- 2. names outside the read view -----------------------------------------------------

def test_a_get_outside_the_view_is_nosuchobject_and_the_rest_is_answered(agent: Agent) -> None:
    asked = (SYS_NAME, USM_UNSUPPORTED_LEVELS, SYS_LOCATION)
    for r in (agent.v2c("snmpget", "-Cf", *asked, mib=False), agent.v3("snmpget", "-Cf", *asked, mib=False)):
        assert r.rc == 0, r.text
        lines = r.out.splitlines()
        assert "head1" in lines[0] and "rack 7" in lines[2], r.text
        assert "No Such Object" in lines[1], r.text
    r = agent.tool("snmpget", "-v1", "-c", "public", "-On", "-Cf", agent.address, *asked, mib=False)
    assert "noSuchName" in r.text and failed_object(r) == f".{USM_UNSUPPORTED_LEVELS}", r.text  # index 2
    # A community whose views are empty: every name is noSuchObject, no error.
    r = agent.v2c("snmpget", "-Cf", SYS_NAME, f"{R}.1.1.1.0", community="traponly", mib=False)
    assert r.rc == 0 and r.out.count("No Such Object") == 2, r.text


def test_getnext_and_getbulk_walk_past_what_is_outside_the_view(agent: Agent) -> None:
    starts = ("1.3.6.1.6.3.1", "1.3.6.1.4.1.20408", "1.3.6.1.6.3.11", SYS_NAME)
    r = agent.v2c("snmpgetnext", "-Cf", *starts, mib=False)
    assert r.rc == 0, r.text
    lines = r.out.splitlines()
    assert lines[0].startswith(".1.3.6.1.6.3.10.2.1.1.0 = ")          # snmpEngineID
    assert lines[1].startswith(f".{R}.1.1.1.0 = ")                   # the MIB's first object
    assert "No more variables left in this MIB View" in lines[2]
    assert lines[3].startswith(f".{SYS_LOCATION} = ")
    r = agent.v3("snmpbulkget", "-Cn1", "-Cr2", "1.3.6.1.6.3.1", "1.3.6.1.6.3.11", mib=False)
    assert r.rc == 0, r.text
    lines = r.out.splitlines()
    assert lines[0].startswith(".1.3.6.1.6.3.10.2.1.1.0 = ") and len(lines) == 3, r.text
    assert all("No more variables" in line for line in lines[1:]), r.text
    r = agent.v2c("snmpgetnext", "-Cf", "1.3.6.1.2.1.1", community="traponly", mib=False)
    assert r.rc == 0 and "No more variables left in this MIB View" in r.out, r.text
    r = agent.tool("snmpgetnext", "-v1", "-c", "public", "-On", "-Cf", agent.address, SYS_NAME,
                   "1.3.6.1.6.3.11", mib=False)
    assert "noSuchName" in r.text and failed_object(r) == ".1.3.6.1.6.3.11", r.text  # index 2


# -- 3. GETBULK with nothing to do, or negative counts -----------------------------------

@pytest.mark.parametrize("names, non_repeaters, max_repetitions, expected", [
    ([SYS_DESCR], 0, 0, 0),          # repeaters, no repetitions
    ([], 0, 10, 0),                  # no var-binds
    ([], 3, 0, 0),
    ([SYS_DESCR], -1, -3, 0),        # negative counts are zero (RFC 3416 4.2.3)
    ([SYS_DESCR], -1, 2, 2),
    ([SYS_DESCR, SYS_DESCR], 1, -7, 1),
])
def test_getbulk_with_nothing_to_do_or_negative_counts_is_answered(
        agent: Agent, names: list, non_repeaters: int, max_repetitions: int, expected: int) -> None:
    parse_errors = counter(agent, PARSE_ERRORS)
    raw = exchange(agent, request(V2C, "GetBulkRequestPDU", names, non_repeaters=non_repeaters,
                                  max_repetitions=max_repetitions))
    status, index, varbinds = response(V2C, raw)
    assert (status, index, len(varbinds)) == (0, 0, expected)
    assert counter(agent, PARSE_ERRORS) == parse_errors


# -- 4. SET errors: the var-bind at fault, the exact class ------------------------------

@pytest.mark.parametrize("varbinds, error, at", [
    # createAndGo with an address that is not an address: no row could take it.
    (("8.3", "i", "4", "4.3", "s", "lo", "2.3", "s", "10.0.0.300"), "wrongValue", "2.3"),
    (("8.3", "i", "4", "2.3", "s", "fe80::zz", "4.3", "s", "lo"), "wrongValue", "2.3"),
    # a prefix length that IPv4 cannot have: it conflicts with the address.
    (("8.3", "i", "4", "4.3", "s", "lo", "2.3", "s", "10.0.0.3", "3.3", "u", "40"), "inconsistentValue", "3.3"),
    (("8.3", "i", "4", "3.3", "u", "40", "2.3", "s", "10.0.0.3", "4.3", "s", "lo"), "inconsistentValue", "3.3"),
    # out of the column's range: wrongValue from the MIB's own range.
    (("8.3", "i", "4", "4.3", "s", "lo", "3.3", "u", "129"), "wrongValue", "3.3"),
])
def test_set_errors_point_at_the_var_bind_at_fault(agent: Agent, varbinds: tuple, error: str, at: str) -> None:
    args = [f"{ALIAS}.{v}" if n % 3 == 0 else v for n, v in enumerate(varbinds)]
    r = agent.v3("snmpset", *args, mib=False)
    assert r.rc != 0 and reason(r) == error, r.text
    assert failed_object(r) == f".{ALIAS}.{at}", r.text
    assert agent.v2c("snmpget", f"{ALIAS}.8.3", mib=False).out.count("No Such Instance") == 1


def test_a_duplicate_alias_address_is_inconsistent_at_its_var_bind(agent: Agent) -> None:
    # Rows created with createAndWait are notInService: no address is ever configured.
    r = agent.v3("snmpset", f"{ALIAS}.8.4", "i", "5", f"{ALIAS}.4.4", "s", "lo",
                 f"{ALIAS}.2.4", "s", "192.0.2.9", mib=False)
    assert r.rc == 0, r.text
    try:
        r = agent.v3("snmpset", f"{ALIAS}.8.5", "i", "5", f"{ALIAS}.2.5", "s", "192.0.2.9",
                     f"{ALIAS}.4.5", "s", "lo", mib=False)
        assert reason(r) == "inconsistentValue", r.text
        assert failed_object(r) == f".{ALIAS}.2.5", r.text
    finally:
        r = agent.v3("snmpset", f"{ALIAS}.8.4", "i", "6", mib=False)
        assert r.rc == 0, r.text


# -- 5. the write user's security level -------------------------------------------------

def test_a_user_with_a_privacy_key_must_use_authpriv_for_reads_too(agent: Agent) -> None:
    r = agent.v3("snmpget", SYS_NAME, priv=None, mib=False)            # authNoPriv
    assert r.rc != 0 and "Unsupported security level" in r.text, r.text
    r = agent.tool("snmpget", "-v3", "-l", "noAuthNoPriv", "-u", "admin", "-On", agent.address, SYS_NAME, mib=False)
    assert r.rc != 0 and "Unsupported security level" in r.text, r.text
    r = agent.v3("snmpget", SYS_NAME, mib=False)                       # authPriv
    assert r.rc == 0 and "head1" in r.out, r.text
