#!/usr/bin/env python3
"""A soak of a two-head pair: steady SNMP load, a fault every 30 s, nothing may be lost.

Two real daemons (head1 primary, head2 standby; heartbeats at 100 ms, dead time 400 ms,
auto-failback off so the roles alternate) in the network namespaces of the scenario
tests (tests/scenarios/netns.py, hapair.py), three compute nodes on both private LANs
polled every 200 ms (down after 600 ms), a TCP service on each head checked every 200 ms
(restarted by the recovery ladder), a real snmptrapd in the NMS namespace receiving every
notification, and --walkers `snmpbulkwalk` loops from the NMS namespace over the whole
view of both heads for the whole run.

Every --every seconds (30) one fault, in turn:

* service   the TCP service of the active head is killed (SIGKILL); expected on that
            head: serviceDown(12), serviceRestarted(21), serviceRecovered(13);
* lan       node2's LAN A port loses carrier for 3 s, then gets it back; expected on the
            head that reports the LAN (haoscarLanPoller): lanIfDown(10), lanIfUp(11);
* failover  the active daemon is killed (SIGKILL) and started again 2 s later; expected
            on the survivor: headDown(2), failoverStarted(4), failoverCompleted(5),
            headUp(3) once the killed head is back; on the restarted head agentStarted(1).

After each fault the bench waits (at most --recovery seconds) until every expected event
is in the event history of its head (haoscarEventTable, read with `snmpbulkwalk` from
the NMS namespace) and both alarm tables are empty again, then accounts:

* lost events        expected events not in the history;
* lost notifications events in the history (of a type with a notification: 1-19,
                     serviceRestarted as haoscarServiceLadderStep, lanFailed/lanRecovered)
                     with no matching notification from that head at snmptrapd;
* alarms             raised (alarmRaised events) in the window, cleared (alarmCleared),
                     and those still in an alarm table after recovery (lost = left).
* ledger entries     the outage ledger read with `haoscar-snmp report --outages` on each
                     head's state directory: a service outage per service kill, an outage
                     of node2's interface per LAN cut (the head that saw most), an alias
                     outage per failover (on the survivor); fewer than faults = lost.

One line a minute: each head's daemon and heartbeat process, resident memory (VmRSS)
and CPU use over the minute, and the counts so far. At the end the totals and a verdict
(PASS when nothing was lost, no alarm was left and no daemon logged a bug).

Needs root, iproute2, nftables, net-snmp's tools and snmptrapd, the project venv; run
from the repository root:

    sudo .venv/bin/python bench/bench_soak.py                 # 10 minutes (+ ~20 s set-up)
    sudo .venv/bin/python bench/bench_soak.py --minutes 2     # a quick look
    sudo .venv/bin/python bench/bench_soak.py --json /tmp/soak.json --keep-tmp

Everything lives in `Cluster` namespaces and is removed at the end, also on an error,
Ctrl-C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchsignals import unwind_on_signals  # noqa: E402  (bench/ is on sys.path)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haoscar_snmp.core.bug import BUG_MARKER  # noqa: E402
from tests.integration.harness import R  # noqa: E402

HEADS = ("head1", "head2")
NODES = 3
SERVICE_PORT = 17071
PROGRAM = REPO / "tests" / "integration" / "programs" / "tcp_service.py"
EVENT_TYPE = f"{R}.1.9.2.1.3"           # haoscarEventType column
EVENT_SUBJECT = f"{R}.1.9.2.1.4"        # haoscarEventSubject column
ALARM_RAISED, ALARM_CLEARED = 17, 18
# Event type -> the notification (haoscarNotifications.N) it is sent as.
NOTIFIED = {**{t: t for t in range(1, 20)}, 21: 20, 24: 20, 25: 20, 26: 20, 27: 21, 28: 22,
            29: 23, 30: 24, 34: 25, 35: 26}
FAULTS = ("service", "lan", "failover")
LAN_CUT_S = 3.0
RESTART_AFTER_S = 2.0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def proc_figures(pid: int | None) -> tuple[int, float]:
    """(VmRSS KiB, CPU seconds: utime + stime) of a process, (0, 0) if it is gone."""
    if pid is None:
        return 0, 0.0
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0.0
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Tally:
    faults: Counter = field(default_factory=Counter)
    expected_events: int = 0
    lost_events: list[str] = field(default_factory=list)
    notified_events: int = 0
    lost_notifications: list[str] = field(default_factory=list)
    alarms_raised: int = 0
    alarms_cleared: int = 0
    alarms_left: list[str] = field(default_factory=list)
    recovery_s: dict[str, list[float]] = field(default_factory=dict)
    incidents: list[str] = field(default_factory=list)
    ledger_entries: dict[str, int] = field(default_factory=dict)
    lost_ledger: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.lost_events) + len(self.lost_notifications) + len(self.alarms_left) + len(self.lost_ledger)


class Soak:
    def __init__(self, pair: Any, args: argparse.Namespace) -> None:
        from tests.scenarios.hapair import PUBLIC, SNMP_PORT
        self.pair = pair
        self.c = pair.cluster
        self.args = args
        self.public, self.port = PUBLIC, SNMP_PORT
        self.tally = Tally()
        self.seen_index = {h: 0 for h in HEADS}    # newest event index accounted, per head
        self.traps_seen = 0                         # trap log entries accounted

    # -- reading the heads over SNMP, from the NMS namespace ----------------------------

    def walk(self, head: str, oid: str) -> dict[int, str]:
        p = self.c.run("nms", "snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Oq", "-t", "2", "-r", "1",
                       "-Cr50", f"{self.public[head]}:{self.port}", oid, check=False, timeout=30)
        out = {}
        for line in p.stdout.splitlines():
            name, _, value = line.partition(" ")
            if name.startswith(f".{oid}."):
                out[int(name.rsplit(".", 1)[1])] = value.strip('"')
        return out

    def events(self, head: str) -> dict[int, tuple[int, str]]:
        """index -> (type, subject) of the head's event history rows newer than accounted."""
        types = {i: v for i, v in self.walk(head, EVENT_TYPE).items() if i > self.seen_index[head]}
        subjects = self.walk(head, EVENT_SUBJECT) if types else {}
        return {i: (int(v), subjects.get(i, "")) for i, v in types.items() if v.isdigit()}

    def active(self) -> str:
        for _ in range(50):
            held = self.pair.holders()
            if len(held) == 1:
                return next(iter(held))
            time.sleep(0.1)
        raise RuntimeError(f"no single holder of the alias: {self.pair.holders()}")

    def reporter(self) -> str:
        """The head that reports the LANs (haoscarLanPoller names it)."""
        for head in HEADS:
            value = self.pair.snmp(head, f"{R}.1.16.1.0")
            if value.strip('"') in HEADS:
                return value.strip('"')
        return ""

    # -- the faults ---------------------------------------------------------------------

    def fault(self, kind: str) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
        """Inject one fault; (expected event types per head, types that may come on top)."""
        active = self.active()
        other = HEADS[1 - HEADS.index(active)]
        if kind == "service":
            pid = int((self.pair.workdir / f"tcp-{active}.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            return {active: {12, 21, 13}}, {}
        if kind == "lan":
            self.c.carrier_down("node2", "lana")
            time.sleep(LAN_CUT_S)
            self.c.carrier_up("node2", "lana")
            return {"reporter": {10, 11}}, {}
        self.pair.kill9(active)
        time.sleep(RESTART_AFTER_S)
        self.pair.start(active)
        return {other: {2, 4, 5, 3}, active: {1}}, {}

    def settled(self, expected: dict[str, set[int]]) -> bool:
        """Every expected event recorded, both alarm tables empty, both daemons up."""
        for head in HEADS:
            if self.pair.procs[head].poll() is not None:
                return False
        got = {h: {t for t, _ in self.events(h).values()} for h in HEADS}
        for head, types in expected.items():
            if head == "reporter":
                if not any(types <= got[h] for h in HEADS):
                    return False
            elif not types <= got[head]:
                return False
        return not any(self.pair.alarms(h) for h in HEADS)

    def account(self, kind: str, expected: dict[str, set[int]]) -> None:
        t = self.tally
        new = {h: self.events(h) for h in HEADS}
        got = {h: [ty for ty, _ in rows.values()] for h, rows in new.items()}
        for head, types in expected.items():
            heads = HEADS if head == "reporter" else (head,)
            for ty in types:
                t.expected_events += 1
                if not any(ty in got[h] for h in heads):
                    t.lost_events.append(f"{time.strftime('%H:%M:%S')} {kind}: event {ty} on {head}")
        traps = self.pair.traps()
        fresh = traps[self.traps_seen:]
        self.traps_seen = len(traps)
        for head in HEADS:
            sent = Counter()
            for info, binds in fresh:
                if f"[{self.public[head]}]:" not in info.split("->")[0]:
                    continue
                oid = binds.get(".1.3.6.1.6.3.1.1.4.1.0", "")
                if oid.startswith(f"OID: .{R}.0."):
                    sent[int(oid.rsplit(".", 1)[1])] += 1
            want = Counter(NOTIFIED[ty] for ty in got[head] if ty in NOTIFIED)
            for notif, n in want.items():
                t.notified_events += n
                if sent[notif] < n:
                    t.lost_notifications.append(
                        f"{time.strftime('%H:%M:%S')} {kind}: {head} recorded {n} events notified as "
                        f"{notif}, snmptrapd got {sent[notif]}")
            t.alarms_raised += got[head].count(ALARM_RAISED)
            t.alarms_cleared += got[head].count(ALARM_CLEARED)
            left = self.pair.alarms(head)
            t.alarms_left += [f"{time.strftime('%H:%M:%S')} {kind}: {head} {a}" for a in left]
            if new[head]:
                self.seen_index[head] = max(new[head])
        t.ledger_entries, t.lost_ledger = ledger_entries(self.pair, t.faults)

    def start_services(self) -> None:
        for head in HEADS:
            self.c.popen(head, str(self.pair.workdir / "tcpd"), "start", env=dict(os.environ, HAOSCAR_TEST_HEAD=head))
        deadline = time.monotonic() + 10
        while not all((self.pair.workdir / f"tcp-{h}.pid").exists() for h in HEADS):
            if time.monotonic() > deadline:
                raise RuntimeError("the TCP services did not start")
            time.sleep(0.1)

    def settle_start(self) -> None:
        """Wait for the start-up's own events and alarms to pass, then account them away."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not any(self.pair.alarms(h) for h in HEADS) and self.reporter():
                break
            time.sleep(0.5)
        for head in HEADS:
            rows = self.events(head)
            if rows:
                self.seen_index[head] = max(rows)
        self.traps_seen = len(self.pair.traps())


LEDGER_KINDS = {"service": "service", "lan": "lan_interface", "failover": "alias"}


def ledger_entries(pair: Any, faults: Counter) -> tuple[dict[str, int], list[str]]:
    """The outage ledger's entries for the faults so far, read with `haoscar-snmp report
    --outages` from each head's state directory (the daemons run on): every service kill
    must be a service outage, every LAN cut an outage of node2's interface (each head
    polls every interface: the head that saw most), every failover an outage of the
    alias (on the survivor). Returns the counts found per fault kind and what is
    missing (lost)."""
    found: dict[str, int] = {kind: 0 for kind in LEDGER_KINDS}
    for head in HEADS:
        p = subprocess.run([sys.executable, "-m", "haoscar_snmp", "report", "-c", str(pair.workdir / f"{head}.toml"),
                            "--outages", "--format", "json"], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            return found, [f"{head}: haoscar-snmp report failed: {p.stderr.strip()[-300:]}"]
        rows = json.loads(p.stdout)["rows"]
        per_kind = Counter(kind for kind, subject_type in LEDGER_KINDS.items() for o in rows
                           if o["subject_type"] == subject_type
                           and (kind != "lan" or o["subject"].startswith("node2")))
        found["service"] += per_kind["service"]        # the active head's own service
        found["failover"] += per_kind["failover"]      # on the head that took over
        found["lan"] = max(found["lan"], per_kind["lan"])
    lost = [f"ledger: {faults[kind]} {kind} fault(s), {found[kind]} {LEDGER_KINDS[kind]} outage(s)"
            for kind in LEDGER_KINDS if found[kind] < faults[kind]]
    return found, lost


def service_toml(workdir: Path) -> str:
    """One TCP service per head (active_only false: both heads check their own), restarted
    by the ladder with the script below; each head's pid file apart by HAOSCAR_TEST_HEAD."""
    script = workdir / "tcpd"
    pidfile = f"{workdir}/tcp-$HAOSCAR_TEST_HEAD.pid"
    script.write_text(f"""#!/bin/sh
{sys.executable} {PROGRAM} {SERVICE_PORT} {pidfile} >/dev/null 2>&1 </dev/null &
""")
    script.chmod(0o755)
    return f"""
        [[services]]
        name = "tcpd"
        check_type = "tcp"
        check = "127.0.0.1:{SERVICE_PORT}"
        active_only = false
        restart = "{script} restart"
        interval_ms = 200
        retry_threshold = 2
        max_restarts = 100
        recovery = "restart-then-failover"
        """


def nodes_toml(count: int) -> str:
    return "".join(f'[[nodes]]\nname = "node{n}"\nlan_a = "10.71.1.{10 + n}"\nlan_b = "10.71.2.{10 + n}"\n\n'
                   for n in range(1, count + 1))


def walkers(c: Any, public: dict[str, str], port: int, count: int, seconds: float) -> list[subprocess.Popen]:
    procs = []
    for i in range(count):
        head = HEADS[i % 2]
        loop = (f"end=$((SECONDS+{int(seconds)})); while [ $SECONDS -lt $end ]; do "
                f"snmpbulkwalk -v2c -c public -Cr25 -t 2 -r 0 {public[head]}:{port} .1 >/dev/null 2>&1; done")
        procs.append(c.popen("nms", "bash", "-c", loop))
    return procs


class Usage:
    """Memory and CPU of each head's daemon and heartbeat process, a line a minute."""

    def __init__(self, pair: Any) -> None:
        self.pair = pair
        self.last: dict[str, tuple[int | None, float]] = {}
        self.t = time.monotonic()
        self.rows: list[dict[str, Any]] = []
        self.read()

    def pids(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for head in HEADS:
            proc = self.pair.procs[head]
            out[f"{head}"] = proc.pid if proc.poll() is None else None
            try:
                out[f"{head}-hb"] = self.pair.heartbeat_pid(head) if proc.poll() is None else None
            except (AssertionError, OSError):
                out[f"{head}-hb"] = None
        return out

    def read(self) -> dict[str, tuple[int, float]]:
        """name -> (VmRSS KiB, CPU % since the last read: 0 for a process new since)."""
        now = time.monotonic()
        span = max(now - self.t, 1e-6)
        out = {}
        for name, pid in self.pids().items():
            rss, cpu = proc_figures(pid)
            old_pid, old_cpu = self.last.get(name, (None, 0.0))
            # A process started since the last read (a restarted daemon) is charged its
            # whole CPU time over the span: an upper bound of its use.
            pct = 100 * (cpu - (old_cpu if old_pid == pid else 0.0)) / span if pid else 0.0
            out[name] = (rss, pct)
            self.last[name] = (pid, cpu)
        self.t = now
        return out


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from tests.scenarios.hapair import HaPair
    from tests.scenarios.netns import Cluster

    cluster = Cluster(prefix=f"sk{os.getpid() % 10000}", nodes=NODES)
    with cluster:
        pair = HaPair(cluster, work, interval_ms=100, dead_ms=400, initdead_ms=1500, auto_failback=False)
        pair.services = {h: service_toml(work) for h in HEADS}
        for head in HEADS:
            pair.env.setdefault(head, {})["HAOSCAR_TEST_HEAD"] = head
        pair.timing_toml = "lan_poll_interval_ms = 200\nlan_down_after_ms = 600\n"
        pair.extra_toml = nodes_toml(NODES) + "[lan]\nrise = 2\n"
        soak = Soak(pair, args)
        procs: list[subprocess.Popen] = []
        try:
            pair.start_trapd()
            soak.start_services()
            pair.start_both()
            soak.settle_start()
            total_s = args.minutes * 60
            procs = walkers(cluster, soak.public, soak.port, args.walkers, total_s + 60)
            usage = Usage(pair)
            t0 = time.monotonic()
            next_minute, next_fault, n = t0 + 60, t0 + args.every, 0
            print(f"soak: {args.minutes:g} min, a fault every {args.every:g} s, {args.walkers} walkers; "
                  f"load average {loadavg()}", flush=True)
            while time.monotonic() < t0 + total_s:
                now = time.monotonic()
                if now >= next_minute:
                    minute_line(soak, usage, round((now - t0) / 60))
                    next_minute += 60
                if now < next_fault:
                    time.sleep(min(next_fault, next_minute) - now)
                    continue
                kind = FAULTS[n % len(FAULTS)]
                n += 1
                next_fault += args.every
                started = time.monotonic()
                expected, _ = soak.fault(kind)
                soak.tally.faults[kind] += 1
                deadline = started + args.recovery
                while time.monotonic() < deadline and not soak.settled(expected):
                    time.sleep(0.5)
                soak.tally.recovery_s.setdefault(kind, []).append(round(time.monotonic() - started, 1))
                soak.account(kind, expected)
                for head in HEADS:   # a daemon that stopped by itself: an incident, started again
                    if pair.procs[head].poll() is not None:
                        soak.tally.incidents.append(f"{time.strftime('%H:%M:%S')} {head} had stopped "
                                                    f"(exit {pair.procs[head].returncode}); started again")
                        pair.start(head)
            minute_line(soak, usage, round((time.monotonic() - t0) / 60))
            text = pair.log_text()
            res = {"tally": soak.tally.__dict__, "usage": usage.rows, "bug": BUG_MARKER in text,
                   "tracebacks": text.count("Traceback"), "traps": len(pair.traps())}
            return res
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)
            pair.stop_all()


def minute_line(soak: Soak, usage: Usage, minute: int) -> None:
    u = usage.read()
    t = soak.tally
    parts = []
    for head in HEADS:
        d, hb = u[head], u[f"{head}-hb"]
        parts.append(f"{head} {d[0] / 1024:5.1f} MB {d[1]:5.1f} % (hb {hb[0] / 1024:4.1f} MB {hb[1]:4.1f} %)")
    usage.rows.append({"minute": minute, **{k: {"rss_kib": v[0], "cpu_pct": round(v[1], 1)} for k, v in u.items()},
                       "faults": sum(t.faults.values()), "lost": t.lost, "load": loadavg()})
    print(f"min {minute:>2}: " + "; ".join(parts) + f"; faults {sum(t.faults.values())}, lost {t.lost}, "
          f"alarms {t.alarms_raised}/{t.alarms_cleared}; load {loadavg()}", flush=True)


def report(res: dict[str, Any]) -> str:
    t = res["tally"]
    print(f"\nfaults: " + ", ".join(f"{k} {t['faults'].get(k, 0)}" for k in FAULTS))
    for kind, values in t["recovery_s"].items():
        print(f"  {kind}: recovered (all events in, no alarm left) in {min(values)}..{max(values)} s")
    print(f"expected events {t['expected_events']}, lost {len(t['lost_events'])}")
    print(f"events with a notification {t['notified_events']}, notifications lost {len(t['lost_notifications'])} "
          f"(snmptrapd received {res['traps']} in all)")
    print(f"alarms raised {t['alarms_raised']}, cleared {t['alarms_cleared']}, left active {len(t['alarms_left'])}")
    found, faults = t["ledger_entries"], t["faults"]
    entries = ", ".join(f"{LEDGER_KINDS[k]} {found.get(k, 0)}" for k in LEDGER_KINDS)
    kinds = ", ".join(f"{faults.get(k, 0)} {k}" for k in LEDGER_KINDS)
    print(f"accounting ledger entries: {entries} (for {kinds}), lost {len(t['lost_ledger'])}")
    for line in t["lost_events"] + t["lost_notifications"] + t["alarms_left"] + t["lost_ledger"] + t["incidents"]:
        print(f"  - {line}")
    lost = len(t["lost_events"]) + len(t["lost_notifications"]) + len(t["alarms_left"]) + len(t["lost_ledger"])
    print(f"lost: {lost}; daemons stopped by themselves: {len(t['incidents'])}; "
          f"bug marker in a log: {'YES' if res['bug'] else 'no'} ({res['tracebacks']} tracebacks)")
    ok = lost == 0 and not res["bug"] and not t["incidents"] and sum(t["faults"].values()) > 0
    verdict = "PASS" if ok else "FAIL"
    print(f"verdict: {verdict}")
    return verdict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    p.add_argument("--every", type=float, default=30.0, help="seconds between faults")
    p.add_argument("--recovery", type=float, default=25.0, help="bound of each fault's recovery wait")
    p.add_argument("--walkers", type=int, default=2, help="snmpbulkwalk loops (half per head)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument("--keep-tmp", action="store_true", help="keep configs, daemon logs, trap log")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("ip", "nft", "snmpbulkwalk", "snmpget", "snmptrapd"):
        if not shutil.which(tool):
            print(f"missing: {tool}", file=sys.stderr)
            return 2

    unwind_on_signals()

    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    print(f"bench_soak ({time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, "
          f"{os.uname().release}, load average {loadavg()})", flush=True)
    try:
        res = run(args, work)
        res["verdict"] = report(res)
        res["load_end"] = loadavg()
        print(f"load average at the end {res['load_end']}")
        if args.json:
            args.json.write_text(json.dumps(res, indent=1, default=str))
        return 0 if res["verdict"] == "PASS" else 1
    finally:
        if args.keep_tmp:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
