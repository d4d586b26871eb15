"""A Corosync 3 + Pacemaker 2.1 cluster of N nodes on one machine, for scenario tests (root).

    <p>-node1   lana 10.71.1.11  lanb 10.71.2.11  ─┐
    <p>-node2   lana 10.71.1.12  lanb 10.71.2.12  ─┤  <p>-sw: bridges brA (knet link 0),
    <p>-node3   lana 10.71.1.13  lanb 10.71.2.13  ─┘          brB (knet link 1)

The network is `netns.Cluster`'s (same bridges, ports, addresses and nftables mute set),
with only the lab's nodes on it. Every node also gets a private mount namespace with a
tmpfs over each path its daemons write: /run (corosync's pid file is fixed there;
Pacemaker's /run/crm; resource-agents' /run/resource-agents), /etc/corosync (this
node's corosync.conf and authkey), /var/lib/corosync, /var/lib/pacemaker,
/var/log/pacemaker and /dev/shm (libqb's IPC files; its sockets are abstract unix
sockets, private to the network namespace already). One long-lived anchor process per
node (`sleep`) holds both namespaces; every command runs in them with
`nsenter -t <anchor> -n -m`: corosync -f, pacemakerd, crm_mon, corosync-quorumtool,
corosync-cmapctl, and the programs under test.

corosync.conf is generated per run: knet with two links (LAN A, LAN B), crypto with a
generated authkey (mode 0400 in the node's tmpfs), a token of 1000 ms or more (smaller
tokens gave membership storms on a 2-vCPU machine), a nodelist with names and ids, and
votequorum. A two-node lab sets votequorum's `two_node: 1` (one vote is a quorum, so the
survivor of a cut stays quorate), which also turns on `wait_for_all`: at start no node
is quorate before it has seen the other once. Corosync logs to `<workdir>/<node>/corosync.log` on the host, with
timestamps, so a benchmark can read when Corosync itself saw a change.

Pacemaker starts from a CIB written here: stonith-enabled=false (there is no fencing in
the lab) and a short dc-deadtime, so a DC is elected within seconds.

Faults: `cut(node)` mutes the node's ports on both LANs (nftables, the links stay up),
`heal(node)` unmutes them; `kill_corosync(node)` is kill -9, `restart(node)` starts
Corosync (and Pacemaker) again on that node.

Teardown (context exit, a failed start, interpreter exit) kills every process started
here and every process left in the namespaces, and deletes the namespaces: the mount
namespaces and their tmpfs go with their last process. Leftovers of a crashed earlier
run are removed on start: every lab leaves its owner's pid in /run/corolab/<prefix>, and
a lab whose owner is gone is torn down by the next one. Every wait is bounded in time.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .netns import Cluster

REPO = Path(__file__).resolve().parents[2]
WATCH = REPO / "tests" / "integration" / "programs" / "corosync_watch.py"
TOKEN_MS = 1000
OWNERS = Path("/run/corolab")  # one file per lab being built or running: <prefix> -> owner pid
LANS = ("lana", "lanb")        # knet link 0, link 1
# Paths each node gets as its own tmpfs: (path, mode, owner, size); owner "" is root. A
# tmpfs takes memory only as it fills. /dev/shm holds libqb's ring buffers, a few MB per
# IPC connection (Pacemaker's daemons open many, each program under test four more):
# 64 MB was full with Pacemaker and one reader on a node.
PRIVATE = (("/run", "0755", "", "64m"), ("/etc/corosync", "0755", "", "4m"),
           ("/var/lib/corosync", "0755", "", "16m"), ("/var/lib/pacemaker", "0755", "", "64m"),
           ("/var/log/pacemaker", "0770", "hacluster:haclient", "64m"), ("/dev/shm", "1777", "", "512m"))
PACEMAKER_DIRS = ("/var/lib/pacemaker/cib", "/var/lib/pacemaker/pengine", "/var/lib/pacemaker/blackbox",
                  "/var/lib/pacemaker/cores", "/run/crm", "/var/log/pacemaker/bundles")
PACEMAKER_LOG = "/var/log/pacemaker/pacemaker.log"

# The CIB each node starts with: no fencing here, and a short wait before electing a DC.
_CIB = """<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="{deadtime}"/>
        <nvpair id="cib-bootstrap-options-cluster-recheck-interval" name="cluster-recheck-interval" value="1min"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""

# The anchor: makes the node's tmpfs mounts in its own mount namespace, says "ready",
# then holds the namespaces. Bounded lifetime; killed at teardown anyway.
_ANCHOR = r"""
set -e
while [ $# -gt 0 ]; do
    path=$1; mode=$2; owner=$3; size=$4; shift 4
    mkdir -p "$path"
    mount -t tmpfs -o "mode=$mode,size=$size" lab "$path"
    [ -z "$owner" ] || chown "$owner" "$path"
done
echo ready
exec sleep 86400
"""


class LabError(RuntimeError):
    pass


def sweep_crashed_labs() -> list[str]:
    """Tear down the labs whose owning process is gone (a run killed before its teardown):
    each lab writes `OWNERS/<prefix>` with its pid before it builds anything. A lab of a
    process still alive (another test worker, another engineer's run) is left alone.
    Returns the prefixes removed."""
    removed = []
    if not OWNERS.is_dir():
        return removed
    for marker in OWNERS.iterdir():
        try:
            pid = int(marker.read_text().split()[0])
        except (ValueError, IndexError, OSError):
            pid = 0                        # unreadable: its lab cannot be anybody's
        if pid > 0:
            try:
                os.kill(pid, 0)
                continue                   # its owner still runs
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        _Net(marker.name, 2).teardown()
        marker.unlink(missing_ok=True)
        removed.append(marker.name)
    return removed


class _Net(Cluster):
    """`netns.Cluster` with only the lab's nodes (both private LANs, no public LAN)."""

    def __init__(self, prefix: str, nodes: int) -> None:
        super().__init__(prefix=prefix, nodes=1)
        self.hosts = {f"node{i}": (10 + i, LANS) for i in range(1, nodes + 1)}
        self.short = {f"node{i}": f"n{i}" for i in range(1, nodes + 1)}


@dataclass
class Node:
    name: str
    node_id: int
    anchor: subprocess.Popen | None = None
    corosync: subprocess.Popen | None = None
    pacemaker: subprocess.Popen | None = None


class CoroLab:
    """N nodes of Corosync + Pacemaker; a context manager that tears everything down.

    `with CoroLab(workdir) as lab:` builds the network and the nodes' namespaces;
    `lab.start()` starts Corosync and Pacemaker everywhere and waits until every node is a
    member and Pacemaker has a DC."""

    def __init__(self, workdir: Path, nodes: int = 3, prefix: str | None = None,
                 token_ms: int = TOKEN_MS, pacemaker: bool = True, dc_deadtime_s: int = 2,
                 two_node: bool | None = None) -> None:
        if not 2 <= nodes <= 16:
            raise ValueError("a lab has 2 to 16 nodes")
        if two_node and nodes != 2:
            raise ValueError("votequorum's two_node is for a cluster of exactly 2 nodes")
        if token_ms < 1000:
            raise ValueError("token below 1000 ms gives membership storms on a small machine")
        self.workdir = Path(workdir)
        self.token_ms = token_ms
        self.with_pacemaker = pacemaker
        self.dc_deadtime_s = dc_deadtime_s
        # Two nodes without two_node: a cut leaves each with 1 of 2 votes, no quorum anywhere.
        self.two_node = nodes == 2 if two_node is None else two_node
        self.net = _Net(prefix or f"cl{os.getpid() % 10000}", nodes)
        self.nodes = {f"node{i}": Node(f"node{i}", i) for i in range(1, nodes + 1)}
        self._procs: list[subprocess.Popen] = []
        self._authkey = secrets.token_bytes(128)
        self.timings: dict[str, float] = {}

    # -- life cycle --------------------------------------------------------------------

    def __enter__(self) -> "CoroLab":
        sweep_crashed_labs()
        OWNERS.mkdir(parents=True, exist_ok=True)
        (OWNERS / self.net.prefix).write_text(f"{os.getpid()}\n")
        self.net.__enter__()   # removes leftovers, builds, registers the network's atexit teardown
        atexit.register(self.teardown)
        try:
            for node in self.nodes.values():
                self._make_node(node)
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.teardown()

    def teardown(self) -> None:
        """Kill what was started here, then everything in the namespaces; delete them."""
        for proc in reversed(self._procs):
            Cluster._kill(proc)
        self._procs.clear()
        self.net.teardown()
        (OWNERS / self.net.prefix).unlink(missing_ok=True)
        atexit.unregister(self.teardown)

    def wait_gone(self, timeout: float = 10) -> bool:
        return self.net.wait_gone(timeout)

    def _make_node(self, node: Node) -> None:
        (self.workdir / node.name).mkdir(parents=True, exist_ok=True)
        args = [a for entry in PRIVATE for a in entry]
        proc = self._track(subprocess.Popen(
            ["ip", "netns", "exec", self.net.ns(node.name), "unshare", "--mount", "--propagation",
             "private", "--", "sh", "-c", _ANCHOR, "anchor", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True))
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        if not ready or proc.stdout.readline().strip() != "ready":
            raise LabError(f"anchor of {node.name} did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
        node.anchor = proc
        for path in PACEMAKER_DIRS:
            self.run(node.name, "install", "-d", "-m", "0750", "-o", "hacluster", "-g", "haclient", path)
        self.write(node.name, "/etc/corosync/authkey", self._authkey, mode=0o400)
        self.write(node.name, "/etc/corosync/corosync.conf", self.corosync_conf(node).encode(), mode=0o644)
        cib = _CIB.format(deadtime=f"{self.dc_deadtime_s}s").encode()
        self.write(node.name, "/var/lib/pacemaker/cib/cib.xml", cib, mode=0o600, owner="hacluster:haclient")

    def _track(self, proc: subprocess.Popen) -> subprocess.Popen:
        self._procs.append(proc)
        return proc

    # -- configuration -----------------------------------------------------------------

    def addr(self, node: str, lan: str) -> str:
        return self.net.addr(node, lan)

    def corosync_conf(self, node: Node) -> str:
        nodes = "".join(
            f"    node {{\n        name: {n.name}\n        nodeid: {n.node_id}\n"
            f"        ring0_addr: {self.addr(n.name, 'lana')}\n"
            f"        ring1_addr: {self.addr(n.name, 'lanb')}\n    }}\n"
            for n in self.nodes.values())
        return (
            "totem {\n    version: 2\n    cluster_name: corolab\n    transport: knet\n"
            f"    token: {self.token_ms}\n"
            "    crypto_cipher: aes256\n    crypto_hash: sha256\n"
            "    keyfile: /etc/corosync/authkey\n"
            "    interface {\n        linknumber: 0\n    }\n"
            "    interface {\n        linknumber: 1\n    }\n}\n"
            f"nodelist {{\n{nodes}}}\n"
            "quorum {\n    provider: corosync_votequorum\n"
            + ("    two_node: 1\n" if self.two_node else "") + "}\n"
            "uidgid {\n    uid: hacluster\n    gid: haclient\n}\n"
            "logging {\n    to_stderr: no\n    to_syslog: no\n    to_logfile: yes\n"
            f"    logfile: {self.workdir / node.name / 'corosync.log'}\n"
            "    timestamp: hires\n    fileline: off\n    debug: off\n}\n")

    # -- running things in a node ------------------------------------------------------

    def enter(self, node: str) -> list[str]:
        """The argv prefix that runs a command in the node's network and mount namespaces."""
        anchor = self.nodes[node].anchor
        if anchor is None or anchor.poll() is not None:
            raise LabError(f"{node} has no anchor")
        return ["nsenter", "-t", str(anchor.pid), "-n", "-m", "--"]

    def run(self, node: str, *argv: str, check: bool = True, timeout: float = 10,
            input: bytes | str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run argv in the node's namespaces and wait (output captured as text)."""
        if isinstance(input, bytes):
            input = input.decode("latin-1")
        p = subprocess.run([*self.enter(node), *argv], capture_output=True, text=True, timeout=timeout,
                           input=input, env=env)
        if check and p.returncode != 0:
            raise LabError(f"{node}: {' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}")
        return p

    def popen(self, node: str, *argv: str, **kwargs: Any) -> subprocess.Popen:
        """Start argv in the node's namespaces, in its own session; killed at teardown."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        kwargs["start_new_session"] = True
        return self._track(subprocess.Popen([*self.enter(node), *argv], **kwargs))

    def write(self, node: str, path: str, data: bytes, mode: int, owner: str = "") -> None:
        """Write a file inside the node's mount namespace (created with `mode` from the start)."""
        script = (f'umask 077; cat > "$1.tmp"; chmod {mode:o} "$1.tmp"; '
                  + (f'chown {owner} "$1.tmp"; ' if owner else "") + 'mv "$1.tmp" "$1"')
        p = subprocess.run([*self.enter(node), "sh", "-c", script, "write", path], input=data,
                           capture_output=True, timeout=10)
        if p.returncode != 0:
            raise LabError(f"{node}: writing {path} failed: {p.stderr.decode(errors='replace')}")

    # -- daemons -----------------------------------------------------------------------

    def start_corosync(self, node: str) -> None:
        n = self.nodes[node]
        out = open(self.workdir / node / "corosync.out", "ab")
        try:
            n.corosync = self.popen(node, "corosync", "-f", "-c", "/etc/corosync/corosync.conf",
                                    stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()

    def start_pacemaker(self, node: str) -> None:
        n = self.nodes[node]
        env = dict(os.environ, PCMK_logfile=PACEMAKER_LOG, PCMK_logfacility="none",
                   PCMK_debug="no", PCMK_logpriority="info")
        out = open(self.workdir / node / "pacemakerd.out", "ab")
        try:
            n.pacemaker = self.popen(node, "pacemakerd", env=env, stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()

    def start(self, timeout: float = 90) -> None:
        """Start Corosync on every node, wait for a full quorate membership, then Pacemaker
        on every node and wait for a DC known everywhere. Times go to `timings`."""
        t0 = time.monotonic()
        for node in self.nodes:
            self.start_corosync(node)
        self.wait_for(lambda: all(self.members_seen(n) == set(self.nodes) for n in self.nodes),
                      timeout, "every node a member of one ring")
        self.timings["corosync_start_s"] = time.monotonic() - t0
        if not self.with_pacemaker:
            return
        t1 = time.monotonic()
        for node in self.nodes:
            self.start_pacemaker(node)
        self.wait_for(lambda: all(self.dc(n) for n in self.nodes), timeout - (t1 - t0),
                      "a Pacemaker DC known on every node")
        self.timings["pacemaker_start_s"] = time.monotonic() - t1

    def kill_corosync(self, node: str) -> None:
        """kill -9 Corosync on one node (Pacemaker there loses its connection; `restart` stops
        what is left of it before starting both again)."""
        proc = self.nodes[node].corosync
        if proc is None or proc.poll() is not None:
            raise LabError(f"corosync is not running on {node}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_pacemaker(self, node: str, timeout: float = 30) -> None:
        """Stop Pacemaker on one node: SIGTERM to pacemakerd (a clean leave), then SIGKILL to
        whatever of it is left after timeout."""
        proc = self.nodes[node].pacemaker
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                Cluster._kill(proc)
        self._kill_named(node, ("pacemaker-", "pacemakerd"))

    def restart(self, node: str, timeout: float = 60) -> None:
        """Start Corosync again on a node whose Corosync died (and Pacemaker, if the lab runs
        it), and wait until the node is back in every node's membership."""
        if self.with_pacemaker:
            self.stop_pacemaker(node, timeout=10)
        self.start_corosync(node)
        self.wait_for(lambda: all(self.members_seen(n) == set(self.nodes) for n in self.nodes),
                      timeout, f"{node} back in the membership")
        if self.with_pacemaker:
            self.start_pacemaker(node)

    def _kill_named(self, node: str, prefixes: tuple[str, ...]) -> None:
        """SIGKILL the processes of the node's network namespace whose name starts with one
        of prefixes."""
        pids = subprocess.run(["ip", "netns", "pids", self.net.ns(node)], capture_output=True, text=True,
                              timeout=10).stdout.split()
        for pid in pids:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                if comm.startswith(prefixes):
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    # -- faults ------------------------------------------------------------------------

    def cut(self, node: str) -> None:
        """Drop every frame to and from the node on both LANs (its links stay up)."""
        for lan in LANS:
            self.net.mute(node, lan)

    def heal(self, node: str) -> None:
        for lan in LANS:
            self.net.unmute(node, lan)

    # -- resources ---------------------------------------------------------------------

    def add_ip(self, resource_id: str, address: str, node: str = "node1", lan: str = "lana",
               prefix_length: int = 24) -> None:
        """Add an IPaddr2 resource for `address` (it must lie in a LAN the lab made, e.g.
        10.71.1.100) through `cibadmin` on `node`."""
        if not address.startswith(("10.71.1.", "10.71.2.")):
            raise ValueError("the address must lie in the lab's LAN A or LAN B (10.71.1.x, 10.71.2.x)")
        xml = (f'<primitive id="{resource_id}" class="ocf" provider="heartbeat" type="IPaddr2">'
               f'<instance_attributes id="{resource_id}-ia">'
               f'<nvpair id="{resource_id}-ip" name="ip" value="{address}"/>'
               f'<nvpair id="{resource_id}-cidr" name="cidr_netmask" value="{prefix_length}"/>'
               f'<nvpair id="{resource_id}-nic" name="nic" value="{lan}"/>'
               f'</instance_attributes><operations>'
               f'<op id="{resource_id}-monitor" name="monitor" interval="5s" timeout="20s"/>'
               f'</operations></primitive>')
        self.run(node, "cibadmin", "--create", "-o", "resources", "--xml-text", xml, timeout=30)

    # -- observations ------------------------------------------------------------------

    def quorumtool(self, node: str) -> dict[str, Any]:
        """`corosync-quorumtool -s` parsed: quorate, ring_id, expected/total votes, members
        {node id: name}. {} if Corosync does not answer."""
        p = self.run(node, "corosync-quorumtool", "-s", check=False, timeout=10)
        if "Quorum provider" not in p.stdout:
            return {}
        return parse_quorumtool(p.stdout)

    def members_seen(self, node: str) -> set[str]:
        """Names of the members in the node's view (empty if Corosync does not answer)."""
        q = self.quorumtool(node)
        return set(q.get("members", {}).values()) if q else set()

    def cmap(self, node: str, prefix: str = "", stats: bool = False) -> dict[str, str]:
        """`corosync-cmapctl` (the stats map with stats=True) as {key: value text}."""
        argv = ["corosync-cmapctl"] + (["-m", "stats"] if stats else []) + ([prefix] if prefix else [])
        p = self.run(node, *argv, check=False, timeout=10)
        out = {}
        for line in p.stdout.splitlines():
            key, sep, value = line.partition(" = ")
            if sep:
                out[key.split(" (", 1)[0]] = value
        return out

    def crm_mon(self, node: str) -> ET.Element | None:
        """`crm_mon -1 --output-as=xml` parsed; None if Pacemaker does not answer."""
        p = self.run(node, "crm_mon", "-1", "--output-as=xml", check=False, timeout=15)
        try:
            return ET.fromstring(p.stdout) if p.stdout.strip() else None
        except ET.ParseError:
            return None

    def crm_mon_text(self, node: str, *args: str) -> str:
        """crm_mon's raw output with extra options (e.g. "--output-as=xml"), for readers to test on."""
        return self.run(node, "crm_mon", "-1", *args, check=False, timeout=15).stdout

    def dc(self, node: str) -> str:
        """The DC's name as the node's Pacemaker says it, or ""."""
        doc = self.crm_mon(node)
        if doc is None:
            return ""
        current = doc.find("./summary/current_dc")
        if current is None or current.get("present") != "true":
            return ""
        return current.get("name", "")

    def corosync_log(self, node: str) -> str:
        path = self.workdir / node / "corosync.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pacemaker_log(self, node: str) -> str:
        return self.run(node, "cat", PACEMAKER_LOG, check=False).stdout

    # -- waiting -----------------------------------------------------------------------

    @staticmethod
    def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> float:
        """Poll condition until true; the seconds it took. LabError after timeout."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            if condition():
                return time.monotonic() - t0
            if time.monotonic() >= deadline:
                raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)


class MembershipWatch:
    """The membership source run in one node (`tests/integration/programs/corosync_watch.py`,
    polling links every second), its JSON lines collected by a thread. Stopped at teardown."""

    def __init__(self, lab: "CoroLab", node: str, lifetime_s: float = 600) -> None:
        self.node = node
        self.lines: list[dict[str, Any]] = []
        self.errors = lab.workdir / node / "watch.err"
        self._lock = threading.Lock()
        err = open(self.errors, "ab")
        try:
            self.proc = lab.popen(node, "env", f"PYTHONPATH={REPO}", sys.executable, str(WATCH),
                                  str(lifetime_s), "1", stdout=subprocess.PIPE, stderr=err, text=True)
        finally:
            err.close()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(json.loads(line))

    def memberships(self) -> list[dict[str, Any]]:
        with self._lock:
            return [line for line in self.lines if "membership" in line]

    def latest(self) -> dict[str, Any] | None:
        got = self.memberships()
        return got[-1]["membership"] if got else None

    def first_since(self, t0: float, predicate: Callable[[dict[str, Any] | None], bool]) -> float | None:
        """The time of the first membership after t0 that satisfies predicate."""
        for line in self.memberships():
            if line["t"] >= t0 and predicate(line["membership"]):
                return line["t"]
        return None


def online(m: dict[str, Any] | None) -> set[str]:
    """The names of the online members of a membership as the watch prints it (JSON)."""
    return {x["name"] for x in m["members"] if x["online"]} if m else set()


def parse_quorumtool(text: str) -> dict[str, Any]:
    """The parts of `corosync-quorumtool -s` the tests compare with."""
    out: dict[str, Any] = {"members": {}, "votes": {}}
    section = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if line.startswith("Membership information"):
            section = "members"
            continue
        if section == "members":
            fields = line.split()
            if len(fields) >= 3 and fields[0].isdigit():
                out["members"][int(fields[0])] = fields[2]
                out["votes"][int(fields[0])] = int(fields[1])
            continue
        if not sep:
            continue
        if key == "Quorate":
            out["quorate"] = value.startswith("Yes")
        elif key == "Ring ID":
            out["ring_id"] = value
        elif key == "Node ID":
            out["node_id"] = int(value)
        elif key == "Expected votes":
            out["expected_votes"] = int(value)
        elif key == "Total votes":
            out["total_votes"] = int(value)
    return out


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    """Start a lab, print what each node says, tear it down: `python -m tests.scenarios.corolab DIR`."""
    workdir = Path(argv[0] if argv else "/tmp/corolab")
    with CoroLab(workdir) as lab:
        lab.start()
        print(json.dumps(lab.timings))
        for node in lab.nodes:
            print(node, lab.quorumtool(node), lab.dc(node))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
