"""The demo daemon on a machine booted seconds ago.

The daemon runs on its embedded demo configuration inside a time namespace whose
monotonic and boot-time clocks read a few seconds (what a machine booted moments ago
reads), and a network namespace of its own, so that the demo's fixed port cannot meet
another daemon's. The machine's own clocks are untouched: a time namespace only offsets
what the processes inside it read. Root is needed for both namespaces.

It must behave as on a machine up for days: start, answer SNMP, take the active role
within its start-up wait (one head, no peer), check its services (their state leaves
unknown), and log no bug.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .harness import MIB_DIRS, REPO, R

YOUNG_S = 3                 # what the namespace's clocks read when it is made
DEMO = REPO / "haoscar_snmp" / "config" / "default.toml"     # the embedded demo configuration
DEMO_ADDRESS = "127.0.0.1:16161"


def offsets() -> tuple[int, int]:
    """Seconds to take off the monotonic and boot-time clocks. Each clock gets its own (the
    monotonic clock stops during a suspend, the boot-time clock does not), and neither may
    go below 0: the kernel refuses a namespace whose clock would be negative."""
    mono = max(int(time.monotonic()) - YOUNG_S, 0)
    boot = max(int(time.clock_gettime(time.CLOCK_BOOTTIME)) - YOUNG_S, 0)
    return mono, boot


@dataclass
class YoungDaemon:
    """The demo daemon inside its namespaces, and the tools to look at it there."""

    unshare: subprocess.Popen[bytes]
    log: Path
    started: float          # when it was started, on the test's own monotonic clock

    @property
    def pid(self) -> int:
        """The daemon's own pid: the one child of `unshare --fork` (once it has forked)."""
        children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children")
        deadline = time.monotonic() + 10
        while not (found := children.read_text().split()):
            self.alive()
            assert time.monotonic() < deadline, "unshare started no daemon"
            time.sleep(0.05)
        assert len(found) == 1, found
        return int(found[0])

    def inside(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """Run a command in the daemon's network and time namespaces."""
        return subprocess.run(["nsenter", f"--target={self.pid}", "--net", "--time", *args],
                              capture_output=True, text=True, timeout=timeout)

    def snmp(self, tool: str, *names: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        return self.inside(tool, "-v2c", "-c", "public", "-t", "0.5", "-r", "1", "-M", MIB_DIRS,
                           "-m", "HAOSCAR-MIB", "-Oqv", *options, DEMO_ADDRESS, *names)

    def values(self, *names: str, options: tuple[str, ...] = ()) -> list[str]:
        result = self.snmp("snmpget", *names, options=options)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.splitlines()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> None:
        if self.unshare.poll() is not None:
            raise AssertionError(f"the daemon exited with {self.unshare.returncode}:\n{self.log_text()}")


def wait_for(what: str, condition: Callable[[], object], daemon: YoungDaemon, limit: float) -> float:
    """Poll `condition()` until true; how long it took (seconds of the test's own clock)."""
    began = time.monotonic()
    last: object = None
    while time.monotonic() - began < limit:
        daemon.alive()
        last = condition()
        if last is True:
            return time.monotonic() - began
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {limit:g} s (last seen: {last!r}):\n{daemon.log_text()}")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[YoungDaemon]:
    if os.geteuid() != 0:
        pytest.skip("time and network namespaces need root")
    mono, boot = offsets()
    log = tmp_path / "daemon.log"
    # No -c: the embedded demo configuration; the state directory is the test's.
    command = ["unshare", "--time", "--net", "--fork", "--kill-child",
               f"--monotonic=-{mono}", f"--boottime=-{boot}", "--",
               "sh", "-c", 'ip link set lo up && exec "$0" -m haoscar_snmp run --state-dir "$1"',
               sys.executable, str(tmp_path / "state")]
    with log.open("w") as out:
        unshare = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO)))
    young = YoungDaemon(unshare, log, time.monotonic())
    try:
        yield young
    finally:
        if unshare.poll() is None:
            try:
                os.kill(young.pid, signal.SIGTERM)      # unshare ignores it; the daemon stops
                unshare.wait(15)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                unshare.kill()                          # --kill-child takes the daemon along
                unshare.wait(5)


def test_the_demo_daemon_behaves_on_a_machine_booted_seconds_ago(daemon: YoungDaemon) -> None:
    timing = tomllib.loads(DEMO.read_text())["timing"]
    initdead_s = timing["initdead_ms"] / 1000
    check_interval_s = timing["service_check_interval_ms"] / 1000

    # It starts and answers SNMP: sysUpTime and a HAOSCAR-MIB object.
    wait_for("an SNMP answer", lambda: daemon.snmp("snmpget", "SNMPv2-MIB::sysUpTime.0").returncode == 0,
             daemon, 30)
    # Its clocks are young indeed (read now, a few seconds of starting later).
    uptime = float(daemon.inside("cat", "/proc/uptime").stdout.split()[0])
    monotonic = float(daemon.inside(sys.executable, "-c", "import time; print(time.monotonic())").stdout)
    print(f"the daemon's clocks: /proc/uptime {uptime:.2f} s, time.monotonic() {monotonic:.2f} s")
    assert uptime < 60 and monotonic < 60, (uptime, monotonic)
    ticks, name = daemon.values("SNMPv2-MIB::sysUpTime.0", "HAOSCAR-MIB::haoscarClusterName.0", options=("-Ot",))
    assert 0 < int(ticks) < 6000 and name == "demo"

    # One head and no peer: it is active within its start-up wait (counted from its start).
    wait_for("the active role",
             lambda: daemon.values("HAOSCAR-MIB::haoscarHeadState.1",
                                   "HAOSCAR-MIB::haoscarActiveHead.0") == ["active", "head1"],
             daemon, initdead_s + 5 - (time.monotonic() - daemon.started))

    # Its services are checked: both leave unknown, and pass (their checks cannot fail).
    names = [f"HAOSCAR-MIB::haoscarServiceState.{i}" for i in (1, 2)]
    wait_for("the services checked", lambda: daemon.values(*names) == ["running", "running"],
             daemon, check_interval_s + 5)

    # It stops cleanly when told to, having logged no bug.
    os.kill(daemon.pid, signal.SIGTERM)
    assert daemon.unshare.wait(15) == 0, daemon.log_text()
    text = daemon.log_text()
    assert "ready: try" in text and BUG_MARKER not in text, text
