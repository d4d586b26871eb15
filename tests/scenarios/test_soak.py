"""The soak's pass/fail part, short: the soak benchmark (bench/bench_soak.py) run for three
faults, one of each kind (a killed service, a LAN cut, a killed active daemon), under
steady SNMP walks, with two real daemons, three nodes and snmptrapd in namespaces. It
passes when no expected event, notification, alarm clearance or ledger entry is lost, no
daemon stopped by itself and no log holds the bug marker; the full ten-minute run and its
memory and CPU figures are a benchmark, not a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAULTS = 3          # service, lan, failover: the soak's faults in turn
EVERY_S = 11.0      # seconds between faults: each recovers within a few seconds


def test_a_short_soak_loses_no_event_notification_alarm_or_ledger_entry(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    figures = tmp_path / "soak.json"
    minutes = (FAULTS * EVERY_S + 2.0) / 60
    p = subprocess.run([sys.executable, str(REPO / "bench" / "bench_soak.py"), "--minutes", f"{minutes:.3f}",
                        "--every", str(EVERY_S), "--recovery", "10", "--walkers", "2", "--json", str(figures)],
                       capture_output=True, text=True, timeout=240, cwd=REPO)
    assert figures.exists(), p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads(figures.read_text())
    tally = res["tally"]
    assert tally["faults"] == {"service": 1, "lan": 1, "failover": 1}, p.stdout[-3000:]
    assert tally["lost_events"] == [] and tally["lost_notifications"] == [], p.stdout[-3000:]
    assert tally["alarms_left"] == [] and tally["lost_ledger"] == [], p.stdout[-3000:]
    assert tally["incidents"] == [] and not res["bug"], p.stdout[-3000:]
    assert res["verdict"] == "PASS" and p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
