"""A real net-snmp snmpd as AgentX master, started and stopped by a test (or a benchmark).

Its own configuration in the test's directory, its own AgentX unix socket there, UDP on
127.0.0.1 only, a v2c read community, a v3 write user (the harness's admin keys), and
optionally a trap2sink. Loads no MIB files (numeric OIDs only), so it starts quietly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .harness import AUTH_KEY, PRIV_KEY, Result, _split, free_udp_port

SYS_NAME = "1.3.6.1.2.1.1.5.0"


@dataclass
class Snmpd:
    workdir: Path
    port: int = field(default_factory=free_udp_port)
    trap_port: int | None = None
    timeout_s: int = 1          # agentXTimeout: how long snmpd waits for a subagent
    config_text: str | None = None   # a whole snmpd.conf instead of the default one
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def socket(self) -> Path:
        return self.workdir / "agentx" / "master"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "snmpd.log"

    def write_config(self) -> Path:
        conf = self.workdir / "snmpd.conf"
        if self.config_text is not None:
            conf.write_text(self.config_text)
            return conf
        lines = [
            "master agentx",
            f"agentXSocket {self.socket}",
            "agentXPerms 0600 0700",
            f"agentXTimeout {self.timeout_s}",
            "agentXRetries 0",
            "rocommunity public 127.0.0.1",
            f"createUser admin SHA-256 {AUTH_KEY} AES {PRIV_KEY}",
            "rwuser admin priv",
        ]
        if self.trap_port:
            lines.append(f"trap2sink 127.0.0.1:{self.trap_port} public")
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, wait: bool = True) -> None:
        conf = self.write_config()
        self.starts += 1
        persist = self.workdir / f"snmpd-persist-{self.starts}"   # a fresh engine each start
        persist.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["snmpd", "-f", "-Lf", str(self.log), "-C", "-c", str(conf), "-M", str(self.workdir),
             "-m", "", f"udp:127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, SNMP_PERSISTENT_DIR=str(persist), MIBS=""))
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"snmpd exited with {self.proc.returncode}:\n{self.text()}")
            if self.socket.exists() and self.get(SYS_NAME, timeout=0.3).rc == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"snmpd not answering after {timeout}s:\n{self.text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # -- net-snmp tools against it --------------------------------------------------------

    def tool(self, tool: str, *args: str, timeout: float = 30.0) -> Result:
        p = subprocess.run([tool, "-M", str(self.workdir), "-m", "", *args], capture_output=True,
                           text=True, timeout=timeout, env=dict(os.environ, MIBS=""))
        return Result(p.returncode, p.stdout, p.stderr)

    def v2c(self, tool: str, *args: str) -> Result:
        return self.tool(tool, "-v2c", "-c", "public", "-On", *_split(args, self.address))

    def v3(self, tool: str, *args: str) -> Result:
        return self.tool(tool, "-v3", "-u", "admin", "-l", "authPriv", "-a", "SHA-256", "-A", AUTH_KEY,
                         "-x", "AES", "-X", PRIV_KEY, "-On", *_split(args, self.address))

    def get(self, *oids: str, timeout: float = 1.0) -> Result:
        return self.v2c("snmpget", "-t", str(timeout), "-r", "0", *oids)
