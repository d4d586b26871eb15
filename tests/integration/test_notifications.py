"""Notifications received by a real snmptrapd: v2c trap, v3 trap, v3 inform, with var-binds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .conftest import make_agent
from .harness import Agent, R, TrapReceiver, free_udp_port

TRAP_OID = ".1.3.6.1.6.3.1.1.4.1.0"
AGENT_STARTED = f"{R}.0.1"
SERVICE_DOWN = f"{R}.0.12"
SERVICE_RECOVERED = f"{R}.0.13"
ALARM_RAISED = f"{R}.0.17"
ALARM_CLEARED = f"{R}.0.18"
CONFIG_CHANGED = f"{R}.0.19"
# The agent's engine ID, derived from "cluster/head" (RFC 3411 text format under PEN 32473).
ENGINE_ID = (bytes.fromhex("80007ed904") + b"itest/head1").hex()


def text(value: str) -> str:
    """A DisplayString var-bind as the operator reads it: no type prefix, no quotes."""
    return value.split(": ", 1)[-1].strip('"')


@pytest.fixture
def v3_trapd(tmp_path: Path) -> Iterator[TrapReceiver]:
    receiver = TrapReceiver(tmp_path, free_udp_port(), engine_id=ENGINE_ID)
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def agent3(tmp_path: Path, v3_trapd: TrapReceiver) -> Iterator[Agent]:
    """One agent, three targets on the same receiver: v2c trap, v3 trap, v3 inform."""
    flag = tmp_path / "service-is-up"
    flag.touch()
    extra = f"""
[[snmp.targets]]
name = "v3-trap"
address = "127.0.0.1:{v3_trapd.port}"
version = "v3"
kind = "trap"
user = "admin"

[[snmp.targets]]
name = "v3-inform"
address = "127.0.0.1:{v3_trapd.port}"
version = "v3"
kind = "inform"
user = "admin"
retries = 2
timeout_ms = 500
"""
    services = f"""
[[services]]
name = "flagged"
check = "test -e {flag}"
retry_threshold = 1
recovery = "notify-only"
"""
    a = make_agent(tmp_path, v3_trapd.port, extra_toml=extra, services_toml=services)
    a.start()
    yield a
    a.stop()
    assert BUG_MARKER not in a.log_text(), a.log_text()


def test_agent_started_is_sent_once_per_target_each_with_its_own_security(
        agent3: Agent, v3_trapd: TrapReceiver) -> None:
    v3_trapd.wait_notification(AGENT_STARTED, where="community public")
    v3_trapd.wait_notification(AGENT_STARTED, where="TRAP2, SNMP v3, user admin")
    info, binds = v3_trapd.wait_notification(AGENT_STARTED, where="INFORM, SNMP v3, user admin")
    assert text(binds[f".{R}.1.1.8.0"]) == "head1"             # haoscarLocalHead
    assert text(binds[f".{R}.1.1.9.0"]) == "0.1.0"             # haoscarAgentVersion
    assert text(binds[f".{R}.1.14.8.0"]) == "head1"            # haoscarNotifySubject
    # haoscarNotifyTime: an 11-octet UTC DateAndTime, rendered by snmptrapd from the MIB.
    assert re.fullmatch(r"STRING: \d{4}-\d{1,2}-\d{1,2},\d{1,2}:\d{1,2}:\d{1,2}\.\d,\+0:0",
                        binds[f".{R}.1.14.1.0"]), binds
    # Regression: a target shared between v2c and v3 made pysnmp send every later
    # notification twice, once in cleartext. Exactly three copies, one per target.
    import time
    time.sleep(1.0)
    started = [i for i, b in v3_trapd.notifications() if b.get(TRAP_OID, "").endswith(AGENT_STARTED)]
    assert sorted(s.split(",")[1].strip() for s in started) == ["SNMP v2c", "SNMP v3", "SNMP v3"], started


def test_config_changed_says_who_what_old_and_new(agent3: Agent, v3_trapd: TrapReceiver) -> None:
    r = agent3.v3("snmpset", f"{R}.1.2.8.0", "u", "30", mib=False)   # haoscarFailbackDelay
    assert r.rc == 0, r.text
    info, binds = v3_trapd.wait_notification(CONFIG_CHANGED, where="INFORM")
    assert text(binds[f".{R}.1.14.4.0"]) == "v3:admin@127.0.0.1"   # haoscarNotifyPrincipal
    assert binds[f".{R}.1.14.5.0"] == f"OID: .{R}.1.2.8.0"            # haoscarNotifyObject
    assert text(binds[f".{R}.1.14.6.0"]) == "0"                    # old
    assert text(binds[f".{R}.1.14.7.0"]) == "30"                   # new


def test_service_failure_and_recovery_raise_and_clear_an_alarm(
        agent3: Agent, v3_trapd: TrapReceiver, tmp_path: Path) -> None:
    (tmp_path / "service-is-up").unlink()
    info, down = v3_trapd.wait_notification(SERVICE_DOWN, where="community public")
    assert text(down[f".{R}.1.8.1.2.1"]) == "flagged"             # haoscarServiceName.1
    assert down[f".{R}.1.8.1.4.1"] == "INTEGER: failed(3)"              # haoscarServiceState
    info, raised = v3_trapd.wait_notification(ALARM_RAISED, where="community public")
    alarm = next(o for o in raised if o.startswith(f".{R}.1.10.3.1.2."))
    index = alarm.rsplit(".", 1)[1]
    assert raised[alarm] == "INTEGER: major(4)"                         # haoscarAlarmSeverity
    # The active alarm table shows it, and the NMS can resync from the last-changed stamp.
    # (notify-only: the failure also exhausts the ladder at once, a second alarm.)
    r = agent3.v2c("snmpget", f"{R}.1.10.1.0", f"{R}.1.10.3.1.5.{index}", mib=False)
    assert "Gauge32: 2" in r.out and "flagged" in r.out, r.text
    # The row, walked: one per active alarm, with the identity the notification carried.
    walked = alarm_rows(agent3)
    assert walked[index][4] == raised[f".{R}.1.10.3.1.4.{index}"]   # probable cause
    assert walked[index][5] == raised[f".{R}.1.10.3.1.5.{index}"]   # subject
    assert walked[index][30] == walked[index][6]                    # last updated = raised
    assert len(walked) == 2
    (tmp_path / "service-is-up").touch()
    v3_trapd.wait_notification(SERVICE_RECOVERED, where="community public")
    info, cleared = v3_trapd.wait_notification(ALARM_CLEARED, where="community public")
    # The clear carries the raise's identity: index, probable cause, subject.
    assert cleared[f".{R}.1.10.3.1.2.{index}"] == "INTEGER: cleared(1)"
    assert cleared[f".{R}.1.10.3.1.4.{index}"] == raised[f".{R}.1.10.3.1.4.{index}"]
    assert cleared[f".{R}.1.10.3.1.5.{index}"] == raised[f".{R}.1.10.3.1.5.{index}"]
    r = agent3.v2c("snmpget", f"{R}.1.10.1.0", mib=False)
    assert "Gauge32: 0" in r.out, r.text
    assert alarm_rows(agent3) == {}


def alarm_rows(agent: Agent) -> dict[str, dict[int, str]]:
    """haoscarAlarmTable walked with snmpwalk: {index: {column: value}}."""
    r = agent.v2c("snmpwalk", f"{R}.1.10.3", mib=True)
    assert r.rc == 0, r.text
    rows: dict[str, dict[int, str]] = {}
    for line in r.out.splitlines():
        if " = " not in line or "No Such" in line:      # an empty table: nothing below it
            continue
        oid, value = line.split(" = ", 1)
        column, index = oid.rsplit(".", 2)[1:]
        rows.setdefault(index, {})[int(column)] = value.strip()
    return rows
