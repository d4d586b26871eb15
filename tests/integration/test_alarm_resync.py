"""An inform target that was down (no snmptrapd) and is started gets the active alarms
again: haoscarAlarmResyncStart, one haoscarAlarmActive per row of the table, with the
row's index, and haoscarAlarmResyncEnd, all under one resync id."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .conftest import make_agent
from .harness import Agent, R, TrapReceiver, free_udp_port

TRAP_OID = ".1.3.6.1.6.3.1.1.4.1.0"
RESYNC_START = f"{R}.0.27"
ALARM_ACTIVE = f"{R}.0.28"
RESYNC_END = f"{R}.0.29"
RESYNC_ID = f".{R}.1.14.30.0"
RESYNC_POSITION = f".{R}.1.14.31.0"
COLUMN = f".{R}.1.10.3.1."


@pytest.fixture
def down_nms(tmp_path: Path) -> Iterator[TrapReceiver]:
    """The NMS's receiver, not started yet: nothing listens on its port."""
    receiver = TrapReceiver(tmp_path, free_udp_port())
    yield receiver
    receiver.stop()


@pytest.fixture
def failing_agent(tmp_path: Path, down_nms: TrapReceiver) -> Iterator[Agent]:
    """A daemon whose only inform target is down, with a service failed from the start."""
    extra = f"""
[[snmp.targets]]
name = "nms-inform"
address = "127.0.0.1:{down_nms.port}"
version = "v2c"
kind = "inform"
community = "public"
retries = 1
timeout_ms = 300

[notify]
resync_interval_ms = 1000
"""
    services = f"""
[[services]]
name = "flagged"
check = "test -e {tmp_path / 'never-there'}"
retry_threshold = 1
recovery = "notify-only"
"""
    a = make_agent(tmp_path, down_nms.port, extra_toml=extra, services_toml=services)
    a.start()
    yield a
    a.stop()
    assert BUG_MARKER not in a.log_text(), a.log_text()


def wait_log(agent: Agent, needle: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in agent.log_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"the daemon never logged {needle!r}:\n{agent.log_text()}")


def walk_causes(agent: Agent) -> dict[str, str]:
    """haoscarAlarmProbableCause by alarm index, walked with snmpwalk."""
    r = agent.v2c("snmpwalk", f"{R}.1.10.3.1.4", mib=True)
    assert r.rc == 0, r.text
    return {line.split(" = ")[0].rsplit(".", 1)[1]: line.split(" = ", 1)[1].strip()
            for line in r.out.splitlines() if " = " in line and "No Such" not in line}


def test_an_inform_target_that_comes_back_gets_the_active_alarms(
        failing_agent: Agent, down_nms: TrapReceiver) -> None:
    # The service fails at once (notify-only: a serviceFailure and a recoveryExhausted
    # alarm); the informs announcing it are lost, and the target is found unreachable:
    # a notificationTargetUnreachable alarm.
    wait_log(failing_agent, "notification target nms-inform is unreachable")
    deadline = time.monotonic() + 10
    while len(causes := walk_causes(failing_agent)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(causes.values()) == ["INTEGER: notificationTargetUnreachable(18)",
                                       "INTEGER: recoveryExhausted(5)", "INTEGER: serviceFailure(4)"], causes
    target_alarm = next(i for i, c in causes.items() if "(18)" in c)
    # haoscarAlarmTargetTable: 1 the v2c trap target, 2 the inform target.
    targets = walk_targets(failing_agent)
    assert targets[("4", "1")] == "INTEGER: unknown(3)"
    assert targets[("4", "2")] == "INTEGER: unreachable(2)"
    assert targets[("2", "2")].endswith('"nms-inform"') or targets[("2", "2")].endswith("nms-inform")

    down_nms.start()                      # the NMS comes back
    _, start = down_nms.wait_notification(RESYNC_START, where="INFORM")
    resync_id = start[RESYNC_ID]
    _, end = down_nms.wait_notification(RESYNC_END, where="INFORM")
    assert end[RESYNC_ID] == resync_id
    assert end[f".{R}.1.10.1.0"] == "Gauge32: 2"                     # haoscarAlarmActiveCount
    actives = [b for info, b in down_nms.notifications()
               if b.get(TRAP_OID, "").endswith(ALARM_ACTIVE) and "INFORM" in info
               and b.get(RESYNC_ID) == resync_id]
    assert sorted(b[RESYNC_POSITION] for b in actives) == ["Gauge32: 1", "Gauge32: 2"] or \
        sorted(b[RESYNC_POSITION] for b in actives) == ["1", "2"], actives
    # Each carries its alarm's identity: the row's index, probable cause and subject.
    seen = {}
    for binds in actives:
        [cause_oid] = [oid for oid in binds if oid.startswith(COLUMN + "4.")]
        index = cause_oid.rsplit(".", 1)[1]
        seen[index] = binds[cause_oid]
        assert binds[COLUMN + f"5.{index}"].strip('"').endswith("flagged"), binds
    # The target's own alarm was cleared when it answered, before the resynchronisation.
    assert seen == {i: c for i, c in causes.items() if i != target_alarm}
    _, cleared = down_nms.wait_notification(f"{R}.0.18", where="INFORM")
    assert cleared[COLUMN + f"4.{target_alarm}"] == "INTEGER: notificationTargetUnreachable(18)"
    assert target_alarm not in walk_causes(failing_agent)
    assert "resynchronising its alarm view" in failing_agent.log_text()
    targets = walk_targets(failing_agent)
    assert targets[("4", "2")] == "INTEGER: reachable(1)"
    assert targets[("7", "2")] == "Counter32: 1"                      # one resynchronisation
    assert targets[("8", "2")] != "Timeticks: (0) 0:00:00.00"


def walk_targets(agent: Agent) -> dict[tuple[str, str], str]:
    """haoscarAlarmTargetTable walked: {(column, index): value}."""
    r = agent.v2c("snmpwalk", f"{R}.1.10.30", mib=True)
    assert r.rc == 0, r.text
    out = {}
    for line in r.out.splitlines():
        if " = " in line and "No Such" not in line:
            oid, value = line.split(" = ", 1)
            column, index = oid.rsplit(".", 2)[1:]
            out[(column, index)] = value.strip()
    return out
