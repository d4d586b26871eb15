"""The real daemon on the nodes of a Corosync lab (`corolab.py`), for the scenario tests
of the corosync backend: each node's `haoscar-snmp run` and an snmptrapd, both in the
node's namespaces, the agent on the node's loopback and its notifications to that
snmptrapd; net-snmp's tools to read the agent by object name.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Mapping

from fcaps.fault import cluster as cluster_pkg
from haoscar_snmp.core.bug import BUG_MARKER
from tests.integration.harness import MIB_DIRS

from .corolab import CoroLab

AGENT = Path(cluster_pkg.__file__).parent / "alert_agent.py"
SOCKET = "/run/haoscar-snmp/pacemaker-alert.sock"      # each node's own /run (a tmpfs)
SNMP = "127.0.0.1:16161"
TRAPS = "127.0.0.1:16162"


def config(node: str, workdir: Path, heads: str, services: str, vip: str) -> str:
    """A node's configuration in the corosync mode: `heads` and `services` are TOML
    blocks of the test's own; one alias on LAN A carried by `vip`."""
    common = textwrap.dedent(f"""\
        [cluster]
        name = "corolab"
        local_head = "{node}"
        state_dir = "{workdir / ('state-' + node)}"

        [[aliases]]
        index = 1
        address = "{vip}"
        prefix_length = 24
        interface = "lana"

        [membership]
        backend = "corosync"
        pacemaker = "on"
        refresh_s = 10
        crm_mon_timeout_s = 5

        [snmp]
        listen = ["{SNMP}"]

        [[snmp.communities]]
        name = "public"
        access = "read"

        [[snmp.targets]]
        name = "nms"
        address = "{TRAPS}"
        version = "v2c"
        kind = "trap"
        community = "public"
        """)
    return common + "\n" + textwrap.dedent(heads) + "\n" + textwrap.dedent(services)


def add_alert(lab: CoroLab) -> None:
    """Pacemaker runs the daemon's alert agent on every event, for the socket in /run."""
    alert = (f'<alerts><alert id="haoscar" path="{AGENT}">'
             f'<recipient id="haoscar-sock" value="{SOCKET}"/></alert></alerts>')
    lab.run("node1", "cibadmin", "--create", "-o", "configuration", "--xml-text", alert, timeout=30)


class LabDaemon:
    """One node's daemon and snmptrapd."""

    def __init__(self, lab: CoroLab, name: str, workdir: Path, config_text: str) -> None:
        self.lab, self.name = lab, name
        self.log = workdir / f"{name}.log"
        self.trap_log = workdir / f"{name}-traps.log"
        conf = workdir / f"{name}.toml"
        conf.write_text(config_text)
        trapd_conf = workdir / f"{name}-snmptrapd.conf"
        trapd_conf.write_text("authCommunity log public\nformat2 TRAP %v\\n\n")
        persist = workdir / f"{name}-trapd-persist"
        persist.mkdir(exist_ok=True)
        self.trapd = lab.popen(name, "env", f"SNMP_PERSISTENT_DIR={persist}", "snmptrapd", "-f", "-n", "-C",
                               "-c", str(trapd_conf), "-Lf", str(self.trap_log), "-M", MIB_DIRS,
                               "-m", "HAOSCAR-MIB", f"udp:{TRAPS}")
        self.daemon = lab.popen(name, sys.executable, "-m", "haoscar_snmp", "run", "-c", str(conf),
                                stdout=self.log.open("w"), stderr=subprocess.STDOUT, cwd=str(workdir))

    def walk(self, oid: str = "haoscarMembership", timeout: float = 30) -> dict[str, str]:
        """snmpwalk on the node's agent: {object.index: value}, by name."""
        p = self.lab.run(self.name, "snmpwalk", "-v2c", "-c", "public", "-t", "2", "-r", "1", "-Oqs",
                         "-M", MIB_DIRS, "-m", "HAOSCAR-MIB", SNMP, oid, check=False, timeout=timeout)
        out = {}
        for line in p.stdout.splitlines():
            name, _, value = line.partition(" ")
            out[name] = value.strip().strip('"')
        return out

    def get(self, *objects: str) -> list[str]:
        p = self.lab.run(self.name, "snmpget", "-v2c", "-c", "public", "-t", "2", "-r", "1", "-Oqv",
                         "-M", MIB_DIRS, "-m", "HAOSCAR-MIB", SNMP, *objects, check=False, timeout=20)
        return [v.strip().strip('"') for v in p.stdout.splitlines()]

    def answers(self) -> bool:
        p = self.lab.run(self.name, "snmpget", "-v2c", "-c", "public", "-t", "1", "-r", "0", "-Oqv",
                         SNMP, "1.3.6.1.2.1.1.3.0", check=False, timeout=10)
        return p.returncode == 0 and p.stdout.strip() != ""

    def by_name(self, table: str, name_column: str, column: str) -> dict[str, str]:
        """One column of a table, by the value of its name column."""
        rows = self.walk(table)
        keys = {k.split(".", 1)[1]: v for k, v in rows.items() if k.startswith(f"{name_column}.")}
        return {keys[k.split(".", 1)[1]]: v for k, v in rows.items()
                if k.startswith(f"{column}.") and k.split(".", 1)[1] in keys}

    def members(self) -> dict[str, str]:
        """haoscarClusterNodeMember by node name."""
        return self.by_name("haoscarClusterNodeTable", "haoscarClusterNodeName", "haoscarClusterNodeMember")

    def head_states(self) -> dict[str, str]:
        return self.by_name("haoscarHeadTable", "haoscarHeadName", "haoscarHeadState")

    def traps(self, name: str) -> int:
        """How many notifications of this name reached the node's snmptrapd."""
        return len(re.findall(rf"HAOSCAR-MIB::{name}\b", self.trap_text()))

    def trap_text(self) -> str:
        return self.trap_log.read_text(errors="replace") if self.trap_log.exists() else ""

    def alive(self) -> bool:
        return self.daemon.poll() is None


def wait(condition: Callable[[], object], timeout: float, what: str, nodes: Mapping[str, LabDaemon],
         more: Callable[[], str] = lambda: "") -> float:
    """Poll `condition` every 0.2 s, bounded by `timeout`; a daemon that exits fails it at
    once. The failure shows every daemon's log tail and `more()`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout or not all(n.alive() for n in nodes.values()):
            logs = "\n".join(f"--- {n.name}\n{n.log.read_text(errors='replace')[-2500:]}" for n in nodes.values())
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{more()}\n{logs}")
        time.sleep(0.2)
    return time.monotonic() - start


def stop(nodes: Mapping[str, LabDaemon]) -> None:
    """Stop every daemon still running: SIGTERM, then SIGKILL after 10 s."""
    for node in nodes.values():
        if node.alive():
            node.daemon.terminate()
            try:
                node.daemon.wait(10)
            except subprocess.TimeoutExpired:
                node.daemon.kill()
                node.daemon.wait(5)


def assert_clean(nodes: Mapping[str, LabDaemon]) -> None:
    """After `stop`: every daemon exited 0, with no bug marker, traceback or lost task
    exception in its log."""
    for node in nodes.values():
        text = node.log.read_text(errors="replace")
        for marker in (BUG_MARKER, "Traceback", "Task exception was never retrieved"):
            assert marker not in text, f"{marker!r} in {node.name}'s log:\n{text[-4000:]}"
        assert node.daemon.returncode == 0, f"{node.name}'s daemon exited {node.daemon.returncode}"
