"""The outage ledger with a real daemon: a service made to fail is an outage in
haoscarAcctTable (snmpwalk) and in `haoscar-snmp report` (CSV and JSON, while the daemon
runs and while it does not); an outage open at a kill -9 is closed at the last-alive
mark on the next start, and the agent's own downtime is this head's outage; the audit
trail lists an accepted SET and a refused one. One daemon serves every check."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .conftest import make_agent
from .harness import Agent, R, TrapReceiver

ACCT = f"{R}.1.11.1.1"              # haoscarAcctEntry
SUBJECT, OUTAGES, DOWNTIME, AVAIL, LAST_DURATION, CAUSE, IN_OUTAGE = 3, 4, 5, 7, 9, 12, 13
WINDOW_NAME = f"{R}.1.11.2.1.2"     # haoscarAcctWindowName
PERF_AVAILABILITY = f"{R}.1.12.9.0"
FAILBACK_DELAY = f"{R}.1.2.8.0"


@pytest.fixture
def agent(tmp_path: Path, trapd: TrapReceiver) -> Iterator[Agent]:
    flag = tmp_path / "flaky.down"
    services = f"""
[[services]]
name = "flaky"
check = "test ! -e {flag}"
retry_threshold = 1
recovery = "notify-only"
"""
    a = make_agent(tmp_path, trapd.port, services_toml=services,
                   extra_toml="\n[accounting]\nwindows = [\"1h\", \"24h\"]\nmark_interval_s = 1\n")
    a.start()
    yield a
    a.stop()
    assert BUG_MARKER not in a.log_text(), a.log_text()


def walk(agent: Agent, oid: str) -> dict[str, str]:
    r = agent.v2c("snmpwalk", "-Oqn", oid, mib=False)
    assert r.rc == 0, r.text
    out = {}
    for line in r.out.splitlines():
        name, _, value = line.partition(" ")
        out[name.removeprefix(f".{oid}.")] = value.strip('"')
    return out


def cell(agent: Agent, column: int, subject: int, window: int = 1) -> str:
    r = agent.v2c("snmpget", "-Oqv", f"{ACCT}.{column}.{subject}.{window}", mib=False)
    assert r.rc == 0, r.text
    return r.out.strip().strip('"')


def subject_index(agent: Agent, name: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for key, value in walk(agent, f"{ACCT}.{SUBJECT}").items():
            if value == name and key.endswith(".1"):
                return int(key.split(".")[0])
        time.sleep(0.2)
    raise AssertionError(f"no accounting row for {name}:\n{agent.log_text()}")


def wait_cell(agent: Agent, column: int, subject: int, wanted: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = cell(agent, column, subject)
        if seen == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"column {column} of subject {subject} is {seen!r}, not {wanted!r}:\n{agent.log_text()}")


def report(agent: Agent, *args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "haoscar_snmp", "report", "-c", str(agent.config_path),
                        *args], capture_output=True, text=True, timeout=30, cwd=agent.workdir)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_a_failed_service_is_accounted_in_the_mib_and_the_report_and_survives_kill_9(agent: Agent) -> None:
    flag = agent.workdir / "flaky.down"
    flaky = subject_index(agent, "flaky")
    assert walk(agent, WINDOW_NAME) == {"1": "1h", "2": "24h"}

    # A real outage: the check fails for about two seconds.
    flag.touch()
    wait_cell(agent, IN_OUTAGE, flaky, "1")
    time.sleep(1.5)
    flag.unlink()
    wait_cell(agent, IN_OUTAGE, flaky, "2")
    wait_cell(agent, OUTAGES, flaky, "1")
    assert cell(agent, OUTAGES, flaky, window=2) == "1"
    assert 1 <= int(cell(agent, LAST_DURATION, flaky)) <= 10
    assert "flaky" in cell(agent, CAUSE, flaky)
    assert int(cell(agent, AVAIL, flaky)) < 1_000_000
    assert agent.v2c("snmpget", "-Oqv", PERF_AVAILABILITY, mib=False).out.strip() == "1000000"

    # The report, while the daemon runs: CSV figures and JSON outages.
    rows = list(csv.DictReader(io.StringIO(report(agent, "--format", "csv"))))
    mine = {r["window"]: r for r in rows if r["subject"] == "flaky"}
    assert set(mine) == {"1h", "24h", "all"} and mine["1h"]["outages"] == mine["all"]["outages"] == "1"
    assert 1 <= float(mine["1h"]["downtime_s"]) <= 10 and int(mine["1h"]["availability_ppm"]) < 1_000_000
    [outage] = [o for o in json.loads(report(agent, "--outages", "--format", "json", "--since", "1h"))["rows"]
                if o["subject"] == "flaky"]
    assert outage["open"] is False and 1 <= outage["duration_s"] <= 10 and outage["subject_type"] == "service"

    # An accepted SET and a refused one are in the audit trail.
    assert agent.v3("snmpset", FAILBACK_DELAY, "u", "42", mib=False).rc == 0
    assert agent.v3("snmpset", FAILBACK_DELAY, "i", "42", mib=False).rc != 0      # wrongType
    audit = json.loads(report(agent, "--audit", "--format", "json"))
    assert any("haoscarFailbackDelay" in e["text"] and "'42'" in e["text"] for e in audit["rows"])
    assert any(e["type"] == "set_refused" and "refused with wrongType" in e["text"] for e in audit["rows"])
    assert "refused SETs" in audit["note"]

    # Down again, then killed: the report, without the daemon, shows the outage open.
    flag.touch()
    wait_cell(agent, IN_OUTAGE, flaky, "1")
    time.sleep(2.5)                     # last-alive marks (every second here)
    agent.kill9()
    outages = [o for o in json.loads(report(agent, "--outages", "--format", "json"))["rows"]
               if o["subject"] == "flaky"]
    assert [o["open"] for o in outages] == [False, True]
    assert outages[-1]["duration_s"] >= 1
    time.sleep(1)
    agent.start()
    flag.unlink()
    wait_cell(agent, OUTAGES, flaky, "3")          # the one closed at the crash, a new one since the start
    wait_cell(agent, IN_OUTAGE, flaky, "2")
    rows = json.loads(report(agent, "--outages", "--format", "json"))["rows"]
    flaky_rows = [o for o in rows if o["subject"] == "flaky"]
    assert "killed or crashed" in flaky_rows[1]["note"] and not flaky_rows[1]["open"]
    [gap] = [o for o in rows if o["subject"] == "head1"]
    assert "killed or crashed" in gap["cause"] and 1 <= gap["duration_s"] <= 30
    head1 = subject_index(agent, "head1")
    assert cell(agent, OUTAGES, head1) == "1" and int(cell(agent, AVAIL, head1)) < 1_000_000
