"""bench_flood.py --scrape: does scraping a big daemon's views delay its heartbeat or its
role decisions?

Two real daemons (head1 active, head2 standby) in the scenario namespaces, each with
--services (2,000) TCP service checks and --lan-targets (2,000) LAN interfaces (the
--loaded run's configuration), the web panel on 127.0.0.1:16180 in each head's namespace
with one read user for /metrics (HTTP basic authentication). Four phases of --seconds:

* idle     no view requested;
* metrics  in head1's namespace, one client fetching /metrics (OpenMetrics, basic auth)
           in a tight loop (the next request as soon as the answer is read; bounded in
           time and count);
* both     that client, and one more fetching /status from the status socket, alike;
* idle     no view requested again (what the phases before left behind).

Per phase: the scrape and status times at the client (p50, p99, worst, count), head1's
loop lag (haoscarPerfLoopLagMax: the worst timer lateness of the phase, after a
resetCounters; and haoscarPerfLoopLag, the worst of the last 10 s, read every 2 s: the
median and worst of those readings), the worst heartbeat gap of any path of either head
(haoscarHbPathMaxGap), false failovers (haoscarFailoverCount going up, or a 100 ms
sample of the alias holders that is not exactly head1) and head1's daemon CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from bench_flood import (
    FAILOVER_COUNT,
    HEADS,
    LOOP_LAG_MAX,
    TCP_PORT,
    _LISTENER,
    Cpu,
    Env,
    build_targets,
    fmt_cpu,
    loaded_pair,
    loadavg,
    percentile,
    stop_all,
)

LOOP_LAG = LOOP_LAG_MAX.rsplit(".", 2)[0] + ".11.0"     # haoscarPerfLoopLag (us)
WEB_PORT = 16180
USER, PASSWORD = "prom", "scrape-password-123"
MAX_REQUESTS = 200_000          # per client and phase: the loop's bound besides the time

# One client in a tight loop: bounded in time and count, to loopback or a unix socket only.
_CLIENT = r"""
import base64, http.client, json, socket, sys, time
kind, target, seconds, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)
headers = {}
if kind == "metrics":
    user = sys.argv[5]
    headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    headers["Accept"] = "application/openmetrics-text"
times, errors, size = [], 0, 0
end = time.monotonic() + seconds
while time.monotonic() < end and len(times) + errors < limit:
    conn = Unix(target) if kind == "status" else http.client.HTTPConnection("127.0.0.1", int(target), timeout=10)
    start = time.perf_counter()
    try:
        conn.request("GET", "/status" if kind == "status" else "/metrics", headers=headers)
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise OSError(reply.status)
        times.append(time.perf_counter() - start)
        size = len(body)
    except OSError:
        errors += 1
        time.sleep(0.05)
    finally:
        conn.close()
print(json.dumps({"times": times, "errors": errors, "size": size}))
"""


def web_toml() -> str:
    from haoscar_snmp.config.webusers import hash_password
    return (f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{WEB_PORT}"\n\n[[web.users]]\nname = "{USER}"\n'
            f'role = "read"\npassword_hash = "{hash_password(PASSWORD)}"\n')


def run_scrape(env: Env, args: argparse.Namespace) -> dict:
    public = build_targets(env, args)
    listeners = []
    for head in HEADS:          # the services' TCP listener (accepts and closes)
        proc = env.c.popen(head, sys.executable, "-c", _LISTENER, str(TCP_PORT),
                           f"{2 * args.seconds + args.configured_seconds + 900:.0f}", stdout=subprocess.PIPE, text=True)
        listeners.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"TCP listener did not start in {head}")
    pair = loaded_pair(env, args, public)
    pair.extra_toml += web_toml()
    try:
        return _run(env, pair, args)
    finally:
        stop_all(listeners)


def _run(env: Env, pair: Any, args: argparse.Namespace) -> dict:
    pair.start_both()
    print(f"scrape: {args.services} services, {args.lan_targets} LAN interfaces per head; heartbeat "
          f"{args.interval_ms} ms, dead time {args.dead_ms} ms; {args.seconds:.0f} s per phase; settling "
          f"{args.configured_seconds:.0f} s; load average {loadavg()}", flush=True)
    time.sleep(args.configured_seconds)
    sock = pair.workdir / "state-head1" / "status.sock"
    rows = []
    try:
        for phase, kinds in (("idle", ()), ("metrics", ("metrics",)), ("both", ("metrics", "status")),
                             ("idle", ())):
            rows.append(_phase(env, pair, phase, kinds, args, sock))
        _table(rows)
    finally:
        pair.stop_all()
    return {"scrape": rows}


def _phase(env: Env, pair: Any, phase: str, kinds: tuple[str, ...], args: argparse.Namespace, sock: Any) -> dict:
    for head in HEADS:
        env.reset(head)
    before = {h: int(env.get(h, FAILOVER_COUNT) or 0) for h in HEADS}
    cpu = Cpu(pair)
    clients: list[subprocess.Popen] = []
    if "metrics" in kinds:
        clients.append(env.c.popen("head1", sys.executable, "-c", _CLIENT, "metrics", str(WEB_PORT), str(args.seconds),
                                   str(MAX_REQUESTS), f"{USER}:{PASSWORD}", stdout=subprocess.PIPE, text=True))
    if "status" in kinds:
        clients.append(env.c.popen("head1", sys.executable, "-c", _CLIENT, "status", str(sock), str(args.seconds),
                                   str(MAX_REQUESTS), stdout=subprocess.PIPE, text=True))
    holders: list[set[str]] = []
    lags: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        n = 0
        while not stop.is_set():
            holders.append(env.holders(pair))
            if n % 20 == 0:
                value = env.get("head1", LOOP_LAG)
                if value.isdigit():
                    lags.append(int(value))
            n += 1
            stop.wait(0.1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out: dict[str, Any] = {}
    try:
        time.sleep(args.seconds)
        for name, proc in zip(kinds, clients):
            text, _ = proc.communicate(timeout=60)
            out[name] = json.loads(text.strip().splitlines()[-1])
    finally:
        stop.set()
        sampler.join(10)
        stop_all(clients)
    used = cpu.read()
    after = {h: int(env.get(h, FAILOVER_COUNT) or 0) for h in HEADS}
    gaps = [g for h in HEADS for g in env.gaps(h)]
    lag_max = env.get("head1", LOOP_LAG_MAX)
    row = {"phase": phase, "false_failovers": sum(after[h] - before[h] for h in HEADS),
           "not_head1": sum(1 for s in holders if s != {"head1"}), "samples": len(holders),
           "gap_ms": max(gaps, default=0) / 1000, "lag_max_ms": int(lag_max) / 1000 if lag_max.isdigit() else None,
           "lag10_median_ms": statistics.median(lags) / 1000 if lags else None,
           "lag10_worst_ms": max(lags) / 1000 if lags else None, "cpu": used, "load": loadavg()}
    for name, got in out.items():
        times = [t * 1000 for t in got["times"]]
        row[name] = {"count": len(times), "errors": got["errors"], "bytes": got["size"],
                     "p50_ms": percentile(times, 50) if times else None,
                     "p99_ms": percentile(times, 99) if times else None,
                     "worst_ms": max(times) if times else None}
    print(f"  {phase:6} done: {json.dumps({k: v for k, v in row.items() if k != 'cpu'})}; cpu {fmt_cpu(used)}",
          flush=True)
    return row


def _table(rows: list[dict]) -> None:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"
    print(f"\n{'phase':7} {'metrics p50/p99/worst ms (n)':>30} {'status p50/p99/worst ms (n)':>30} "
          f"{'lag max':>8} {'lag10 med/worst':>16} {'hb gap':>7} {'false fo':>8} {'daemon h1':>9}")
    for r in rows:
        cells = []
        for name in ("metrics", "status"):
            m = r.get(name)
            cells.append(f"{f(m['p50_ms'])}/{f(m['p99_ms'])}/{f(m['worst_ms'])} ({m['count']})" if m else "-")
        print(f"{r['phase']:7} {cells[0]:>30} {cells[1]:>30} {f(r['lag_max_ms']):>8} "
              f"{f(r['lag10_median_ms']) + '/' + f(r['lag10_worst_ms']):>16} {f(r['gap_ms']):>7} "
              f"{r['false_failovers'] + r['not_head1']:>8} {r['cpu']['head1']['daemon']:>8.0f}%")
    print("lag max: haoscarPerfLoopLagMax over the phase; lag10: haoscarPerfLoopLag (worst of the last 10 s) "
          "read every 2 s; hb gap: the worst haoscarHbPathMaxGap of both heads; false fo: failover count "
          "increases plus 100 ms holder samples other than {head1}.")
