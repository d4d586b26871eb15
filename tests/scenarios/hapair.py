"""Two real daemons, one per head namespace, plus an NMS receiver: the scenario fixture.

Builds on `netns.Cluster` (the topology). Each head runs `haoscar-snmp run` inside its
namespace with a config written here: heartbeats over LAN A and LAN B, the alias
10.71.0.50/24 on `pub`, SNMP on the head's public address, and notifications to an
snmptrapd in the NMS namespace. Everything is torn down by the Cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from haoscar_snmp.core.bug import BUG_MARKER
from tests.integration.harness import MIB_DIRS, R, parse_trapd_log

from .netns import Cluster

ALIAS = "10.71.0.50"
ALIAS6 = "fd71::50"
SNMP_PORT = 16161
TRAP_PORT = 16162
HEADS = ("head1", "head2")
PUBLIC = {"head1": "10.71.0.1", "head2": "10.71.0.2"}
LAN_A = {"head1": "10.71.1.1", "head2": "10.71.1.2"}
LAN_B = {"head1": "10.71.2.1", "head2": "10.71.2.2"}
AUTH, PRIV = "scenario-auth-key", "scenario-priv-key"


@dataclass
class HaPair:
    cluster: Cluster
    workdir: Path
    interval_ms: int = 100
    dead_ms: int = 400
    initdead_ms: int = 1500
    auto_failback: bool = True
    failback_delay_s: int = 0
    public_path: bool = True
    alias6: bool = False              # also an IPv6 alias, fd71::50/64 on pub
    services: dict[str, str] = field(default_factory=dict)       # [[services]] TOML per head
    env: dict[str, dict[str, str]] = field(default_factory=dict)   # extra environment per head
    timing_toml: str = ""             # more [timing] keys, one per line (both heads)
    extra_toml: str = ""              # more top-level tables ([[nodes]], [lan], ...), both heads
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    trapd: subprocess.Popen | None = None

    # -- set-up ------------------------------------------------------------------------

    def config(self, head: str) -> Path:
        path = self.workdir / f"{head}.toml"
        key = self.workdir / "heartbeat.key"
        if not key.exists():
            key.write_bytes(b"scenario-heartbeat-key-0123456789abcdef")
            key.chmod(0o600)
        for name, text in (("admin.auth", AUTH), ("admin.priv", PRIV)):
            secret = self.workdir / name
            secret.write_text(text + "\n")
            secret.chmod(0o600)
        alias6 = (f'[[aliases]]\n            index = 2\n            address = "{ALIAS6}"\n'
                  f'            prefix_length = 64\n            interface = "pub"') if self.alias6 else ""
        path.write_text(textwrap.dedent(f"""\
            [cluster]
            name = "scenario"
            local_head = "{head}"
            state_dir = "state-{head}"

            [[heads]]
            name = "head1"
            preferred_role = "primary"
            lan_a = "{LAN_A['head1']}"
            lan_b = "{LAN_B['head1']}"
            public = "{PUBLIC['head1']}"

            [[heads]]
            name = "head2"
            preferred_role = "standby"
            lan_a = "{LAN_A['head2']}"
            lan_b = "{LAN_B['head2']}"
            public = "{PUBLIC['head2']}"

            [[aliases]]
            index = 1
            address = "{ALIAS}"
            prefix_length = 24
            interface = "pub"
            {alias6}
            {{services}}
            [timing]
            heartbeat_interval_ms = {self.interval_ms}
            heartbeat_dead_time_ms = {self.dead_ms}
            initdead_ms = {self.initdead_ms}
            auto_failback = {str(self.auto_failback).lower()}
            failback_delay_s = {self.failback_delay_s}
            {{timing}}
            garp_count = 3
            garp_repeat_ms = 1000

            [heartbeat]
            key_file = "heartbeat.key"
            public_path = {str(self.public_path).lower()}

            [snmp]
            listen = ["{PUBLIC[head]}:{SNMP_PORT}", "127.0.0.1:{SNMP_PORT}"]

            [[snmp.communities]]
            name = "public"
            access = "read"

            [[snmp.users]]
            name = "admin"
            auth_protocol = "sha256"
            auth_key_file = "admin.auth"
            priv_protocol = "aes128"
            priv_key_file = "admin.priv"
            access = "write"

            [[snmp.targets]]
            name = "nms"
            address = "10.71.0.200:{TRAP_PORT}"
            version = "v2c"
            kind = "trap"
            community = "public"
            {{extra}}
            """).replace("{services}", textwrap.dedent(self.services.get(head, "")))
            .replace("{timing}", textwrap.dedent(self.timing_toml))
            .replace("{extra}", textwrap.dedent(self.extra_toml)))
        return path

    def start_trapd(self) -> None:
        conf = self.workdir / "snmptrapd.conf"
        conf.write_text("authCommunity log public\nformat2 %b %P :: %v\\n\n")
        persist = self.workdir / "trapd-persist"
        persist.mkdir(exist_ok=True)
        self.trapd = self.cluster.popen(
            "nms", "env", f"SNMP_PERSISTENT_DIR={persist}", "snmptrapd", "-f", "-n", "-On", "-C",
            "-c", str(conf), "-Lf", str(self.trap_log), "-M", MIB_DIRS, "-m", "HAOSCAR-MIB",
            f"udp:10.71.0.200:{TRAP_PORT}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.trap_log.exists() and "NET-SNMP version" in self.trap_log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise AssertionError("snmptrapd did not start in the NMS namespace")

    @property
    def trap_log(self) -> Path:
        return self.workdir / "trapd.log"

    def start(self, head: str) -> None:
        log = self.workdir / f"{head}-{len(self.logs) + 1}.log"
        self.logs.append(log)
        extra = [f"{k}={v}" for k, v in self.env.get(head, {}).items()]
        self.procs[head] = self.cluster.popen(
            head, "env", *extra, sys.executable, "-m", "haoscar_snmp", "run", "-c", str(self.config(head)),
            stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=str(self.workdir))

    def start_both(self) -> None:
        self.start("head1")
        self.start("head2")
        self.wait_for(lambda: self.holders() == {"head1"}, 15, "head1 to hold the alias")
        self.wait_for(lambda: self.role("head2") == "standby", 10, "head2 to be standby")

    # -- faults ------------------------------------------------------------------------

    def signal(self, head: str, sig: int) -> None:
        """A signal to the daemon's own process (not its heartbeat process)."""
        self.procs[head].send_signal(sig)

    def signal_group(self, head: str, sig: int) -> None:
        """A signal to the daemon and its heartbeat process: SIGSTOP freezes the head."""
        os.killpg(self.procs[head].pid, sig)

    def heartbeat_pid(self, head: str) -> int:
        """The pid of the head's heartbeat process (its daemon's one child)."""
        pid = self.procs[head].pid
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            if "fcaps.fault.heartbeat.child" in Path(f"/proc/{child}/cmdline").read_text(errors="replace"):
                return int(child)
        raise AssertionError(f"{head} has no heartbeat process")

    def signal_heartbeat(self, head: str, sig: int) -> int:
        """A signal to the head's heartbeat process only (the daemon goes on); its pid."""
        pid = self.heartbeat_pid(head)
        os.kill(pid, sig)
        return pid

    def kill9(self, head: str) -> None:
        self.signal(head, signal.SIGKILL)
        self.procs[head].wait(5)

    # -- observations ------------------------------------------------------------------

    def holders(self, address: str = ALIAS) -> set[str]:
        return self.cluster.holding(HEADS, "pub", address)

    def watch_holders(self, seconds: float, period: float = 0.05) -> list[set[str]]:
        """Sample the holders for a while (bounded): what a client would have met."""
        samples = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            samples.append(self.holders())
            time.sleep(period)
        return samples

    def alarms(self, head: str) -> list[tuple[str, str]]:
        """(probable cause, subject) of every active alarm in the head's alarm table."""
        p = self.cluster.run("nms", "snmpwalk", "-v2c", "-c", "public", "-On", "-Oq", "-t", "1", "-r", "1",
                             f"{PUBLIC[head]}:{SNMP_PORT}", f"{R}.1.10.3.1", check=False)
        causes: dict[str, str] = {}
        subjects: dict[str, str] = {}
        for line in p.stdout.splitlines():
            oid, _, value = line.partition(" ")
            column, _, index = oid.removeprefix(f".{R}.1.10.3.1.").partition(".")
            if column == "4":
                causes[index] = value
            elif column == "5":
                subjects[index] = value.strip('"')
        return [(causes[i], subjects.get(i, "")) for i in sorted(causes)]

    def snmp(self, head: str, *oids: str) -> str:
        """snmpget from the NMS namespace to a head's public address."""
        p = self.cluster.run("nms", "snmpget", "-v2c", "-c", "public", "-On", "-Oqv", "-t", "1", "-r", "1",
                             f"{PUBLIC[head]}:{SNMP_PORT}", *oids, check=False)
        return p.stdout.strip()

    def role(self, head: str) -> str:
        """haoscarHeadState of the head itself, read from its own agent."""
        index = HEADS.index(head) + 1
        value = self.snmp(head, f"{R}.1.4.1.4.{index}")
        names = {"1": "unknown", "2": "starting", "3": "active", "4": "standby", "5": "failed",
                 "6": "takingOver", "7": "releasing"}
        return names.get(value, value)

    def traps(self) -> list[tuple[str, dict[str, str]]]:
        return parse_trapd_log(self.trap_log.read_text(errors="replace") if self.trap_log.exists() else "")

    def trap_names(self, sender: str | None = None) -> list[str]:
        """snmpTrapOID suffixes (haoscarNotifications.N) received, optionally from one head."""
        names = []
        for info, binds in self.traps():
            if sender and f"[{PUBLIC[sender]}]:" not in info.split("->")[0]:
                continue
            oid = binds.get(".1.3.6.1.6.3.1.1.4.1.0", "")
            names.append(oid.rsplit(".", 1)[-1] if oid.startswith(f"OID: .{R}.0.") else oid)
        return names

    def wait_for(self, predicate, timeout: float, what: str) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.log_text()[-6000:]}")

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def assert_no_bug(self) -> None:
        """No bug marker, and no traceback at all: not even a stop may log one."""
        text = self.log_text()
        for marker in (BUG_MARKER, "Traceback", "Task exception was never retrieved", "Error running job"):
            assert marker not in text, f"{marker!r} in a daemon log:\n{text[-6000:]}"

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        if self.trapd and self.trapd.poll() is None:
            self.trapd.terminate()
            self.trapd.wait(5)
