"""An acknowledged SET survives a clean restart and kill -9; the operator's file is never rewritten."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from .harness import Agent, R

HB_INTERVAL = f"{R}.1.2.1.0"
FAILBACK_DELAY = f"{R}.1.2.8.0"
SVC = f"{R}.1.8.1"


def get(agent: Agent, oid: str) -> str:
    r = agent.v2c("snmpget", "-Oqv", oid, mib=False)
    assert r.rc == 0, r.text
    return r.out.strip().strip('"')


def test_set_survives_clean_restart_and_file_is_untouched(agent: Agent) -> None:
    original = agent.config_path.read_bytes()
    r = agent.v3("snmpset", HB_INTERVAL, "u", "2000", f"{SVC}.14.7", "i", "4", f"{SVC}.2.7", "s", "pbs",
                 f"{SVC}.3.7", "s", "true", mib=False)
    assert r.rc == 0, r.text
    assert agent.stop() == 0
    agent.start()
    assert get(agent, HB_INTERVAL) == "2000"
    assert get(agent, f"{SVC}.2.7") == "pbs"
    assert agent.config_path.read_bytes() == original
    assert "stopped" in agent.log_text()


def test_every_acknowledged_set_survives_kill_9(agent: Agent) -> None:
    for value in ("100", "200", "300", "400", "500"):
        r = agent.v3("snmpset", FAILBACK_DELAY, "u", value, mib=False)
        assert r.rc == 0, r.text
        agent.kill9()                      # right after the acknowledgement
        agent.start()
        assert get(agent, FAILBACK_DELAY) == value
    leftovers = [p.name for p in agent.state_dir.iterdir() if p.name.startswith((".", "tmp"))]
    assert not [n for n in leftovers if "overrides" in n], leftovers


def test_overrides_win_over_the_file_and_sighup_reloads_the_rest(agent: Agent) -> None:
    r = agent.v3("snmpset", HB_INTERVAL, "u", "1000", mib=False)
    assert r.rc == 0, r.text
    text = agent.config_path.read_text()
    text = text.replace("service_check_interval_ms = 500",
                        "service_check_interval_ms = 700\nheartbeat_interval_ms = 4000")
    agent.config_path.write_text(text)
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGHUP)
    import time
    deadline = time.monotonic() + 10
    while get(agent, f"{R}.1.2.5.0") != "700" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get(agent, f"{R}.1.2.5.0") == "700"          # reloaded from the file
    assert get(agent, HB_INTERVAL) == "1000"            # the SET override still wins
    assert "configuration reloaded" in agent.log_text()


def test_reload_that_needs_a_restart_is_refused_loudly(agent: Agent) -> None:
    text = agent.config_path.read_text().replace('name = "itest"', 'name = "renamed"')
    agent.config_path.write_text(text)
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGHUP)
    import time
    deadline = time.monotonic() + 10
    while "reload refused" not in agent.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "restart required for cluster.name" in agent.log_text()
    assert get(agent, f"{R}.1.1.1.0") == "itest"


def test_bad_config_is_rejected_with_every_problem_listed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("""
[cluster]
name = "x"
local_head = "nosuchhead"
colour = "blue"

[[heads]]
name = "head1"
preferred_role = "boss"

[timing]
heartbeat_interval_ms = 5000
heartbeat_dead_time_ms = 6000

[snmp]
listen = ["127.0.0.1:99999"]

[[snmp.communities]]
name = "private"
access = "write"
""")
    p = subprocess.run([sys.executable, "-m", "haoscar_snmp", "check-config", "-c", str(bad)],
                       capture_output=True, text=True)
    assert p.returncode == 1
    err = p.stderr
    for key in ("cluster.colour", "heads[0].preferred_role", "snmp.listen[0].port",
                "timing.heartbeat_dead_time_ms", "snmp.communities[0].access"):
        assert f"{bad}: {key}:" in err, (key, err)
    assert "private" not in err            # a community string is a secret: never echoed
    # The daemon refuses to start on the same file, with the same list.
    p = subprocess.run([sys.executable, "-m", "haoscar_snmp", "run", "-c", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "timing.heartbeat_dead_time_ms" in p.stderr


def test_good_config_passes_check(agent: Agent) -> None:
    p = subprocess.run([sys.executable, "-m", "haoscar_snmp", "check-config", "-c", str(agent.config_path)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "OK" in p.stdout, p.stderr


def test_a_reload_that_changes_a_restart_only_snmp_key_is_refused_whole_naming_it(agent: Agent) -> None:
    """The system group is set once when the engine starts: a reload that changes it is
    refused, naming the key, and nothing of that file is applied, not even the
    credentials that a reload could otherwise replace (a community here)."""
    text = agent.config_path.read_text().replace('name = "public"', 'name = "not-public"')
    text = text.replace('sys_location = "rack 7"', 'sys_location = "rack 8"')
    agent.config_path.write_text(text)
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGHUP)
    import time
    deadline = time.monotonic() + 10
    while "reload refused" not in agent.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = agent.log_text()
    assert "restart required for snmp.sys_location;" in log
    assert "configuration reloaded" not in log
    assert get(agent, "1.3.6.1.2.1.1.6.0") == "rack 7"         # sysLocation as before
    assert agent.v2c("snmpget", f"{R}.1.1.1.0").rc == 0          # "public" still answers
