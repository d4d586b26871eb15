"""Start the real daemon and drive it with net-snmp's command-line tools.

No SNMP mocks: every request goes over UDP on loopback from `snmpget`, `snmpwalk`,
`snmpbulkwalk` or `snmpset`, and notifications land in a real `snmptrapd`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIB_DIRS = f"+{REPO / 'mibs'}:{REPO / '.cache' / 'mibs'}"
R = "1.3.6.1.4.1.32473.1"  # HAOSCAR-MIB root

AUTH_KEY = "integration-auth-key"
PRIV_KEY = "integration-priv-key"
READER_AUTH = "reader-auth-key-1"
READER_PRIV = "reader-priv-key-1"


DEFAULT_SERVICES = """
[[services]]
name = "healthy"
check = "true"
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_secret(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Agent:
    """One daemon process plus the command lines to talk to it."""

    workdir: Path
    port: int
    trap_port: int
    extra_toml: str = ""
    services_toml: str = DEFAULT_SERVICES
    proc: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.workdir / "haoscar.toml"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def write_config(self) -> None:
        secrets = self.workdir / "secrets"
        secrets.mkdir(exist_ok=True, mode=0o700)
        write_secret(secrets / "admin.auth", AUTH_KEY)
        write_secret(secrets / "admin.priv", PRIV_KEY)
        write_secret(secrets / "reader.auth", READER_AUTH)
        write_secret(secrets / "reader.priv", READER_PRIV)
        self.config_path.write_text(textwrap.dedent(f"""\
            [cluster]
            name = "itest"
            local_head = "head1"
            state_dir = "state"

            [[heads]]
            name = "head1"
            preferred_role = "primary"

            [[interfaces]]
            node = "head1"
            lan = "lan_a"
            name = "lo"
            address = "127.0.0.1"
            {self.services_toml}
            [timing]
            service_check_interval_ms = 500

            [snmp]
            listen = ["127.0.0.1:{self.port}", "[::1]:{self.port}"]
            sys_contact = "ops@example.org"
            sys_location = "rack 7"

            [[snmp.communities]]
            name = "public"
            access = "read"

            [[snmp.users]]
            name = "admin"
            auth_protocol = "sha256"
            auth_key_file = "secrets/admin.auth"
            priv_protocol = "aes128"
            priv_key_file = "secrets/admin.priv"
            access = "write"

            [[snmp.users]]
            name = "reader"
            auth_protocol = "sha512"
            auth_key_file = "secrets/reader.auth"
            priv_protocol = "aes256"
            priv_key_file = "secrets/reader.priv"
            access = "read"

            [[snmp.targets]]
            name = "trapd-v2c"
            address = "127.0.0.1:{self.trap_port}"
            version = "v2c"
            kind = "trap"
            community = "public"
            {self.extra_toml}
            """))

    def start(self, wait: bool = True) -> None:
        log = self.workdir / f"daemon-{len(self.logs) + 1}.log"
        self.logs.append(log)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "haoscar_snmp", "run", "-c", str(self.config_path)],
            stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=self.workdir, env=env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log_text()}")
            r = self.v2c("snmpget", "-t", "0.3", "-r", "0", f"{R}.1.1.1.0")
            if r.rc == 0 and "No Response" not in r.text:
                return
            time.sleep(0.1)
        raise AssertionError(f"daemon not answering after {timeout}s:\n{self.log_text()}")

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    # -- net-snmp tools -----------------------------------------------------------------

    def tool(self, *args: str, timeout: float = 20.0, mib: bool = True) -> Result:
        """Run a net-snmp tool; mib=False loads no MIB, so the tool sends what it is told
        (with the MIB loaded, net-snmp refuses wrong types and ranges before sending)."""
        cmd = [args[0], "-M", MIB_DIRS, "-m", "HAOSCAR-MIB" if mib else "", *args[1:]]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)

    def v2c(self, tool: str, *args: str, community: str = "public", mib: bool = True) -> Result:
        return self.tool(tool, "-v2c", "-c", community, "-On", *_split(args, self.address), mib=mib)

    def v3(self, tool: str, *args: str, user: str = "admin", auth: str = AUTH_KEY,
           priv: str | None = PRIV_KEY, auth_proto: str = "SHA-256", priv_proto: str = "AES",
           level: str | None = None, mib: bool = True) -> Result:
        sec = ["-v3", "-u", user, "-a", auth_proto, "-A", auth]
        if priv is not None:
            sec += ["-l", level or "authPriv", "-x", priv_proto, "-X", priv]
        else:
            sec += ["-l", level or "authNoPriv"]
        return self.tool(tool, *sec, "-On", *_split(args, self.address), mib=mib)

    def reader(self, tool: str, *args: str, mib: bool = True) -> Result:
        return self.v3(tool, *args, user="reader", auth=READER_AUTH, priv=READER_PRIV,
                       auth_proto="SHA-512", priv_proto="AES-256", mib=mib)


def _split(args: tuple[str, ...], address: str) -> list[str]:
    """Options first, then the agent address, then the OIDs / values."""
    opts: list[str] = []
    rest = list(args)
    while rest and rest[0].startswith("-"):
        opt = rest.pop(0)
        opts.append(opt)
        if opt in ("-t", "-r", "-Cr", "-Cn") and rest:
            opts.append(rest.pop(0))
    return [*opts, address, *rest]


def parse_trapd_log(text: str) -> list[tuple[str, dict[str, str]]]:
    """Lines written with `format2 ... :: %v`: (what precedes '::', {oid: value})."""
    out = []
    for line in text.splitlines():
        if " :: " not in line:
            continue
        info, vbs = line.split(" :: ", 1)
        binds = {}
        for vb in vbs.split("\t"):
            if " = " in vb:
                oid, value = vb.split(" = ", 1)
                binds[oid.strip()] = value.strip()
        out.append((info, binds))
    return out


@dataclass
class TrapReceiver:
    """A real snmptrapd writing every notification it accepts to a file."""

    workdir: Path
    port: int
    engine_id: str = ""
    proc: subprocess.Popen | None = None
    communities: tuple[str, ...] = ("public",)

    @property
    def log(self) -> Path:
        return self.workdir / "trapd.log"

    def start(self) -> None:
        conf = self.workdir / "snmptrapd.conf"
        # One line per notification: "TRAP2, SNMP v2c, community public :: vb<TAB>vb..."
        lines = [*(f"authCommunity log {c}" for c in self.communities), "authUser log admin",
                 r"format2 %P :: %v\n"]
        # v3 informs: snmptrapd is authoritative, so its own engine ID is used.
        lines.append(f"createUser admin SHA-256 {AUTH_KEY} AES {PRIV_KEY}")
        if self.engine_id:  # v3 traps: the sender is authoritative
            lines.append(f"createUser -e 0x{self.engine_id} admin SHA-256 {AUTH_KEY} AES {PRIV_KEY}")
        conf.write_text("\n".join(lines) + "\n")
        persist = self.workdir / "trapd-persist"
        persist.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["snmptrapd", "-f", "-n", "-On", "-C", "-c", str(conf), "-Lf", str(self.log),
             "-M", MIB_DIRS, "-m", "HAOSCAR-MIB", f"udp:127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, SNMP_PERSISTENT_DIR=str(persist)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.log.exists() and "NET-SNMP version" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise AssertionError("snmptrapd did not start")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def notifications(self) -> list[tuple[str, dict[str, str]]]:
        """(security info, {oid: value}) for every notification received so far."""
        return parse_trapd_log(self.text())

    def wait_notification(self, trap_oid: str, timeout: float = 10.0,
                          where: str = "") -> tuple[str, dict[str, str]]:
        """The first notification with this snmpTrapOID (and `where` in its security info)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for info, binds in self.notifications():
                if binds.get(".1.3.6.1.6.3.1.1.4.1.0", "").endswith(trap_oid) and where in info:
                    return info, binds
            time.sleep(0.05)
        raise AssertionError(f"no notification {trap_oid} ({where}); snmptrapd logged:\n{self.text()}")

    def wait_for(self, *needles: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if all(n in text for n in needles):
                return text
            time.sleep(0.05)
        raise AssertionError(f"snmptrapd never logged {needles}; it logged:\n{self.text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
