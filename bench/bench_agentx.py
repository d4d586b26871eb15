#!/usr/bin/env python3
"""AgentX read throughput: snmpd's own objects, HAOSCAR-MIB through snmpd as our AgentX
master, and HAOSCAR-MIB from our standalone agent, in one run, with the same client.

What it prints, for each of the three paths:

* GET requests/s        single-var-bind GETs, sequential, one request in flight;
* GETNEXT varbinds/s    walks of a subtree like `snmpwalk`, repeated for a fixed time;
* GETBULK varbinds/s    the same like `snmpbulkwalk -Cr25`;

and the daemon's worst event-loop lag (haoscarPerfLoopLagMax, R.1.12.12.0) during the
walk through snmpd and during the standalone walk: before each, the counters are reset
with `snmpset haoscarControlAction.0 = 4` (resetCounters) over SNMPv3 authPriv, after
it the figure is read back. The GETBULK comparison of the two agents is bench_snmp.py's.

The paths:

* snmpd native:    snmpd's own mib-2 subtree (1.3.6.1.2.1: system, interfaces, ip, ...);
                   GETs of sysName.0;
* through snmpd:   our subtree (1.3.6.1.4.1.32473.1) via snmpd's AgentX master, with
                   `--rows` disabled service rows (13 readable columns each); GETs of
                   haoscarClusterName.0;
* standalone:      the same subtree and GETs straight from the daemon's own UDP port.

The client is bench_snmp.py's (a blocking UDP socket and a small hand-written SNMPv2c
codec), run in this process; everything is on 127.0.0.1. snmpd, the daemon and their
directories are removed at the end, also on error or Ctrl-C. Prints figures, never
passes or fails.

    .venv/bin/python bench/bench_agentx.py [--rows 500] [--seconds 8]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.harness import AUTH_KEY, PRIV_KEY, Agent, free_udp_port
from tests.integration.snmpd import Snmpd

_spec = importlib.util.spec_from_file_location("bench_snmp", REPO / "bench" / "bench_snmp.py")
assert _spec is not None and _spec.loader is not None
bench_snmp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_snmp)

R = "1.3.6.1.4.1.32473.1"
MIB2 = "1.3.6.1.2.1"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
CLUSTER_NAME = f"{R}.1.1.1.0"
LAG_MAX = f"{R}.1.12.12.0"          # haoscarPerfLoopLagMax, microseconds
CONTROL_ACTION = f"{R}.1.3.1.0"     # resetCounters(4)


def walk_for(client: bench_snmp.Client, root: str, seconds: float, max_reps: int = 0) -> dict:
    """GETNEXT walks (GETBULK with max_reps) of `root`, one after another, for about `seconds`."""
    total = {"varbinds": 0, "requests": 0, "elapsed": 0.0, "errors": 0, "walks": 0}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        r = bench_snmp.op_walk(client, {"root": root, "max_reps": max_reps, "max_requests": 10**7,
                                        "max_seconds": max(deadline - time.perf_counter(), 0.1)})
        for key in ("varbinds", "requests", "elapsed", "errors"):
            total[key] += r[key]
        total["walks"] += r["complete"]
        if r["errors"]:
            break
    return total


def gets_for(client: bench_snmp.Client, oid: str, seconds: float) -> dict:
    return bench_snmp.op_get(client, {"oids": [oid], "max_requests": 10**7, "max_seconds": seconds})


def v3(target: str, *args: str) -> str:
    p = subprocess.run(["snmpset", "-v3", "-u", "admin", "-l", "authPriv",
                        "-a", "SHA-256", "-A", AUTH_KEY, "-x", "AES", "-X", PRIV_KEY, "-On", "-m", "",
                        target, *args], capture_output=True, text=True, timeout=20,
                       env=dict(os.environ, MIBS=""))
    return p.stdout + p.stderr


def lag_max(target: str) -> int:
    p = subprocess.run(["snmpget", "-v2c", "-c", "public", "-Oqv", "-m", "", target, LAG_MAX],
                       capture_output=True, text=True, timeout=20, env=dict(os.environ, MIBS=""))
    return int(p.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=500, help="disabled service rows in our MIB [500]")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each measurement [8]")
    args = ap.parse_args(argv)
    if shutil.which("snmpd") is None:
        print("snmpd not found (apt-get install snmpd)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-agentx-"))
    snmpd = Snmpd(tmp, timeout_s=2)
    services = "".join(f'\n[[services]]\nname = "bench-svc-{i:05d}"\ncheck = "true"\nrestart = ""\n'
                       f'recovery = "notify-only"\nenabled = false\n' for i in range(1, args.rows + 1))
    daemon = Agent(tmp, free_udp_port(), free_udp_port(), services_toml=services, extra_toml=f"""
[snmp.agentx]
enabled = true
master = "{snmpd.socket}"

[log]
level = "warning"
""")
    try:
        daemon.write_config()
        snmpd.start()
        daemon.start()
        deadline = time.monotonic() + 20
        while snmpd.get(CLUSTER_NAME).out.find("bench") < 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        via = bench_snmp.Client("127.0.0.1", snmpd.port, "public", timeout=5, retries=1)
        ours = bench_snmp.Client("127.0.0.1", daemon.port, "public", timeout=5, retries=1)
        s = args.seconds
        print(f"bench_agentx: {args.rows} service rows, {s:g} s per figure, "
              f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {_snmpd_version()}")

        # The daemon's first v3 request derives the user's keys (tens of ms on the loop):
        # pay that before measuring, and let the loop-lag probe see a quiet loop again
        # after each reset (it measures a timer's lateness, so a stall shows after it).
        print(v3(daemon.address, CONTROL_ACTION, "i", "4").strip().splitlines()[-1])
        rows: list[tuple[str, dict, dict, int | None]] = []
        rows.append(("snmpd native (mib-2)", walk_for(via, MIB2, s), gets_for(via, SYS_NAME, s), None))
        v3(daemon.address, CONTROL_ACTION, "i", "4")
        time.sleep(0.5)
        walk = walk_for(via, R, s)
        lag_via = lag_max(daemon.address)
        rows.append(("through snmpd (AgentX)", walk, gets_for(via, CLUSTER_NAME, s), lag_via))
        v3(daemon.address, CONTROL_ACTION, "i", "4")
        time.sleep(0.5)
        walk = walk_for(ours, R, s)
        lag_own = lag_max(daemon.address)
        rows.append(("standalone (pysnmp)", walk, gets_for(ours, CLUSTER_NAME, s), lag_own))

        bulk = {"via": walk_for(via, R, s, 25), "ours": walk_for(ours, R, s, 25),
                "native": walk_for(via, MIB2, s, 25)}

        print(f"\n{'path':<26}{'GETNEXT varbinds/s':>20}{'walks':>7}{'GET req/s':>12}"
              f"{'loop lag max':>15}{'GETBULK r=25 vb/s':>19}")
        for (name, w, g, lag), b in zip(rows, (bulk["native"], bulk["via"], bulk["ours"])):
            wr = w["varbinds"] / w["elapsed"] if w["elapsed"] else 0
            gr = g["requests"] / g["elapsed"] if g["elapsed"] else 0
            lag_text = f"{lag / 1000:.1f} ms" if lag is not None else "-"
            errs = w["errors"] + g["errors"]
            br = b["varbinds"] / b["elapsed"] if b["elapsed"] else 0
            errs += b["errors"]
            print(f"{name:<26}{wr:>20,.0f}{w['walks']:>7}{gr:>12,.0f}{lag_text:>15}{br:>19,.0f}"
                  + (f"  ({errs} errors)" if errs else ""))
        print("\nloop lag max: haoscarPerfLoopLagMax read after the walk, counters reset just before it")
        return 0
    finally:
        daemon.stop()
        snmpd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _snmpd_version() -> str:
    p = subprocess.run(["snmpd", "-v"], capture_output=True, text=True)
    line = next((ln for ln in p.stdout.splitlines() if "version" in ln), "")
    return "net-snmp " + line.split(":")[-1].strip()


if __name__ == "__main__":
    sys.exit(main())
