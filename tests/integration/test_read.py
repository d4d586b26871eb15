"""Reading the agent with net-snmp's tools: v2c, v3 authPriv, the system group, walks."""

from __future__ import annotations

from .harness import Agent, R


def values(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if " = " in line:
            oid, value = line.split(" = ", 1)
            # With the MIB loaded net-snmp prints DisplayStrings unquoted; without, quoted.
            out[oid.strip()] = value.strip().replace('"', "")
    return out


def test_system_group_identifies_the_product(agent: Agent) -> None:
    r = agent.v2c("snmpget", "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.4.0",
                  "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.6.0")
    assert r.rc == 0, r.text
    v = values(r.out)
    assert "haoscar-snmp" in v[".1.3.6.1.2.1.1.1.0"]
    assert v[".1.3.6.1.2.1.1.2.0"] == f"OID: .{R}.3.1"   # HAOSCAR-MIB::haoscarAgentProduct
    assert v[".1.3.6.1.2.1.1.4.0"] == "STRING: ops@example.org"
    assert v[".1.3.6.1.2.1.1.5.0"] == "STRING: head1"
    assert v[".1.3.6.1.2.1.1.6.0"] == "STRING: rack 7"


def test_v2c_reads_live_cluster_state(agent: Agent) -> None:
    r = agent.v2c("snmpget", f"{R}.1.1.1.0", f"{R}.1.1.8.0", f"{R}.1.2.1.0", f"{R}.1.4.1.2.1")
    assert r.rc == 0, r.text
    v = values(r.out)
    assert v[f".{R}.1.1.1.0"] == "STRING: itest"           # haoscarClusterName
    assert v[f".{R}.1.1.8.0"] == "STRING: head1"           # haoscarLocalHead
    assert v[f".{R}.1.2.1.0"] == "Gauge32: 5000 milliseconds"  # haoscarHeartbeatInterval
    assert v[f".{R}.1.4.1.2.1"] == "STRING: head1"         # haoscarHeadName.1


def test_names_resolve_through_the_mib(agent: Agent) -> None:
    r = agent.tool("snmpget", "-v2c", "-c", "public", agent.address,
                   "HAOSCAR-MIB::haoscarClusterState.0", "HAOSCAR-MIB::haoscarEventLastIndex.0")
    assert r.rc == 0, r.text
    assert "haoscarClusterState.0 = INTEGER:" in r.out
    assert "haoscarEventLastIndex.0 = Gauge32:" in r.out


def test_walk_and_bulkwalk_agree_and_are_ordered(agent: Agent) -> None:
    walk = agent.v2c("snmpwalk", R)
    bulk = agent.v2c("snmpbulkwalk", "-Cr7", R)
    assert walk.rc == 0 and bulk.rc == 0, walk.text + bulk.text
    # Values of counters and clocks may move between the two walks: compare the names.
    names = [line.split(" = ")[0] for line in walk.out.splitlines()]
    assert names == [line.split(" = ")[0] for line in bulk.out.splitlines()]
    assert len(names) > 60
    keys = [tuple(int(x) for x in n.strip(".").split(".")) for n in names]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    # Every table we configured shows up: heads, LAN interfaces, services, events, jobs.
    for table in (".4.1.", ".6.1.", ".8.1.", ".9.2.1.", ".12.10.1."):
        assert any(f".{R}.1{table}" in n for n in names), table


def test_walk_from_the_top_crosses_into_our_subtree_and_back(agent: Agent) -> None:
    r = agent.v2c("snmpwalk", ".1.3.6.1")
    assert r.rc == 0, r.text
    names = [line.split(" = ")[0] for line in r.out.splitlines()]
    first_ours = next(i for i, n in enumerate(names) if n.startswith(f".{R}."))
    assert names[first_ours - 1].startswith(".1.3.6.1.2.1.")            # mib-2 before us
    after = [n for n in names[first_ours:] if not n.startswith(f".{R}.")]
    assert after and after[0].startswith(".1.3.6.1.6.3.10.2.1")        # snmpEngine after us


def test_v3_authpriv_reads_with_sha2_and_aes(agent: Agent) -> None:
    r = agent.v3("snmpget", f"{R}.1.1.1.0")                 # SHA-256 + AES-128
    assert r.rc == 0 and "itest" in r.out, r.text
    r = agent.reader("snmpget", f"{R}.1.1.1.0")             # SHA-512 + AES-256
    assert r.rc == 0 and "itest" in r.out, r.text


def test_wrong_keys_and_communities_are_rejected_and_counted(agent: Agent) -> None:
    before = values(agent.v2c("snmpget", f"{R}.1.13.1.0").out)[f".{R}.1.13.1.0"]
    bad = agent.v3("snmpget", "-t", "1", "-r", "0", f"{R}.1.1.1.0", auth="wrong-auth-key-0")
    assert bad.rc != 0
    assert "Authentication failure" in bad.text or "authorizationError" in bad.text or "Timeout" in bad.text
    bad = agent.v2c("snmpget", "-t", "0.5", "-r", "0", f"{R}.1.1.1.0", community="nosuchcommunity")
    assert bad.rc != 0 and "Timeout" in bad.text   # unknown communities are dropped silently
    after = values(agent.v2c("snmpget", f"{R}.1.13.1.0").out)[f".{R}.1.13.1.0"]
    assert int(after.split()[-1]) >= int(before.split()[-1]) + 2   # haoscarSnmpAuthFailures


def test_unknown_instances_are_exceptions_not_errors(agent: Agent) -> None:
    r = agent.v2c("snmpget", f"{R}.1.1.1.1", f"{R}.1.4.1.2.2", f"{R}.1.99.0")
    assert r.rc == 0, r.text
    assert "No Such Instance" in r.out.splitlines()[0]
    assert "No Such Instance" in r.out.splitlines()[1]
    assert "No Such Object" in r.out.splitlines()[2]


def test_ipv6_listener_answers(agent: Agent) -> None:
    r = agent.tool("snmpget", "-v2c", "-c", "public", "-On", f"udp6:[::1]:{agent.port}", f"{R}.1.1.1.0")
    assert r.rc == 0 and "itest" in r.out, r.text


def test_malformed_datagrams_are_dropped_and_counted(agent: Agent) -> None:
    import socket

    # snmpInASNParseErrs + snmpInBadVersions: every junk datagram lands in one of them.
    counters = ("1.3.6.1.2.1.11.6.0", "1.3.6.1.2.1.11.3.0")
    before = values(agent.v2c("snmpget", *counters, mib=False).out)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"\x00", b"\x30\x82\xff\xff", b"not snmp at all", bytes(range(256)) * 4):
            s.sendto(junk, ("127.0.0.1", agent.port))
    after = values(agent.v2c("snmpget", *counters, mib=False).out)
    count = lambda v: sum(int(x.split()[-1]) for x in v.values())  # noqa: E731
    assert count(after) >= count(before) + 4
    # ... and the agent still answers.
    assert agent.v2c("snmpget", f"{R}.1.1.1.0").rc == 0
