"""SNMP SET: exact error codes, atomicity, security defaults, audit, RowStatus tables."""

from __future__ import annotations

import json

import pytest

from .harness import Agent, R, Result

HB_INTERVAL = f"{R}.1.2.1.0"
HB_DEAD = f"{R}.1.2.2.0"
DEFAULT_RETRY = f"{R}.1.2.6.0"
AUTO_FAILBACK = f"{R}.1.2.7.0"
NOTIFY_EMAIL = f"{R}.1.2.10.0"
CONFIG_CHANGES = f"{R}.1.2.12.0"
CONTROL_ACTION = f"{R}.1.3.1.0"
CONTROL_RESULT = f"{R}.1.3.2.0"
CLUSTER_NAME = f"{R}.1.1.1.0"
SET_ACCEPTED = f"{R}.1.13.2.0"
SET_REJECTED = f"{R}.1.13.3.0"
SVC = f"{R}.1.8.1"          # haoscarServiceEntry
EVENT_LAST = f"{R}.1.9.1.0"


# Each refused SET and the error-status it must get (test_agentx.py sends them through
# snmpd's AgentX master too).
BAD_SETS = [
    ((HB_INTERVAL, "s", "1000"), "wrongType"),           # OCTET STRING for an Unsigned32
    ((HB_INTERVAL, "i", "1000"), "wrongType"),           # INTEGER tag for an Unsigned32
    ((HB_INTERVAL, "u", "5"), "wrongValue"),             # below 10 ms
    ((HB_INTERVAL, "u", "60001"), "wrongValue"),         # above 60000 ms
    ((AUTO_FAILBACK, "i", "3"), "wrongValue"),           # TruthValue is 1 or 2
    ((NOTIFY_EMAIL, "s", "x" * 256), "wrongLength"),     # SIZE (0..255)
    ((NOTIFY_EMAIL, "x", "07"), "wrongValue"),           # control character in a DisplayString
    ((HB_INTERVAL, "u", "9000"), "inconsistentValue"),   # dead time 15000 < 3 x 9000
    ((CLUSTER_NAME, "s", "other"), "notWritable"),       # read-only object
    ((f"{R}.1.2.1.1", "u", "1000"), "noCreation"),       # scalar instance other than .0
    ((f"{SVC}.2.77", "s", "pbs"), "noCreation"),         # column of a row that does not exist
    ((f"{SVC}.14.1", "i", "4"), "inconsistentValue"),    # createAndGo on an existing row
    ((f"{SVC}.14.9", "i", "3"), "wrongValue"),           # notReady cannot be written
    ((f"{SVC}.14.9", "i", "4"), "inconsistentValue"),    # createAndGo without the mandatory columns
    ((f"{R}.1.77.0", "u", "1"), "notWritable"),          # no such object in our MIB
]


def v3set(agent: Agent, *args: str, **kw: object) -> Result:
    return agent.v3("snmpset", *args, mib=False, **kw)  # type: ignore[arg-type]


def v2cset(agent: Agent, *args: str) -> Result:
    return agent.v2c("snmpset", *args, mib=False)


def readerset(agent: Agent, *args: str) -> Result:
    return agent.reader("snmpset", *args, mib=False)


def error_of(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("Reason:"):
            return line.split()[1]
    return ""


def get(agent: Agent, oid: str) -> str:
    r = agent.v3("snmpget", "-Oqv", oid)
    assert r.rc == 0, r.text
    return r.out.strip()


def test_v3_authpriv_set_is_applied_persisted_and_audited(agent: Agent) -> None:
    r = v3set(agent, HB_INTERVAL, "u", "1000")
    assert r.rc == 0, r.text
    assert get(agent, HB_INTERVAL).startswith("1000")
    saved = json.loads((agent.state_dir / "overrides.json").read_text())
    assert saved["timing"]["heartbeat_interval_ms"] == 1000
    log = agent.log_text()
    assert "SET by v3:admin@127.0.0.1: haoscarHeartbeatInterval.0 changed from '5000' to '1000'" in log
    assert get(agent, CONFIG_CHANGES) == "1"
    # The audit record is in the event history too (haoscarEventTable, type configChanged(19)).
    last = get(agent, EVENT_LAST)
    assert get(agent, f"{R}.1.9.2.1.3.{last}") in ("19", "configChanged")
    assert "admin" in get(agent, f"{R}.1.9.2.1.6.{last}")


def test_related_values_can_change_together_in_one_pdu(agent: Agent) -> None:
    # 200 ms heartbeats need a dead time >= 600 ms: both in one request is consistent.
    r = v3set(agent, HB_INTERVAL, "u", "200", HB_DEAD, "u", "600")
    assert r.rc == 0, r.text
    assert get(agent, HB_INTERVAL).startswith("200") and get(agent, HB_DEAD).startswith("600")


@pytest.mark.parametrize("args, error", BAD_SETS)
def test_bad_sets_get_the_exact_error_and_change_nothing(agent: Agent, args: tuple, error: str) -> None:
    before = agent.v2c("snmpwalk", R).out
    r = v3set(agent, *args)
    assert r.rc != 0
    assert error_of(r.text) == error, r.text
    after = agent.v2c("snmpwalk", R).out
    # Nothing changed but counters and timestamps that move by themselves (the performance
    # figures count the walks themselves: haoscarPerformance 10, 11 and 20 on; the
    # accounting table's monitored time and availability grow each second).
    moving = (f".{R}.1.13.", f".{R}.1.12.10.", f".{R}.1.12.11.", f".{R}.1.12.2", f".{R}.1.9.",
              f".{R}.1.1.1.10", f".{R}.1.8.1.", f".{R}.1.11.")
    keep = lambda text: [l for l in text.splitlines() if not l.startswith(moving)]  # noqa: E731
    assert keep(before) == keep(after)
    assert not (agent.state_dir / "overrides.json").exists()
    assert f"refused with {error}" in agent.log_text()


def test_multi_varbind_set_is_atomic(agent: Agent) -> None:
    r = v3set(agent, DEFAULT_RETRY, "u", "5", HB_INTERVAL, "u", "5")
    assert error_of(r.text) == "wrongValue", r.text
    assert "Failed object: .1.3.6.1.4.1.32473.1.1.2.1.0" in r.text   # error-index points at var-bind 2
    assert get(agent, DEFAULT_RETRY) == "3"                         # var-bind 1 was not applied
    assert not (agent.state_dir / "overrides.json").exists()


def test_read_only_community_cannot_set_anything(agent: Agent) -> None:
    # Regression: pysnmp let a read-only community SET when the write view was empty.
    for oid, kind, value in ((HB_INTERVAL, "u", "1000"), ("1.3.6.1.2.1.1.4.0", "s", "x"),
                             ("1.3.6.1.2.1.1.5.0", "s", "x"), ("1.3.6.1.6.3.1.1.6.1.0", "i", "1")):
        r = v2cset(agent, oid, kind, value)
        assert error_of(r.text) == "noAccess", (oid, r.text)
    assert get(agent, HB_INTERVAL).startswith("5000")
    assert "community" in agent.log_text() and "refused with noAccess" in agent.log_text()


def test_v3_read_user_and_authnopriv_cannot_set(agent: Agent) -> None:
    r = readerset(agent, HB_INTERVAL, "u", "1000")
    assert error_of(r.text) == "noAccess", r.text
    # The write user at a lower security level than its keys: USM (RFC 3414 3.2 step 5)
    # refuses the request outright with an unsupportedSecurityLevel report, before any
    # access check, so a write can never travel without privacy.
    r = v3set(agent, HB_INTERVAL, "u", "1000", priv=None)
    assert r.rc != 0 and "Unsupported security level" in r.text, r.text
    r = agent.tool("snmpset", "-v3", "-l", "noAuthNoPriv", "-u", "admin", "-On", agent.address,
                   HB_INTERVAL, "u", "1000", mib=False)
    assert r.rc != 0 and "Unsupported security level" in r.text, r.text
    assert get(agent, HB_INTERVAL).startswith("5000")


def test_objects_outside_our_mib_are_not_writable(agent: Agent) -> None:
    r = v3set(agent, "1.3.6.1.2.1.1.4.0", "s", "someone")
    assert error_of(r.text) in ("notWritable", "noAccess"), r.text


def test_service_rows_are_created_and_destroyed_with_rowstatus(agent: Agent) -> None:
    r = v3set(agent, f"{SVC}.14.5", "i", "4", f"{SVC}.2.5", "s", "nfs", f"{SVC}.3.5", "s", "true")
    assert r.rc == 0, r.text
    assert get(agent, f"{SVC}.2.5") == "nfs"
    assert get(agent, f"{SVC}.14.5") in ("1", "active")
    saved = json.loads((agent.state_dir / "overrides.json").read_text())
    assert saved["services"]["5"]["name"] == "nfs"
    # createAndWait without mandatory columns: notReady, then complete and activate.
    r = v3set(agent, f"{SVC}.14.6", "i", "5")
    assert r.rc == 0, r.text
    assert get(agent, f"{SVC}.14.6") in ("3", "notReady")
    r = v3set(agent, f"{SVC}.2.6", "s", "maui", f"{SVC}.3.6", "s", "true")
    assert r.rc == 0, r.text
    assert get(agent, f"{SVC}.14.6") in ("2", "notInService")
    r = v3set(agent, f"{SVC}.14.6", "i", "1")
    assert r.rc == 0, r.text
    assert get(agent, f"{SVC}.14.6") in ("1", "active")
    # A duplicate name is inconsistent with the rest of the configuration.
    r = v3set(agent, f"{SVC}.2.6", "s", "nfs")
    assert error_of(r.text) == "inconsistentValue", r.text
    # Destroy both; a file-defined row can be destroyed too (a tombstone is kept).
    r = v3set(agent, f"{SVC}.14.5", "i", "6", f"{SVC}.14.6", "i", "6", f"{SVC}.14.1", "i", "6")
    assert r.rc == 0, r.text
    walk = agent.v2c("snmpwalk", f"{SVC}.2").out
    assert "nfs" not in walk and "maui" not in walk and "healthy" not in walk
    saved = json.loads((agent.state_dir / "overrides.json").read_text())
    assert saved["services"] == {"1": {"deleted": True}}


def test_operator_action_reset_counters_and_refused_switchover(agent: Agent) -> None:
    r = v3set(agent, CONTROL_ACTION, "i", "4")
    assert r.rc == 0, r.text
    assert get(agent, CONTROL_RESULT) in ("3", "succeeded")
    assert get(agent, CONTROL_ACTION) in ("1", "none")      # reads back none(1)
    r = v3set(agent, CONTROL_ACTION, "i", "2")         # switchover: no peer in this config
    assert r.rc == 0, r.text
    assert get(agent, CONTROL_RESULT) in ("5", "refused")
    assert "peer" in get(agent, f"{R}.1.3.3.0")


def test_set_counters_count(agent: Agent) -> None:
    v3set(agent, HB_INTERVAL, "u", "1000")
    v3set(agent, HB_INTERVAL, "u", "1")
    assert get(agent, SET_ACCEPTED).endswith("1")
    assert get(agent, SET_REJECTED).endswith("1")


def test_a_refused_value_cannot_forge_audit_lines(agent: Agent) -> None:
    forged = "x\n2026-11-28 10:00:00,000 INFO haoscar_snmp.audit: SET by v3:admin@10.0.0.1: forged"
    r = agent.v2c("snmpset", f"{R}.1.2.10.0", "s", forged, mib=False)   # read-only community
    assert "noAccess" in r.text or "authorizationError" in r.text or "notWritable" in r.text, r.text
    log = agent.log_text()
    refused = [line for line in log.splitlines() if "refused with" in line]
    assert refused and "x\\n2026-11-28 10:00:00,000 INFO" in refused[-1]
    assert not any(line.startswith("2026-11-28 10:00:00,000") for line in log.splitlines())
