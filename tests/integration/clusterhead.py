"""The program `programs/cluster_views.py` (a head of a cluster past two heads: watch,
ledger, status socket, web panel, SNMP agent) as a test drives it: `scene(name)` hands
it a view and waits until it has taken it; `kill9` crashes it, `stop` stops it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from .harness import MIB_DIRS, REPO, free_udp_port

PROGRAM = REPO / "tests" / "integration" / "programs" / "cluster_views.py"


class ClusterHead:
    def __init__(self, workdir: Path, web_port: int, users_file: Path | None = None) -> None:
        self.workdir = workdir
        self.snmp_port = free_udp_port()
        self.web_port = web_port
        self.state_dir = workdir / "state"
        self.config_path = workdir / "haoscar-snmp.toml"
        web = (f'[web]\nenabled = true\nlisten = "127.0.0.1:{web_port}"\nusers_file = "{users_file}"\n'
               if users_file else "")
        self.config_path.write_text(textwrap.dedent(f"""\
            [cluster]
            name = "triad"
            local_head = "node1"
            state_dir = "state"

            [[heads]]
            name = "node1"
            preferred_role = "primary"

            [snmp]
            listen = ["127.0.0.1:{self.snmp_port}"]

            [[snmp.communities]]
            name = "public"
            access = "read"

            [accounting]
            windows = ["1h", "24h"]
            mark_interval_s = 1
            """) + web)
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        log = self.workdir / f"head-{len(self.logs) + 1}.log"
        self.logs.append(log)
        self.proc = subprocess.Popen([sys.executable, str(PROGRAM), str(self.config_path)], cwd=self.workdir,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("w"),
                                     env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1"))
        self._expect("ready", 30)

    def scene(self, name: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{name}\n".encode())
        self.proc.stdin.flush()
        self._expect(f"ok {name}", 10)

    def _expect(self, wanted: str, timeout: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = self.proc.stdout.readline().decode().strip()
            if line == wanted:
                return
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError(f"no {wanted!r} from the program:\n{self.log_text()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "haoscar_snmp", *args], capture_output=True, text=True,
                              timeout=30, cwd=REPO)

    def snmpwalk(self, oid: str) -> str:
        done = subprocess.run(["snmpwalk", "-v2c", "-c", "public", "-M", MIB_DIRS, "-m", "HAOSCAR-MIB", "-OQs",
                               "-t", "2", f"127.0.0.1:{self.snmp_port}", oid],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout
