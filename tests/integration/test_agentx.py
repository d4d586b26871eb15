"""The AgentX subagent behind a real net-snmp snmpd: reads, SETs, notifications, and the
link surviving snmpd restarts, our own restarts and a frozen daemon.

Every snmpd here is started by the test with its own configuration, AgentX socket and
UDP port on 127.0.0.1 (tests/integration/snmpd.py). The daemon's own notification target
points at a port nobody listens on, so whatever snmptrapd receives came through snmpd's
trap2sink.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .conftest import make_agent
from .harness import AUTH_KEY, PRIV_KEY, REPO, Agent, R, TrapReceiver, free_udp_port
from .snmpd import SYS_NAME, Snmpd
from .test_notifications import text
from .test_set import BAD_SETS, DEFAULT_RETRY, HB_INTERVAL, error_of

CLUSTER_NAME = f"{R}.1.1.1.0"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_CONTACT = "1.3.6.1.2.1.1.4.0"
AGENT_STARTED = f"{R}.0.1"
CONFIG_CHANGED = f"{R}.0.19"
# Objects that move by themselves between two walks (counters, clocks, event rows).
# What moves by itself between two walks: counters, the event history, job and request
# figures, and the accounting table (its monitored time and availability grow each second).
MOVING = (f".{R}.1.13.", f".{R}.1.12.", f".{R}.1.9.", f".{R}.1.1.1.10", f".{R}.1.8.1.", f".{R}.1.6.",
          f".{R}.1.17.", f".{R}.1.11.")


@dataclass
class Stack:
    snmpd: Snmpd
    daemon: Agent
    trapd: TrapReceiver


def agentx_toml(snmpd: Snmpd) -> str:
    return f"""
[snmp.agentx]
enabled = true
master = "{snmpd.socket}"
timeout_ms = 500
ping_interval_ms = 1000
retries = 1
"""


def build(workdir: Path, listen_too: bool = True) -> Stack:
    trapd = TrapReceiver(workdir, free_udp_port())
    trapd.start()
    snmpd = Snmpd(workdir, trap_port=trapd.port)
    daemon = make_agent(workdir, free_udp_port(), extra_toml=agentx_toml(snmpd))
    if not listen_too:
        lines = daemon.config_path.read_text().splitlines()
        daemon.config_path.write_text("\n".join("listen = []" if line.strip().startswith("listen =") else line
                                                for line in lines) + "\n")
    return Stack(snmpd, daemon, trapd)


def teardown(stack: Stack) -> None:
    stack.daemon.stop()
    stack.snmpd.stop()
    stack.trapd.stop()
    assert BUG_MARKER not in stack.daemon.log_text(), stack.daemon.log_text()


def served(snmpd: Snmpd, timeout: float = 15.0) -> float:
    """Seconds until our subtree answers through snmpd (fails after `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        r = snmpd.get(CLUSTER_NAME, timeout=0.5)
        if r.rc == 0 and '"itest"' in r.out:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"our subtree not served through snmpd after {timeout}s:\n{snmpd.text()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One snmpd, one daemon and one snmptrapd shared by the tests that change nothing."""
    s = build(tmp_path_factory.mktemp("agentx"))
    try:
        s.snmpd.start()
        s.daemon.start()
        served(s.snmpd)
        yield s
    finally:
        teardown(s)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own, for tests that change the configuration or kill things."""
    s = build(tmp_path)
    try:
        s.snmpd.start()
        s.daemon.start()
        served(s.snmpd)
        yield s
    finally:
        teardown(s)


def keep(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(MOVING)]


# -- reads ----------------------------------------------------------------------------------


def test_one_walk_gives_snmpds_objects_and_ours(stack: Stack) -> None:
    r = stack.snmpd.v2c("snmpwalk", "1.3.6.1")
    assert r.rc == 0, r.text
    names = [line.split(" = ")[0] for line in r.out.splitlines() if line.startswith(".1.") and " = " in line]
    assert f".{SYS_NAME}" in names                                # system group (snmpd)
    assert any(n.startswith(".1.3.6.1.2.1.2.2.1.") for n in names)   # IF-MIB ifTable (snmpd)
    ours = [n for n in names if n.startswith(f".{R}.")]
    assert f".{CLUSTER_NAME}" in ours and len(ours) > 100
    assert names == sorted(names, key=lambda n: tuple(map(int, n.strip(".").split("."))))


def test_walk_and_bulkwalk_through_snmpd_equal_the_standalone_agent(stack: Stack) -> None:
    direct = stack.daemon.v2c("snmpwalk", R, mib=False)
    walked = stack.snmpd.v2c("snmpwalk", R)
    bulk = stack.snmpd.v2c("snmpbulkwalk", "-Cr25", R)
    assert direct.rc == walked.rc == bulk.rc == 0, (walked.text, bulk.text)
    assert keep(walked.out) == keep(direct.out)
    assert keep(bulk.out) == keep(direct.out)


def test_requests_through_snmpd_are_counted_and_timed_on_the_agentx_row(stack: Stack) -> None:
    agentx_row = f"{R}.1.12.24.1.{{}}.2"         # haoscarPerfRequestEntry, front end agentx(2)

    def figures() -> tuple[int, int, int]:
        r = stack.daemon.v2c("snmpget", agentx_row.format(2), agentx_row.format(3), agentx_row.format(6),
                             mib=False)
        assert r.rc == 0, r.text
        served, dropped, worst = (int(line.split()[-1]) for line in r.out.splitlines())
        return served, dropped, worst

    before = figures()
    walk = stack.snmpd.v2c("snmpwalk", f"{R}.1.1")
    assert walk.rc == 0, walk.text
    ours = len([line for line in walk.out.splitlines() if line.startswith(f".{R}.")])
    deadline = time.monotonic() + 5           # the figures are gathered once a second
    after = figures()
    while after[0] < before[0] + ours and time.monotonic() < deadline:
        time.sleep(0.3)
        after = figures()
    assert after[0] >= before[0] + ours       # one AgentX GetNext at least per object walked
    assert after[1] == before[1] == 0 and after[2] > 0


def test_get_mixes_snmpds_objects_ours_and_missing_ones(stack: Stack) -> None:
    r = stack.snmpd.v2c("snmpget", SYS_NAME, CLUSTER_NAME, f"{R}.1.1.1.1.1", f"{R}.1.77.0")
    assert r.rc == 0, r.text
    lines = r.out.splitlines()
    assert lines[0].startswith(f".{SYS_NAME} = STRING:")
    assert lines[1] == f'.{CLUSTER_NAME} = STRING: "itest"'
    assert "No Such Instance" in lines[2] and "No Such Object" in lines[3], r.out
    # GETNEXT from just before our subtree lands on its first object.
    r = stack.snmpd.v2c("snmpgetnext", R)
    assert r.out.startswith(f".{CLUSTER_NAME} = "), r.text


# -- SET ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, error", BAD_SETS)
def test_bad_sets_through_snmpd_get_the_exact_error(stack: Stack, args: tuple, error: str) -> None:
    before = stack.snmpd.v2c("snmpwalk", R).out
    r = stack.snmpd.v3("snmpset", *args)
    assert r.rc != 0
    assert error_of(r.text) == error, r.text
    assert keep(stack.snmpd.v2c("snmpwalk", R).out) == keep(before)
    assert not (stack.daemon.state_dir / "overrides.json").exists()
    assert f"SET by agentx:{stack.snmpd.socket} refused with {error}" in stack.daemon.log_text()


def test_set_through_snmpd_is_applied_persisted_audited_and_notified(fresh: Stack) -> None:
    r = fresh.snmpd.v3("snmpset", HB_INTERVAL, "u", "1000")
    assert r.rc == 0, r.text
    assert fresh.snmpd.v2c("snmpget", "-Oqv", HB_INTERVAL).out.strip() == "1000"
    saved = json.loads((fresh.daemon.state_dir / "overrides.json").read_text())
    assert saved["timing"]["heartbeat_interval_ms"] == 1000
    principal = f"agentx:{fresh.snmpd.socket}"
    assert (f"SET by {principal}: haoscarHeartbeatInterval.0 changed from '5000' to '1000'"
            in fresh.daemon.log_text())
    _, binds = fresh.trapd.wait_notification(CONFIG_CHANGED)
    assert text(binds[f".{R}.1.14.4.0"]) == principal, binds   # haoscarNotifyPrincipal


def test_multi_varbind_sets_through_snmpd_are_atomic(fresh: Stack) -> None:
    # Ours valid, ours invalid: nothing applied, the error points at var-bind 2.
    r = fresh.snmpd.v3("snmpset", DEFAULT_RETRY, "u", "5", HB_INTERVAL, "u", "5")
    assert error_of(r.text) == "wrongValue", r.text
    assert f"Failed object: .{HB_INTERVAL}" in r.text
    # Ours valid, snmpd's read-only sysDescr: snmpd refuses, our TestSet is cleaned up.
    r = fresh.snmpd.v3("snmpset", DEFAULT_RETRY, "u", "5", SYS_DESCR, "s", "x")
    assert r.rc != 0 and error_of(r.text) in ("notWritable", "noAccess"), r.text
    assert fresh.snmpd.v2c("snmpget", "-Oqv", DEFAULT_RETRY).out.strip() == "3"
    assert not (fresh.daemon.state_dir / "overrides.json").exists()
    # Ours valid with snmpd's writable sysContact: both applied.
    r = fresh.snmpd.v3("snmpset", DEFAULT_RETRY, "u", "5", SYS_CONTACT, "s", "noc")
    assert r.rc == 0, r.text
    got = fresh.snmpd.v2c("snmpget", "-Oqv", DEFAULT_RETRY, SYS_CONTACT).out.split()
    assert got == ["5", '"noc"'], got


# -- notifications --------------------------------------------------------------------------


def test_notifications_reach_snmptrapd_through_snmpds_trap_sink(fresh: Stack) -> None:
    info, binds = fresh.trapd.wait_notification(AGENT_STARTED)
    assert "community public" in info
    assert text(binds[f".{R}.1.1.8.0"]) == "head1", binds         # haoscarLocalHead
    assert binds[".1.3.6.1.2.1.1.3.0"].startswith("Timeticks"), binds  # sysUpTime, by snmpd


# -- robustness -----------------------------------------------------------------------------


def test_snmpd_killed_and_restarted_five_times_mid_walk(fresh: Stack) -> None:
    times = []
    for n in range(5):
        # A walk of our subtree through snmpd is under way (it takes seconds) when snmpd dies.
        walk = threading.Thread(target=fresh.snmpd.v2c, args=("snmpwalk", "-t", "1", "-r", "0", R), daemon=True)
        walk.start()
        time.sleep(0.3)
        fresh.snmpd.kill()
        walk.join(15)
        assert not walk.is_alive()
        if n == 2:
            # A notification raised while snmpd is away waits in the queue and goes out
            # through the next snmpd (the daemon also listens itself: SET it there).
            r = fresh.daemon.v3("snmpset", f"{R}.1.2.8.0", "u", "30", mib=False)
            assert r.rc == 0, r.text
        fresh.snmpd.start()
        times.append(served(fresh.snmpd, timeout=10))
    print(f"\nsubtree served again after snmpd restarts: {', '.join(f'{t:.2f} s' for t in times)}")
    assert max(times) < 5, times
    # haoscarAgentxStatus registered(3), haoscarAgentxReconnects 5, read through snmpd.
    r = fresh.snmpd.v2c("snmpget", "-Oqv", f"{R}.1.17.1.0", f"{R}.1.17.4.0", f"{R}.1.17.9.0")
    assert r.out.split() == ["3", "5", "0"], r.text
    _, binds = fresh.trapd.wait_notification(CONFIG_CHANGED, timeout=10)
    assert binds[f".{R}.1.14.5.0"] == f"OID: .{R}.1.2.8.0", binds
    assert "AgentX session" in fresh.daemon.log_text() and "reconnecting" in fresh.daemon.log_text()


def test_daemon_killed_and_restarted_while_snmpd_runs(fresh: Stack) -> None:
    fresh.daemon.kill9()
    r = fresh.snmpd.get(SYS_NAME, CLUSTER_NAME)
    assert r.rc == 0 and "No Such Object" in r.out, r.text     # snmpd saw the socket close
    fresh.daemon.start()
    print(f"\nserved again {served(fresh.snmpd, timeout=10):.2f} s after the daemon answered itself")


def test_frozen_daemon_does_not_stop_snmpd_answering(fresh: Stack) -> None:
    assert fresh.daemon.proc is not None
    fresh.daemon.proc.send_signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        r = fresh.snmpd.get(SYS_NAME, timeout=1)
        assert r.rc == 0 and "STRING" in r.out, r.text
        assert time.monotonic() - start < 1.5
        # Ours: snmpd gives up on us after agentXTimeout and drops the session.
        fresh.snmpd.get(CLUSTER_NAME, timeout=3)
        r = fresh.snmpd.get(SYS_NAME, CLUSTER_NAME, timeout=1)
        assert r.rc == 0 and "No Such Object" in r.out, r.text
    finally:
        fresh.daemon.proc.send_signal(signal.SIGCONT)
    print(f"\nserved again {served(fresh.snmpd, timeout=10):.2f} s after SIGCONT")


def test_agentx_only_mode_needs_no_listener(tmp_path: Path) -> None:
    s = build(tmp_path, listen_too=False)
    try:
        s.snmpd.start()
        s.daemon.start(wait=False)
        served(s.snmpd)
        assert s.daemon.v2c("snmpget", "-t", "0.3", "-r", "0", CLUSTER_NAME).rc != 0
        assert "SNMP agent listening" not in s.daemon.log_text()
    finally:
        teardown(s)


def test_the_shipped_snmpd_snippet_works(tmp_path: Path) -> None:
    """conf/snmpd-agentx.conf as shipped, with this test's socket, addresses and user."""
    s = build(tmp_path, listen_too=False)
    text = (REPO / "conf" / "snmpd-agentx.conf").read_text()
    for old, new in (("/var/agentx/master", str(s.snmpd.socket)), ("10.10.1.0/24", "127.0.0.1"),
                     ("10.10.1.250", f"127.0.0.1:{s.trapd.port}"), (" root root", "")):
        assert old in text, old
        text = text.replace(old, new)
    s.snmpd.config_text = text + f"createUser operator SHA-256 {AUTH_KEY} AES {PRIV_KEY}\n"
    try:
        s.snmpd.start()
        s.daemon.start(wait=False)
        served(s.snmpd)
        walk = s.snmpd.v2c("snmpwalk", "1.3.6.1").out
        assert f".{SYS_NAME} = " in walk and f".{CLUSTER_NAME} = " in walk
        assert ".1.3.6.1.2.1.2.2.1." not in walk              # IF-MIB is outside haoscarView
        r = s.snmpd.tool("snmpset", "-v3", "-u", "operator", "-l", "authPriv", "-a", "SHA-256", "-A", AUTH_KEY,
                         "-x", "AES", "-X", PRIV_KEY, "-On", s.snmpd.address, HB_INTERVAL, "u", "1000")
        assert r.rc == 0, r.text
        s.trapd.wait_notification(CONFIG_CHANGED)
        r = s.snmpd.v2c("snmpset", HB_INTERVAL, "u", "2000")      # the community is read-only
        assert r.rc != 0 and error_of(r.text) in ("noAccess", "notWritable", "authorizationError"), r.text
    finally:
        teardown(s)


def test_snmpd_reloaded_keeps_or_regains_our_subtree(fresh: Stack) -> None:
    assert fresh.snmpd.proc is not None
    for _ in range(2):
        fresh.snmpd.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        print(f"\nserved {served(fresh.snmpd, timeout=10):.2f} s after snmpd's reload")
    r = fresh.snmpd.v3("snmpset", HB_INTERVAL, "u", "1000")
    assert r.rc == 0, r.text
