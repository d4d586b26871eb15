#!/usr/bin/env python3
"""The LAN poller's ICMP echo at cluster scale: 2,000 addresses every second, beside fping.

Two network namespaces made here, joined by a veth pair:

    <p>-p  p0 10.90.0.1/24 fd90::1/64   ──veth──   t0 10.90.0.2/24 fd90::2/64   <p>-t
           routes 10.91/16, fd91::/64 via t0         + the targets 10.91.x.y/32 (and fd91::n/128)

The targets sit behind one next hop, so the poller keeps one neighbour entry (2,000
on-link addresses would overflow the host-wide neighbour table at its default size).

Phases, each --seconds long (60, or 15 with --quick):

  baseline  the event loop with only the 10 ms lag timer on it: the process's idle cost;
  prober    fcaps.fault.lan.icmp and sweep: a Sweep sends to every target once per --interval from one
            socket per family (opened inside <p>-p); the prober's timeout is the interval.
            Meanwhile a 10 ms timer measures the loop's lag, every callback the loop runs
            is timed, and at random moments --cuts targets are cut (an nftables rule in
            <p>-t drops their echo replies from then on);
  fping     `fping -c N -p <interval> -i <spread>` on the same targets from <p>-p.

Printed: CPU (% of one core, from getrusage of this process and wait4 of fping), replies
per second, lost (targets that were not cut), the loop's worst lag and worst callback;
and for each cut how long until a poller could know: the first request sent after the
cut plus the timeout (the request went unanswered), in seconds and in poll intervals.

It never fails on a number. Run as root from the repository root (needs fping, nft, ip):
    sudo .venv/bin/python bench/bench_icmp.py [--quick] [--targets 2000] [--ipv6 0]
Everything it creates is removed at the end, on Ctrl-C and on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fcaps.fault.lan import icmpsocket  # noqa: E402
from fcaps.fault.lan.icmp import Prober  # noqa: E402
from fcaps.fault.lan.sweep import Sweep  # noqa: E402
from tests.integration import nsutil  # noqa: E402

PREFIX = f"hsbench{os.getpid() % 100000}"
POLLER, TARGETS = f"{PREFIX}-p", f"{PREFIX}-t"
LAG_PERIOD = 0.010
PROBER_CALLBACKS = ("Sweep._run", "Prober._readable")
NFT_TARGETS = """
table inet hsbench {
  set cut4 { type ipv4_addr; }
  set cut6 { type ipv6_addr; }
  chain out {
    type filter hook output priority 0;
    ip saddr @cut4 icmp type echo-reply drop
    ip6 saddr @cut6 icmpv6 type echo-reply drop
  }
}
"""


# -- namespaces ------------------------------------------------------------------------


def sh(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return nsutil.sh(*args, stdin=stdin, check=check, timeout=60)


def target_addresses(count: int, ipv6: int) -> list[str]:
    v4 = [f"10.91.{i // 250}.{i % 250 + 1}" for i in range(count - ipv6)]
    return v4 + [f"fd91::{i + 1:x}" for i in range(ipv6)]


def teardown() -> None:
    for ns in (POLLER, TARGETS):
        sh("ip", "netns", "del", ns, check=False)


def build(targets: list[str], inline: bool) -> None:
    teardown()
    sh("ip", "netns", "add", POLLER)
    sh("ip", "netns", "add", TARGETS)
    sh("ip", "-n", POLLER, "-batch", "-", stdin="\n".join([
        "link set lo up", f"link add p0 type veth peer name t0 netns {TARGETS}",
        "addr add 10.90.0.1/24 dev p0", "addr add fd90::1/64 dev p0 nodad", "link set p0 up",
        "route add 10.91.0.0/16 via 10.90.0.2", "route add fd91::/64 via fd90::2"]) + "\n")
    lines = ["link set lo up", "addr add 10.90.0.2/24 dev t0", "addr add fd90::2/64 dev t0 nodad",
             "link set t0 up"]
    lines += [f"addr add {a}/{128 if ':' in a else 32} dev t0{' nodad' if ':' in a else ''}"
              for a in targets]
    sh("ip", "-n", TARGETS, "-batch", "-", stdin="\n".join(lines) + "\n")
    sh("ip", "netns", "exec", TARGETS, "nft", "-f", "-", stdin=NFT_TARGETS)


# GRO on a veth makes it use NAPI, and threaded NAPI moves its receive work to a kernel
# thread: the replies then come in asynchronously, as from a NIC, instead of being made
# inside the prober's own sendto (which would also charge the targets' work to it).
_GRO_ON = """
import sys
from pyroute2.ethtool import Ethtool
with Ethtool() as ethtool:
    features = ethtool.get_features(sys.argv[1])
    features.features["rx-gro"].enable = True
    ethtool.set_features(sys.argv[1], features)
"""


def asynchronous_veth(ns: str, device: str) -> None:
    sh("ip", "netns", "exec", ns, sys.executable, "-c", _GRO_ON, device)
    sh("ip", "netns", "exec", ns, "sh", "-c", f"echo 1 > /sys/class/net/{device}/threaded")


# The cutter runs in a process of its own, started before the measurement: a fork and
# exec from the measured process would stall its loop (the fork holds the interpreter).
# It reads "set address" lines, adds each address to the nftables set, and answers with
# the monotonic times (the same clock in every process) before and after.
_CUTTER = r"""
import subprocess, sys, time
namespace = sys.argv[1]
for line in sys.stdin:
    family, address = line.split()
    before = time.monotonic()
    subprocess.run(["ip", "netns", "exec", namespace, "nft", "add", "element", "inet", "hsbench",
                    family, "{ " + address + " }"], capture_output=True, timeout=10)
    print(before, time.monotonic(), flush=True)
"""


def opener_in(ns: str) -> icmpsocket.Opener:
    """The prober's sockets, made inside `ns` by a thread that enters it (setns is per thread)."""
    return lambda version: nsutil.in_namespace(ns, lambda: icmpsocket.open_socket(version))


# -- measuring the loop ----------------------------------------------------------------


class CallbackTimer:
    """Times every callback the event loop runs (asyncio's Handle._run), while on, and
    notes whether the thread was preempted meanwhile (an involuntary context switch: on a
    shared machine another process's turn, not the callback's work)."""

    def __init__(self) -> None:
        self.on = False
        self.worst = 0.0
        self.worst_name = ""
        self.steady_from = 0.0        # perf_counter time after which the steady figures count
        self.steady: dict[str, float] = {}
        self.prober_steady: list[float] = []      # durations of the prober's callbacks, steady
        self.prober_steady_own = 0.0  # the worst of those that were not preempted
        self.over_1ms = 0
        self.over_1ms_preempted = 0
        self.count = 0
        self.per_name: dict[str, float] = {}
        self._original = asyncio.events.Handle._run

    def install(self) -> None:
        original, timer = self._original, self

        def timed(handle: asyncio.Handle) -> None:
            if not timer.on:
                original(handle)
                return
            switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
            start = time.perf_counter()
            original(handle)
            took = time.perf_counter() - start
            preempted = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw != switches
            timer.count += 1
            name = getattr(handle._callback, "__qualname__", repr(handle._callback))  # type: ignore[attr-defined]
            if took > timer.per_name.get(name, 0.0):
                timer.per_name[name] = took
            if start >= timer.steady_from:
                if took > timer.steady.get(name, 0.0):
                    timer.steady[name] = took
                if name in PROBER_CALLBACKS:
                    timer.prober_steady.append(took)
                    if not preempted:
                        timer.prober_steady_own = max(timer.prober_steady_own, took)
            if took > 0.001:
                timer.over_1ms += 1
                timer.over_1ms_preempted += preempted
            if took > timer.worst:
                timer.worst, timer.worst_name = took, name
        asyncio.events.Handle._run = timed  # type: ignore[method-assign]

    def uninstall(self) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]


class GcTimer:
    """How long the garbage collector's passes take, while on (gc.callbacks)."""

    def __init__(self) -> None:
        self.on = False
        self.worst = {0: 0.0, 1: 0.0, 2: 0.0}
        self.count = {0: 0, 1: 0, 2: 0}
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif self.on:
            generation = info["generation"]
            self.count[generation] += 1
            self.worst[generation] = max(self.worst[generation], time.perf_counter() - self._start)


class LagTimer:
    """A timer every LAG_PERIOD that notes how late it runs."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.worst_lag = 0.0
        self.worst_at = 0.0         # seconds after start
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._start = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        self._due = self._start + LAG_PERIOD
        self._handle = loop.call_at(self._due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        lag = max(0.0, now - self._due)
        if lag > self.worst_lag:
            self.worst_lag, self.worst_at = lag, self._due - self._start
        self.lags.append(lag)
        self._due = now + LAG_PERIOD
        self._handle = loop.call_at(self._due, self._tick, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def worst(self) -> float:
        return self.worst_lag

    def p99(self) -> float:
        return statistics.quantiles(self.lags, n=100)[98] if len(self.lags) > 100 else self.worst()


def cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def percent(before: tuple[float, float], after: tuple[float, float], seconds: float) -> tuple[float, float]:
    """(user, system) as % of one core over `seconds`."""
    return (100 * (after[0] - before[0]) / seconds, 100 * (after[1] - before[1]) / seconds)


# -- phases ----------------------------------------------------------------------------


@dataclass
class Cut:
    address: str
    at: float = 0.0             # monotonic; the nft command had returned (the rule was in)
    bracket: float = 0.0        # how long the nft command took: the cut is within it
    moment: float = 0.0         # seconds into the phase
    first_after: float | None = None     # the first request left unanswered
    last_reply: float | None = None
    received_after: int = 0     # replies to requests sent after the cut (should be 0)


@dataclass
class Figures:
    seconds: float = 0.0
    cpu: tuple[float, float] = (0.0, 0.0)       # user, system: % of one core
    sent: int = 0
    received: int = 0
    late: int = 0
    lost: int = 0
    errors: int = 0
    lag_worst: float = 0.0
    lag_p99: float = 0.0
    lag_worst_at: float = 0.0
    callback_worst: float = 0.0
    callback_worst_name: str = ""
    callbacks_over_1ms: int = 0
    callbacks_over_1ms_preempted: int = 0
    callbacks: int = 0
    per_name: dict[str, float] = field(default_factory=dict)
    steady: dict[str, float] = field(default_factory=dict)
    prober_steady: list[float] = field(default_factory=list)
    prober_steady_own: float = 0.0
    gc: str = ""
    counters: Any = None
    restarts: int = 0
    sockets: str = ""


async def baseline(seconds: float) -> tuple[float, float]:
    """CPU (% of one core) and worst lag of the loop with only the lag timer on it."""
    lag = LagTimer()
    cpu0, t0 = cpu_seconds(), time.monotonic()
    lag.start()
    await asyncio.sleep(seconds)
    lag.stop()
    return sum(percent(cpu0, cpu_seconds(), time.monotonic() - t0)), lag.worst()


async def prober_phase(targets: list[str], interval: float, seconds: float, cuts: list[Cut],
                       timer: CallbackTimer, rng: random.Random) -> Figures:
    collector = GcTimer()
    gc.callbacks.append(collector)
    try:
        return await _prober_phase(targets, interval, seconds, cuts, timer, rng, collector)
    finally:
        gc.callbacks.remove(collector)


async def _prober_phase(targets: list[str], interval: float, seconds: float, cuts: list[Cut],
                        timer: CallbackTimer, rng: random.Random, collector: GcTimer) -> Figures:
    loop = asyncio.get_running_loop()
    prober = Prober(timeout=interval, opener=opener_in(POLLER))
    await prober.open()
    sweep = Sweep(prober, interval, targets)
    lag = LagTimer()
    moments = sorted(rng.uniform(0.2, 0.8) * seconds for _ in cuts)
    sockets = prober.describe()

    helper = await asyncio.create_subprocess_exec(sys.executable, "-c", _CUTTER, TARGETS,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert helper.stdin is not None and helper.stdout is not None

    async def cutter() -> None:
        assert helper.stdin is not None and helper.stdout is not None
        begin = loop.time()
        for moment, c in zip(moments, cuts, strict=True):
            await asyncio.sleep(max(0.0, begin + moment - loop.time()))
            helper.stdin.write(f"{'cut6' if ':' in c.address else 'cut4'} {c.address}\n".encode())
            before, after = map(float, (await asyncio.wait_for(helper.stdout.readline(), 15)).split())
            c.at, c.bracket, c.moment = after, after - before, after - begin

    figures = Figures()
    cpu0, t0 = cpu_seconds(), time.monotonic()
    timer.on = collector.on = True
    timer.steady_from = time.perf_counter() + interval + 0.1     # after the first cycle
    lag.start()
    sweep.start()
    tasks = [asyncio.create_task(cutter())]
    try:
        await asyncio.sleep(seconds)
    finally:
        sweep.stop()
        figures.seconds = time.monotonic() - t0
        await asyncio.sleep(interval)                 # the last requests' replies
        timer.on = collector.on = False
        lag.stop()
        figures.cpu = percent(cpu0, cpu_seconds(), time.monotonic() - t0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        helper.stdin.close()
        try:
            await asyncio.wait_for(helper.wait(), 15)
        except TimeoutError:
            helper.kill()
            await helper.wait()
        prober.close()
    cut_addresses = {c.address for c in cuts}
    for address in targets:
        s = prober.stats(address)
        if s is None:
            continue
        figures.sent += s.sent
        figures.received += s.received
        figures.late += s.late
        figures.errors += s.errors
        if address not in cut_addresses:
            figures.lost += s.sent - s.received
    for c in cuts:
        s = prober.stats(c.address)
        if s is not None:
            c.last_reply = s.last_reply
            c.first_after = s.waiting_since      # the first request it never answered
    figures.lag_worst, figures.lag_p99, figures.lag_worst_at = lag.worst(), lag.p99(), lag.worst_at
    figures.callback_worst, figures.callback_worst_name = timer.worst, timer.worst_name
    figures.callbacks_over_1ms_preempted = timer.over_1ms_preempted
    figures.gc = ", ".join(f"gen{g} {collector.count[g]}x worst {collector.worst[g] * 1000:.2f} ms"
                           for g in (0, 1, 2))
    figures.callbacks_over_1ms, figures.callbacks = timer.over_1ms, timer.count
    figures.per_name = dict(timer.per_name)
    figures.steady = dict(timer.steady)
    figures.prober_steady = sorted(timer.prober_steady)
    figures.prober_steady_own = timer.prober_steady_own
    figures.counters = prober.counters
    figures.restarts = sweep.restarts
    figures.sockets = sockets
    return figures


FPING_LINE = re.compile(r"^(\S+)\s*:\s*xmt/rcv/%loss = (\d+)/(\d+)/")


def fping_phase(targets: list[str], interval: float, seconds: float, workdir: Path) -> Figures:
    listing = workdir / "targets.txt"
    listing.write_text("\n".join(targets) + "\n")
    count = max(1, round(seconds / interval))
    period_ms = round(interval * 1000)
    spread_ms = max(0.01, interval * 1000 / len(targets) * 0.8)    # room to keep the period
    cmd = ["ip", "netns", "exec", POLLER, "fping", "-q", "-c", str(count), "-p", str(period_ms),
           "-i", f"{spread_ms:.3f}", "-f", str(listing)]
    err = open(workdir / "fping.err", "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)   # ip netns exec execs fping
    try:
        _pid, _status, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    finally:
        err.close()
    wall = time.monotonic() - t0
    figures = Figures(seconds=count * interval)          # its sending time, as for the prober
    figures.cpu = percent((0.0, 0.0), (usage.ru_utime, usage.ru_stime), wall)   # all its life
    for line in (workdir / "fping.err").read_text().splitlines():
        m = FPING_LINE.match(line)
        if m:
            figures.sent += int(m.group(2))
            figures.received += int(m.group(3))
    figures.lost = figures.sent - figures.received
    return figures


# -- report ----------------------------------------------------------------------------


def report(args: argparse.Namespace, idle: tuple[float, float], ours: Figures, fping: Figures | None,
           cuts: list[Cut], fping_version: str) -> None:
    ms = 1000
    prober_worst = max((took for name, took in ours.per_name.items() if name in PROBER_CALLBACKS),
                       default=0.0)
    steady = ours.prober_steady or [0.0]
    p50, p99 = steady[len(steady) // 2], steady[min(len(steady) - 1, int(len(steady) * 0.99))]
    print()
    print(f"targets {args.targets} ({args.targets - args.ipv6} IPv4, {args.ipv6} IPv6), "
          f"interval {args.interval:g} s, {args.seconds:g} s per phase, seed {args.seed}, "
          f"{'inline' if args.inline else 'threaded-NAPI'} veth")
    print(f"prober sockets: {ours.sockets}")
    print()
    rows = [
        ("", "haoscar Prober", fping_version),
        ("sending time, s", f"{ours.seconds:.1f}", f"{fping.seconds:.1f}" if fping else "-"),
        ("requests sent", f"{ours.sent:,}", f"{fping.sent:,}" if fping else "-"),
        ("replies/s", f"{ours.received / ours.seconds:,.0f}",
         f"{fping.received / fping.seconds:,.0f}" if fping else "-"),
        ("lost (targets not cut)", f"{ours.lost:,}", f"{fping.lost:,}" if fping else "-"),
        ("CPU, % of one core", f"{sum(ours.cpu):.1f}", f"{sum(fping.cpu):.1f}" if fping else "-"),
        ("  user / system", f"{ours.cpu[0]:.1f} / {ours.cpu[1]:.1f}",
         f"{fping.cpu[0]:.1f} / {fping.cpu[1]:.1f}" if fping else "-"),
        ("  idle loop + lag timer", f"{idle[0]:.1f}", ""),
        ("loop lag, worst / p99 (ms)", f"{ours.lag_worst * ms:.2f} / {ours.lag_p99 * ms:.2f}", ""),
        ("  idle loop, worst (ms)", f"{idle[1] * ms:.2f}", ""),
        ("prober callbacks, worst (ms)", f"{prober_worst * ms:.2f}", ""),
        ("  after 1st cycle p50/p99/max", f"{p50 * ms:.2f} / {p99 * ms:.2f} / {steady[-1] * ms:.2f}", ""),
        ("  after 1st cycle, not preempted", f"{ours.prober_steady_own * ms:.2f}", ""),
        ("any callback, worst (ms)", f"{ours.callback_worst * ms:.2f}", ""),
        ("callbacks > 1 ms (preempted)", f"{ours.callbacks_over_1ms} ({ours.callbacks_over_1ms_preempted})"
         f" of {ours.callbacks:,}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, a, b in rows:
        print(f"{name:<{width}}  {a:>18}  {b:>14}")
    print()
    print("after the first cycle (ms): " + ", ".join(
        f"{name} {took * ms:.3f}" for name, took in sorted(ours.steady.items(), key=lambda kv: -kv[1])[:5]))
    print("worst callback by kind (ms): " + ", ".join(
        f"{name} {took * ms:.3f}" for name, took in sorted(ours.per_name.items(), key=lambda kv: -kv[1])[:5]))
    print(f"garbage collections: {ours.gc}")
    print(f"the worst loop lag came {ours.lag_worst_at:.2f} s into the phase; cuts at "
          + ", ".join(f"{c.moment:.2f} s" for c in cuts))
    print(f"late replies {ours.late}, errors {ours.errors}, sweep restarts {ours.restarts}, "
          f"prober counters {ours.counters}")
    print()
    print(f"cuts (timeout = interval = {args.interval:g} s): detected = the first request left "
          f"unanswered (waiting_since) + timeout")
    print(f"{'target':<14} {'last reply - cut':>17} {'first unanswered':>20} {'detected after':>15} "
          f"{'intervals':>10} {'nft took':>9}")
    detected = []
    for c in cuts:
        last = f"{(c.last_reply - c.at) * ms:+.1f} ms" if c.last_reply is not None else "none"
        if c.first_after is None:
            print(f"{c.address:<14} {last:>17} {'(none)':>20}")
            continue
        d = c.first_after + args.interval - c.at
        detected.append(d)
        print(f"{c.address:<14} {last:>17} {c.first_after - c.at:>18.3f} s {d:>13.3f} s "
              f"{d / args.interval:>10.2f} {c.bracket * ms:>7.1f} ms")
    if detected:
        print(f"detection: min {min(detected):.3f} s, max {max(detected):.3f} s, "
              f"mean {statistics.mean(detected):.3f} s (expected between 1 and 2 intervals)")


def interrupted(signum: int, frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C: through the clean-up in `main`."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--ipv6", type=int, default=0, help="how many of the targets are IPv6")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--quick", action="store_true", help="15 s per phase, 3 cuts")
    parser.add_argument("--cuts", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-fping", action="store_true")
    parser.add_argument("--inline", action="store_true",
                        help="plain veth: replies are made inside the prober's sendto")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (15.0 if args.quick else 60.0)
    args.cuts = args.cuts if args.cuts is not None else (3 if args.quick else 5)
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    fping_path = shutil.which("fping")
    if fping_path is None and not args.no_fping:
        print("fping is not installed (apt-get install fping), or pass --no-fping", file=sys.stderr)
        return 2
    fping_version = "-"
    if fping_path:
        out = sh("fping", "-v", check=False)
        fping_version = (out.stdout + out.stderr).strip().split(":")[-1].strip().replace("Version", "fping")

    rng = random.Random(args.seed)
    targets = target_addresses(args.targets, args.ipv6)
    cuts = [Cut(a) for a in rng.sample(targets, args.cuts)]
    signal.signal(signal.SIGTERM, interrupted)
    atexit.register(teardown)
    timer = CallbackTimer()
    timer.install()
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    try:
        build(targets, args.inline)
        print(f"built {POLLER} and {TARGETS} with {len(targets)} targets", flush=True)

        async def ours() -> tuple[tuple[float, float], Figures]:
            idle = await baseline(min(5.0, args.seconds / 3))
            print(f"baseline done; prober phase, {args.seconds:g} s", flush=True)
            return idle, await prober_phase(targets, args.interval, args.seconds, cuts, timer, rng)
        idle, figures = asyncio.run(ours())
        fping = None
        if not args.no_fping:
            print(f"fping phase, {args.seconds:g} s", flush=True)
            with tempfile.TemporaryDirectory(prefix="bench-icmp-") as tmp:
                fping = fping_phase(targets, args.interval, args.seconds, Path(tmp))
        report(args, idle, figures, fping, cuts, fping_version)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        timer.uninstall()
        teardown()
        atexit.unregister(teardown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
