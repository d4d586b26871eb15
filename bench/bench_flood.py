#!/usr/bin/env python3
"""Heartbeats under SNMP load: false failovers and the worst heartbeat gap at fast timing.

Two real daemons (head1 active, head2 standby) in the network namespaces of the scenario
tests. Three ways to run:

**Phases** (the default): heartbeat every 20 ms, dead time 60 ms (the fastest timing the
configuration accepts without a warning), three phases of --seconds each:

* quiet   nothing but the heartbeats;
* walks   8 parallel `snmpbulkwalk` loops (4 per head, max-repetitions 50) from the NMS
          namespace over the whole MIB view;
* junk    the walks plus 2,500 undecodable datagrams a second to each head's SNMP port.

After each phase it reads from both heads: haoscarFailoverCount (a false failover is any
increase: the active head never stopped), haoscarHbPathMaxGap of every path (the longest
time between two valid heartbeats; reset between phases with the resetCounters action),
and the CPU time each daemon and each heartbeat process used. The holders of the alias
are sampled every 100 ms: any sample with head2 holding it is a double holder or a false
failover the client saw. The heartbeat send lag (how late the heartbeat process sent a
heartbeat after it was due): haoscarPerfHbSendLag of each head read every 0.5 s during
the phase (each read is the worst of the process's last report period), its median and
p99 over the phase, and haoscarPerfHbSendLagMax after it (the worst single send since
the reset). --phases picks the phases, e.g. `--phases quiet walks` for the send lag
idle and under the 8 walks only.

**--idle**: the bare pair (no services, no LAN targets beyond the heads, no SNMP client)
at 10 ms / 30 ms unless told otherwise (--idle-timings I/D ...: each in turn, and a
least-squares split into a fixed part and a cost per heartbeat interval); the CPU each
head's daemon process and heartbeat process use over --idle-seconds, separately and
together, from the scheduler's run time (`se.sum_exec_runtime` of every thread, exact;
the tick-sampled user/system figures beside it). With --profile DIR, py-spy
(`.venv/bin/pip install py-spy`) then records head1's two processes for --profile-seconds
(raw collapsed stacks in DIR) and a breakdown by function is printed; with --cprofile
DIR, a separate pair runs head1's two processes under cProfile
(bench/profiling/sitecustomize.py on their PYTHONPATH). The CPU figures are taken
before a profiler runs, never while it does.

**--loaded**: the idle measurement first (unless --no-idle), then a pair carrying a
realistic load for --minutes (default 10), at 10 ms / 30 ms unless told otherwise:

* --services (200) TCP service checks per head, every --service-interval-ms (1000), against
  a small TCP listener started in each head namespace (127.0.0.1:17960; accepts and
  closes), `active_only = false` so both heads check them, recovery notify-only;
* --lan-targets (2,000) LAN interfaces polled by each head's LAN poller every
  --lan-poll-ms (1000): [[nodes]] with one lan_a and one lan_b address each (10.72.0.0/16
  and 10.73.0.0/16), configured on node1's loopback and routed through node1's private
  LAN addresses (one neighbour entry per LAN, as bench_icmp.py does);
* --public-targets (4) `[failover] public_targets` probed every --public-probe-ms (100):
  the client and NMS addresses and more addresses on the NMS namespace's public link;
* --walkers (8) `snmpbulkwalk` loops over the whole view (half per head);
* after --configured-seconds (30) with that configuration but no walkers (CPU measured),
  --kills (20) SIGKILLs of the active daemon, spread over the run: the time from the
  kill to the first reply from the standby at a client probing the alias every 2 ms
  (bench_failover.py's UDP prober and echo responders, at SCHED_FIFO 5, below the
  heartbeat process's SCHED_RR 10, so that the instrument is not what is late); the
  killed daemon is restarted and must settle (standby, the survivor alone holds the
  alias) before the next kill. Auto-failback is off, so the roles alternate.

False failovers in the loaded run: every "-> taking_over" in any daemon log that is not
the survivor's takeover within 2 s of a kill, every "active -> releasing" that no kill
explains, and every 100 ms sample of the holders, outside the kill and restart windows,
that is not exactly one head. Also counted: heartbeat processes found silent by their
daemon, replacements that failed to start, heartbeat processes that fenced their daemon,
and daemons that stopped by themselves (each is started again, as a service manager
would, and let settle). The kill loop stays within --minutes: kills that incidents left
no time for are reported as not done. Per kill, the survivor's takeover steps from its
log; the CPU under load over the whole run, outside the kill and restart windows.

It never fails on a number: it prints the figures. Run as root from the repository root:
    sudo .venv/bin/python bench/bench_flood.py [--seconds 120] [--interval-ms 20 --dead-ms 60]
    sudo .venv/bin/python bench/bench_flood.py --phases quiet walks --seconds 60
    sudo .venv/bin/python bench/bench_flood.py --idle [--profile /tmp/prof]
    sudo .venv/bin/python bench/bench_flood.py --loaded --minutes 10
    sudo .venv/bin/python bench/bench_flood.py --scrape --seconds 60

**--scrape** (bench/flood_scrape.py): a pair holding 2,000 services and 2,000 LAN
interfaces, its views idle and then scraped in a tight loop (/metrics with basic
authentication on the web listener, /status on the status socket), side by side: the
scrape times, the loop lag, the worst heartbeat gap, false failovers.
Everything it starts lives in the namespaces of tests.scenarios.netns.Cluster and is
removed at the end, also on error, Ctrl-C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from haoscar_snmp.core.bug import BUG_MARKER

from benchsignals import unwind_on_signals  # noqa: E402  (bench/ is on sys.path)
REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
R = "1.3.6.1.4.1.32473.1"
HEADS = ("head1", "head2")
JUNK_RATE = 2500          # datagrams per second per head
WALKERS_PER_HEAD = 4
TCP_PORT = 17960          # the services' TCP listener in each head namespace
PROBE_MS = 2              # the loaded run's client probe interval
INSTRUMENT_PRIO = 5       # SCHED_FIFO priority of the prober and echo responders
LOOP_LAG_MAX = f"{R}.1.12.12.0"    # haoscarPerfLoopLagMax (us)
FAILOVER_COUNT = f"{R}.1.1.4.0"    # haoscarFailoverCount
HB_MAX_GAP = f"{R}.1.5.1.9"        # haoscarHbPathMaxGap (us), column
HB_SEND_LAG = f"{R}.1.12.25.0"     # haoscarPerfHbSendLag (us): worst over the last report period
HB_SEND_LAG_MAX = f"{R}.1.12.26.0"  # haoscarPerfHbSendLagMax (us): since the last resetCounters
SEND_LAG_EVERY_S = 0.5    # phases: how often each head's haoscarPerfHbSendLag is read
TAKEOVER_WINDOW_S = 2.0   # a kill's expected takeover is logged within this long
SETTLE_S = 2.0            # after the killed daemon is standby again, before the next kill
KILL_TIMEOUT_S = 5.0      # no reply from the standby within this long: a failed kill

# A junk sender: bounded in time and count, to one address only.
_JUNK = r"""
import os, socket, sys, time
host, port, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + seconds
sent, start = 0, time.monotonic()
while time.monotonic() < end and sent < rate * seconds + 10:
    due = start + sent / rate
    now = time.monotonic()
    if due > now:
        time.sleep(min(due - now, 0.01))
        continue
    try:
        s.sendto(os.urandom(40 + sent % 200), (host, port))
    except OSError:
        pass
    sent += 1
print(sent)
"""

# The services' target: accepts and closes, bounded in time and connections.
_LISTENER = r"""
import select, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(1024)
s.setblocking(False)
print("ready", flush=True)
end, accepted = time.monotonic() + seconds, 0
while time.monotonic() < end and accepted < 100_000_000:
    if not select.select([s], [], [], 1.0)[0]:
        continue
    for _ in range(256):
        try:
            c, _ = s.accept()
        except BlockingIOError:
            break
        c.close()
        accepted += 1
"""


# ======================================================================================
# Small tools.
# ======================================================================================

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_split(pid: int) -> tuple[float, float, int, float]:
    """(user seconds, system seconds, context switches, run time seconds) of a process and
    all its threads. User and system come from /proc/PID/stat, which this kernel samples
    at its tick (250 Hz); the run time is the scheduler's own sum (se.sum_exec_runtime in
    /proc/PID/task/TID/sched), exact to the nanosecond: short wake-ups in step with the
    tick are no longer charged a whole tick or none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0, 0, 0.0
    switches = 0
    runtime_ms = 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches:" in line:       # voluntary and nonvoluntary
                    switches += int(line.split()[1])
            try:
                for line in (task / "sched").read_text().splitlines():
                    if line.startswith("se.sum_exec_runtime"):
                        runtime_ms += float(line.split(":")[1])
            except OSError:
                pass
    except (OSError, ValueError):
        pass
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck, switches, runtime_ms / 1000


def daemon_pid(pair: Any, head: str) -> int:
    """The daemon's own pid (the Popen is `ip netns exec ... env ... python`, which execs)."""
    return pair.procs[head].pid


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class Cpu:
    """CPU of each head's daemon and heartbeat process over a stretch of time."""

    def __init__(self, pair: Any) -> None:
        self.pair = pair
        self.pids = {h: (daemon_pid(pair, h), pair.heartbeat_pid(h)) for h in HEADS}
        self.t0 = time.monotonic()
        self.c0 = {h: tuple(cpu_split(p) for p in self.pids[h]) for h in HEADS}

    def read(self) -> dict[str, dict[str, float]]:
        """% of one core per head: daemon, hb (heartbeat process), total, and each one's
        user and system shares and context switches a second; and the seconds."""
        dt = time.monotonic() - self.t0
        out: dict[str, dict[str, float]] = {}
        for h in HEADS:
            if not all(Path(f"/proc/{p}").exists() for p in self.pids[h]):
                out[h] = {"gone": True, "daemon": 0.0, "hb": 0.0, "total": 0.0, "seconds": dt}
                continue
            now = [cpu_split(p) for p in self.pids[h]]
            (du, ds, dw, dr), (bu, bs, bw, br) = ((a - b for a, b in zip(n, c)) for n, c in zip(now, self.c0[h]))
            out[h] = {"daemon": dr / dt * 100, "hb": br / dt * 100, "total": (dr + br) / dt * 100, "seconds": dt,
                      "daemon_ticks": (du + ds) / dt * 100, "hb_ticks": (bu + bs) / dt * 100,
                      "daemon_user": du / dt * 100, "daemon_sys": ds / dt * 100, "daemon_switches_s": dw / dt,
                      "hb_user": bu / dt * 100, "hb_sys": bs / dt * 100, "hb_switches_s": bw / dt}
        return out


def heartbeat_child(pid: int) -> int | None:
    """The heartbeat process of the daemon `pid`, or None (like HaPair.heartbeat_pid, without raising)."""
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            if "fcaps.fault.heartbeat.child" in Path(f"/proc/{child}/cmdline").read_text(errors="replace"):
                return int(child)
    except OSError:
        pass
    return None


class CpuTracker:
    """CPU of each head's daemon and heartbeat process over a whole run in which they may
    be killed and restarted: every second the current processes' run times are read; a
    delta counts when the same process was seen at both ends and the second lies outside
    every window given to `total` (kills, restarts)."""

    def __init__(self, pair: Any) -> None:
        self.pair = pair
        self.samples: list[tuple[float, str, str, int, float]] = []   # t, head, kind, pid, run time s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 7200
        while not self._stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            for head in HEADS:
                proc = self.pair.procs.get(head)
                if proc is None or proc.poll() is not None:
                    continue
                for kind, pid in (("daemon", proc.pid), ("hb", heartbeat_child(proc.pid))):
                    if pid is not None:
                        self.samples.append((now, head, kind, pid, cpu_split(pid)[3]))
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def total(self, windows: list[list[float]], start: float, end: float) -> dict[str, dict[str, float]]:
        def outside(a: float, b: float) -> bool:
            return not any(w0 <= b and a <= w1 for w0, w1 in windows)
        used: dict[tuple[str, str], float] = {}
        span: dict[tuple[str, str], float] = {}
        last: dict[tuple[str, str], tuple[float, int, float]] = {}
        for t, head, kind, pid, run in self.samples:
            key = (head, kind)
            prev = last.get(key)
            last[key] = (t, pid, run)
            if prev is None or prev[1] != pid or not (start <= prev[0] and t <= end) or not outside(prev[0], t):
                continue
            used[key] = used.get(key, 0.0) + run - prev[2]
            span[key] = span.get(key, 0.0) + t - prev[0]
        out: dict[str, dict[str, float]] = {}
        for head in HEADS:
            d, b = span.get((head, "daemon"), 0.0), span.get((head, "hb"), 0.0)
            if d and b:
                out[head] = {"daemon": used[(head, "daemon")] / d * 100, "hb": used[(head, "hb")] / b * 100,
                             "seconds": min(d, b)}
                out[head]["total"] = out[head]["daemon"] + out[head]["hb"]
        return out


def fmt_cpu(c: dict[str, dict[str, float]]) -> str:
    return "; ".join(f"{h} (a process ended meanwhile)" if c[h].get("gone") else
                     f"{h} daemon {c[h]['daemon']:.1f} % + heartbeat process {c[h]['hb']:.1f} % = "
                     f"{c[h]['total']:.1f} %" for h in HEADS)


class Env:
    """The cluster, a pair, and the SNMP reads every mode uses."""

    def __init__(self, cluster: Any, work: Path) -> None:
        from tests.scenarios.hapair import AUTH, PRIV, PUBLIC, SNMP_PORT
        self.c = cluster
        self.work = work
        self.auth, self.priv, self.public, self.port = AUTH, PRIV, PUBLIC, SNMP_PORT
        self.lock = threading.Lock()       # the cluster's netlink sockets: one user at a time

    def holders(self, pair: Any) -> set[str]:
        with self.lock:
            return pair.holders()

    def get(self, head: str, oid: str) -> str:
        p = self.c.run("nms", "snmpget", "-v2c", "-c", "public", "-On", "-Oqv", "-t", "2", "-r", "2",
                       f"{self.public[head]}:{self.port}", oid, check=False, timeout=30)
        return p.stdout.strip()

    def reset(self, head: str) -> None:
        """haoscarControlAction resetCounters(4) over SNMPv3 authPriv."""
        self.c.run("nms", "snmpset", "-v3", "-l", "authPriv", "-u", "admin", "-a", "SHA-256",
                   "-A", self.auth, "-x", "AES", "-X", self.priv, "-t", "2", "-r", "2",
                   f"{self.public[head]}:{self.port}", f"{R}.1.3.1.0", "i", "4", check=False, timeout=30)

    def gaps(self, head: str) -> list[int]:
        out = self.c.run("nms", "snmpwalk", "-v2c", "-c", "public", "-On", "-Oqv", "-t", "2", "-r", "2",
                         f"{self.public[head]}:{self.port}", HB_MAX_GAP, check=False, timeout=30).stdout
        return [int(v) for v in out.split() if v.isdigit()]

    def role(self, pair: Any, head: str) -> str:
        try:
            return pair.role(head)
        except subprocess.TimeoutExpired:
            return "?"

    def walkers(self, count: int, seconds: float) -> list[subprocess.Popen]:
        procs = []
        for i in range(count):
            head = HEADS[i % 2]
            loop = (f"end=$((SECONDS+{int(seconds)})); while [ $SECONDS -lt $end ]; do "
                    f"snmpbulkwalk -v2c -c public -Cr50 -t 2 -r 0 {self.public[head]}:{self.port} "
                    f".1 >/dev/null 2>&1; done")
            procs.append(self.c.popen("nms", "bash", "-c", loop))
        return procs


def stop_all(procs: list[subprocess.Popen], wait: float = 10) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            pass


# ======================================================================================
# The phases (the default mode).
# ======================================================================================

def run_phases(env: Env, args: argparse.Namespace) -> dict:
    from tests.scenarios.hapair import HaPair
    cluster = env.c
    pair = HaPair(cluster, env.work / "phases", interval_ms=args.interval_ms, dead_ms=args.dead_ms,
                  initdead_ms=2000)
    pair.workdir.mkdir()
    pair.start_trapd()
    pair.start_both()
    print(f"phases: interval {args.interval_ms} ms, dead time {args.dead_ms} ms, {args.seconds:.0f} s per phase; "
          f"load average {loadavg()}")

    def failovers() -> dict[str, int]:
        return {h: int(env.get(h, FAILOVER_COUNT) or 0) for h in HEADS}

    rows = []
    try:
        for phase in args.phases:
            for head in HEADS:
                env.reset(head)
            before = failovers()
            cpu = Cpu(pair)
            load: list[subprocess.Popen] = []
            if phase in ("walks", "junk"):
                load += env.walkers(2 * WALKERS_PER_HEAD, args.seconds)
            if phase == "junk":
                for head in HEADS:
                    load.append(cluster.popen("nms", sys.executable, "-c", _JUNK, env.public[head],
                                              str(env.port), str(JUNK_RATE), str(args.seconds)))
            samples: list[set[str]] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append(env.holders(pair))
                    stop.wait(0.1)
            # The heartbeat send lag: each read is the worst delay between a heartbeat's due
            # time and its send over the heartbeat process's last report period (at most
            # 0.5 s), so the percentiles below are of those per-period worsts, an upper
            # bound of the same percentile over single sends.
            lags: dict[str, list[int]] = {h: [] for h in HEADS}

            def sample_lag() -> None:
                while not stop.is_set():
                    for h in HEADS:
                        v = env.get(h, HB_SEND_LAG)
                        if v.isdigit():
                            lags[h].append(int(v))
                    stop.wait(SEND_LAG_EVERY_S)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            lag_sampler = threading.Thread(target=sample_lag, daemon=True)
            lag_sampler.start()
            time.sleep(args.seconds)
            stop.set()
            sampler.join(5)
            lag_sampler.join(35)
            for proc in load:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            used = cpu.read()
            after = failovers()
            worst = {h: max(env.gaps(h), default=0) for h in HEADS}
            requests = env.get("head1", "1.3.6.1.2.1.11.1.0")
            send = {h: {"reads": len(lags[h]),
                        "p50_ms": percentile(lags[h], 50) / 1000 if lags[h] else None,
                        "p99_ms": percentile(lags[h], 99) / 1000 if lags[h] else None,
                        "worst_ms": int(env.get(h, HB_SEND_LAG_MAX) or 0) / 1000}
                    for h in HEADS}
            row = dict(phase=phase, false_failovers=sum(after[h] - before[h] for h in HEADS),
                       send_lag=send,
                       gap1=worst["head1"] / 1000, gap2=worst["head2"] / 1000,
                       cpu=used, double=sum(1 for s in samples if len(s) > 1),
                       moved=sum(1 for s in samples if s != {"head1"}), samples=len(samples),
                       in_pkts=requests, load=loadavg())
            rows.append(row)
            print(f"  {phase:6} false failovers {row['false_failovers']}, worst gap head1<-head2 "
                  f"{row['gap1']:.1f} ms, head2<-head1 {row['gap2']:.1f} ms, samples not {{head1}}: "
                  f"{row['moved']}/{row['samples']}; cpu {fmt_cpu(used)}; load {row['load']}", flush=True)
            print("         heartbeat send lag (due -> sent): " + "; ".join(
                f"{h} p50 {fmt_ms(send[h]['p50_ms'])} p99 {fmt_ms(send[h]['p99_ms'])} worst "
                f"{fmt_ms(send[h]['worst_ms'])} ms ({send[h]['reads']} reads)" for h in HEADS), flush=True)
        print(f"\n{'phase':6} {'false failovers':>15} {'worst gap (ms) h1<-h2':>22} {'h2<-h1':>7} "
              f"{'daemon h1':>9} {'hb h1':>6} {'daemon h2':>9} {'hb h2':>6} {'two holders':>12}")
        for r in rows:
            c = r["cpu"]
            print(f"{r['phase']:6} {r['false_failovers']:>15} {r['gap1']:>22.1f} {r['gap2']:>7.1f} "
                  f"{c['head1']['daemon']:>8.0f}% {c['head1']['hb']:>5.0f}% {c['head2']['daemon']:>8.0f}% "
                  f"{c['head2']['hb']:>5.0f}% {r['double']:>5}/{r['samples']}")
        print(f"\n{'phase':6} {'hb send lag (ms): h1 p99':>24} {'h1 worst':>9} {'h2 p99':>7} {'h2 worst':>9}"
              f"   (p99 of haoscarPerfHbSendLag read every {SEND_LAG_EVERY_S:g} s; worst: haoscarPerfHbSendLagMax)")
        for r in rows:
            sl = r["send_lag"]
            print(f"{r['phase']:6} {fmt_ms(sl['head1']['p99_ms']):>24} {fmt_ms(sl['head1']['worst_ms']):>9} "
                  f"{fmt_ms(sl['head2']['p99_ms']):>7} {fmt_ms(sl['head2']['worst_ms']):>9}")
        print(f"dead time {args.dead_ms} ms; snmpInPkts at head1 after the run: {rows[-1]['in_pkts']}")
    finally:
        pair.stop_all()
    if BUG_MARKER in pair.log_text():
        print("WARNING: a daemon log holds the bug marker")
    return {"phases": rows}


# ======================================================================================
# Idle CPU, and where it goes (py-spy).
# ======================================================================================

def run_idle(env: Env, args: argparse.Namespace) -> dict:
    """Idle CPU at each timing asked for (the first is the main one: py-spy and cProfile
    run there); with several timings, a fit of CPU = fixed + heartbeats per second x cost."""
    specs = args.idle_timings or [f"{args.interval_ms}/{args.dead_ms}"]
    runs = []
    for n, spec in enumerate(specs):
        interval, dead = (int(v) for v in spec.split("/"))
        runs.append(idle_once(env, args, interval, dead, first=n == 0))
    out: dict[str, Any] = {"runs": runs}
    if len(runs) >= 2:
        out["fit"] = fit_per_tick(runs)
    if args.cprofile:
        interval, dead = (int(v) for v in specs[0].split("/"))
        out["cprofile"] = cprofile_idle(env, args, interval, dead)
    return out


def idle_once(env: Env, args: argparse.Namespace, interval: int, dead: int, first: bool) -> dict:
    from tests.scenarios.hapair import HaPair
    pair = HaPair(env.c, env.work / f"idle-{interval}-{dead}", interval_ms=interval, dead_ms=dead,
                  initdead_ms=2000, env=daemon_env(args))
    pair.workdir.mkdir()
    out: dict[str, Any] = {"interval_ms": interval, "dead_ms": dead}
    try:
        pair.start_both()
        time.sleep(args.idle_settle)
        out["load_before"] = loadavg()
        cpu = Cpu(pair)
        time.sleep(args.idle_seconds)
        out["cpu"] = cpu.read()
        out["load_after"] = loadavg()
        out["holders"] = sorted(env.holders(pair))
        print(f"idle pair at {interval} ms / {dead} ms, {args.idle_seconds:.0f} s "
              f"(load average {out['load_before']} -> {out['load_after']}):", flush=True)
        for h in HEADS:
            c = out["cpu"][h]
            print(f"  {h}: daemon {c['daemon']:.2f} % (tick-sampled {c['daemon_ticks']:.2f}: user "
                  f"{c['daemon_user']:.2f}, system {c['daemon_sys']:.2f}; {c['daemon_switches_s']:.0f} context "
                  f"switches/s), heartbeat process {c['hb']:.2f} % (tick-sampled {c['hb_ticks']:.2f}: user "
                  f"{c['hb_user']:.2f}, system {c['hb_sys']:.2f}; {c['hb_switches_s']:.0f}/s), together "
                  f"{c['total']:.2f} % of one core", flush=True)
        if first and args.profile:
            out["profile"] = profile(pair, args.profile, args.profile_seconds)
    finally:
        pair.stop_all()
    if BUG_MARKER in pair.log_text():
        print("WARNING: a daemon log holds the bug marker")
    return out


def daemon_env(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    extra = dict(item.split("=", 1) for item in args.daemon_env)
    return {h: dict(extra) for h in HEADS} if extra else {}


def fit_per_tick(runs: list[dict]) -> dict:
    """Least squares of CPU % = fixed + (1000 / interval) x per-heartbeat cost, per process
    kind (both heads' figures as separate points)."""
    out: dict[str, Any] = {}
    print("\nidle CPU against heartbeats per second (least squares over both heads):")
    for kind in ("daemon", "hb", "total"):
        xs, ys = [], []
        for r in runs:
            for h in HEADS:
                xs.append(1000 / r["interval_ms"])
                ys.append(r["cpu"][h][kind])
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
        fixed = my - slope * mx
        # slope: % of a core per (heartbeat per second) = 1e4 us of CPU per heartbeat
        out[kind] = {"fixed_pct": fixed, "us_per_heartbeat": slope * 1e4}
        name = {"daemon": "daemon process", "hb": "heartbeat process", "total": "together"}[kind]
        print(f"  {name:18}: {fixed:5.2f} % fixed + {slope * 1e4:6.1f} us of CPU per heartbeat interval")
    return out


def cprofile_idle(env: Env, args: argparse.Namespace, interval: int, dead: int) -> dict:
    """head1's daemon and heartbeat process under cProfile (bench/profiling/sitecustomize.py)
    for --profile-seconds after --idle-settle; the statistics, per second of profile."""
    import pstats
    from tests.scenarios.hapair import HaPair
    where = args.cprofile
    where.mkdir(parents=True, exist_ok=True)
    for old in where.glob("*.prof"):
        old.unlink()
    profdir = BENCH / "profiling"
    env_h1 = {"PYTHONPATH": str(profdir), "HAOSCAR_BENCH_CPROFILE": str(where),
              "HAOSCAR_BENCH_CPROFILE_SKIP": f"{args.idle_settle + 3:.0f}"}
    pair = HaPair(env.c, env.work / f"cprofile-{interval}-{dead}", interval_ms=interval, dead_ms=dead,
                  initdead_ms=2000, env={"head1": env_h1})
    pair.workdir.mkdir()
    try:
        pair.start_both()
        time.sleep(args.idle_settle + 3 + args.profile_seconds)
    finally:
        pair.stop_all()
    out: dict[str, Any] = {}
    for path in sorted(where.glob("*.prof")):
        kind, _pid, secs = path.stem.split("-")
        seconds = float(secs.rstrip("s"))
        st = pstats.Stats(str(path))
        rows = []
        waiting = 0.0
        for (file, line, func), (cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
            if "of 'select.epoll' objects" in func:
                waiting += tt                      # the loop waiting: not CPU
                continue
            rows.append((tt, ct, nc, f"{func} ({'/'.join(Path(file).parts[-2:])}:{line})"))
        # The frames around the wait (the loop, and what runs it) include it in their
        # cumulative time, and only they can be longer than it (it is most of the time).
        rows = [(tt, ct - waiting if ct > waiting else ct, nc, name) for tt, ct, nc, name in rows]
        total = st.total_tt - waiting  # type: ignore[attr-defined]
        print(f"\n  cProfile {kind} of head1 at {interval} ms / {dead} ms, {seconds:.0f} s: {total:.2f} s of profiled "
              f"time outside the wait in epoll ({total / seconds * 100:.1f} % of wall time, the profiler's own "
              "overhead included; timed by the wall clock); shares below are of that")
        print(f"    {'tottime %':>9} {'cumtime %':>9} {'calls/s':>8}  function")
        for tt, ct, nc, name in sorted(rows, reverse=True)[:30]:
            print(f"    {tt / total * 100:9.1f} {ct / total * 100:9.1f} {nc / seconds:8.0f}  {name}")
        print("    by cumulative time:")
        for tt, ct, nc, name in sorted(rows, key=lambda r: r[1], reverse=True)[:40]:
            print(f"    {tt / total * 100:9.1f} {ct / total * 100:9.1f} {nc / seconds:8.0f}  {name}")
        out[f"{kind}"] = {"seconds": seconds, "total_tt": total, "file": str(path),
                          "top": [dict(tt=tt, ct=ct, calls=nc, name=name)
                                  for tt, ct, nc, name in sorted(rows, reverse=True)[:60]]}
    if not out:
        print("  cProfile wrote nothing (did the daemon stop normally?)")
    return out


def profile(pair: Any, where: Path, seconds: float) -> dict:
    """py-spy record of head1's daemon and heartbeat process at once (raw collapsed stacks,
    non-blocking: the processes are not paused), then a breakdown by function."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("  (no py-spy: `.venv/bin/pip install py-spy` for --profile)")
        return {}
    where.mkdir(parents=True, exist_ok=True)
    targets = {"daemon": daemon_pid(pair, "head1"), "heartbeat": pair.heartbeat_pid("head1")}
    procs = {}
    cpu0 = {k: cpu_split(p)[3] for k, p in targets.items()}
    for name, pid in targets.items():
        procs[name] = subprocess.Popen([spy, "record", "--idle", "-r", "250", "-d", str(int(seconds)),
                                        "-f", "raw", "-o", str(where / f"head1-{name}.txt"), "-p", str(pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    result: dict[str, Any] = {}
    for name, proc in procs.items():
        try:
            _, err = proc.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = "timed out"
        used = (cpu_split(targets[name])[3] - cpu0[name]) / seconds * 100
        path = where / f"head1-{name}.txt"
        if not path.exists():
            print(f"  py-spy gave nothing for the {name}: {err.strip()[-300:]}")
            continue
        result[name] = summarise(path, used)
    return result


def summarise(path: Path, cpu_pct: float, top: int = 25) -> dict:
    """Self and inclusive shares of a collapsed-stack file (`a;b;c N` per line), of the
    samples NOT waiting in the event loop's selector (py-spy --idle records every sample;
    its own guess of which threads are idle misses most of these short bursts), and of
    the main thread only (worker threads idle in their queues)."""
    selfc: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = waiting = other = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = [f for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        if not any("_run_module_as_main" in f or "<module>" in f for f in frames[:3]):
            other += count                         # a worker thread
            continue
        if frames[-1].startswith(("EpollSelector.select", "select (", "BaseSelector.select")):
            waiting += count
            continue
        total += count
        selfc[_short(frames[-1])] += count
        for f in {_short(f) for f in frames}:
            incl[f] += count
    if not total:
        print(f"\n  {path.name}: no sample outside the selector")
        return {}
    print(f"\n  {path.name}: {total} samples of the main thread outside the selector, {waiting} in it, {other} "
          f"in other threads ({cpu_pct:.2f} % of a core during the recording; shares below are of the first)")
    print(f"    {'self %':>7} {'incl %':>7}  function (file:line)")
    for name, n in selfc.most_common(top):
        print(f"    {100 * n / total:7.1f} {100 * incl[name] / total:7.1f}  {name}")
    print("    top inclusive:")
    for name, n in incl.most_common(top):
        print(f"    {100 * selfc[name] / total:7.1f} {100 * n / total:7.1f}  {name}")
    return {"samples": total, "cpu_pct": cpu_pct,
            "self": {k: v / total for k, v in selfc.most_common(60)} if total else {},
            "inclusive": {k: v / total for k, v in incl.most_common(60)} if total else {}}


def _short(frame: str) -> str:
    """'func (path/to/file.py:123)' -> 'func (file.py)' without the line: one entry per function."""
    m = re.match(r"(.*) \((.*?):?(\d*)\)$", frame)
    if not m:
        return frame
    func, path = m.group(1), m.group(2)
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{func} ({short})"


# ======================================================================================
# The loaded run.
# ======================================================================================

def lan_addresses(count: int) -> list[tuple[str, str]]:
    """(lan_a, lan_b) of count // 2 nodes: 10.72.x.y and 10.73.x.y."""
    return [(f"10.72.{i // 250}.{i % 250 + 1}", f"10.73.{i // 250}.{i % 250 + 1}") for i in range(count // 2)]


def build_targets(env: Env, args: argparse.Namespace) -> list[str]:
    """The LAN targets on node1's loopback, routed through node1 from both heads; the
    public targets' extra addresses on the NMS namespace's public link. Returns the
    public targets."""
    c = env.c
    nodes = lan_addresses(args.lan_targets)
    lines = [f"addr add {a}/32 dev lo" for pair in nodes for a in pair]
    _batch(c.ns("node1"), lines)
    for head in HEADS:
        _batch(c.ns(head), [f"route add 10.72.0.0/16 via {c.addr('node1', 'lana')}",
                            f"route add 10.73.0.0/16 via {c.addr('node1', 'lanb')}"])
    public = [c.addr("client", "pub"), c.addr("nms", "pub")]
    extra = [f"10.71.0.{201 + i}" for i in range(max(0, args.public_targets - 2))]
    if extra:
        _batch(c.ns("nms"), [f"addr add {a}/24 dev pub" for a in extra])
    return (public + extra)[:args.public_targets]


def _batch(ns: str, commands: list[str]) -> None:
    p = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n",
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"ip -n {ns} -batch failed: {p.stderr[:500]}")


def loaded_pair(env: Env, args: argparse.Namespace, public: list[str]) -> Any:
    from tests.scenarios.hapair import HaPair
    services = "".join(
        f"""
        [[services]]
        index = {i}
        name = "svc{i:03d}"
        check_type = "tcp"
        check = "127.0.0.1:{TCP_PORT}"
        interval_ms = {args.service_interval_ms}
        active_only = false
        recovery = "notify-only"
        """ for i in range(1, args.services + 1))
    nodes = "".join(f'[[nodes]]\nname = "n{i:04d}"\nlan_a = "{a}"\nlan_b = "{b}"\n'
                    for i, (a, b) in enumerate(lan_addresses(args.lan_targets), 1))
    failover = ""
    if public:
        failover = ("[failover]\npublic_targets = [" + ", ".join(f'"{a}"' for a in public) + "]\n"
                    f"public_probe_interval_ms = {args.public_probe_ms}\n")
    work = env.work / "loaded"
    work.mkdir()
    return HaPair(env.c, work, interval_ms=args.interval_ms, dead_ms=args.dead_ms, initdead_ms=2000,
                  auto_failback=False, services={h: services for h in HEADS}, env=daemon_env(args),
                  timing_toml=(f"lan_poll_interval_ms = {args.lan_poll_ms}\n"
                               f"lan_down_after_ms = {max(3 * args.lan_poll_ms, 300)}\n"),
                  extra_toml=nodes + failover)


class Instruments:
    """bench_failover.py's echo responders (both heads) and prober (client), real-time."""

    def __init__(self, env: Env, seconds: float) -> None:
        sys.path.insert(0, str(BENCH))
        import bench_failover as bf
        self.bf = bf
        self.env = env
        self.me = str(BENCH / "bench_failover.py")
        for head in HEADS:
            lines = bf.Lines(self._helper(head, "echo", "--name", head, "--port", str(bf.ECHO_PORT),
                                          "--max-s", f"{seconds:.0f}"))
            if not lines.wait_for(lambda d: d.get("event") == "ready", 20):
                raise RuntimeError(f"echo responder did not start in {head}")

    def _helper(self, host: str, *argv: str) -> subprocess.Popen:
        return self.env.c.popen(host, "chrt", "-f", str(INSTRUMENT_PRIO), sys.executable, self.me,
                                "--helper", *argv, stdout=subprocess.PIPE, text=True, bufsize=1)

    def prober(self, old: str, new: str) -> Any:
        bf = self.bf
        p = bf.Lines(self._helper("client", "probe", "--port", str(bf.ECHO_PORT), "--interval-ms", str(PROBE_MS),
                                  "--old", old, "--new", new, "--max-s", f"{KILL_TIMEOUT_S + 5:.0f}",
                                  "--tail-s", "0.05", "--warm", "25"))
        if not p.wait_for(lambda d: d.get("event") == "warm", 10):
            p.proc.kill()
            raise RuntimeError(f"the client got no steady replies from {old} on the alias")
        return p


def log_lines(pair: Any, marker: str) -> list[tuple[float, str, str]]:
    """(wall time, head, line) of every line of the daemons' logs that holds marker."""
    out = []
    for log in pair.logs:
        if not log.exists():
            continue
        head = log.name.split("-")[0]
        for line in log.read_text(errors="replace").splitlines():
            if marker not in line:
                continue
            try:
                stamp, msec = line[:23].split(",")
                wall = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(msec) / 1000
            except ValueError:
                continue
            out.append((wall, head, line[24:260]))
    return sorted(out)


def count_in_logs(pair: Any, text: str) -> int:
    return sum(log.read_text(errors="replace").count(text) for log in pair.logs if log.exists())


class Loaded:
    """The loaded run: the pair, its load, the kills, and what was seen."""

    def __init__(self, env: Env, args: argparse.Namespace) -> None:
        self.env = env
        self.args = args
        self.pair: Any = None
        self.incidents: list[str] = []
        self.windows: list[list[float]] = []      # [from, to]: kills and restarts, holders not judged

    def alive(self, head: str) -> bool:
        return self.pair.procs[head].poll() is None

    def settle(self, head: str, limit: float = 30) -> tuple[bool, float]:
        """Until `head` (just started) is standby and its peer alone holds the alias."""
        peer = "head2" if head == "head1" else "head1"
        t = time.monotonic()
        while time.monotonic() < t + limit:
            if not self.alive(head):
                return False, time.monotonic() - t
            if self.env.role(self.pair, head) == "standby" and self.env.holders(self.pair) == {peer}:
                return True, time.monotonic() - t
            time.sleep(0.2)
        return False, time.monotonic() - t

    def revive(self) -> None:
        """A daemon that stopped by itself (not killed here) is an incident: say so, start
        it again and let it settle (a window in which the holders are not judged)."""
        for head in HEADS:
            if self.alive(head):
                continue
            code = self.pair.procs[head].returncode
            self.incidents.append(f"{time.strftime('%H:%M:%S')} the {head} daemon had stopped by itself "
                                  f"(exit code {code}); started again")
            print(f"  INCIDENT: {self.incidents[-1]}", flush=True)
            window = [time.monotonic(), float("inf")]
            self.windows.append(window)
            self.pair.start(head)
            ok, took = self.settle(head)
            if not ok:
                self.incidents.append(f"{head} restarted but not standby with its peer holding within {took:.0f} s")
            time.sleep(SETTLE_S)
            window[1] = time.monotonic()

    def single_holder(self, limit: float = 10) -> str | None:
        t = time.monotonic() + limit
        while time.monotonic() < t:
            held = self.env.holders(self.pair)
            if len(held) == 1:
                return next(iter(held))
            time.sleep(0.1)
        return None


KILL_STAGES = (("path down", "HB_PATH_DOWN"), ("peer dead", "HEAD_DOWN"), ("taking over", "-> taking_over"),
               ("active", "-> active"))


def kill_stages(pair: Any, survivor: str, wall_kill: float) -> dict[str, float]:
    """From the survivor's log: each step of its takeover, in ms after the kill (the log
    has millisecond time stamps)."""
    out: dict[str, float] = {}
    for name, marker in KILL_STAGES:
        hit = next((w for w, h, _line in log_lines(pair, marker)
                    if h == survivor and wall_kill - 0.002 <= w <= wall_kill + TAKEOVER_WINDOW_S), None)
        if hit is not None:
            out[name] = round((hit - wall_kill) * 1000, 1)
    return out


def run_loaded(env: Env, args: argparse.Namespace) -> dict:
    c = env.c
    run_s = args.minutes * 60
    budget = run_s + args.configured_seconds + 900      # bound of every helper's lifetime
    public = build_targets(env, args)
    listeners = []
    for head in HEADS:
        proc = c.popen(head, sys.executable, "-c", _LISTENER, str(TCP_PORT), f"{budget:.0f}",
                       stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"TCP listener did not start in {head}")
        listeners.append(proc)
    run = Loaded(env, args)
    pair = run.pair = loaded_pair(env, args, public)
    out: dict[str, Any] = {"interval_ms": args.interval_ms, "dead_ms": args.dead_ms, "services": args.services,
                           "service_interval_ms": args.service_interval_ms, "lan_targets": args.lan_targets,
                           "lan_poll_ms": args.lan_poll_ms, "public_targets": public,
                           "public_probe_ms": args.public_probe_ms, "walkers": args.walkers,
                           "minutes": args.minutes, "load_start": loadavg()}
    print(f"\nloaded run at {args.interval_ms} ms / {args.dead_ms} ms: {args.services} TCP checks per head every "
          f"{args.service_interval_ms} ms, {args.lan_targets} LAN targets every {args.lan_poll_ms} ms, "
          f"public targets {', '.join(public) or 'none'} every {args.public_probe_ms} ms, {args.walkers} walkers, "
          f"{args.minutes:g} min, {args.kills} kills; load average {loadavg()}", flush=True)
    walkers: list[subprocess.Popen] = []
    stop = threading.Event()
    samples: list[tuple[float, frozenset[str]]] = []
    sampler = None
    tracker: CpuTracker | None = None
    wall_up = float("inf")
    wall_end = float("inf")
    kills: list[dict] = []
    stretches: list[dict] = []                   # between kills: cpu, gaps, loop lag

    def stretch(cpu: Cpu | None) -> dict:
        st: dict[str, Any] = {"cpu": cpu.read() if cpu else None, "lag_ms": {}, "gap_ms": {}}
        for head in HEADS:
            lag = env.get(head, LOOP_LAG_MAX)
            st["lag_ms"][head] = int(lag) / 1000 if lag.isdigit() else None
            gaps = env.gaps(head)
            st["gap_ms"][head] = max(gaps) / 1000 if gaps else None
        return st

    def new_cpu() -> Cpu | None:
        try:
            return Cpu(pair)
        except (AssertionError, OSError) as exc:   # a head without its processes
            print(f"  (cannot follow the CPU now: {exc})")
            return None
    try:
        t = time.monotonic()
        pair.start_both()
        wall_up = time.time()         # takeovers and releases from here on are judged
        print(f"  pair up in {time.monotonic() - t:.1f} s (head1 active)", flush=True)

        def sample() -> None:
            deadline = time.monotonic() + budget
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    samples.append((time.monotonic(), frozenset(env.holders(pair))))
                except Exception:  # noqa: BLE001 - a failed sample is a missing sample
                    pass
                stop.wait(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        inst = Instruments(env, budget)
        time.sleep(3)
        for head in HEADS:
            env.reset(head)
        cpu = new_cpu()
        time.sleep(args.configured_seconds)
        st = stretch(cpu)
        out["configured"] = st
        if st["cpu"]:
            print(f"  configured, no walkers, {args.configured_seconds:.0f} s: cpu {fmt_cpu(st['cpu'])}; "
                  f"loop lag max {st['lag_ms']} ms; worst heartbeat gap {st['gap_ms']} ms; load {loadavg()}",
                  flush=True)
        walkers = env.walkers(args.walkers, run_s + 120)
        tracker = CpuTracker(pair)
        t_start = time.monotonic()
        wall_minus_mono = time.time() - time.monotonic()
        for head in HEADS:
            env.reset(head)
        spacing = run_s / max(args.kills, 1)
        for k in range(args.kills):
            due = t_start + (k + 0.5) * spacing
            time.sleep(max(0.0, due - time.monotonic()))
            rec: dict[str, Any] = {"kill": k + 1, "load": loadavg(), "t": time.monotonic() - t_start}
            if time.monotonic() > t_start + run_s:     # incidents took the time: the run stays bounded
                rec["error"] = "not done: the run's time was up"
                kills.append(rec)
                continue
            stretches.append(stretch(None))
            run.revive()
            active = run.single_holder()
            if active is None:
                rec["error"] = f"no single holder of the alias within 10 s ({sorted(env.holders(pair))})"
                kills.append(rec)
                print(f"  kill {k + 1:2}/{args.kills}: skipped, {rec['error']}", flush=True)
                continue
            standby = "head2" if active == "head1" else "head1"
            rec["killed"] = active
            prober = None
            try:
                prober = inst.prober(active, standby)
                t_kill = time.monotonic()
                pair.signal(active, signal.SIGKILL)
                rec["wall_kill"] = t_kill + wall_minus_mono
                window = [t_kill, float("inf")]
                run.windows.append(window)
                done = prober.wait_for(lambda d: d.get("event") == "done", KILL_TIMEOUT_S + 10)
                if done is None:
                    raise RuntimeError("the prober did not report")
                first = next((r for r in done["replies"] if r[2] >= t_kill and r[3] == standby), None)
                if first is None:
                    raise RuntimeError(f"no reply from {standby} within {KILL_TIMEOUT_S + 5:.0f} s"
                                       + ("" if run.alive(standby) else f" (the {standby} daemon had stopped)"))
                rec["served_ms"] = (first[2] - t_kill) * 1000
                after = [r[2] for r in done["replies"] if t_kill <= r[2] <= first[2]]
                gaps = [b - a for a, b in zip([t_kill] + after, after)]
                rec["silence_ms"] = max(gaps, default=0.0) * 1000
            except Exception as exc:  # noqa: BLE001 - a failed kill is reported, the run goes on
                rec["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                if prober is not None and prober.proc.poll() is None:
                    prober.proc.kill()
                    prober.proc.wait(5)
            if "wall_kill" in rec:
                rec["stages_ms"] = kill_stages(pair, standby, rec["wall_kill"])
                try:
                    pair.procs[active].wait(10)
                except subprocess.TimeoutExpired:
                    pass
                pair.start(active)
                ok, took = run.settle(active)
                rec["restart_to_standby_s"] = took
                if not ok:
                    rec["note"] = f"{active} not standby with {standby} the only holder within {took:.0f} s"
                time.sleep(SETTLE_S)
                run.windows[-1][1] = time.monotonic()
            kills.append(rec)
            served = f"{rec['served_ms']:.1f} ms" if "served_ms" in rec else "FAILED " + rec.get("error", "")
            stages = ", ".join(f"{n} {v:.0f}" for n, v in rec.get("stages_ms", {}).items())
            print(f"  kill {k + 1:2}/{args.kills} [{rec['t']:5.0f}s] {active}: standby serves the client after "
                  f"{served}" + (f" (its log, ms after the kill: {stages})" if stages else "")
                  + (f", restarted daemon standby after {rec['restart_to_standby_s']:.1f} s"
                     if "restart_to_standby_s" in rec else "")
                  + (f" ({rec['note']})" if rec.get("note") else "") + f"; load {rec['load']}", flush=True)
            for head in HEADS:
                env.reset(head)
        time.sleep(max(0.0, t_start + run_s - time.monotonic()))
        run.revive()
        stretches.append(stretch(None))
        out["run_s"] = time.monotonic() - t_start
        out["load_end"] = loadavg()
        wall_end = time.time()        # the stop at the end hands over: not judged
        tracker.stop()
        out["loaded_cpu"] = tracker.total(run.windows, t_start, time.monotonic())
        out["loaded_cpu_all"] = tracker.total([], t_start, time.monotonic())
    finally:
        stop.set()
        if tracker is not None:
            tracker.stop()
        if sampler is not None:
            sampler.join(5)
        stop_all(walkers)
        pair.stop_all()
        stop_all(listeners)
    return report_loaded(run, out, kills, stretches, samples, wall_up, wall_end)


def report_loaded(run: Loaded, out: dict, kills: list[dict], stretches: list[dict],
                  samples: list[tuple[float, frozenset[str]]], wall_up: float, wall_end: float) -> dict:
    pair, args = run.pair, run.args
    # -- false failovers: takeovers and releases that no kill explains ------------------------
    expected = [(k["wall_kill"], "head2" if k["killed"] == "head1" else "head1") for k in kills if "wall_kill" in k]
    false, used = [], set()
    for wall, head, line in log_lines(pair, "-> taking_over"):
        if not wall_up <= wall <= wall_end or "ROLE_CHANGED" not in line:
            continue
        match = next((i for i, (w, h) in enumerate(expected)
                      if i not in used and h == head and w <= wall <= w + TAKEOVER_WINDOW_S), None)
        if match is None:
            false.append(f"{time.strftime('%H:%M:%S', time.localtime(wall))} {head}: {line}")
        else:
            used.add(match)
    missing = len(expected) - len(used)
    releases = [f"{time.strftime('%H:%M:%S', time.localtime(w))} {h}: {line}"
                for w, h, line in log_lines(pair, "active -> releasing")
                if wall_up <= w <= wall_end and "ROLE_CHANGED" in line]

    def in_window(t: float) -> bool:
        return any(a <= t <= b for a, b in run.windows)
    judged = [(t, held) for t, held in samples if not in_window(t)]
    not_one = [(t, sorted(held)) for t, held in judged if len(held) != 1]
    moves = sum(1 for (t0, a), (t1, b) in zip(judged, judged[1:])
                if len(a) == 1 and len(b) == 1 and a != b and not any(t0 <= w[0] <= t1 for w in run.windows))
    served = [k["served_ms"] for k in kills if "served_ms" in k]
    out.update(kills=kills, stretches=stretches, incidents=run.incidents, false_failovers=false,
               missing_takeovers=missing, releases_not_by_kills=releases,
               samples=len(samples), samples_judged=len(judged), samples_not_one_holder=len(not_one),
               samples_not_one_examples=not_one[:10], holder_moves_outside_kills=moves,
               hb_silent=count_in_logs(pair, "fcaps.fault.heartbeat.monitor: the heartbeat process has sent nothing for"),
               hb_exited=count_in_logs(pair, "the heartbeat process exited"),
               hb_start_failed=count_in_logs(pair, "cannot start a new heartbeat process"),
               fenced=count_in_logs(pair, "the daemon has not answered"),
               bug=BUG_MARKER in pair.log_text(), tracebacks=count_in_logs(pair, "Traceback"))
    print(f"\nloaded run, {out.get('run_s', 0) / 60:.1f} min at {args.interval_ms} ms / {args.dead_ms} ms "
          f"(load average {out['load_start']} at the start, {out.get('load_end', '?')} at the end):")
    print(f"  false failovers (takeovers no kill explains): {len(false)}" + "".join(f"\n    {f}" for f in false))
    print(f"  releases by an active head that no kill explains: {len(releases)}"
          + "".join(f"\n    {r}" for r in releases[:10]))
    if missing:
        print(f"  kills without the survivor's takeover logged within {TAKEOVER_WINDOW_S:.0f} s: {missing}")
    print(f"  holder samples outside the kill windows (every 100 ms): {len(judged)}; not exactly one holder: "
          f"{len(not_one)}" + (f" (e.g. {not_one[:3]})" if not_one else "")
          + f"; the holder changed between two of them without a kill: {moves}")
    print(f"  heartbeat process found silent by its daemon: {out['hb_silent']}, exited: {out['hb_exited']}, a new "
          f"one failed to start: {out['hb_start_failed']}; heartbeat processes that fenced their daemon: "
          f"{out['fenced']}; daemons that stopped by themselves: {len(run.incidents)}; tracebacks in the logs: "
          f"{out['tracebacks']}; bug marker: {'YES' if out['bug'] else 'no'}")
    for inc in run.incidents:
        print(f"    {inc}")
    if served:
        out["served"] = {"n": len(served), "p50": percentile(served, 50), "p90": percentile(served, 90),
                         "p99": percentile(served, 99), "max": max(served), "min": min(served)}
        s = out["served"]
        print(f"  kill -> client served by the standby, {s['n']} kills (probe every {PROBE_MS} ms): p50 "
              f"{s['p50']:.1f} ms, p90 {s['p90']:.1f} ms, p99 {s['p99']:.1f} ms, max {s['max']:.1f} ms, "
              f"min {s['min']:.1f} ms (nearest rank; with fewer than 100 kills p99 is the max or next to it)")
        print(f"  all: {', '.join(f'{v:.0f}' for v in served)}")
    failed = [k for k in kills if "served_ms" not in k]
    if failed:
        print(f"  failed or skipped kills: {len(failed)}: " + "; ".join(k.get("error", "?") for k in failed))
    staged = [k for k in kills if k.get("stages_ms")]
    if staged:
        print("  the survivor's steps, ms after the kill (median [min..max] over the kills; its log, 1 ms resolution):")
        for name, _marker in KILL_STAGES:
            v = sorted(k["stages_ms"][name] for k in staged if name in k["stages_ms"])
            if v:
                print(f"    {name:12} {v[len(v) // 2]:6.0f} [{v[0]:.0f}..{v[-1]:.0f}]")
    restarts = [k["restart_to_standby_s"] for k in kills if "restart_to_standby_s" in k]
    if restarts:
        print(f"  killed daemon restarted until standby: median {sorted(restarts)[len(restarts) // 2]:.1f} s, "
              f"max {max(restarts):.1f} s")
    # -- CPU (whole run outside the kill windows), gaps and loop lag per stretch ---------------
    for key, what in (("loaded_cpu", "outside kills and restarts"), ("loaded_cpu_all", "restarts included")):
        for h, c in out.get(key, {}).items():
            print(f"  cpu under load, {h} ({c['seconds']:.0f} s {what}): daemon {c['daemon']:.1f} % "
                  f"+ heartbeat process {c['hb']:.1f} % = {c['total']:.1f} % of one core")

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"
    print("  worst heartbeat gap per stretch, head1 <- head2 / head2 <- head1 (ms; '-' = not read): "
          + ", ".join(f"{fmt(st['gap_ms'].get('head1'))}/{fmt(st['gap_ms'].get('head2'))}" for st in stretches))
    print("  worst loop lag of the daemons per stretch, head1 / head2 (ms): "
          + ", ".join(f"{fmt(st['lag_ms'].get('head1'))}/{fmt(st['lag_ms'].get('head2'))}" for st in stretches))
    return out


# ======================================================================================

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="phases: length of each phase (default 120)")
    p.add_argument("--phases", nargs="+", choices=("quiet", "walks", "junk"), default=["quiet", "walks", "junk"],
                   help="phases: which to run, in this order (default all three)")
    p.add_argument("--interval-ms", type=int, help="default 20 (phases), 10 (--idle, --loaded)")
    p.add_argument("--dead-ms", type=int, help="default 60 (phases), 30 (--idle, --loaded)")
    p.add_argument("--idle", action="store_true", help="only the idle CPU of the bare pair (and --profile)")
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--idle-settle", type=float, default=5.0, help="after the pair is up, before measuring")
    p.add_argument("--profile", type=Path, help="--idle/--loaded: py-spy head1's two idle processes into DIR")
    p.add_argument("--profile-seconds", type=float, default=60.0)
    p.add_argument("--cprofile", type=Path, help="--idle/--loaded: head1's idle daemon and heartbeat process "
                   "under cProfile (a separate pair), statistics into DIR")
    p.add_argument("--idle-timings", nargs="+", metavar="I/D",
                   help="idle CPU at each heartbeat interval / dead time (ms), e.g. 10/30 20/60 100/300; "
                        "the first is where --profile and --cprofile run")
    p.add_argument("--loaded", action="store_true", help="the loaded run (see the docstring)")
    p.add_argument("--no-idle", action="store_true", help="--loaded without the idle measurement first")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--services", type=int, help="default 200 (--loaded), 2000 (--scrape)")
    p.add_argument("--service-interval-ms", type=int, help="default 1000 (--loaded), 10000 (--scrape)")
    p.add_argument("--scrape", action="store_true", help="the views under scraping (bench/flood_scrape.py)")
    p.add_argument("--lan-targets", type=int, default=2000)
    p.add_argument("--lan-poll-ms", type=int, default=1000)
    p.add_argument("--public-targets", type=int, default=4, help="0: none (at most 32)")
    p.add_argument("--public-probe-ms", type=int, default=100)
    p.add_argument("--walkers", type=int, default=2 * WALKERS_PER_HEAD)
    p.add_argument("--configured-seconds", type=float, default=30.0)
    p.add_argument("--daemon-env", action="append", default=[], metavar="KEY=VALUE",
                   help="--idle/--loaded: extra environment for both daemons (and so their heartbeat "
                        "processes), e.g. PYTHONPATH of a module run at start-up; repeatable")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument("--keep-tmp", action="store_true", help="keep the configurations and daemon logs")
    args = p.parse_args(argv)
    fast = args.idle or args.loaded or args.scrape
    args.services = args.services or (2000 if args.scrape else 200)
    args.service_interval_ms = args.service_interval_ms or (10000 if args.scrape else 1000)
    args.interval_ms = args.interval_ms or (10 if args.idle or args.loaded else 20)
    args.dead_ms = args.dead_ms or (30 if args.idle or args.loaded else 60)
    if os.geteuid() != 0:
        print("bench_flood.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("ip", "nft", "snmpbulkwalk", "snmpset", "chrt"):
        if not shutil.which(tool):
            print(f"missing: {tool}", file=sys.stderr)
            return 2
    sys.path.insert(0, str(REPO))
    from tests.scenarios.netns import Cluster


    unwind_on_signals()

    work = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    cluster = Cluster(prefix=f"bf{os.getpid() % 10000}")
    if any("=" not in item for item in args.daemon_env):
        print("--daemon-env takes KEY=VALUE", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"argv": sys.argv, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                               "load_start": loadavg()}
    try:
        with cluster:
            env = Env(cluster, work)
            print(f"bench_flood ({results['started']}, {os.cpu_count()} CPUs, {os.uname().release}, "
                  f"load average {results['load_start']})", flush=True)
            if args.idle or (args.loaded and not args.no_idle):
                results["idle"] = run_idle(env, args)
            if args.loaded:
                results["loaded"] = run_loaded(env, args)
            if args.scrape:
                sys.path.insert(0, str(BENCH))
                from flood_scrape import run_scrape
                results.update(run_scrape(env, args))
            if not fast:
                results.update(run_phases(env, args))
            results["load_end"] = loadavg()
            print(f"\nload average at the end {results['load_end']}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
        return 0
    finally:
        cluster.teardown()
        if args.keep_tmp:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
