"""A small real cluster made of network namespaces, for scenario tests (needs root).

    head1  lana 10.71.1.1  lanb 10.71.2.1  pub 10.71.0.1   fd71::1   ─┐
    head2  lana 10.71.1.2  lanb 10.71.2.2  pub 10.71.0.2   fd71::2   ─┤  <p>-sw: bridges brA, brB, brP
    node1  lana 10.71.1.11 lanb 10.71.2.11                           ─┤
    client pub 10.71.0.100  fd71::100                                ─┤
    nms    pub 10.71.0.200  fd71::200                                ─┘

The public LAN also carries IPv6 (fd71::/64, unique local addresses, added without
duplicate address detection so they answer at once).

Every namespace name starts with a per-run prefix (`hs<pid % 10000>` unless given); the
switch namespace `<p>-sw` holds the three bridges, so nothing is ever created in, or routed
through, the host's own namespace, and every address lives inside a namespace made here.
The alias 10.71.0.50/24 (see `ALIAS`) is not configured here: the daemon under test does.

Faults: `carrier_down` sets the switch-side end of a veth down (the host sees NO-CARRIER);
`mute` drops every frame to and from one bridge port with an nftables bridge-family rule
while the link stays up (this kernel has no sch_netem, so `tc netem` is not available).

Probes: `ping` (ICMP), and a UDP echo: `udp_echo(host)` starts a responder that answers
with its host's name, `udp_ask(host, address)` says who answered (or None), so a scenario
can tell *which* head the alias answers from. See docs/scenarios.md.

Teardown (on context exit, on a failed build, and at interpreter exit) kills tracked
processes with their process groups, then every process left in our namespaces, deletes
the nft table and the namespaces. `Cluster.__enter__` first removes leftovers of an
earlier crashed run with the same prefix.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

from pyroute2 import IPRoute

ALIAS = "10.71.0.50"
ALIAS6 = "fd71::50"
UDP_ECHO_PORT = 7007

# lan (= host-side interface name) -> (bridge in <p>-sw, port suffix, third octet)
LANS = {"lana": ("brA", "a", 1), "lanb": ("brB", "b", 2), "pub": ("brP", "p", 0)}
# host -> (last octet, lans)
HOSTS: dict[str, tuple[int, tuple[str, ...]]] = {
    "head1": (1, ("lana", "lanb", "pub")),
    "head2": (2, ("lana", "lanb", "pub")),
    "node1": (11, ("lana", "lanb")),
    "client": (100, ("pub",)),
    "nms": (200, ("pub",)),
}
SHORT = {"head1": "h1", "head2": "h2", "node1": "n1", "client": "c", "nms": "m"}
NFT_TABLE = "hsmute"  # bridge-family table in <p>-sw

# The UDP echo responder: answers "<name> <payload>" from the address the request was sent
# to (IP_PKTINFO), so a client probing the alias gets its reply from the alias. Bounded in
# lifetime and in replies.
_ECHO = r"""
import socket, struct, sys, time
name, port, lifetime, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
IP_PKTINFO = 8
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
s.bind(("0.0.0.0", port))
s.settimeout(0.5)
print("ready", flush=True)
deadline, replies = time.monotonic() + lifetime, 0
while time.monotonic() < deadline and replies < limit:
    try:
        data, anc, _, peer = s.recvmsg(512, socket.CMSG_SPACE(12))
    except socket.timeout:
        continue
    cmsg = []
    for level, kind, value in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
            cmsg = [(level, kind, struct.pack("i4s4s", 0, value[8:12], bytes(4)))]
    try:
        s.sendmsg([name.encode() + b" " + data], cmsg, 0, peer)
    except OSError:
        pass
    replies += 1
"""

# One UDP request on a connected socket (so a reply from any other source is ignored).
_ASK = r"""
import socket, sys
address, port, timeout, token = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(timeout)
try:
    s.connect((address, port))
    s.send(token.encode())
    data = s.recv(512).decode()
except OSError:  # no route, timeout, or ICMP port unreachable
    sys.exit(1)
name, _, echoed = data.partition(" ")
if echoed != token:
    sys.exit(1)
print(name)
"""


def _ip(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=timeout)


def _lan(lan: str) -> str:
    """'lana', 'lanA', 'pub' ... -> the interface name used as key."""
    key = lan.lower()
    if key not in LANS:
        raise KeyError(f"unknown LAN {lan!r} (one of {', '.join(LANS)})")
    return key


class Cluster:
    """Namespaces, bridges, veths and addresses; a context manager that tears it all down.

    Hosts: head1, head2, node1, client, nms (and "sw", the switch, for `run`).
    LANs: "lana" (LAN A), "lanb" (LAN B), "pub" (public); also the host-side interface names.
    """

    def __init__(self, prefix: str | None = None, nodes: int = 1) -> None:
        """`nodes`: compute nodes node1..nodeN on both private LANs (10.71.x.(10 + n)), at most 80."""
        if not 1 <= nodes <= 80:
            raise ValueError("a cluster here has 1 to 80 compute nodes")
        self.prefix = prefix or f"hs{os.getpid() % 10000}"
        self.hosts = dict(HOSTS)
        self.short = dict(SHORT)
        for n in range(2, nodes + 1):
            self.hosts[f"node{n}"] = (10 + n, ("lana", "lanb"))
            self.short[f"node{n}"] = f"n{n}"
        self._procs: list[subprocess.Popen] = []
        self._netlink: dict[str, IPRoute] = {}
        self._atexit = False

    # -- life cycle --------------------------------------------------------------------

    def __enter__(self) -> "Cluster":
        self.teardown()  # leftovers of a crashed run with the same prefix
        atexit.register(self.teardown)
        self._atexit = True
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.teardown()

    def ns(self, host: str) -> str:
        """Namespace name of a host ("sw" for the switch)."""
        return f"{self.prefix}-{host}"

    def addr(self, host: str, lan: str) -> str:
        """IPv4 address (no prefix length) of a host on a LAN."""
        return f"10.71.{LANS[_lan(lan)][2]}.{self.hosts[host][0]}"

    def addr6(self, host: str) -> str:
        """IPv6 address (no prefix length) of a host on the public LAN."""
        return f"fd71::{self.hosts[host][0]}"

    def port(self, host: str, lan: str) -> str:
        """Name of the switch-side veth (bridge port) of a host's LAN link, e.g. h1a."""
        return f"{self.short[host]}{LANS[_lan(lan)][1]}"

    def namespaces(self) -> list[str]:
        """Existing namespaces with this cluster's prefix."""
        listed = _ip("netns", "list", check=False).stdout.splitlines()
        return [line.split()[0] for line in listed if line.startswith(f"{self.prefix}-")]

    def _build(self) -> None:
        sw = self.ns("sw")
        for ns in [sw] + [self.ns(h) for h in self.hosts]:
            _ip("netns", "add", ns)
        cmds = ["link set lo up"]
        for bridge, _, _ in LANS.values():
            cmds += [f"link add {bridge} type bridge stp_state 0 forward_delay 0",
                     f"link set {bridge} up"]
        for host, (_, lans) in self.hosts.items():
            for lan in lans:
                cmds.append(f"link add {self.port(host, lan)} type veth peer name {lan} "
                            f"netns {self.ns(host)}")
        self._batch(sw, cmds)
        cmds = []
        for host, (_, lans) in self.hosts.items():
            for lan in lans:
                port = self.port(host, lan)
                cmds += [f"link set {port} master {LANS[lan][0]}", f"link set {port} up"]
        self._batch(sw, cmds)
        for host, (_, lans) in self.hosts.items():
            cmds = ["link set lo up"]
            for lan in lans:
                cmds += [f"addr add {self.addr(host, lan)}/24 dev {lan}", f"link set {lan} up"]
                if lan == "pub":
                    cmds.append(f"addr add {self.addr6(host)}/64 dev pub nodad")
            self._batch(self.ns(host), cmds)
        # Muted ports are elements of a set; two rules drop everything from or to them.
        self._nft(f"add table bridge {NFT_TABLE}\n"
                  f"add set bridge {NFT_TABLE} muted {{ type ifname; }}\n"
                  f"add chain bridge {NFT_TABLE} drops {{ type filter hook forward priority 0; }}\n"
                  f"add rule bridge {NFT_TABLE} drops iifname @muted drop\n"
                  f"add rule bridge {NFT_TABLE} drops oifname @muted drop\n")

    def _batch(self, ns: str, commands: list[str]) -> None:
        p = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n",
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError(f"ip -n {ns} -batch failed: {p.stderr}")

    def _nft(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run(["ip", "netns", "exec", self.ns("sw"), "nft", "-f", "-"], input=script,
                           capture_output=True, text=True, timeout=10)
        if check and p.returncode != 0:
            raise RuntimeError(f"nft failed: {p.stderr}")
        return p

    def teardown(self) -> None:
        """Kill processes, delete the nft table and every namespace with our prefix.

        Idempotent; safe on a half-built cluster and on leftovers of a crashed run."""
        for ipr in self._netlink.values():
            ipr.close()
        self._netlink.clear()
        for proc in self._procs:
            self._kill(proc)
        self._procs.clear()
        mine = self.namespaces()
        for _ in range(3):  # processes first, or the namespace lingers; bounded retries
            pids = [pid for ns in mine for pid in _ip("netns", "pids", ns, check=False).stdout.split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(0.05)
        if self.ns("sw") in mine:
            subprocess.run(["ip", "netns", "exec", self.ns("sw"), "nft", "delete", "table", "bridge",
                            NFT_TABLE], capture_output=True, timeout=10)
        for ns in mine:
            _ip("netns", "del", ns, check=False)
        if self._atexit:
            atexit.unregister(self.teardown)
            self._atexit = False

    def wait_gone(self, timeout: float = 10) -> bool:
        """True once no namespace with our prefix is listed (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.namespaces():
                return True
            time.sleep(0.1)
        return False

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
        """Run argv in the host's namespace and wait (text output captured)."""
        return subprocess.run(["ip", "netns", "exec", self.ns(host), *argv], capture_output=True,
                              text=True, check=check, timeout=timeout)

    def popen(self, host: str, *argv: str, **kwargs: Any) -> subprocess.Popen:
        """Start argv in the host's namespace in its own session; killed (whole process group)
        and reaped at teardown. stdout/stderr default to DEVNULL."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        kwargs["start_new_session"] = True
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv], **kwargs)
        self._procs.append(proc)
        return proc

    # -- faults ------------------------------------------------------------------------

    def carrier_down(self, host: str, lan: str) -> None:
        """Set the switch-side veth down: the host's interface loses carrier (NO-CARRIER)."""
        self._batch(self.ns("sw"), [f"link set {self.port(host, lan)} down"])

    def carrier_up(self, host: str, lan: str) -> None:
        self._batch(self.ns("sw"), [f"link set {self.port(host, lan)} up"])

    def carrier(self, links: list[tuple[str, str]], up: bool) -> None:
        """Carrier off (or on) for several (host, LAN) links at once, in one `ip -batch`:
        a switch that dies takes all its ports down together."""
        state = "up" if up else "down"
        self._batch(self.ns("sw"), [f"link set {self.port(host, lan)} {state}" for host, lan in links])

    def mute(self, host: str, lan: str) -> None:
        """Drop every frame to and from the host's bridge port; the link stays up."""
        self._nft(f'add element bridge {NFT_TABLE} muted {{ "{self.port(host, lan)}" }}\n')

    def unmute(self, host: str, lan: str) -> None:
        if self.port(host, lan) in self.muted():
            self._nft(f'delete element bridge {NFT_TABLE} muted {{ "{self.port(host, lan)}" }}\n')

    def muted(self) -> set[str]:
        """Switch-side ports currently muted."""
        out = self.run("sw", "nft", "-j", "list", "set", "bridge", NFT_TABLE, "muted").stdout
        for item in json.loads(out).get("nftables", []):
            if "set" in item:
                return set(item["set"].get("elem", []))
        return set()

    # -- observations ------------------------------------------------------------------

    def link(self, host: str, ifname: str) -> dict[str, Any]:
        """`ip -j link show dev IFNAME` in the host's namespace (flags, operstate, address...)."""
        return json.loads(self.run(host, "ip", "-j", "link", "show", "dev", ifname).stdout)[0]

    def operstate(self, host: str, ifname: str) -> str:
        return self.link(host, ifname)["operstate"]

    def has_address(self, host: str, ifname: str, address: str) -> bool:
        """Whether IPv4/IPv6 `address` (no prefix length) is configured on ifname."""
        out = self.run(host, "ip", "-j", "addr", "show", "dev", ifname, check=False).stdout
        try:
            data = json.loads(out or "[]")
        except json.JSONDecodeError:
            return False
        return any(a.get("local") == address for link in data for a in link.get("addr_info", []))

    def _addresses(self, host: str, ifname: str) -> set[str]:
        """The addresses on ifname, read over a netlink socket kept open in the host's
        namespace: about a millisecond, where `ip netns exec` takes several."""
        ipr = self._netlink.get(host)
        if ipr is None:
            ipr = self._netlink[host] = IPRoute(netns=self.ns(host))
        found: set[str] = set()
        for index in ipr.link_lookup(ifname=ifname):
            for msg in ipr.get_addr(index=index):
                found.update(v for v in (msg.get("IFA_LOCAL"), msg.get("IFA_ADDRESS")) if v)
        return found

    def holding(self, hosts: tuple[str, ...], ifname: str, address: str) -> set[str]:
        """The hosts that certainly held `address` at one instant.

        Hosts are read in order, then in reverse order; a host counts only if both its
        readings saw the address. Each host's two readings enclose the readings of the
        hosts after it, so two hosts counted did hold the address at the same time. A
        host seen only once was between adding and removing it, and is not counted: one
        address handed from head to head within a millisecond is not two holders, and a
        sequential read would otherwise say it was."""
        first = [address in self._addresses(h, ifname) for h in hosts]
        second = [address in self._addresses(h, ifname) for h in reversed(hosts)][::-1]
        return {h for h, a, b in zip(hosts, first, second) if a and b}

    def mac(self, host: str, ifname: str) -> str:
        return self.link(host, ifname)["address"]

    def neigh_mac(self, host: str, address: str) -> str | None:
        """The MAC of the host's neighbour (ARP) entry for address, or None (none / FAILED)."""
        data = json.loads(self.run(host, "ip", "-j", "neigh", "show", address).stdout or "[]")
        for entry in data:
            if entry.get("lladdr") and "FAILED" not in entry.get("state", []):
                return entry["lladdr"]
        return None

    # -- probes ------------------------------------------------------------------------

    def ping(self, host: str, address: str, timeout_s: float = 1) -> bool:
        """One ICMP echo (`ping -c 1 -W timeout_s`, IPv4 or IPv6) from host; True if answered."""
        return self.run(host, "ping", "-n", "-q", "-c", "1", "-W", str(timeout_s), address,
                        check=False, timeout=timeout_s + 5).returncode == 0

    def udp_echo(self, host: str, port: int = UDP_ECHO_PORT, lifetime_s: float = 300,
                 max_replies: int = 100_000) -> subprocess.Popen:
        """Start a UDP echo responder on 0.0.0.0:port in host (answers "<host> <payload>",
        from the address the request was sent to); returns once it is bound. It exits by
        itself after lifetime_s or max_replies, and is killed at teardown anyway."""
        proc = self.popen(host, sys.executable, "-c", _ECHO, host, str(port), str(lifetime_s),
                          str(max_replies), stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        if not ready or proc.stdout.readline().strip() != "ready":
            self._kill(proc)
            raise RuntimeError(f"UDP echo responder did not start in {self.ns(host)}")
        return proc

    def udp_ask(self, host: str, address: str, port: int = UDP_ECHO_PORT,
                timeout_s: float = 1.0) -> str | None:
        """Send one UDP request from host to address:port; the name of the host whose
        `udp_echo` answered (from that very address), or None (no answer within timeout_s,
        or port unreachable)."""
        token = uuid.uuid4().hex[:12]
        p = self.run(host, sys.executable, "-c", _ASK, address, str(port), str(timeout_s), token,
                     check=False, timeout=timeout_s + 10)
        return (p.stdout.strip() or None) if p.returncode == 0 else None

    def probe(self, host: str, address: str, port: int | None = None, timeout_s: float = 1.0) -> bool:
        """Reachability of address from host: ICMP ping if port is None, else a UDP echo
        request (needs `udp_echo` running where address lives)."""
        if port is None:
            return self.ping(host, address, timeout_s)
        return self.udp_ask(host, address, port, timeout_s) is not None
