#!/usr/bin/env python3
"""Service monitoring under load: 200 services checked every second, victims killed and restarted.

What it measures, on one single-head daemon (`python -m haoscar_snmp run -c FILE`, SNMP on
127.0.0.1 only, like tests/integration/harness.py) that checks, by default, 200 services
at `interval_ms = 1000`:

    50 command   `true` and `test -e FILE` (every check forks /bin/sh)
    40 tcp       connect to a TCP server
    40 udp       "ping" to a UDP echo server, expecting "ping" back
    40 http      GET of a small HTTP server (status 200)
    20 process   10 by pid file of the three servers above, 10 by process name
    10 victims   `tcp` check of their own port (each its own tests/integration/programs/
                 tcp_service.py), retry_threshold = 1, restart = the command that starts a
                 new tcp_service.py for that port in the background, restart-then-notify.

The other services have retry_threshold = 2, notify-only. `--services N` scales the mix.

The three servers run in processes of their own (this file run with `--helper`), so they
share no interpreter lock with the measurements; they count what they serve, which gives
the tcp, udp and http checks actually completed per second. Everything listens on
127.0.0.1 at free ports.

Once every service shows running(2) in haoscarServiceTable (net-snmp's `snmpbulkwalk` of
column 4), a warm-up of a few seconds, then the loop-lag maximum (and every counter) is
reset with an SNMPv3 SET of haoscarControlAction = resetCounters(4), and the window
starts (60 s, `--quick` 20 s). During the window:

* daemon CPU: utime+stime from /proc/PID/stat over the window, as % of one core, for the
  daemon process alone (all its threads) and with its reaped children (cutime+cstime:
  the check commands and the restart shells; a restarted tcp_service.py is not the
  daemon's child once its shell has exited, so its start-up is not in either figure);
* haoscarPerfLoopLag (worst loop lag of the last 10 s) read every second (median, max),
  and haoscarPerfLoopLagMax (worst since the reset) at the end;
* restart latency: every 2 s (+-0.5 s at random, so that kills land at every phase of the
  victims' check cadence) one victim, round robin, gets SIGKILL; the time from the
  kill until a NEW process of that victim is listening (its pid file names another, live
  process AND a TCP connect to its port succeeds), polled every 10 ms, bounded by 15 s;
  plus the restart counters of the victims (column 5, zeroed by the reset) at the end;
* the daemon's VmRSS and VmHWM at the end, the machine's CPU use and load average.

Before the daemon starts, the victims' start command is run by itself (`/bin/sh -c CMD`,
like the daemon's runner) several times and timed to listening the same way: the
restart command's own time. The aims, printed with MET / NOT MET:

* daemon CPU < 10 % of one core (the daemon alone, and with its children);
* loop lag < 10 ms (the maximum over the window);
* restart latency <= one check interval (1000 ms) + the restart command's own time
  (median of the calibration): a kill just after a check is seen at the next check.

It never fails on a number: a benchmark prints figures. Every process it starts (servers,
victims, the daemon, and victims the daemon started: this process is made a child
subreaper, so they stay its children) is killed by its process id at the end, also on an
error, Ctrl-C, SIGTERM or SIGHUP; the temporary directory is removed unless --keep-tmp.

Run from the repository root (no root needed; loopback only):
    .venv/bin/python bench/bench_services.py [--quick] [--window S] [--services N] [--json F]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchsignals import unwind_on_signals  # noqa: E402  (bench/ is on sys.path)
REPO = Path(__file__).resolve().parents[1]
TCP_SERVICE = REPO / "tests" / "integration" / "programs" / "tcp_service.py"
R = "1.3.6.1.4.1.32473.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
LOOP_LAG = f"{R}.1.12.11.0"          # haoscarPerfLoopLag, µs, worst of the last 10 s
LOOP_LAG_MAX = f"{R}.1.12.12.0"      # haoscarPerfLoopLagMax, µs, since start / resetCounters
CONTROL_ACTION = f"{R}.1.3.1.0"      # haoscarControlAction; 4 = resetCounters
SVC_ENTRY = f"{R}.1.8.1"             # haoscarServiceEntry; column 4 state, 5 restarts
RUNNING = 2
COMMUNITY = "public"
AUTH_KEY = "bench-services-auth-key"
PRIV_KEY = "bench-services-priv-key"

INTERVAL_MS = 1000
KILL_EVERY_S = 2.0
POLL_S = 0.010                       # restart detection poll
RESTART_BOUND_S = 15.0               # a restart not seen by then is counted as missed
AIM_CPU = 10.0                       # % of one core
AIM_LAG_MS = 10.0
LAG_SPAN_S = 10.0                    # haoscarPerfLoopLag: worst of the last 10 s
MIX = (("command", 50), ("tcp", 40), ("udp", 40), ("http", 40), ("process", 20), ("victim", 10))
HELPER_NAMES = {"tcp": "bench-tcp-tgt", "udp": "bench-udp-tgt", "http": "bench-http-tgt"}  # comm, <= 15
PR_SET_NAME, PR_SET_CHILD_SUBREAPER = 15, 36


# ======================================================================================
# The targets: `--helper KIND PORT PIDFILE COUNTFILE PARENT MAX_SECONDS` (stdlib only).
# ======================================================================================

def helper_main(kind: str, port: int, pidfile: str, countfile: str, parent: int, max_s: float) -> None:
    """A TCP accept-and-close server, a UDP echo server or an HTTP server on 127.0.0.1:PORT.
    Writes its pid once listening, its served count every 0.25 s; leaves when its parent
    is gone or after max_s seconds."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, HELPER_NAMES[kind].encode(), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    served = [0]
    lock = threading.Lock()

    def count() -> None:
        with lock:
            served[0] += 1

    if kind == "tcp":
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(128)

        def serve() -> None:
            while True:
                conn, _ = srv.accept()
                conn.close()
                count()
    elif kind == "udp":
        srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        srv.bind(("127.0.0.1", port))

        def serve() -> None:
            while True:
                data, addr = srv.recvfrom(2048)
                try:
                    srv.sendto(data, addr)
                except OSError:
                    pass
                count()
    else:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                count()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer.request_queue_size = 128
        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)

        def serve() -> None:
            httpd.serve_forever(poll_interval=0.5)

    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(pidfile + ".tmp", pidfile)
    threading.Thread(target=serve, daemon=True).start()
    end = time.monotonic() + max_s
    last = -1
    while time.monotonic() < end and os.getppid() == parent:
        with lock:
            n = served[0]
        if n != last:
            with open(countfile + ".tmp", "w") as f:
                f.write(f"{n}\n")
            os.replace(countfile + ".tmp", countfile)
            last = n
        time.sleep(0.25)
    os._exit(0)


# ======================================================================================
# Small helpers
# ======================================================================================

def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def free_port(kind: int, taken: set[int]) -> int:
    """A port free for both TCP and UDP on 127.0.0.1, not already handed out."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in taken:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == socket.SOCK_STREAM
                               else socket.SOCK_STREAM) as other:
                other.bind(("127.0.0.1", port))
        except OSError:
            continue
        taken.add(port)
        return port
    raise SystemExit("no free port found")


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...] (field 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime+stime, utime+stime+cutime+cstime) of a process, in seconds."""
    f = stat_fields(pid)
    if f is None:
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    own = (int(f[11]) + int(f[12])) / hz
    return own, own + (int(f[13]) + int(f[14])) / hz


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def alive(pid: int) -> bool:
    f = stat_fields(pid)
    return f is not None and f[0] not in ("Z", "X", "x")


def read_pid(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def reap(pid: int) -> None:
    """Collect a dead child (victims are our children: we are their subreaper)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(q * (len(s) - 1))))
    return s[k]


def ms(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x * 1000:.0f} ms"


# ======================================================================================
# The orchestrator
# ======================================================================================

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="haoscar-bench-svc-"))
        self.py = _python()
        self.profile: Path | None = args.profile.resolve() if args.profile else None
        self.ports: set[int] = set()
        self.helpers: dict[str, subprocess.Popen] = {}
        self.helper_port: dict[str, int] = {}
        self.daemon: subprocess.Popen | None = None
        self.snmp_port = 0
        self.logs: list = []
        self.victims: list[dict] = []
        self.kids: set[int] = set()          # every victim pid seen (for the teardown)
        self.mix: dict[str, int] = {}

    # -- processes ---------------------------------------------------------------------

    def ours(self, pid: int) -> bool:
        """A process this run started: its command line names our temporary directory."""
        try:
            return str(self.tmp).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    def start_helpers(self) -> None:
        for kind in ("tcp", "udp", "http"):
            port = free_port(socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM, self.ports)
            pidfile, countfile = self.tmp / f"{kind}.pid", self.tmp / f"{kind}.count"
            log = (self.tmp / f"{kind}.log").open("w")
            self.logs.append(log)
            self.helpers[kind] = subprocess.Popen(
                [self.py, str(Path(__file__).resolve()), "--helper", kind, str(port), str(pidfile),
                 str(countfile), str(os.getpid()), str(self.args.window + 900)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp)
            self.helper_port[kind] = port
        deadline = time.monotonic() + 20
        for kind, proc in self.helpers.items():
            while not (self.tmp / f"{kind}.pid").exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the {kind} server did not start:\n"
                                     f"{(self.tmp / f'{kind}.log').read_text()[-2000:]}")
                time.sleep(0.02)

    def victim_command(self, port: int, pidfile: Path) -> str:
        return (f"{shlex.quote(self.py)} {shlex.quote(str(TCP_SERVICE))} {port} "
                f"{shlex.quote(str(pidfile))} >/dev/null 2>&1 </dev/null &")

    def wait_listening(self, port: int, pidfile: Path, old_pid: int, t0: float,
                       bound: float = RESTART_BOUND_S) -> tuple[float | None, int]:
        """Seconds from t0 until the pid file names a live process other than old_pid and
        the port accepts a connection; polled every POLL_S, bounded. (None, 0) if not."""
        deadline = t0 + bound
        while time.perf_counter() < deadline:
            if old_pid:
                reap(old_pid)
            pid = read_pid(pidfile)
            if pid and pid != old_pid and alive(pid) and listening(port):
                self.kids.add(pid)
                return time.perf_counter() - t0, pid
            time.sleep(POLL_S)
        return None, 0

    def start_victim_now(self, port: int, pidfile: Path) -> tuple[float | None, int]:
        """The start command run as the daemon's runner runs it; time until listening."""
        old = read_pid(pidfile)
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", self.victim_command(port, pidfile)], check=False, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                       start_new_session=True)
        return self.wait_listening(port, pidfile, old, t0)

    def kill_pid(self, pid: int) -> None:
        if pid and self.ours(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def calibrate(self, n: int) -> list[float]:
        """The restart command's own time: start, time to listening, kill; n times."""
        port = free_port(socket.SOCK_STREAM, self.ports)
        pidfile = self.tmp / "calibration.pid"
        times = []
        for _ in range(n):
            dt, pid = self.start_victim_now(port, pidfile)
            if dt is not None:
                times.append(dt)
            self.kill_pid(pid)
            if pid:
                for _ in range(100):             # bounded: reaped within a second
                    reap(pid)
                    if not alive(pid):
                        break
                    time.sleep(0.01)
        return times

    def start_victims(self, n: int) -> None:
        for i in range(n):
            port = free_port(socket.SOCK_STREAM, self.ports)
            pidfile = self.tmp / "victims" / f"v{i + 1:02d}.pid"
            pidfile.parent.mkdir(exist_ok=True)
            self.victims.append({"port": port, "pidfile": pidfile, "name": f"victim-{i + 1:02d}"})
            dt, _ = self.start_victim_now(port, pidfile)
            if dt is None:
                raise SystemExit(f"victim {i + 1} did not start on port {port}")

    # -- the daemon ----------------------------------------------------------------------

    def write_config(self) -> Path:
        secrets = self.tmp / "secrets"
        secrets.mkdir(mode=0o700)
        for name, text in (("admin.auth", AUTH_KEY), ("admin.priv", PRIV_KEY)):
            (secrets / name).write_text(text + "\n")
            (secrets / name).chmod(0o600)
        (self.tmp / "exists").write_text("")
        self.snmp_port = free_port(socket.SOCK_DGRAM, self.ports)
        lines = [
            "# generated by bench/bench_services.py",
            "[cluster]", 'name = "bench"', 'local_head = "head1"', f'state_dir = "{self.tmp / "state"}"', "",
            "[[heads]]", 'name = "head1"', 'preferred_role = "primary"', "",
            "[snmp]", f'listen = ["127.0.0.1:{self.snmp_port}"]', "",
            "[[snmp.communities]]", f'name = "{COMMUNITY}"', 'access = "read"', "",
            "[[snmp.users]]", 'name = "admin"', 'auth_protocol = "sha256"',
            f'auth_key_file = "{secrets / "admin.auth"}"', 'priv_protocol = "aes128"',
            f'priv_key_file = "{secrets / "admin.priv"}"', 'access = "write"', "",
            "[log]", 'level = "info"', "",
        ]
        helper_pids = [self.tmp / f"{k}.pid" for k in ("tcp", "udp", "http")]
        names = list(HELPER_NAMES.values())
        index = 0
        kinds: dict[int, str] = {}
        for kind, count in self.mix.items():
            for j in range(count):
                index += 1
                kinds[index] = kind
                svc = {"index": index, "name": f"{kind}-{j + 1:03d}", "interval_ms": INTERVAL_MS}
                if kind == "command":
                    svc.update(check_type="command",
                               check="true" if j % 2 == 0 else f"test -e {self.tmp / 'exists'}")
                elif kind == "tcp":
                    svc.update(check_type="tcp", check=f"127.0.0.1:{self.helper_port['tcp']}")
                elif kind == "udp":
                    svc.update(check_type="udp", check=f"127.0.0.1:{self.helper_port['udp']}",
                               send="ping", expect="ping")
                elif kind == "http":
                    svc.update(check_type="http", check=f"http://127.0.0.1:{self.helper_port['http']}/health")
                elif kind == "process":
                    svc.update(check_type="process",
                               check=str(helper_pids[j // 2 % 3]) if j % 2 == 0 else names[j // 2 % 3])
                if kind == "victim":
                    v = self.victims[j]
                    v["index"] = index
                    svc.update(name=v["name"], check_type="tcp", check=f"127.0.0.1:{v['port']}",
                               retry_threshold=1, restart=self.victim_command(v["port"], v["pidfile"]),
                               restart_timeout_ms=10000, max_restarts=100,
                               # each victim is killed every len(victims) * KILL_EVERY_S seconds:
                               # the window never holds 100 restarts, and flapping is off so
                               # that repeated deliberate kills are never escalated
                               restart_window_s=max(1, int(len(self.victims) * KILL_EVERY_S / 2)),
                               flap_threshold=0, recovery="restart-then-notify")
                else:
                    svc.update(retry_threshold=2, recovery="notify-only")
                lines.append("[[services]]")
                for key, value in svc.items():
                    lines.append(f"{key} = {json.dumps(value)}")
                lines.append("")
        self.kinds = kinds
        path = self.tmp / "haoscar.toml"
        path.write_text("\n".join(lines))
        if any(len(self.victim_command(v["port"], v["pidfile"])) > 255 for v in self.victims):
            raise SystemExit("the restart command is longer than 255 characters (temporary directory path)")
        return path

    def start_daemon(self) -> None:
        cfg = self.write_config()
        check = subprocess.run([self.py, "-m", "haoscar_snmp", "check-config", "-c", str(cfg)],
                               check=False, capture_output=True, text=True, timeout=60, cwd=self.tmp)
        if check.returncode:
            raise SystemExit(f"generated config rejected:\n{check.stdout}{check.stderr}")
        log = (self.tmp / "daemon.log").open("w")
        self.logs.append(log)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        profile = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        self.daemon = subprocess.Popen([self.py, *profile, "-m", "haoscar_snmp", "run", "-c", str(cfg)],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.tmp, env=env, start_new_session=True)

    def daemon_log(self) -> str:
        p = self.tmp / "daemon.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def check_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is not None:
            raise SystemExit(f"the daemon exited with {self.daemon.returncode}:\n{self.daemon_log()[-3000:]}")

    # -- SNMP (net-snmp's tools, no MIB loaded: numeric OIDs) ---------------------------

    def snmp(self, tool: str, *args: str, v3: bool = False, wait: str = "2", retries: str = "1",
             timeout: float = 20.0) -> subprocess.CompletedProcess:
        """`tool [security] -t wait -r retries OPTIONS 127.0.0.1:PORT OIDS...`: options are the
        leading arguments that start with '-' (all of them take no separate value)."""
        sec = (["-v3", "-l", "authPriv", "-u", "admin", "-a", "SHA-256", "-A", AUTH_KEY, "-x", "AES",
                "-X", PRIV_KEY] if v3 else ["-v2c", "-c", COMMUNITY])
        opts = [a for a in args if a.startswith("-")]
        rest = [a for a in args if not a.startswith("-")]
        cmd = [tool, "-m", "", "-On", *sec, "-t", wait, "-r", retries, *opts,
               f"127.0.0.1:{self.snmp_port}", *rest]
        try:
            return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                                  env=dict(os.environ, MIBS=""))
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 124, "", "timed out")

    def get_ints(self, *oids: str) -> list[int | None]:
        r = self.snmp("snmpget", "-Oqv", *oids)
        vals = r.stdout.split() if r.returncode == 0 else []
        out: list[int | None] = []
        for i in range(len(oids)):
            try:
                out.append(int(vals[i]))
            except (IndexError, ValueError):
                out.append(None)
        return out

    def column(self, col: int) -> dict[int, int]:
        """{service index: value} of a haoscarServiceTable column."""
        r = self.snmp("snmpbulkwalk", "-Oq", "-Cr50", f"{SVC_ENTRY}.{col}")
        out = {}
        for line in r.stdout.splitlines():
            oid, _, value = line.partition(" ")
            if not oid.startswith(f".{SVC_ENTRY}.{col}."):
                continue
            try:
                out[int(oid.rsplit(".", 1)[1])] = int(value.strip())
            except (IndexError, ValueError):
                continue
        return out

    def wait_answering(self, timeout: float = 60.0) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self.check_daemon()
            r = self.snmp("snmpget", "-Oqv", SYS_UPTIME, wait="0.5", retries="0")
            if r.returncode == 0 and r.stdout.strip():
                return time.monotonic() - t0
            time.sleep(0.2)
        raise SystemExit(f"the daemon did not answer SNMP within {timeout:.0f}s:\n{self.daemon_log()[-3000:]}")

    def wait_all_running(self, total: int, timeout: float = 60.0) -> float:
        """Until snmpbulkwalk of column 4 shows `total` values, all running(2)."""
        t0 = time.monotonic()
        last = ""
        while total and time.monotonic() - t0 < timeout:
            self.check_daemon()
            r = self.snmp("snmpbulkwalk", "-Oqv", "-Cr50", f"{SVC_ENTRY}.4")
            vals = r.stdout.split()
            up = sum(1 for v in vals if v == str(RUNNING))
            last = f"{up}/{len(vals)} running"
            if len(vals) == total and up == total:
                return time.monotonic() - t0
            time.sleep(0.5)
        if not total:       # an empty table: a walk would run past it
            return 0.0
        states = self.column(4)
        bad = {i: s for i, s in states.items() if s != RUNNING}
        raise SystemExit(f"not every service is running after {timeout:.0f}s ({last}); not running "
                         f"(index: state): {dict(list(bad.items())[:20])}\n{self.daemon_log()[-3000:]}")

    def reset_counters(self) -> bool:
        r = self.snmp("snmpset", CONTROL_ACTION, "i", "4", v3=True)
        return r.returncode == 0

    def served(self) -> dict[str, int]:
        out = {}
        for kind in ("tcp", "udp", "http"):
            try:
                out[kind] = int((self.tmp / f"{kind}.count").read_text().strip())
            except (OSError, ValueError):
                out[kind] = 0
        return out

    # -- teardown ------------------------------------------------------------------------

    def teardown(self) -> list[int]:
        """Stop everything; returns the pids still found afterwards (should be none)."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # finish the clean-up
            signal.signal(sig, signal.SIG_IGN)
        if self.daemon is not None and self.daemon.poll() is None:
            try:
                self.daemon.terminate()
                try:
                    self.daemon.wait(10)
                except subprocess.TimeoutExpired:
                    self.daemon.kill()
                    self.daemon.wait(5)
            except Exception as exc:  # noqa: BLE001 - keep tearing the rest down
                print(f"teardown: stopping the daemon: {exc}", file=sys.stderr)
        for kind, proc in self.helpers.items():
            try:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
            except Exception as exc:  # noqa: BLE001
                print(f"teardown: stopping the {kind} server: {exc}", file=sys.stderr)
        left: list[int] = []
        for _ in range(3):                       # bounded sweeps
            pids = set(self.kids)
            pids |= {read_pid(v["pidfile"]) for v in self.victims}
            pids |= self.children_and_ours()
            pids.discard(0)
            for pid in pids:
                self.kill_pid(pid)
            time.sleep(0.1)
            for pid in pids:
                reap(pid)
            left = sorted(p for p in self.children_and_ours() if alive(p))
            if not left:
                break
        for log in self.logs:
            log.close()
        if left:
            print(f"teardown: processes still there: {left}", file=sys.stderr)
        if self.args.keep_tmp:
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return left

    def children_and_ours(self) -> set[int]:
        """Processes whose command line names our temporary directory (victims, servers,
        the daemon), whoever their parent is."""
        found = set()
        me = os.getpid()
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != me and self.ours(int(name)):
                found.add(int(name))
        return found


# ======================================================================================
# The run
# ======================================================================================

def scaled_mix(n: int) -> dict[str, int]:
    total = sum(c for _, c in MIX)
    mix = {k: max(1, round(c * n / total)) if n >= len(MIX) else 0 for k, c in MIX}
    if n < len(MIX):
        mix = {k: 0 for k, _ in MIX}
        mix["victim"] = max(1, n)
        return mix
    mix["command"] += n - sum(mix.values())
    return mix


class Sampler(threading.Thread):
    """haoscarPerfLoopLag and the daemon's CPU every second, bounded in count and time."""

    def __init__(self, bench: Bench, seconds: float) -> None:
        super().__init__(daemon=True)
        self.bench = bench
        self.stop = threading.Event()
        self.max_samples = int(seconds) + 60
        self.lags: list[tuple[float, int]] = []     # (seconds into the window, µs)
        self.failed = 0

    def run(self) -> None:
        t0 = time.monotonic()
        for i in range(self.max_samples):
            if self.stop.wait(max(0.0, t0 + i + 1 - time.monotonic())):
                return
            at = time.monotonic() - t0
            lag = self.bench.get_ints(LOOP_LAG)[0]
            if lag is None:
                self.failed += 1
            else:
                self.lags.append((at, lag))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="20 s window, short warm-up, 5 calibration runs")
    p.add_argument("--window", type=float, help="measurement window in seconds (default 60, --quick 20)")
    p.add_argument("--services", type=int, default=200, help="services to monitor, mix scaled (default 200)")
    p.add_argument("--mix", help="the services by type instead of the scaled default, e.g. "
                                  "command=100,victim=0 (types: command tcp udp http process victim; "
                                  "a type not named gets none)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--profile", type=Path, help="run the daemon under cProfile, its statistics to this "
                                                  "file (the CPU figures then include the profiler's cost)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (config, logs)")
    p.add_argument("--helper", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.helper:
        kind, port, pidfile, countfile, parent, max_s = args.helper
        helper_main(kind, int(port), pidfile, countfile, int(parent), float(max_s))
        return 0
    args.window = args.window or (20.0 if args.quick else 60.0)
    args.window = max(5.0, args.window)
    args.warmup = 3.0 if args.quick else 5.0
    args.calibrations = 5 if args.quick else 10
    if args.services < 1:
        p.error("--services must be at least 1")
    if args.mix:
        kinds = {k for k, _ in MIX}
        try:
            given = {k.strip(): int(n) for k, n in (part.split("=") for part in args.mix.split(","))}
        except ValueError:
            p.error("--mix: expected TYPE=N[,TYPE=N...]")
        if not set(given) <= kinds or any(n < 0 for n in given.values()):
            p.error(f"--mix: types are {' '.join(k for k, _ in MIX)}, counts >= 0")
        args.mix = {k: given.get(k, 0) for k, _ in MIX}
    for tool in ("snmpget", "snmpbulkwalk", "snmpset"):
        if not shutil.which(tool):
            print(f"missing: {tool} (apt-get install snmp)", file=sys.stderr)
            return 2
    if not TCP_SERVICE.exists():
        print(f"missing: {TCP_SERVICE}", file=sys.stderr)
        return 2

    unwind_on_signals()
    try:  # orphans (victims started by the daemon's restart shells) become our children
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass

    bench = Bench(args)
    started = time.monotonic()
    try:
        return run(bench, args, started)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        left = bench.teardown()
        if not left:
            print("teardown: daemon, servers and victims stopped; nothing left behind")


def run(bench: Bench, args: argparse.Namespace, started: float) -> int:
    bench.mix = args.mix or scaled_mix(args.services)
    total = sum(bench.mix.values())
    versions = subprocess.run([bench.py, "-c", ("import importlib.metadata as m;"
                                                "print(m.version('haoscar-snmp'), m.version('pysnmp'))")],
                              check=False, capture_output=True, text=True, timeout=60).stdout.split() or ["?", "?"]
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=False,
                            capture_output=True,
                            text=True, timeout=30).stdout.strip() if shutil.which("git") else "?"
    print(f"haoscar-snmp: service monitoring under load ({time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
          f"{os.cpu_count()} CPUs, {os.uname().release}, load average {loadavg()})")
    print(f"services: {total} at interval {INTERVAL_MS} ms: "
          + ", ".join(f"{n} {k}" for k, n in bench.mix.items()))

    # -- targets, victims, the restart command's own time -------------------------------
    bench.start_helpers()
    calib = bench.calibrate(args.calibrations)
    bench.start_victims(bench.mix["victim"])
    cal_med = statistics.median(calib) if calib else float("nan")
    print(f"restart command alone (`/bin/sh -c '<python> tcp_service.py PORT PIDFILE ... &'`, until "
          f"listening, {POLL_S * 1000:.0f} ms polls), {len(calib)} runs: median {ms(cal_med)}, "
          f"min {ms(min(calib) if calib else None)}, max {ms(max(calib) if calib else None)}")

    # -- the daemon ----------------------------------------------------------------------
    bench.start_daemon()
    assert bench.daemon is not None
    pid = bench.daemon.pid
    t_answer = bench.wait_answering()
    t_running = bench.wait_all_running(total)
    print(f"daemon pid {pid}: answering SNMP after {t_answer:.1f} s; all {total} services running(2) "
          f"{t_running:.1f} s later")
    time.sleep(args.warmup)
    bench.check_daemon()
    if not bench.reset_counters():
        print("WARNING: the resetCounters SET failed: LoopLagMax and restart counters cover the warm-up too")
    lag_max_after_reset, = bench.get_ints(LOOP_LAG_MAX)
    restarts_before = bench.column(5)
    served0 = bench.served()

    # -- the window ------------------------------------------------------------------------
    print(f"warm-up {args.warmup:g} s, counters reset (LoopLagMax then {lag_max_after_reset} µs); "
          f"window {args.window:g} s" + (f", a victim killed every {KILL_EVERY_S:g} s" if bench.victims else "")
          + " ...", flush=True)
    sampler = Sampler(bench, args.window)
    cpu0 = cpu_times(pid)
    m0 = machine_cpu()
    helper_cpu0 = sum(cpu_times(h.pid)[0] for h in bench.helpers.values())
    t0 = time.perf_counter()
    t_end = t0 + args.window
    sampler.start()
    kills: list[dict] = []
    jitter = random.Random(20261128)
    k = 0
    max_kills = int(args.window / KILL_EVERY_S) + 1
    while bench.victims and k < max_kills:
        # +-0.5 s of jitter: kills land at every phase of the victims' 1 s check cadence
        due = t0 + 1.0 + k * KILL_EVERY_S + jitter.uniform(-0.5, 0.5)
        if due + KILL_EVERY_S > t_end:
            break
        time.sleep(max(0.0, due - time.perf_counter()))
        bench.check_daemon()
        v = bench.victims[k % len(bench.victims)]
        k += 1
        old = read_pid(v["pidfile"])
        if not (old and alive(old) and bench.ours(old)):
            kills.append({"victim": v["name"], "latency": None, "note": "not running at kill time"})
            continue
        tk = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        dt, new = bench.wait_listening(v["port"], v["pidfile"], old, tk)
        kills.append({"victim": v["name"], "latency": dt, "at": tk - t0, "old_pid": old, "new_pid": new})
    time.sleep(max(0.0, t_end - time.perf_counter()))
    t1 = time.perf_counter()
    cpu1 = cpu_times(pid)
    m1 = machine_cpu()
    helper_cpu1 = sum(cpu_times(h.pid)[0] for h in bench.helpers.values())
    served1 = bench.served()
    sampler.stop.set()
    sampler.join(10)
    elapsed = t1 - t0
    status = proc_status(pid)
    lag_max, = bench.get_ints(LOOP_LAG_MAX)
    restarts = bench.column(5)
    states = bench.column(4)
    load_end = loadavg()
    bench.check_daemon()

    # -- figures -------------------------------------------------------------------------
    cpu_own = 100 * (cpu1[0] - cpu0[0]) / elapsed
    cpu_all = 100 * (cpu1[1] - cpu0[1]) / elapsed
    machine = 100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * (os.cpu_count() or 1)
    helper_cpu = 100 * (helper_cpu1 - helper_cpu0) / elapsed
    lat = [x["latency"] for x in kills if x["latency"] is not None]
    missed = len(kills) - len(lat)
    victim_idx = [v["index"] for v in bench.victims]
    restart_total = sum(restarts.get(i, 0) for i in victim_idx)
    restart_before = sum(restarts_before.get(i, 0) for i in victim_idx)
    others_restarts = sum(v for i, v in restarts.items() if i not in victim_idx)
    not_running = {i: s for i, s in states.items() if s != RUNNING}
    # haoscarPerfLoopLag covers the last 10 s: samples taken earlier than 10 s into the
    # window also cover the warm-up, and are reported apart.
    lags_ms = [x / 1000 for at, x in sampler.lags if at >= LAG_SPAN_S]
    lags_early_ms = [x / 1000 for at, x in sampler.lags if at < LAG_SPAN_S]
    rates = {kind: (served1[kind] - served0[kind]) / elapsed for kind in served0}
    aim_restart = INTERVAL_MS / 1000 + (cal_med if calib else 0.0)
    bug = "please report it as a BUG" in bench.daemon_log()
    tracebacks = bench.daemon_log().count("Traceback")

    print(f"\nmethod: {total} services, each checked every {INTERVAL_MS} ms; window {elapsed:.1f} s after "
          f"a {args.warmup:g} s warm-up; the daemon's CPU from /proc/{pid}/stat (utime+stime, and with\n"
          f"        cutime+cstime of its reaped children); haoscarPerfLoopLag read every second with snmpget"
          + (f"; one victim SIGKILLed every {KILL_EVERY_S:g} s +-0.5 s,\n        restart = pid file names a "
             f"new live process AND a TCP connect succeeds, polled every {POLL_S * 1000:.0f} ms.\n"
             if bench.victims else ".\n"))
    w = 54
    print(f"{'figure':{w}} {'measured':>16}   {'aim':>12}   verdict")
    print("-" * (w + 50))

    def row(title: str, value: str, aim: str = "", verdict: str = "") -> None:
        print(f"{title:{w}} {value:>16}   {aim:>12}   {verdict}")

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    row("daemon CPU, process alone (% of one core)", f"{cpu_own:.1f} %", f"< {AIM_CPU:g} %",
        verdict(cpu_own < AIM_CPU))
    row("daemon CPU with reaped children (% of one core)", f"{cpu_all:.1f} %", f"< {AIM_CPU:g} %",
        verdict(cpu_all < AIM_CPU))
    row("haoscarPerfLoopLagMax over the window", f"{lag_max / 1000:.1f} ms" if lag_max is not None else "?",
        f"< {AIM_LAG_MS:g} ms", verdict(lag_max is not None and lag_max / 1000 < AIM_LAG_MS))
    if lags_ms:
        row(f"haoscarPerfLoopLag, {len(lags_ms)} samples: median", f"{statistics.median(lags_ms):.1f} ms")
        row("                                       max", f"{max(lags_ms):.1f} ms")
    if lat:
        row(f"restart latency, {len(lat)} kills: median", ms(statistics.median(lat)), f"<= {ms(aim_restart)}",
            verdict(statistics.median(lat) <= aim_restart))
        row("                                   p90", ms(pct(lat, 0.9)), f"<= {ms(aim_restart)}",
            verdict(pct(lat, 0.9) <= aim_restart))
        row("                                   worst", ms(max(lat)), f"<= {ms(aim_restart)}",
            verdict(max(lat) <= aim_restart and not missed))
        row("                                   best", ms(min(lat)))
    if bench.victims:
        row("restarts missed (no new listener within 15 s)", f"{missed}", "0", verdict(missed == 0))
        row("victims' restart counters (column 5), window", f"{restart_total - restart_before}",
            f"{len(kills)} kills", verdict(restart_total - restart_before == len(kills)))
    if total:
        checks = total * elapsed * 1000 / INTERVAL_MS
        row("daemon CPU per scheduled check, alone / +children",
            f"{(cpu1[0] - cpu0[0]) / checks * 1e3:.2f} / {(cpu1[1] - cpu0[1]) / checks * 1e3:.2f} ms")
    row("daemon VmRSS at the end", f"{status.get('VmRSS', 0) / 1024:.1f} MiB")
    row("daemon VmHWM (peak resident)", f"{status.get('VmHWM', 0) / 1024:.1f} MiB")
    row("daemon threads at the end", f"{status.get('Threads', 0)}")
    for kind in (k for k in ("tcp", "udp", "http") if bench.mix[k]):
        row(f"{kind} checks served by the target, per second", f"{rates[kind]:.1f}",
            f"{bench.mix[kind]}/s", verdict(rates[kind] >= 0.95 * bench.mix[kind]))
    print("-" * (w + 50))
    if bench.victims:
        print(f"restart aim = one interval ({INTERVAL_MS} ms) + the restart command's own time "
              f"({ms(cal_med)}, median of {len(calib)})")
    if lat:
        print("restart latencies (ms, in kill order): " + " ".join(f"{x * 1000:.0f}" for x in lat))
    print(f"services not running(2) at the end: {len(not_running)}"
          + (f" {dict(list(not_running.items())[:10])}" if not_running else "")
          + f"; restart counters of non-victims: {others_restarts}")
    print(f"machine: {machine:.0f} % of one core busy over the window (all processes, {os.cpu_count()} CPUs); "
          f"the three target servers {helper_cpu:.1f} %; load average {load_end} at the end")
    print(f"haoscarPerfLoopLag (worst of the last {LAG_SPAN_S:g} s) is sampled every second; the table uses the "
          f"samples taken {LAG_SPAN_S:g} s or more into the window\n(whose span lies inside it); the "
          f"{len(lags_early_ms)} earlier ones also cover the warm-up: "
          + (f"median {statistics.median(lags_early_ms):.1f} ms, max {max(lags_early_ms):.1f} ms"
             if lags_early_ms else "none"))
    if sampler.failed:
        print(f"note: {sampler.failed} loop-lag samples got no answer")
    if bug or tracebacks:
        print(f"WARNING: the daemon log holds {'the bug marker' if bug else ''} {tracebacks} traceback(s)")
    print(f"versions: haoscar-snmp {' / pysnmp '.join(versions)} (commit {commit or '?'}), "
          f"Python {sys.version.split()[0]}; total {time.monotonic() - started:.0f} s")

    if args.json:
        args.json.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(), "mix": bench.mix,
            "interval_ms": INTERVAL_MS, "window_s": elapsed, "warmup_s": args.warmup,
            "cpu_percent": {"daemon": cpu_own, "daemon_and_children": cpu_all, "machine": machine,
                            "targets": helper_cpu},
            "loop_lag_max_ms": None if lag_max is None else lag_max / 1000, "loop_lag_samples_ms": lags_ms,
            "loop_lag_samples_ms_early": lags_early_ms,
            "restart_command_s": calib, "restart_aim_s": aim_restart, "kills": kills,
            "restart_counter_window": restart_total - restart_before, "rss_kb": status,
            "served_per_s": rates, "not_running_at_end": not_running, "load_average_end": load_end,
            "commit": commit}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
