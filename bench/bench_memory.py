"""Where the daemon's resident memory goes.

Three parts, each in fresh processes:

* the real daemon (`python -m haoscar_snmp run`), started with the demo configuration
  (the embedded one, its ports moved to free ones) and with N services in the shape
  bench_snmp.py uses (v2c read-only on loopback, no web panel, no AgentX, the services
  disabled); once its status socket listens and it has settled (3 s, no request sent),
  its VmRSS, VmHWM, RssAnon and RssFile from /proc/PID/status, and what is resident per
  mapping (/proc/PID/smaps: the heap, each shared library); each configuration is
  started `--reps` times (3) and the median shown;
* the same daemon under tracemalloc (`--tracemalloc`): the Python allocations still held
  once it is ready, grouped by package (site-packages), by the standard library, and by
  file for the project's own modules; then grouped by the innermost line of the
  project's code on each allocation's stack (what each part of the daemon costs, its
  imports included); tracemalloc's own overhead is left out, so these
  figures are smaller than the resident size (which also holds code, shared libraries
  and the allocator's free space);
* import by import, in a fresh interpreter: the VmRSS and module count that each step
  of the daemon's imports adds, in the order given (what is already loaded by an earlier
  step is not counted again).

Nothing here passes or fails on a number. Needs no root; the daemon listens on
loopback only, on ports picked free at the start, and everything lives in a temporary
directory that is removed at the end.

    .venv/bin/python bench/bench_memory.py                        # demo and 2,000 services
    .venv/bin/python bench/bench_memory.py --services 0 2000 5000 --tracemalloc
    .venv/bin/python bench/bench_memory.py --imports-only
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "haoscar_snmp" / "config" / "default.toml"
READY_TIMEOUT_S = 120.0
SETTLE_S = 3.0
STOP_TIMEOUT_S = 20.0
TRACE_TIMEOUT_S = 300.0   # grouping a snapshot of 64-frame tracebacks takes a while

# The daemon's imports, heaviest parts first as daemon.py reaches them.
IMPORT_STEPS = [
    "asyncio", "sqlite3", "pydantic", "haoscar_snmp.config.schema", "pyasn1.type.univ",
    "cryptography.hazmat.primitives.ciphers", "pysnmp.entity.engine", "haoscar_snmp.snmp.nocompiler",
    "haoscar_snmp.snmp.agent", "haoscar_snmp.snmp.notify", "apscheduler.schedulers.asyncio",
    "haoscar_snmp.core.scheduler", "fcaps.fault.takeover", "haoscar_snmp.views.server",
    "haoscar_snmp.daemon",
    # what only some configurations load: the SMTP client (at the first mail), the web
    # panel, AgentX; pysmi (never)
    "aiosmtplib", "aiohttp.web", "haoscar_snmp.views.web.server", "haoscar_snmp.snmp.agentx.session",
    "pysmi.compiler",
]

_IMPORT_CHILD = r"""
import importlib, json, sys
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
rows = [("(interpreter)", rss(), len(sys.modules))]
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:          # an older tree without this module
        rows.append((name + " (absent)", rss(), len(sys.modules)))
        continue
    rows.append((name, rss(), len(sys.modules)))
print(json.dumps(rows))
"""

# Runs the daemon under tracemalloc; SIGUSR1 writes the held allocations, grouped.
_TRACE_CHILD = r"""
import json, os, signal, sys, sysconfig, tracemalloc
tracemalloc.start(64)
out, repo = sys.argv[1], sys.argv[2]
site = sysconfig.get_paths()["purelib"] + os.sep
stdlib = sysconfig.get_paths()["stdlib"] + os.sep
def group(path):
    if path.startswith(site):
        return path[len(site):].split(os.sep)[0]
    if path.startswith(repo + os.sep):
        return path[len(repo) + 1:]
    if path.startswith(stdlib):
        return "(stdlib) " + path[len(stdlib):].split(os.sep)[0]
    return "(other) " + path
def caller(traceback):
    for frame in reversed(traceback):      # the most recent first
        if frame.filename.startswith(repo + os.sep):
            return f"{frame.filename[len(repo) + 1:]}:{frame.lineno}"
    return "(no project frame)"
def dump(signum, frame):
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    groups, callers = {}, {}
    for stat in snap.statistics("traceback"):
        key = group(stat.traceback[-1].filename)     # the most recent frame
        groups[key] = groups.get(key, 0) + stat.size
        key = caller(stat.traceback)
        callers[key] = callers.get(key, 0) + stat.size
    with open(out + ".tmp", "w") as f:
        json.dump({"groups": groups, "callers": callers, "modules": len(sys.modules),
                   "loaded": sorted({m.split(".")[0] for m in sys.modules})}, f)
    os.replace(out + ".tmp", out)
signal.signal(signal.SIGUSR1, dump)
from haoscar_snmp.__main__ import main
sys.exit(main(sys.argv[3:]))
"""


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(tmp: Path) -> Path:
    """The embedded demo configuration with its ports moved to free ones (16161 SNMP, 16162
    the trap receiver, 16180 the web panel) and IPv4 only."""
    text = DEMO.read_text()
    text = text.replace('listen = ["127.0.0.1:16161", "[::1]:16161"]', 'listen = ["127.0.0.1:16161"]')
    for old, new in (("16161", free_port()), ("16162", free_port()), ("16180", free_port(socket.SOCK_STREAM))):
        text = text.replace(old, str(new))
    path = tmp / "demo.toml"
    path.write_text(text)
    return path


def services_config(tmp: Path, count: int) -> Path:
    """bench_snmp.py's shape: one head, v2c read-only on loopback, `count` disabled services."""
    lines = ["[cluster]", 'name = "bench"', 'local_head = "head1"', "",
             "[[heads]]", 'name = "head1"', 'preferred_role = "primary"', "",
             "[snmp]", f'listen = ["127.0.0.1:{free_port()}"]', "",
             "[[snmp.communities]]", 'name = "public"', 'access = "read"', "",
             "[log]", 'level = "warning"', ""]
    for i in range(1, count + 1):
        lines += ["[[services]]", f'name = "bench-svc-{i:05d}"', 'check = "true"',
                  'restart = ""', 'recovery = "notify-only"', "enabled = false", ""]
    path = tmp / f"services-{count}.toml"
    path.write_text("\n".join(lines))
    return path


def proc_status(pid: int) -> dict[str, int]:
    """The memory lines of /proc/PID/status, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmData"):
                out[key] = int(value.split()[0])
    return out


def mappings(pid: int, top: int) -> list[tuple[str, int]]:
    """Resident KiB per mapped file (shared libraries, extension modules) and for the
    anonymous memory (the heap: Python objects), from /proc/PID/smaps; the largest first."""
    sizes: dict[str, int] = {}
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if not first.endswith(":"):            # a mapping's header: address perms offset dev inode [path]
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) == 6 else "(anonymous)"
                if name.startswith("[") and name not in ("[heap]", "[stack]"):
                    name = "(anonymous)"
                name = name if name.startswith(("(", "[")) else os.path.basename(name)
            elif first == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(line.split()[1])
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:top]


def status_listens(path: Path) -> bool:
    """Whether the daemon's status socket takes a connection (it is the last part started).
    Nothing is asked: a snapshot of thousands of rows would itself grow the heap."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(str(path))
            return True
    except OSError:
        return False


class Daemon:
    """One daemon run in `tmp`: started, waited for, measured, stopped (also on failure)."""

    def __init__(self, tmp: Path, config: Path, label: str, trace: bool) -> None:
        self.state = tmp / f"state-{label}"
        self.trace_out = tmp / f"trace-{label}.json"
        self.log_path = tmp / f"{label}.log"
        args = ["run", "-c", str(config), "--state-dir", str(self.state)]
        if trace:
            cmd = [sys.executable, "-c", _TRACE_CHILD, str(self.trace_out), str(REPO), *args]
        else:
            cmd = [sys.executable, "-m", "haoscar_snmp", *args]
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp, env=env,
                                     start_new_session=True)

    def wait_ready(self) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < READY_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise SystemExit(f"the daemon exited with {self.proc.returncode}:\n"
                                 f"{self.log_path.read_text(errors='replace')[-3000:]}")
            if status_listens(self.state / "status.sock"):
                return time.monotonic() - t0
            time.sleep(0.2)
        raise SystemExit(f"the daemon did not listen on its status socket within {READY_TIMEOUT_S:.0f} s")

    def traced(self) -> dict:
        self.proc.send_signal(signal.SIGUSR1)
        t0 = time.monotonic()
        while time.monotonic() - t0 < TRACE_TIMEOUT_S and not self.trace_out.exists():
            time.sleep(0.2)
        return json.loads(self.trace_out.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def measure_daemon(tmp: Path, config: Path, label: str, trace: bool) -> dict:
    """One start of the daemon, measured once it has settled, then stopped."""
    daemon = Daemon(tmp, config, label, trace)
    try:
        ready_s = daemon.wait_ready()
        time.sleep(SETTLE_S)
        result = {"label": label, "ready_s": ready_s, **proc_status(daemon.proc.pid),
                  "mappings": mappings(daemon.proc.pid, 12)}
        if trace:
            result["trace"] = daemon.traced()
        return result
    finally:
        daemon.stop()


def import_steps(steps: list[str]) -> list[tuple[str, int, int]]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _IMPORT_CHILD, *steps], capture_output=True, text=True,
                         check=True, cwd=REPO, env=env, timeout=120).stdout
    return json.loads(out)


def mib(kib: int) -> str:
    return f"{kib / 1024:6.1f}"


def print_daemon(result: dict, top: int) -> None:
    spread = result.get("spread")
    reps = f" (median of {len(spread)}: {' '.join(mib(k).strip() for k in spread)})" if spread else ""
    print(f"{result['label']:>16}: VmRSS {mib(result['VmRSS'])} MiB{reps}  (anon {mib(result['RssAnon'])}, "
          f"file {mib(result['RssFile'])}; peak {mib(result['VmHWM'])}; ready in {result['ready_s']:.1f} s)")
    if not result.get("trace"):
        print(f"{'':>18}resident by mapping: " + ", ".join(f"{name} {kib / 1024:.1f}"
                                                          for name, kib in result["mappings"]))
    trace = result.get("trace")
    if trace:
        groups = sorted(trace["groups"].items(), key=lambda kv: -kv[1])
        total = sum(size for _, size in groups)
        print(f"{'':>18}Python allocations held (tracemalloc): {total / 2**20:.1f} MiB, "
              f"{trace['modules']} modules loaded; the largest:")
        for name, size in groups[:top]:
            print(f"{'':>20}{size / 2**20:6.2f} MiB  {name}")
        print(f"{'':>18}the same, by the innermost line of the project's own code on the allocation's stack "
              f"(imports are charged to the line that imports):")
        for name, size in sorted(trace["callers"].items(), key=lambda kv: -kv[1])[:top]:
            print(f"{'':>20}{size / 2**20:6.2f} MiB  {name}")
        print(f"{'':>18}top-level packages loaded: {' '.join(m for m in trace['loaded'] if not m.startswith('_'))}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--services", type=int, nargs="*", default=[2000],
                   help="service counts to run in bench_snmp.py's shape (default 2000)")
    p.add_argument("--no-demo", action="store_true", help="skip the demo configuration")
    p.add_argument("--reps", type=int, default=3, help="starts of each configuration; the median is shown")
    p.add_argument("--tracemalloc", action="store_true", help="also run each under tracemalloc, by package")
    p.add_argument("--top", type=int, default=25, help="groups shown under tracemalloc (default 25)")
    p.add_argument("--imports-only", action="store_true", help="only the import-by-import table")
    args = p.parse_args(argv)

    print(f"python {sys.version.split()[0]}, {sys.executable}")
    print("\nimport by import (fresh interpreter; VmRSS after each step, what it adds):")
    prev_kib, prev_mods = 0, 0
    for name, kib, mods in import_steps(IMPORT_STEPS):
        print(f"  {name:42} {mib(kib)} MiB  +{(kib - prev_kib) / 1024:5.1f} MiB  +{mods - prev_mods:4d} modules")
        prev_kib, prev_mods = kib, mods
    if args.imports_only:
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as name:
        tmp = Path(name)
        runs = [] if args.no_demo else [("demo", demo_config(tmp))]
        runs += [(f"{n} services", services_config(tmp, n)) for n in args.services]
        print("\nthe daemon, once ready and settled (from /proc/PID/status):")
        for label, config in runs:
            results = sorted((measure_daemon(tmp, config, f"{label.replace(' ', '-')}-{rep}", trace=False)
                              for rep in range(args.reps)), key=lambda r: r["VmRSS"])
            median = dict(results[len(results) // 2], label=label, spread=[r["VmRSS"] for r in results])
            print_daemon(median, args.top)
        if args.tracemalloc:
            print("\nunder tracemalloc (its resident size includes tracemalloc's own bookkeeping):")
            for label, config in runs:
                print_daemon(measure_daemon(tmp, config, label.replace(" ", "-") + "-traced", trace=True),
                             args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
