#!/usr/bin/env python3
"""The standalone agent under a long fuzz: does it stay up, answer right, count the junk,
and keep its memory?

One real daemon on the embedded demo configuration (`haoscar-snmp run`, no `-c`: SNMP on
127.0.0.1:16161 and [::1]:16161, community `public` read-only, the v3 user `admin` with
SHA-256 and AES) inside a network namespace of its own (`haoscar-fuzz-PID`, loopback
only), so that its fixed port cannot meet another daemon's. This process enters the
namespace too; every datagram goes to 127.0.0.1 there.

1. The valid messages the mutations start from are captured from net-snmp's tools
   (tests/integration/snmpfuzz.py: a relay between `snmpget`, `snmpgetnext`,
   `snmpbulkget`, `snmpset` and the agent): v1, v2c, the v3 discovery probe and v3
   authPriv requests.
2. A reference check with the real tools: `snmpget` v2c and v3 of fixed objects,
   `snmpwalk` v2c and v3 of HAOSCAR-MIB, `snmpbulkwalk` of the whole view (their OIDs).
3. VmRSS of the daemon (from /proc/PID/status) after the reference check: "before".
4. --count datagrams (default 120,000), the eight kinds in turn (random bytes, truncated
   and bit-flipped valid messages, huge/indefinite BER lengths, bad versions, garbage USM
   parameters, wrong communities, v1/v2c PDUs that are no request: informs, responses,
   traps, reports), paced by the agent: after every --chunk datagrams
   one valid GET of snmpInPkts from a second socket, and the next chunk only after its
   answer; so none is lost to a full socket buffer (the namespace's own UDP counters
   from /proc/net/snmp confirm it). VmRSS sampled at every pacing answer (max) and
   printed every 10 %.
5. After a 3 s rest: VmRSS "after", the reference check again (same OIDs, same fixed
   values; the walks leave out the subtrees that gain rows by themselves: the event
   history, accounting and performance, see MOVING), the counters' deltas, the
   daemon's log searched for the bug marker.

Verdict PASS when: the daemon is alive and answers the reference check as before; every
pacing GET was answered; snmpInPkts grew by exactly the datagrams sent plus our own
requests; snmpInBadVersions grew by at least the bad-version datagrams,
snmpInBadCommunityNames by at least the wrong-community ones, snmpInASNParseErrs by at
least 90 % of the random, truncated and huge-length ones; haoscarMalformedPackets did not
move (it counts heartbeat and AgentX packets: SNMP junk belongs to the standard
counters); VmRSS after is within 5 % of before; no bug in the log.

Needs root (the namespace), iproute2, net-snmp's tools and the project venv; run from
the repository root:

    sudo .venv/bin/python bench/bench_fuzz.py                  # 120,000 datagrams, ~1 minute
    sudo .venv/bin/python bench/bench_fuzz.py --count 10000    # a quick look
    sudo .venv/bin/python bench/bench_fuzz.py --json /tmp/fuzz.json --keep-tmp

Everything is removed at the end (daemon stopped by its pid, namespace deleted,
temporary directory removed), also on an error, Ctrl-C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchsignals import unwind_on_signals  # noqa: E402  (bench/ is on sys.path)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haoscar_snmp.core.bug import BUG_MARKER  # noqa: E402
from tests.integration.snmpfuzz import (  # noqa: E402
    COUNTERS, KINDS, FuzzRun, Mutator, capture, send_paced)

ADDRESS = ("127.0.0.1", 16161)          # the demo configuration's listener
COMMUNITY = "public"
V3 = ["-u", "admin", "-l", "authPriv", "-a", "SHA-256", "-A", "demo-auth-passphrase",
      "-x", "AES", "-X", "demo-priv-passphrase"]
MIB_DIRS = f"+{REPO / 'mibs'}:{REPO / '.cache' / 'mibs'}"
ROOT = "1.3.6.1.4.1.32473.1"
FIXED = ["1.3.6.1.2.1.1.5.0", f"{ROOT}.1.1.1.0", f"{ROOT}.1.1.8.0", f"{ROOT}.1.2.1.0"]
CLONE_NEWNET = 0x40000000
RSS_BOUND = 1.05


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def udp_counters() -> dict[str, int]:
    """The UDP line of /proc/net/snmp for this process's namespace."""
    lines = [line.split() for line in Path("/proc/self/net/snmp").read_text().splitlines()
             if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


def tool(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    cmd = [args[0], "-M", MIB_DIRS, "-m", "", "-On", "-t", "2", "-r", "1", *args[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


END_OF_VIEW = "No more variables left in this MIB View"


def oids(out: str) -> list[str]:
    """The OIDs of a walk's output (-On). Left out: the lines of a value printed over
    several (a text with a line break in it), and the endOfMibView var-binds that close
    a GETBULK walk (they repeat the last OID, as many as the last request had
    repetitions left, which depends on how many rows the moving tables held)."""
    return [line.split(" = ")[0] for line in out.splitlines()
            if line.startswith(".") and " = " in line and END_OF_VIEW not in line]


def reference() -> dict[str, Any]:
    """What the agent answers net-snmp's tools: fixed values and the OIDs of the walks."""
    addr = f"{ADDRESS[0]}:{ADDRESS[1]}"
    out: dict[str, Any] = {}
    for name, sec in (("v2c", ["-v2c", "-c", COMMUNITY]), ("v3", ["-v3", *V3])):
        r = tool("snmpget", *sec, addr, *FIXED)
        out[f"get_{name}"] = r.stdout if r.returncode == 0 else f"FAILED: {r.stderr.strip()}"
        r = tool("snmpwalk", *sec, addr, ROOT)
        out[f"walk_{name}"] = (oids(r.stdout)
                               if r.returncode == 0 else f"FAILED: {r.stderr.strip()}")
    r = tool("snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-Cr25", addr, "1.3.6.1")
    out["bulkwalk_v2c"] = (oids(r.stdout)
                           if r.returncode == 0 else f"FAILED: {r.stderr.strip()}")
    return out


def counters() -> dict[str, int]:
    r = tool("snmpget", "-v2c", "-c", COMMUNITY, f"{ADDRESS[0]}:{ADDRESS[1]}", *COUNTERS.values())
    if r.returncode != 0:
        raise RuntimeError(f"cannot read the counters: {r.stderr.strip()}")
    by_oid = {line.split(" = ")[0].strip("."): int(line.split()[-1])
              for line in r.stdout.splitlines() if " = " in line}
    return {name: by_oid[oid] for name, oid in COUNTERS.items()}


def wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}:\n{log.read_text()}")
        r = tool("snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.3", "-r", "0",
                 f"{ADDRESS[0]}:{ADDRESS[1]}", FIXED[1])
        if r.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"daemon not answering after {timeout} s")


# Subtrees whose rows come and go by themselves, so the walks leave their OIDs out:
# the event history (haoscarEventEntry: refused requests are events, so the fuzz adds
# rows), the accounting subtree (haoscarAccounting: windows and outage rows grow with
# time) and the performance subtree (haoscarPerformance: job and request rows appear as
# the daemon works). Everything else in the view must keep the same OIDs.
MOVING = (f".{ROOT}.1.9.2.", f".{ROOT}.1.11.", f".{ROOT}.1.12.")


def steady(value: Any) -> Any:
    """A walk's OIDs without those of the subtrees that move by themselves."""
    if isinstance(value, list):
        return [oid for oid in value if not oid.startswith(MOVING)]
    return value


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs, beside values that move by themselves (the walks compare OIDs only,
    and not those under MOVING)."""
    problems = []
    for key, value in before.items():
        if isinstance(value, str) and value.startswith("FAILED"):
            problems.append(f"{key} failed before the fuzz: {value}")
        elif isinstance(value, list) and isinstance(after[key], list):
            b, a = steady(value), steady(after[key])
            if a != b:
                at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                problems.append(f"{key} differs: {len(b)} OIDs before, {len(a)} after; new "
                                f"{sorted(set(a) - set(b))[:10]}, gone {sorted(set(b) - set(a))[:10]}; "
                                f"first difference at {at}: before {b[at - 1:at + 3]}, after {a[at - 1:at + 3]}")
        elif after[key] != value:
            problems.append(f"{key} differs: {str(after[key])[:300]}")
    return problems


def run(args: argparse.Namespace, work: Path, ns: str) -> dict[str, Any]:
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    enter_netns(ns)
    log = work / "daemon.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "haoscar_snmp", "run",
                                 "--state-dir", str(work / "state")],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    res: dict[str, Any] = {"pid": proc.pid}
    try:
        wait_ready(proc, log)
        seeds = capture(ADDRESS, COMMUNITY, V3)
        res["seeds"] = {k: len(v) for k, v in seeds.by_kind.items()}
        print(f"seeds captured from net-snmp's tools: {res['seeds']}", flush=True)
        ref_before = reference()
        print(f"reference: walk v2c {len(ref_before['walk_v2c'])} OIDs, walk v3 "
              f"{len(ref_before['walk_v3'])}, bulkwalk of the view {len(ref_before['bulkwalk_v2c'])}",
              flush=True)
        time.sleep(2)
        rss_before = rss_kib(proc.pid)
        udp_before = udp_counters()
        c_before = counters()
        samples: list[int] = [rss_before]
        step = max(args.count // 10, 1)
        next_print = [step]
        t0 = time.monotonic()

        def on_sync(r: FuzzRun) -> None:
            samples.append(rss_kib(proc.pid))
            if r.total >= next_print[0]:
                next_print[0] += step
                print(f"  {r.total:>8,} sent  {r.total / (time.monotonic() - t0):7.0f}/s  "
                      f"VmRSS {samples[-1]:,} KiB  answered {r.answered:,}", flush=True)

        print(f"fuzz: {args.count:,} datagrams, chunks of {args.chunk}; VmRSS before "
              f"{rss_before:,} KiB; load average {loadavg()}", flush=True)
        fr = send_paced(ADDRESS, Mutator(seeds, seed=args.seed).stream(args.count, tuple(args.kinds)), COMMUNITY,
                        chunk=args.chunk, max_seconds=args.max_seconds, on_sync=on_sync)
        time.sleep(3)
        alive = proc.poll() is None
        rss_after = rss_kib(proc.pid) if alive else 0
        c_after = counters() if alive else {}
        udp_after = udp_counters()
        ref_after = reference() if alive else {}
        log_text = log.read_text(errors="replace")
        res.update(
            sent=dict(fr.sent), total=fr.total, seconds=round(fr.seconds, 2),
            rate=round(fr.total / fr.seconds), answered=fr.answered, syncs=fr.syncs,
            sync_lost=fr.sync_lost, rss_before_kib=rss_before, rss_after_kib=rss_after,
            rss_max_kib=max(samples), rss_samples=len(samples), alive=alive,
            counters_delta={k: c_after.get(k, 0) - c_before[k] for k in COUNTERS},
            udp_delta={k: udp_after[k] - udp_before[k] for k in ("InDatagrams", "InErrors",
                                                                   "RcvbufErrors", "NoPorts")},
            log_lines=log_text.count("\n"), log_bug=BUG_MARKER in log_text,
            log_warnings=sum(1 for line in log_text.splitlines() if " WARNING " in line),
            reference_problems=compare(ref_before, ref_after) if alive else ["daemon died"])
        return res
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        res["exit_code"] = proc.returncode


def verdict(res: dict[str, Any]) -> list[str]:
    """Every condition of a pass that failed (empty: PASS)."""
    fails = []
    d, sent = res["counters_delta"], res["sent"]
    if not res["alive"]:
        fails.append("the daemon died")
    fails += res["reference_problems"]
    if res["sync_lost"]:
        fails.append(f"{res['sync_lost']} pacing GETs unanswered")
    # Our own requests after the "before" read: the pacing GETs and the "after" read.
    if d["snmpInPkts"] != res["total"] + res["syncs"] + 1:
        fails.append(f"snmpInPkts grew by {d['snmpInPkts']}, sent {res['total']} + "
                     f"{res['syncs']} pacing + 1")
    if d["snmpInBadVersions"] < sent.get("badversion", 0):
        fails.append("snmpInBadVersions short of the bad-version datagrams")
    if d["snmpInBadCommunityNames"] < sent.get("wrongcommunity", 0):
        fails.append("snmpInBadCommunityNames short of the wrong-community datagrams")
    undecodable = sum(sent.get(k, 0) for k in ("random", "truncated", "hugelength"))
    if d["snmpInASNParseErrs"] < 0.9 * undecodable:
        fails.append("snmpInASNParseErrs short of 90 % of the undecodable datagrams")
    if d["haoscarMalformedPackets"] != 0:
        fails.append("haoscarMalformedPackets moved (no heartbeat or AgentX packet was sent)")
    if res["rss_after_kib"] > RSS_BOUND * res["rss_before_kib"]:
        fails.append(f"VmRSS grew by more than {RSS_BOUND - 1:.0%}")
    if res["log_bug"]:
        fails.append("the daemon logged a bug")
    return fails


def report(res: dict[str, Any]) -> None:
    rb, ra, rm = res["rss_before_kib"], res["rss_after_kib"], res["rss_max_kib"]
    print(f"\nsent {res['total']:,} datagrams in {res['seconds']} s: {res['rate']:,}/s "
          f"(paced by the agent, {res['syncs']:,} pacing GETs, {res['sync_lost']} unanswered)")
    print("by kind: " + ", ".join(f"{k} {res['sent'].get(k, 0):,}" for k in KINDS))
    print(f"answered by the agent (mutations that were still valid requests): {res['answered']:,}")
    print(f"VmRSS before {rb:,} KiB, after {ra:,} KiB ({(ra - rb) / rb:+.1%}), max {rm:,} KiB "
          f"({(rm - rb) / rb:+.1%}), {res['rss_samples']:,} samples")
    print("counters moved: " + ", ".join(f"{k} +{v:,}" for k, v in res["counters_delta"].items()))
    print("namespace UDP: " + ", ".join(f"{k} +{v:,}" for k, v in res["udp_delta"].items()))
    print(f"daemon log: {res['log_lines']:,} lines, {res['log_warnings']:,} warnings, "
          f"bug marker {'FOUND' if res['log_bug'] else 'absent'}")
    fails = verdict(res)
    res["verdict"] = "PASS" if not fails else "FAIL"
    print(f"verdict: {res['verdict']}" + "".join(f"\n  - {f}" for f in fails))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=120_000, help="datagrams to send")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                   help="the kinds of datagram to send, in turn (default: all)")
    p.add_argument("--chunk", type=int, default=64, help="datagrams between pacing GETs")
    p.add_argument("--seed", type=int, default=1, help="random seed of the mutations")
    p.add_argument("--max-seconds", type=float, default=900.0, help="bound of the sending")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument("--keep-tmp", action="store_true", help="keep the daemon's log and state")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (a network namespace)", file=sys.stderr)
        return 2
    for t in ("ip", "snmpget", "snmpwalk", "snmpbulkwalk", "snmpgetnext", "snmpbulkget", "snmpset"):
        if not shutil.which(t):
            print(f"missing: {t}", file=sys.stderr)
            return 2

    unwind_on_signals()

    work = Path(tempfile.mkdtemp(prefix="bench-fuzz-"))
    ns = f"haoscar-fuzz-{os.getpid()}"
    print(f"bench_fuzz ({time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, "
          f"{os.uname().release}, load average {loadavg()})", flush=True)
    try:
        res = run(args, work, ns)
        res["load_end"] = loadavg()
        report(res)
        print(f"load average at the end {res['load_end']}")
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return 0 if res["verdict"] == "PASS" else 1
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        if args.keep_tmp:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
