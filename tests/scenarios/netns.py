"""A small real cluster made of network namespaces, for scenario tests (needs root).

    head1  lana 10.71.1.1  lanb 10.71.2.1  pub 10.71.0.1 ─┐
    head2  lana 10.71.1.2  lanb 10.71.2.2  pub 10.71.0.2 ─┤  <p>-sw: bridges brA, brB, brP
    node1  lana 10.71.1.11 lanb 10.71.2.11               ─┤
    client pub 10.71.0.100                                ─┤
    nms    pub 10.71.0.200                                ─┘

Every namespace name starts with a per-run prefix; the switch namespace holds the three
bridges, so nothing is ever created in, or routed through, the host's own namespace.
Faults: `carrier_down` sets the switch-side end of a veth down (the host sees NO-CARRIER);
`mute` drops every frame to and from one bridge port with an nftables bridge-family rule,
link up (this kernel has no sch_netem, so `tc netem` is not available).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

LANS = {"lana": ("brA", "a", 1), "lanb": ("brB", "b", 2), "pub": ("brP", "p", 0)}
HOSTS: dict[str, tuple[int, tuple[str, ...]]] = {
    "head1": (1, ("lana", "lanb", "pub")),
    "head2": (2, ("lana", "lanb", "pub")),
    "node1": (11, ("lana", "lanb")),
    "client": (100, ("pub",)),
    "nms": (200, ("pub",)),
}
SHORT = {"head1": "h1", "head2": "h2", "node1": "n1", "client": "c", "nms": "m"}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class Cluster:
    """Namespaces, veths, bridges and addresses; torn down on exit, also on failure."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"hs{os.getpid() % 10000}"
        self._procs: list[subprocess.Popen] = []

    # -- life cycle --------------------------------------------------------------------

    def __enter__(self) -> "Cluster":
        self.teardown()  # leftovers of a crashed run with the same prefix
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.teardown()

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def addr(self, host: str, lan: str) -> str:
        return f"10.71.{LANS[lan][2]}.{HOSTS[host][0]}"

    def _port(self, host: str, lan: str) -> str:
        return f"{self.prefix[-4:]}{SHORT[host]}{LANS[lan][1]}"  # switch-side veth, <= 15 chars

    def _build(self) -> None:
        sw = self.ns("sw")
        for ns in [sw] + [self.ns(h) for h in HOSTS]:
            _ip("netns", "add", ns)
        cmds: list[str] = []
        for bridge, _, _ in LANS.values():
            cmds += [f"link add {bridge} type bridge", f"link set {bridge} up"]
        self._batch(sw, cmds)
        for host, (_, lans) in HOSTS.items():
            self._batch(self.ns(host), ["link set lo up"])
            for lan in lans:
                port = self._port(host, lan)
                _ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", lan,
                    "netns", self.ns(host))
                self._batch(sw, [f"link set {port} master {LANS[lan][0]}", f"link set {port} up"])
                self._batch(self.ns(host), [f"addr add {self.addr(host, lan)}/24 dev {lan}",
                                            f"link set {lan} up"])
        # The mute table lives in the switch namespace, so it vanishes with it.
        self._nft("add table bridge mute\n"
                  "add chain bridge mute drops { type filter hook forward priority 0; }\n")

    def _batch(self, ns: str, commands: list[str]) -> None:
        p = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n",
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError(f"ip -n {ns} -batch failed: {p.stderr}")

    def _nft(self, script: str) -> None:
        p = subprocess.run(["ip", "netns", "exec", self.ns("sw"), "nft", "-f", "-"], input=script,
                           capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            raise RuntimeError(f"nft failed: {p.stderr}")

    def teardown(self) -> None:
        for proc in self._procs:
            self._kill(proc)
        self._procs.clear()
        listed = _ip("netns", "list", check=False).stdout.split("\n")
        mine = [line.split()[0] for line in listed if line.startswith(f"{self.prefix}-")]
        for ns in mine:  # processes first, or the namespace lingers
            for pid in _ip("netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in mine:
            _ip("netns", "del", ns, check=False)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(5)  # reap: a zombie would keep pid files "alive"
        except subprocess.TimeoutExpired:
            pass

    # -- running things inside ---------------------------------------------------------

    def run(self, host: str, *argv: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns(host), *argv], capture_output=True,
                              text=True, check=check, timeout=timeout)

    def popen(self, host: str, *argv: str, **kwargs: Any) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv],
                                start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    # -- faults ------------------------------------------------------------------------

    def carrier_down(self, host: str, lan: str) -> None:
        self._batch(self.ns("sw"), [f"link set {self._port(host, lan)} down"])

    def carrier_up(self, host: str, lan: str) -> None:
        self._batch(self.ns("sw"), [f"link set {self._port(host, lan)} up"])

    def mute(self, host: str, lan: str) -> None:
        port = self._port(host, lan)
        self._nft(f'add rule bridge mute drops iifname "{port}" drop comment "{port}"\n'
                  f'add rule bridge mute drops oifname "{port}" drop comment "{port}"\n')

    def unmute(self, host: str, lan: str) -> None:
        port = self._port(host, lan)
        listing = self.run("sw", "nft", "-a", "list", "chain", "bridge", "mute", "drops").stdout
        handles = [line.rsplit("handle", 1)[1].strip() for line in listing.splitlines()
                   if f'"{port}"' in line and "handle" in line]
        for handle in handles:
            self.run("sw", "nft", "delete", "rule", "bridge", "mute", "drops", "handle", handle)

    # -- observations ------------------------------------------------------------------

    def has_address(self, host: str, ifname: str, address: str) -> bool:
        out = self.run(host, "ip", "-j", "addr", "show", "dev", ifname, check=False).stdout
        try:
            data = json.loads(out or "[]")
        except json.JSONDecodeError:
            return False
        return any(a.get("local") == address for link in data for a in link.get("addr_info", []))

    def mac(self, host: str, ifname: str) -> str:
        data = json.loads(self.run(host, "ip", "-j", "link", "show", "dev", ifname).stdout)
        return data[0]["address"]

    def neigh_mac(self, host: str, address: str) -> str | None:
        data = json.loads(self.run(host, "ip", "-j", "neigh", "show", address).stdout or "[]")
        for entry in data:
            if entry.get("lladdr") and "FAILED" not in entry.get("state", []):
                return entry["lladdr"]
        return None

    def ping(self, host: str, address: str, timeout_s: int = 1) -> bool:
        return self.run(host, "ping", "-c", "1", "-W", str(timeout_s), address, check=False,
                        timeout=timeout_s + 5).returncode == 0

    def wait_gone(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(l.startswith(f"{self.prefix}-") for l in _ip("netns", "list").stdout.splitlines()):
                return True
            time.sleep(0.1)
        return False
