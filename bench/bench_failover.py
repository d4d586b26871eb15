#!/usr/bin/env python3
"""Failover time as a client sees it: haoscar-snmp against keepalived, same topology, same probe.

Failover time = from the fault on the active head to the first reply, at the client, that
comes from the STANDBY head on the alias address 10.71.0.50. Faults on the active head
(head1):

* kill       SIGKILL of the daemon (keepalived: of its whole process group, parent and
             VRRP child at once; see below); our heartbeat process exits with it;
* freeze     SIGSTOP of the whole process group (ours: the daemon and its heartbeat
             process; keepalived: parent and VRRP child): a hung head;
* isolation  the active head's private LANs muted (ours: lana and lanb, in one nft
             transaction; keepalived runs its VRRP instance on lana: lana), link up, public
             LAN untouched. Our heads also heartbeat over the public LAN by default, and a
             peer heard there is alive: nobody would take over, as designed. To compare
             like with like, our pair runs here without the public path (heartbeats on the
             private LANs only, as keepalived's adverts) and without auto-failback: both
             heads then hold the alias, see each other's announcements on the public LAN,
             and the one that took over last keeps it (with auto-failback the preferred
             primary would keep it within milliseconds, and the client would never be
             answered by the standby: nothing to time);
* cut        carrier lost on the active head's private LANs (lana and lanb), public LAN
             untouched. Ours (public path on, the default): the isolated head hands over
             at once, the peer hears it on the public LAN. keepalived: its VRRP interface
             goes down, the instance enters FAULT and drops the VIP, the backup takes over
             after its master down interval;
* hbfreeze   SIGSTOP of the active head's heartbeat process ONLY (ours: the daemon's
             child running fcaps.fault.heartbeat.child; keepalived: its VRRP child, the parent
             keeps running). Our daemon watches its heartbeat process for silence: after
             max(2 x interval, dead time / 2) without a report it releases the alias
             (saying HANDOVER, which the frozen process cannot carry) and starts a new
             heartbeat process; the peer takes over at its dead time. keepalived's parent
             does not notice a stopped child: the frozen master keeps the VIP configured
             for as long as the freeze lasts, while the backup takes over after its master
             down interval. The freeze is capped (FREEZE_CAP_S after the fault at the
             aggressive timing, the detection interval + FREEZE_CAP_S at the default one),
             then SIGCONT; the SIGCONT is also sent in a `finally`. Besides the client's
             figures, the alias's holders are followed (below) and head1's log steps
             (silence seen, released, new heartbeat process) are printed. Part of the
             default fault list at the aggressive timing; at the default timing only when
             --faults names it;
* dfreeze    (ours only) SIGSTOP of the active head's DAEMON only; its heartbeat process
             runs on and keeps sending heartbeats. The heartbeat process counts the daemon
             hung after max(1 s, dead time) without a word from it, removes the aliases
             itself and falls silent (fences); the peer takes over at its dead time. The
             freeze is capped and followed like hbfreeze (holders from the address
             monitors, head1's steps from the log its heartbeat process writes). keepalived
             has no counterpart: its checks and VRRP run in the child, and a stopped parent
             only stops watching its children, so nothing is there to time. Part of the
             default fault list at the aggressive timing; at the default timing only when
             --faults names it;
* pubsilent  the active head's PUBLIC link goes silent while its carrier stays up (its
             bridge port on the public LAN muted with nftables, `Cluster.mute("head1",
             "pub")`), as a dead switch port or a wrong VLAN would leave it; private LANs
             untouched. The client cannot reach head1 from the fault on. Ours: the pair
             runs with `[failover] public_targets` = the client (10.71.0.100) and the NMS
             station (10.71.0.200), probed every PUBLIC_PROBE_MS with rise/fall/hold-down
             PUBLIC_RISE/PUBLIC_FALL/PUBLIC_HOLD_DOWN_MS (the scenario test's settings); the
             active head that reaches none while the standby reaches one waits one probe
             interval and one heartbeat interval for the peer's word, then releases and says
             HANDOVER over the private LANs; the standby takes over. No dead time is
             involved, so there is no "beyond the detection interval" figure: the report
             gives the bound instead (public_fall to public_fall + 1 probe intervals, + one
             probe interval + one heartbeat interval, + the handover). keepalived: its VRRP
             instance runs on lana, so muting head1's public port moves nothing; the run
             waits PUBSILENT_WAIT_S and reports "not served by head2" if so. A second
             keepalived variant, `keepalived-track` ("keepalived+ts" in the report; only
             for this fault), adds a vrrp_script that pings the same two targets (succeeds
             if either answers; interval 1 s, the smallest keepalived 2.2 accepts: it
             refuses fractions, "must be between 1 and 4294"; fall 3, rise 2, weight -60,
             so head1 drops to 90, below head2's 100; head2 discards the lower-priority
             adverts and takes over when its master down timer runs out). Each run waits
             until both heads reach the targets (ours: haoscarHeadPublicState `reached` for
             both heads as each head sees it; keepalived+ts: the script succeeded on both),
             keeps the port muted PUBSILENT_WAIT_S after the fault, unmutes it (also in a
             `finally`) and follows the holders HOLDER_TAIL_S more. The alias's holders are
             followed as in hbfreeze; head1's steps (loss judged, waiting for the peer's
             word, handing over, released) and head2's (taking over, active) come from
             their logs. Part of the default fault list at the aggressive timing; at the
             default timing only when --faults names it (the wait is then
             PUBSILENT_WAIT_S_DEFAULT, the heartbeats being 5 s);
* kill-parent  (only with --faults kill-parent) SIGKILL of keepalived's parent process
             alone; for our single-process daemon the same as kill.

Holders (hbfreeze, dfreeze, pubsilent): an address monitor (`--helper addrmon`, a netlink socket subscribed to
IPv4 address changes in each head namespace) time-stamps every add and removal of the
alias, so the time with two holders and with none is exact, not sampled; the holders are
also sampled every HOLDER_SAMPLE_S through netns.Cluster.holding as a cross-check.

In kill, freeze and isolation the old head's KERNEL keeps the alias (nobody removes it) and its echo
responder keeps answering, so the client is never cut off: it keeps getting replies from
the old head until the standby's gratuitous ARP moves it over. What is measured is
therefore when the standby holds the alias and answers, recognised by the reply payload,
which names the head that answered. For a whole-head death (where the old head stops
answering) that is the same instant: the first reply after the outage.

Why UDP and not ICMP: an ICMP echo reply does not say which head sent it (only the
source MAC would, which needs a raw socket at the client), and `ping -i 0.01` reports
sequence numbers, not which head; a tiny UDP echo (this file, `--helper echo`, on
0.0.0.0 in each head namespace, answering from the address it was asked on via
IP_PKTINFO) puts the head's name in the reply. The prober (`--helper probe`, client
namespace) sends one probe every 10 ms on a fixed schedule and time-stamps every reply;
the resolution of a failover time is therefore 10 ms (plus a round trip well under 1 ms).

The fault is injected 5 ms after a heartbeat (ours) or VRRP advertisement (keepalived)
from the active head was seen arriving in the standby's namespace (`--helper sniff`, an
AF_PACKET socket on the standby's private LANs): the standby then has to wait its whole
detection interval, so "failover time - detection interval" is the time the
implementation adds beyond detection (a fault at a random phase would shorten the
failover by up to one interval, by luck). The sniffer also gives the exact time the
standby last heard the active head, from which the same overhead is computed a second
way ("overhead from last heard").

Timings:

* default     ours: heartbeat 5000 ms, dead time 15000 ms (initdead 15000);
              keepalived: advert_int 5, VRRPv2 (its default): master down interval
              3 x 5 s + skew (256-100)/256 s = 15.609 s;
* aggressive  ours: heartbeat 100 ms, dead time 300 ms (initdead 1000);
              keepalived: advert_int 0.1, vrrp_version 3: 3 x 100 ms + skew
              (256-100) x 100 ms / 256 = 360.9 ms.

keepalived: one vrrp_instance on lana, virtual_ipaddress 10.71.0.50/24 dev pub, priority
150 (head1, state MASTER) vs 100 (head2, state BACKUP), preemption on (the default), no
scripts (keepalived+ts, pubsilent only: the one track script above), no e-mail,
`keepalived -n -l -D -P -f CONF -p PID -r VRRP_PID -c CHECKERS_PID`
(-P: only the VRRP subsystem; the pid files live in the run's temporary directory).
Killing only keepalived's parent is NOT like killing our daemon: its VRRP child gets
SIGTERM from the kernel (parent-death signal), sends a priority-0 advertisement and
removes the VIP, a graceful handover after only the skew time (and the client has no
service until the backup answers). SIGKILL of the process group is the crash that leaves
the VIP configured, like `kill -9` of our daemon.

Both heads, the client and the helpers share one machine: in the isolation fault both of
our daemons detect the loss at the same instant and do the same work at once, on the same
CPUs. The daemon's steps (first path down, peer dead, taking over, active) are taken from
head2's log (millisecond time stamps) to show where its time goes.

Our daemon's own figure, haoscarLastFailoverDuration (1.3.6.1.4.1.32473.1.1.1.6.0: from
the moment it declared the peer dead to the alias added and announced), is read with
snmpget from the NMS namespace at 10.71.0.2:16161 and printed next to the client's
figure minus the dead time.

Every repetition starts both daemons afresh (a clean pair, head1 active) and stops them
afterwards. Everything runs in the network namespaces of tests.scenarios.netns.Cluster
(torn down at the end, also on error, Ctrl-C, SIGTERM or SIGHUP); no traffic leaves
them. It never fails on a number: it prints figures and whether the project's aims were
met.

Run as root from the repository root:
    sudo .venv/bin/python bench/bench_failover.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from haoscar_snmp.core.bug import BUG_MARKER

from benchsignals import unwind_on_signals  # noqa: E402  (bench/ is on sys.path)
REPO = Path(__file__).resolve().parents[1]
ALIAS = "10.71.0.50"
ECHO_PORT = 17950
HB_PORT = 7789                     # [heartbeat] port default
VRRP_PROTO = 112
MAGIC = b"HAOB"
PROBE = struct.Struct("!4sId")     # magic, sequence number, send time (monotonic)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
PACKET_OUTGOING = 4
LAST_FAILOVER_OID = "1.3.6.1.4.1.32473.1.1.1.6.0"   # haoscarLastFailoverDuration (ms)
NMS_TARGET = "10.71.0.2:16161"
KEEPALIVED = "/usr/sbin/keepalived"
AIM_OVERHEAD_MS = 50.0
PROBE_INTERVAL_MS = 10
FAULT_DELAY_S = 0.005              # fault injected this long after a heartbeat was seen
TAIL_S = 0.3                       # keep probing this long after the first standby reply

FAULTS = ("kill", "freeze", "isolation", "cut", "hbfreeze", "dfreeze", "pubsilent")
DEFAULT_TIMING_ONLY_ON_REQUEST = ("hbfreeze", "dfreeze", "pubsilent")   # default timing: only if --faults names it
FREEZE_CAP_S = 3.0                 # hbfreeze, dfreeze: SIGCONT this long after the fault (+ detection at default)
HOLDER_TAIL_S = 1.5                # hbfreeze, dfreeze: holders followed this long after the SIGCONT
HOLDER_SAMPLE_S = 0.05             # hbfreeze, dfreeze: Cluster.holding sampled this often (cross-check)
RTM_NEWADDR, RTM_DELADDR, RTMGRP_IPV4_IFADDR = 20, 21, 0x10
EXTRA_FAULTS = ("kill-parent",)    # keepalived: SIGKILL of the parent only (ours: as kill)
IMPLS = ("ours", "keepalived", "keepalived-track")
TRACK_ONLY_FAULTS = ("pubsilent",)  # keepalived-track runs for these faults only
OURS_ONLY_FAULTS = ("dfreeze",)      # keepalived has no counterpart (see dfreeze above)
FROZEN_ALONE = ("hbfreeze", "dfreeze")   # one process of head1 stopped, the holders followed
LABEL = {"ours": "haoscar-snmp", "keepalived": "keepalived", "keepalived-track": "keepalived+ts"}
# pubsilent: the public targets (the scenario test's), for ours and keepalived+ts alike
PUBLIC_TARGETS = ("10.71.0.100", "10.71.0.200")      # the client and the NMS station
PUBLIC_PROBE_MS, PUBLIC_RISE, PUBLIC_FALL, PUBLIC_HOLD_DOWN_MS = 100, 2, 3, 2000
PUBSILENT_WAIT_S = 5.0             # pubsilent: the port stays muted this long after the fault
PUBSILENT_WAIT_S_DEFAULT = 25.0    # the same at the default timing (5 s heartbeats / adverts; keepalived+ts
                                   # needs its script's fall, then its 15.6 s master down interval)
KA_SCRIPT_INTERVAL_S = 1           # the smallest vrrp_script interval keepalived 2.2 accepts
KA_SCRIPT_FALL, KA_SCRIPT_RISE, KA_SCRIPT_WEIGHT = 3, 2, -60
KA_PING_WAIT_S = 0.3               # each ping in the script waits this long (two in a row < 1 s)


@dataclass(frozen=True)
class Timing:
    name: str
    interval_ms: int          # our heartbeat interval
    dead_ms: int              # our dead time
    initdead_ms: int
    advert_s: float           # keepalived advert_int
    vrrp_version: int

    def master_down_ms(self, backup_priority: int = 100) -> float:
        """keepalived's master down interval as its backup computes it (RFC 3768/5798)."""
        if self.vrrp_version == 3:
            skew = (256 - backup_priority) * self.advert_s / 256
        else:
            skew = (256 - backup_priority) / 256
        return (3 * self.advert_s + skew) * 1000

    def detection_ms(self, impl: str) -> float:
        return float(self.dead_ms) if impl == "ours" else self.master_down_ms()

    def interval_s(self, impl: str) -> float:
        return self.interval_ms / 1000 if impl == "ours" else self.advert_s


TIMINGS = {
    "default": Timing("default", 5000, 15000, 15000, 5, 2),
    "aggressive": Timing("aggressive", 100, 300, 1000, 0.1, 3),
}


def pubsilent_wait_s(timing: Timing) -> float:
    """pubsilent: how long the public port stays muted after the fault (and the client's
    bounded wait for head2)."""
    return PUBSILENT_WAIT_S if timing.name == "aggressive" else PUBSILENT_WAIT_S_DEFAULT


def pubsilent_bound_ms(timing: Timing) -> tuple[int, int]:
    """pubsilent, ours: from the mute to the release, before the handover itself
    (docs/failover.md): public_fall to public_fall + 1 probe intervals, + one probe interval
    and one heartbeat interval for the peer's word."""
    wait = PUBLIC_PROBE_MS + timing.interval_ms
    return PUBLIC_FALL * PUBLIC_PROBE_MS + wait, (PUBLIC_FALL + 1) * PUBLIC_PROBE_MS + wait


# ======================================================================================
# Helpers: run inside a namespace as `bench_failover.py --helper KIND ...`.
# ======================================================================================

def helper_echo(name: str, port: int, max_s: float) -> None:
    """UDP echo on 0.0.0.0; answers from the address it was asked on, adds its name."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind(("0.0.0.0", port))
    tag = name.encode()
    print(json.dumps({"event": "ready"}), flush=True)
    deadline = time.monotonic() + max_s
    answered = 0
    while time.monotonic() < deadline and answered < 10_000_000:
        if not select.select([s], [], [], 1.0)[0]:
            continue
        try:
            data, anc, _flags, addr = s.recvmsg(512, socket.CMSG_SPACE(12))
        except OSError:
            continue
        if len(data) < PROBE.size or not data.startswith(MAGIC):
            continue
        dst = None
        for level, kind, cdata in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(cdata) >= 12:
                dst = cdata[8:12]          # struct in_pktinfo: ifindex, spec_dst, addr
        anc_out = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=i4s4s", 0, dst, b"\0" * 4))] if dst else []
        try:
            s.sendmsg([data[:PROBE.size] + tag], anc_out, 0, addr)
            answered += 1
        except OSError:
            pass


def helper_probe(target: str, port: int, interval_ms: int, old: str, new: str, max_s: float,
                 tail_s: float, warm: int, stop_on_stdin: bool = False) -> None:
    """One probe every interval_ms on a fixed schedule; every reply time-stamped.

    Prints {"event": "warm"} after `warm` consecutive replies from the old head, and at
    the end {"event": "done", ...} with every reply. Stops `tail_s` after the first reply
    from the new head, or after max_s, or (stop_on_stdin) when its stdin is readable or
    closed."""
    watched = [sys.stdin] if stop_on_stdin else []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    s.setblocking(False)
    start = time.monotonic()
    stop_at = start + max_s
    period = interval_ms / 1000
    seq, next_send = 0, start
    replies: list[tuple[int, float, float, str]] = []
    errors = 0
    run_old, warm_sent, first_new = 0, False, None
    while True:
        now = time.monotonic()
        if now >= stop_at or seq > 10_000_000:
            break
        if now >= next_send:
            seq += 1
            try:
                s.sendto(PROBE.pack(MAGIC, seq, now), (target, port))
            except OSError:
                errors += 1
            next_send += period
            if next_send <= now:                 # late (scheduler hiccup): skip slots, no burst
                next_send = now + period - ((now - start) % period)
        wait = max(0.0, min(next_send, stop_at) - time.monotonic())
        ready = select.select([s] + watched, [], [], wait)[0]
        if watched and watched[0] in ready:
            break
        if s not in ready:
            continue
        for _ in range(64):
            try:
                data, addr = s.recvfrom(512)
            except BlockingIOError:
                break
            except OSError:                      # ICMP errors surface here
                errors += 1
                break
            t = time.monotonic()
            if addr != (target, port) or len(data) < PROBE.size:
                continue
            magic, rseq, sent = PROBE.unpack_from(data)
            if magic != MAGIC:
                continue
            head = data[PROBE.size:].decode(errors="replace")
            replies.append((rseq, sent, t, head))
            if head == old:
                run_old += 1
                if run_old >= warm and not warm_sent:
                    warm_sent = True
                    print(json.dumps({"event": "warm", "t": t}), flush=True)
            else:
                run_old = 0
            if head == new and first_new is None:
                first_new = t
                stop_at = min(stop_at, t + tail_s)
    print(json.dumps({"event": "done", "start": start, "end": time.monotonic(), "sent": seq,
                      "errors": errors, "replies": replies}), flush=True)


def helper_sniff(ifaces: list[str], sources: list[str], max_s: float) -> None:
    """Frames arriving here: heartbeats (UDP to HB_PORT) and VRRP adverts from `sources`,
    or (sources = "arp") ARP frames whose sender address is the alias, with their MAC."""
    arp = sources == ["arp"]
    proto = 0x0806 if arp else 0x0800
    socks = {}
    for ifname in ifaces:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        s.bind((ifname, proto))
        socks[s] = ifname
    wanted = set() if arp else {socket.inet_aton(a) for a in sources}
    alias = socket.inet_aton(ALIAS)
    print(json.dumps({"event": "ready"}), flush=True)
    deadline = time.monotonic() + max_s
    seen = 0
    while time.monotonic() < deadline and seen < 50_000_000:
        for s in select.select(list(socks), [], [], 1.0)[0]:
            data, addr = s.recvfrom(2048)
            t = time.monotonic()
            if addr[2] == PACKET_OUTGOING or len(data) < 42:
                continue
            if arp:  # Ethernet + ARP: op at 20, sender MAC 22..28, sender IP 28..32, target IP 38..42
                if data[28:32] != alias:
                    continue
                seen += 1
                print(json.dumps({"t": t, "if": socks[s], "kind": "arp",
                                  "op": struct.unpack_from("!H", data, 20)[0],
                                  "mac": data[22:28].hex(":"), "garp": data[38:42] == alias}),
                      flush=True)
                continue
            ip = data[14:]
            if ip[12:16] not in wanted:
                continue
            proto, ihl = ip[9], (ip[0] & 0x0F) * 4
            if proto == 17 and len(ip) >= ihl + 4 and struct.unpack_from("!H", ip, ihl + 2)[0] == HB_PORT:
                kind = "hb"
            elif proto == VRRP_PROTO:
                kind = "vrrp"
            else:
                continue
            seen += 1
            print(json.dumps({"t": t, "if": socks[s], "kind": kind,
                              "src": socket.inet_ntoa(ip[12:16])}), flush=True)


def helper_addrmon(max_s: float) -> None:
    """Every add and removal of the alias in this namespace, time-stamped (netlink
    RTMGRP_IPV4_IFADDR; no polling)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((0, RTMGRP_IPV4_IFADDR))
    alias = socket.inet_aton(ALIAS)
    print(json.dumps({"event": "ready"}), flush=True)
    deadline = time.monotonic() + max_s
    seen = 0
    while time.monotonic() < deadline and seen < 10_000_000:
        if not select.select([s], [], [], 1.0)[0]:
            continue
        data = s.recv(65536)
        t = time.monotonic()
        pos = 0
        while pos + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, pos)
            if length < 16:
                break
            if kind in (RTM_NEWADDR, RTM_DELADDR) and length >= 24:
                attr = pos + 24                     # nlmsghdr (16) + ifaddrmsg (8)
                while attr + 4 <= pos + length:
                    alen, atype = struct.unpack_from("=HH", data, attr)
                    if alen < 4:
                        break
                    if atype == 2 and data[attr + 4:attr + 8] == alias:   # IFA_LOCAL
                        seen += 1
                        print(json.dumps({"t": t, "op": "add" if kind == RTM_NEWADDR else "del"}),
                              flush=True)
                    attr += (alen + 3) & ~3
            pos += (length + 3) & ~3


def helper_main(args: argparse.Namespace) -> int:
    if args.helper == "echo":
        helper_echo(args.name, args.port, args.max_s)
    elif args.helper == "probe":
        helper_probe(ALIAS, args.port, args.interval_ms, args.old, args.new, args.max_s,
                     args.tail_s, args.warm, args.stop_on_stdin)
    elif args.helper == "sniff":
        helper_sniff(args.ifaces.split(","), args.sources.split(","), args.max_s)
    elif args.helper == "addrmon":
        helper_addrmon(args.max_s)
    return 0


# ======================================================================================
# The controller.
# ======================================================================================

class Lines:
    """Reads a helper's JSON lines on a thread; keeps them in order."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.items: list[dict] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.items.append(json.loads(line))
            except json.JSONDecodeError:
                pass

    def wait_for(self, pred: Callable[[dict], bool], timeout: float, start: int = 0) -> dict | None:
        deadline = time.monotonic() + timeout
        i = start
        while time.monotonic() < deadline:
            while i < len(self.items):
                if pred(self.items[i]):
                    return self.items[i]
                i += 1
            if self.proc.poll() is not None and i >= len(self.items):
                self._thread.join(0.5)
                if i >= len(self.items):
                    return None
            time.sleep(0.0005)
        return None


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-failover-"))
        self.cluster: Any = None
        self.sniffer: Lines | None = None      # heartbeats/adverts arriving at head2
        self.arp: Lines | None = None          # ARP for the alias arriving at the client
        self.macs: dict[str, str] = {}
        self.addrmon: dict[str, Lines] = {}    # alias added/removed, per head namespace
        self.py = sys.executable
        self.me = str(Path(__file__).resolve())

    # -- long-lived helpers ----------------------------------------------------------------

    def helper(self, host: str, *argv: str, **kwargs: Any) -> subprocess.Popen:
        return self.cluster.popen(host, self.py, self.me, "--helper", *argv,
                                  stdout=subprocess.PIPE, text=True, bufsize=1, **kwargs)

    def start_helpers(self) -> None:
        c = self.cluster
        for head in ("head1", "head2"):
            lines = Lines(self.helper(head, "echo", "--name", head, "--port", str(ECHO_PORT),
                                      "--max-s", "7200"))
            if not lines.wait_for(lambda d: d.get("event") == "ready", 10):
                raise RuntimeError(f"echo responder did not start in {head}")
        self.sniffer = Lines(self.helper(
            "head2", "sniff", "--ifaces", "lana,lanb",
            "--sources", f"{c.addr('head1', 'lana')},{c.addr('head1', 'lanb')}", "--max-s", "7200"))
        if not self.sniffer.wait_for(lambda d: d.get("event") == "ready", 10):
            raise RuntimeError("sniffer did not start in head2")
        self.arp = Lines(self.helper("client", "sniff", "--ifaces", "pub", "--sources", "arp",
                                     "--max-s", "7200"))
        if not self.arp.wait_for(lambda d: d.get("event") == "ready", 10):
            raise RuntimeError("ARP sniffer did not start in the client namespace")
        self.macs = {c.mac(head, "pub"): head for head in ("head1", "head2")}
        for head in ("head1", "head2"):
            mon = Lines(self.helper(head, "addrmon", "--max-s", "7200"))
            if not mon.wait_for(lambda d: d.get("event") == "ready", 10):
                raise RuntimeError(f"address monitor did not start in {head}")
            self.addrmon[head] = mon

    # -- one repetition ----------------------------------------------------------------------

    def run_one(self, impl: str, timing: Timing, fault: str, rep: int) -> dict:
        c = self.cluster
        work = self.tmp / f"{impl}-{timing.name}-{fault}-{rep}"
        work.mkdir()
        res: dict[str, Any] = {"impl": impl, "timing": timing.name, "fault": fault, "rep": rep,
                               "detection_ms": timing.detection_ms(impl)}
        pair = (Ours(c, work, timing, fault) if impl == "ours"
                else Keepalived(c, work, timing, track=impl == "keepalived-track"))
        prober = None
        watch: HolderWatch | None = None
        pubsilent = fault == "pubsilent"
        try:
            pair.start()
            if pubsilent:   # both heads reach the public targets (as each says) before the fault
                res["public_ready_s"] = pair.wait_public_ready()
            settle = pair.settle_s(fault)
            if settle:  # let the old holder's delayed gratuitous ARP burst pass first
                time.sleep(max(0.0, pair.active_since + settle - time.monotonic()))
            c.run("client", "ip", "neigh", "flush", "to", ALIAS, check=False)
            interval = timing.interval_s(impl)
            max_s = 5 + interval * 2 + timing.detection_ms(impl) / 1000 + 5
            if pubsilent:   # the warm-up and the wait for a heartbeat, then the bounded wait
                max_s = 5 + interval * 2 + 2 + pubsilent_wait_s(timing) + 0.5
            prober = Lines(self.helper("client", "probe", "--port", str(ECHO_PORT),
                                       "--interval-ms", str(PROBE_INTERVAL_MS), "--old", "head1",
                                       "--new", "head2", "--max-s", f"{max_s:.1f}",
                                       "--tail-s", str(TAIL_S), "--warm", "20",
                                       *(["--stop-on-stdin"] if pubsilent else []),
                                       **({"stdin": subprocess.PIPE} if pubsilent else {})))
            if not prober.wait_for(lambda d: d.get("event") == "warm", 5):
                raise RuntimeError("the client got no steady replies from head1 on the alias")
            # Synchronise: the fault comes FAULT_DELAY_S after a heartbeat/advert arrived.
            assert self.sniffer is not None
            kind = "hb" if impl == "ours" else "vrrp"
            assert self.arp is not None
            a0 = len(self.arp.items)
            n0, now = len(self.sniffer.items), time.monotonic()
            frame = self.sniffer.wait_for(lambda d: d.get("kind") == kind and d["t"] > now,
                                          2 * interval + 2, start=n0)
            if frame is None:
                raise RuntimeError(f"no {kind} from head1 seen at head2 within {2 * interval + 2:.1f}s")
            if fault in FROZEN_ALONE:
                pair.prepare_freeze(fault)
            if fault in FROZEN_ALONE + ("pubsilent",):
                watch = HolderWatch(c, self.addrmon)
            time.sleep(max(0.0, frame["t"] + FAULT_DELAY_S - time.monotonic()))
            t0 = time.monotonic()
            pair.fault(fault)
            t_fault = time.monotonic()
            res["fault_apply_ms"] = (t_fault - t0) * 1000
            res["t_fault"] = t_fault
            if pubsilent:   # the bounded wait: then the prober stops (if it has not) and the port is unmuted
                end = t_fault + pubsilent_wait_s(timing)
                time.sleep(max(0.0, end - time.monotonic()))
                _close_quietly(prober.proc.stdin)
            done = prober.wait_for(lambda d: d.get("event") == "done", max_s + 5)
            if done is None:
                raise RuntimeError("prober did not report")
            if pubsilent and watch is not None:
                t_unmute = time.monotonic()
                pair.unmute_pub()
                res["unmute_apply_ms"] = (time.monotonic() - t_unmute) * 1000
                time.sleep(HOLDER_TAIL_S)
                res.update(watch.finish(t_fault, t_unmute, split=True))
                res["muted_ms"] = res.pop("freeze_ms")
            elif watch is not None:
                cap = FREEZE_CAP_S + (timing.detection_ms(impl) / 1000 if timing.name == "default" else 0.0)
                time.sleep(max(0.0, t_fault + cap - time.monotonic()))
                t_cont = time.monotonic()
                res["unfrozen"] = pair.unfreeze()
                time.sleep(HOLDER_TAIL_S)
                res.update(watch.finish(t_fault, t_cont))
            time.sleep(0.05)   # let the sniffers' last lines arrive
            arps = [dict(a, head=self.macs.get(a.get("mac", ""), "?")) for a in self.arp.items[a0:]]
            res.update(analyse(done, t_fault, self.sniffer.items[n0:], kind, res["detection_ms"], arps,
                               within_s=pubsilent_wait_s(timing) if pubsilent else None))
            if pubsilent or fault == "dfreeze":
                # pubsilent: no dead time involved; dfreeze: the heartbeats go on after the
                # fault until the heartbeat process fences, so a dead time counted from the
                # last one before the fault means nothing: the figures measured from it go
                for key in ("overhead_ms", "overhead_from_last_heard_ms", "garp_from_last_heard_ms",
                            "expiry", "fault_after_last_heard_ms"):
                    res.pop(key, None)
                res["detection_ms"] = None
            if impl == "ours":
                res["published_ms"] = pair.published()
            res["wall_minus_mono"] = time.time() - time.monotonic()
            res["old_still_holds"] = c.has_address("head1", "pub", ALIAS)
            res["new_holds"] = c.has_address("head2", "pub", ALIAS)
        except Exception as exc:  # a failed repetition is reported, the run goes on
            res["error"] = f"{type(exc).__name__}: {exc}"
            res["log_tail"] = pair.log_tail()
        finally:
            if watch is not None:
                watch.stop()
            pair.unfreeze()          # SIGCONT of a frozen process, whatever happened above
            try:
                pair.unmute_pub()    # the public port unmuted, whatever happened above
            except Exception as exc:  # noqa: BLE001 - stop() tries again; the teardown removes the table
                res.setdefault("error", f"unmute failed: {type(exc).__name__}: {exc}")
            if prober is not None and prober.proc.poll() is None:
                prober.proc.kill()
                prober.proc.wait(5)
            pair.stop()
            bug = pair.bug()
            if bug:
                res["bug"] = bug
        if impl == "ours" and "expiry" in res:
            res["stages_ms"] = pair.stages(res["t_fault"] + res["wall_minus_mono"],
                                           res["expiry"] + res["wall_minus_mono"])
        if impl == "ours" and fault in FROZEN_ALONE and "t_fault" in res and "wall_minus_mono" in res:
            res["head1_stages_ms"] = pair.head1_stages(res["t_fault"] + res["wall_minus_mono"], fault)
        if impl == "ours" and pubsilent and "t_fault" in res and "wall_minus_mono" in res:
            res["head1_stages_ms"] = pair.pubsilent_stages("head1", res["t_fault"] + res["wall_minus_mono"])
            res["head2_stages_ms"] = pair.pubsilent_stages("head2", res["t_fault"] + res["wall_minus_mono"])
        if impl == "keepalived-track" and pubsilent and "t_fault" in res:
            res["head1_stages_ms"] = pair.track_stages(res["t_fault"])
        return res


def _close_quietly(f: Any) -> None:
    try:
        if f is not None:
            f.close()
    except OSError:   # the reader is gone already
        pass


def _start_time(pid: int) -> int | None:
    """A process's start time (clock ticks since boot): with its pid, names it uniquely."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class Frozen:
    """One process stopped with SIGSTOP; `cont` sends SIGCONT once, and only to that same
    process (not to a pid reused since: the start time must match)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = _start_time(pid)
        self.stopped = False
        self.continued = False

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self) -> str:
        """'continued', 'gone' (it exited or was killed meanwhile) or '' (never stopped)."""
        if not self.stopped or self.continued:
            return ""
        self.continued = True
        if self.start is None or _start_time(self.pid) != self.start:
            return "gone"
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            return "gone"
        return "continued"


class HolderWatch:
    """Who holds the alias from just before an hbfreeze fault until `finish`: exact, from
    the address monitors' add/remove events (state read once at the start), and sampled
    every HOLDER_SAMPLE_S through Cluster.holding as a cross-check."""

    HEADS = ("head1", "head2")

    def __init__(self, cluster: Any, monitors: dict[str, Lines]) -> None:
        self.c = cluster
        self.monitors = monitors
        self.marks = {h: len(m.items) for h, m in monitors.items()}
        self.t_start = time.monotonic()
        self.initial = cluster.holding(self.HEADS, "pub", ALIAS)
        self.samples: list[tuple[float, set[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.samples.append((time.monotonic(), self.c.holding(self.HEADS, "pub", ALIAS)))
            except Exception:   # noqa: BLE001 - a failed sample is only a missing sample
                pass
            self._stop.wait(HOLDER_SAMPLE_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def finish(self, t_fault: float, t_cont: float, split: bool = False) -> dict[str, Any]:
        """split: also the time with two holders and with none before t_cont and after it
        ("..._before_ms", "..._after_ms")."""
        self.stop()
        t_end = time.monotonic()
        events = sorted((d["t"], h, d["op"]) for h, m in self.monitors.items()
                        for d in m.items[self.marks[h]:] if "op" in d and d["t"] >= self.t_start)
        out: dict[str, Any] = {"holders_before": sorted(self.initial), "freeze_ms": (t_cont - t_fault) * 1000,
                               "holder_events": [(round((t - t_fault) * 1000, 1), h, op) for t, h, op in events]}
        # Replay: the state read at the start, then every event in order; the time from the
        # fault to the end is split by how many heads held the alias.
        held = set(self.initial)
        two = zero = 0.0
        alone_new = two_end = None
        prev = t_fault
        for t, h, op in events + [(t_end, "", "")]:
            if t > t_fault:
                if len(held) == 2:
                    two += t - prev
                elif not held:
                    zero += t - prev
                if alone_new is None and held == {"head2"}:
                    alone_new = prev
                prev = t
            if h:
                was_two = len(held) == 2
                (held.add if op == "add" else held.discard)(h)
                if was_two and len(held) < 2 and t > t_fault:
                    two_end = t

        if split:
            for part, (a, b) in (("before", (t_fault, t_cont)), ("after", (t_cont, t_end))):
                two_p, zero_p = holder_times(self.initial, events, a, b)
                out[f"two_holders_{part}_ms"], out[f"no_holder_{part}_ms"] = two_p * 1000, zero_p * 1000

        def first(head: str, op: str) -> float | None:
            return next(((t - t_fault) * 1000 for t, h, o in events if h == head and o == op and t > t_fault), None)
        out.update(two_holders_ms=two * 1000, no_holder_ms=zero * 1000,
                   head2_alone_ms=None if alone_new is None else (alone_new - t_fault) * 1000,
                   two_holders_end_ms=None if two_end is None else (two_end - t_fault) * 1000,
                   head1_removed_ms=first("head1", "del"), head2_added_ms=first("head2", "add"),
                   head1_readded_ms=next(((t - t_fault) * 1000 for t, h, o in events
                                          if h == "head1" and o == "add" and t > t_fault), None),
                   holders_at_end=sorted(held), observed_ms=(t_end - t_fault) * 1000)
        after = [s for t, s in self.samples if t >= t_fault]
        out["samples"] = len(after)
        out["samples_two"] = sum(1 for s in after if len(s) > 1)
        out["samples_none"] = sum(1 for s in after if not s)
        return out


def holder_times(initial: set[str], events: list[tuple[float, str, str]], a: float,
                 b: float) -> tuple[float, float]:
    """Seconds between a and b with two holders and with none: the state at the start,
    then the (time, head, "add"/"del") events in order."""
    held = set(initial)
    two = zero = 0.0
    prev = a

    def span(until: float) -> None:
        nonlocal two, zero
        if len(held) == 2:
            two += until - prev
        elif not held:
            zero += until - prev
    for t, h, op in sorted(events):
        if t >= b:
            break
        if t > a:
            span(t)
            prev = t
        (held.add if op == "add" else held.discard)(h)
    span(b)
    return two, zero


def _last_old_reply_ms(replies: list, t_fault: float, until: float) -> float | None:
    """The last reply from head1 before `until` (its probe sent before then), ms after the
    fault (negative: before the fault command returned)."""
    old = [r[2] for r in replies if r[3] == "head1" and r[2] <= until]
    return None if not old else (max(old) - t_fault) * 1000


def analyse(done: dict, t_fault: float, frames: list[dict], kind: str, detection_ms: float,
            arps: list[dict], within_s: float | None = None) -> dict:
    """The client's view. With `within_s` (pubsilent), a reply from head2 counts only
    within that bound after the fault, and none is a result ("not_served_within_s"), not an
    error; the prober must have run that long after the fault."""
    replies = done["replies"]
    after = [r for r in replies if r[2] >= t_fault]
    if within_s is not None:
        after = [r for r in after if r[2] <= t_fault + within_s]
    first_new = next((r for r in after if r[3] == "head2"), None)
    out: dict[str, Any] = {"probes_sent": done["sent"], "probe_errors": done["errors"]}
    if first_new is None and within_s is not None:
        observed = done.get("end", t_fault) - t_fault
        if observed < within_s - 0.05:
            out["error"] = (f"the prober stopped {observed:.2f} s after the fault, "
                            f"before the {within_s:g} s bound")
            return out
        out["not_served_within_s"] = within_s
        out["replies_after_fault"] = {h: sum(1 for r in after if r[3] == h) for h in ("head1", "head2")}
        out["last_old_reply_ms"] = _last_old_reply_ms(replies, t_fault, t_fault + within_s)
        times = [t_fault] + [r[2] for r in after] + [t_fault + within_s]
        out["longest_silence_ms"] = max((b - a) * 1000 for a, b in zip(times, times[1:]))
        out["garps_from_new"] = sum(1 for a in arps
                                    if a["t"] >= t_fault and a["head"] == "head2" and a.get("garp"))
        out["frames_after_fault"] = sum(1 for f in frames if f.get("kind") == kind and f["t"] > t_fault)
        return out
    if first_new is None:
        out["error"] = "no reply from head2 before the prober's time limit"
        return out
    out["failover_ms"] = (first_new[2] - t_fault) * 1000
    out["first_new_probe_sent_ms"] = (first_new[1] - t_fault) * 1000
    if within_s is not None:   # pubsilent: when the mute took effect, as the client saw it
        out["last_old_reply_ms"] = _last_old_reply_ms(replies, t_fault, first_new[2])
    out["overhead_ms"] = out["failover_ms"] - detection_ms
    heard = [f["t"] for f in frames if f.get("kind") == kind and f["t"] <= t_fault]
    leaked = [f["t"] for f in frames if f.get("kind") == kind and t_fault < f["t"] <= first_new[2]]
    garp = next((a["t"] for a in arps if a["t"] >= t_fault and a["head"] == "head2" and a.get("garp")), None)
    if garp is not None:
        out["garp_ms"] = (garp - t_fault) * 1000
        out["reply_after_garp_ms"] = (first_new[2] - garp) * 1000
    out["garps_from_new"] = sum(1 for a in arps if a["t"] >= t_fault and a["head"] == "head2" and a.get("garp"))
    out["arps_from_old_after_fault"] = sum(1 for a in arps if a["t"] >= t_fault and a["head"] == "head1")
    if heard:
        last = max(heard)
        out["fault_after_last_heard_ms"] = (t_fault - last) * 1000
        out["overhead_from_last_heard_ms"] = (first_new[2] - last) * 1000 - detection_ms
        out["expiry"] = last + detection_ms / 1000           # monotonic
        if garp is not None:
            out["garp_from_last_heard_ms"] = (garp - last) * 1000 - detection_ms
    out["t_garp"], out["t_first_new"] = garp, first_new[2]
    out["frames_after_fault"] = len(leaked)   # should be 0: the fault stopped them
    # What the client saw between the fault and the first reply from the standby.
    window = [r for r in replies if t_fault <= r[2] <= first_new[2]]
    times = [t_fault] + [r[2] for r in window]
    out["longest_silence_ms"] = max((b - a) * 1000 for a, b in zip(times, times[1:])) if len(times) > 1 else 0.0
    out["old_replies_after_fault"] = sum(1 for r in window if r[3] == "head1")
    out["old_replies_after_switch"] = sum(1 for r in replies if r[2] > first_new[2] and r[3] == "head1")
    return out


# -- the two implementations -----------------------------------------------------------------

class Ours:
    def __init__(self, cluster: Any, work: Path, timing: Timing, fault: str) -> None:
        from tests.scenarios.hapair import HaPair
        self.c = cluster
        self.timing = timing
        self.pair = HaPair(cluster, work, interval_ms=timing.interval_ms, dead_ms=timing.dead_ms,
                           initdead_ms=timing.initdead_ms, public_path=fault != "isolation",
                           auto_failback=fault != "isolation",
                           extra_toml=PUBLIC_TARGETS_TOML if fault == "pubsilent" else "")
        self.active_since = 0.0
        self.muted = False
        self.pub_muted = False
        self.cut = False
        self.frozen: Frozen | None = None

    def start(self) -> None:
        self.pair.start_both()   # head1 active, head2 standby (raises with the logs if not)
        self.active_since = time.monotonic()

    def settle_s(self, fault: str) -> float:
        # In isolation the old head lives on; its second gratuitous ARP burst
        # (garp_repeat_ms = 1000 in the scenario config) must not land after the fault.
        return 1.2 if fault == "isolation" else 0.0

    def fault(self, fault: str) -> None:
        if fault in ("kill", "kill-parent"):
            self.pair.signal("head1", signal.SIGKILL)
        elif fault == "freeze":
            self.pair.signal_group("head1", signal.SIGSTOP)
        elif fault == "cut":
            self.cut = True
            cut_both(self.c)
        elif fault in FROZEN_ALONE:
            assert self.frozen is not None, "prepare_freeze first"
            self.frozen.stop()
        elif fault == "pubsilent":
            self.pub_muted = True
            self.c.mute("head1", "pub")
        else:
            self.muted = True
            mute_both(self.c)

    def wait_public_ready(self) -> float:
        """pubsilent: until each head says both heads reach the public targets
        (haoscarHeadPublicState.1 and .2 = reached(3), read from each head's agent); the
        seconds it took."""
        from tests.integration.harness import R
        t0 = time.monotonic()
        limit = 10 + 3 * self.timing.interval_ms / 1000
        for head in ("head1", "head2"):
            self.pair.wait_for(lambda head=head: self.pair.snmp(head, f"{R}.1.4.1.12.1", f"{R}.1.4.1.12.2")
                               .split() == ["3", "3"], max(1.0, t0 + limit - time.monotonic()),
                               f"{head} to see both heads reach the public targets")
        return time.monotonic() - t0

    def unmute_pub(self) -> None:
        if self.pub_muted:
            self.c.unmute("head1", "pub")
            self.pub_muted = False

    def prepare_freeze(self, fault: str) -> None:
        """Find the process to stop before the fault (reading /proc takes a while): head1's
        heartbeat process (hbfreeze) or its daemon (dfreeze)."""
        pid = self.pair.heartbeat_pid("head1") if fault == "hbfreeze" else self.pair.procs["head1"].pid
        self.frozen = Frozen(pid)

    def unfreeze(self) -> str:
        return self.frozen.cont() if self.frozen is not None else ""

    def published(self) -> int | None:
        value = None
        for _ in range(10):   # the figure is set when head2 becomes ACTIVE
            r = self.c.run("nms", "snmpget", "-v2c", "-c", "public", "-On", "-Oqv", "-t", "1",
                           "-r", "1", NMS_TARGET, LAST_FAILOVER_OID, check=False)
            try:
                value = int(r.stdout.strip())
            except ValueError:
                value = None
            if value:
                return value
            time.sleep(0.1)
        return value

    def stop(self) -> None:
        self.pair.stop_all()
        self.unmute_pub()
        if self.muted:
            for lan in ("lana", "lanb"):
                self.c.unmute("head1", lan)
        if self.cut:
            for lan in ("lana", "lanb"):
                self.c.carrier_up("head1", lan)
        for head in ("head1", "head2"):
            self.c.run(head, "ip", "addr", "del", f"{ALIAS}/24", "dev", "pub", check=False)

    def log_tail(self) -> str:
        return self.pair.log_text()[-3000:]

    STAGES = (("first path down", "HB_PATH_DOWN"), ("peer declared dead", "HEAD_DOWN"),
              ("taking over", "-> taking_over"), ("active", "-> active"))

    def stages(self, fault_wall: float, expiry_wall: float) -> dict[str, float]:
        """From head2's log (millisecond time stamps): when each step of the takeover was
        logged, in ms after the expiry of the dead time (as seen by the sniffer)."""
        return self._stages("head2", self.STAGES, fault_wall, expiry_wall)

    HEAD1_STAGES = (("silence seen", "heartbeat process has sent nothing for"),
                    ("releasing", "-> releasing"), ("standby", "-> standby"),
                    ("new process running", "heartbeat process is running again"),
                    ("failback: active", "-> active"))

    DFREEZE_STAGES = (("daemon hung: fenced", "the daemon has not answered for"),
                      ("after SIGCONT: standby", "-> standby"), ("failback: active", "-> active"))

    def head1_stages(self, fault_wall: float, fault: str = "hbfreeze") -> dict[str, float]:
        """hbfreeze / dfreeze: when head1 logged each step, in ms after the fault (dfreeze:
        its heartbeat process while the daemon is stopped, then the daemon)."""
        stages = self.HEAD1_STAGES if fault == "hbfreeze" else self.DFREEZE_STAGES
        return self._stages("head1", stages, fault_wall, fault_wall)

    PUBSILENT_STAGES = {
        "head1": (("loss judged", "reaches none of its"), ("waiting for the peer", "to hear whether"),
                  ("handing over", "handing over"), ("releasing", "-> releasing"), ("standby", "-> standby")),
        "head2": (("taking over", "-> taking_over"), ("active", "-> active")),
    }

    def pubsilent_stages(self, head: str, fault_wall: float) -> dict[str, float]:
        """pubsilent: when each head logged each step, in ms after the mute."""
        return self._stages(head, self.PUBSILENT_STAGES[head], fault_wall, fault_wall)

    def _stages(self, head: str, stages: tuple[tuple[str, str], ...], after_wall: float,
                ref_wall: float) -> dict[str, float]:
        out: dict[str, float] = {}
        log = next((p for p in self.pair.logs if p.name.startswith(head)), None)
        if log is None or not log.exists():
            return out
        for line in log.read_text(errors="replace").splitlines():
            try:
                stamp, msec = line[:23].split(",")
                wall = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(msec) / 1000
            except ValueError:
                continue
            if wall < after_wall - 0.002:
                continue
            for name, marker in stages:
                if name not in out and marker in line:
                    out[name] = round((wall - ref_wall) * 1000, 1)
        return out

    def bug(self) -> str:
        text = self.pair.log_text()
        return "BUG marker in a daemon log" if BUG_MARKER in text else ""


PUBLIC_TARGETS_TOML = f"""
    [failover]
    public_targets = [{", ".join(f'"{a}"' for a in PUBLIC_TARGETS)}]
    public_probe_interval_ms = {PUBLIC_PROBE_MS}
    public_rise = {PUBLIC_RISE}
    public_fall = {PUBLIC_FALL}
    public_hold_down_ms = {PUBLIC_HOLD_DOWN_MS}
    """


class Keepalived:
    PRIORITY = {"head1": 150, "head2": 100}

    def __init__(self, cluster: Any, work: Path, timing: Timing, track: bool = False) -> None:
        self.c = cluster
        self.work = work
        self.timing = timing
        self.track = track                # keepalived+ts: a vrrp_script pinging the public targets
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: list[Path] = []
        self.stamped: dict[str, StampedLog] = {}
        self.active_since = 0.0
        self.muted = False
        self.pub_muted = False
        self.cut = False
        self.frozen: Frozen | None = None

    def script(self) -> Path:
        """The track script: succeeds if either public target answers one ping."""
        path = self.work / "pubcheck.sh"
        path.write_text("#!/bin/sh\n" + " || ".join(
            f"ping -n -q -c1 -W{KA_PING_WAIT_S:g} {a} >/dev/null 2>&1" for a in PUBLIC_TARGETS) + "\n")
        path.chmod(0o700)
        return path

    def conf(self, head: str) -> Path:
        t = self.timing
        version = "    vrrp_version 3\n" if t.vrrp_version == 3 else ""
        path = self.work / f"keepalived-{head}.conf"
        script = track = ""
        if self.track:
            script = ("vrrp_script chk_pub {\n"
                      f"    script \"{self.script()}\"\n"
                      f"    interval {KA_SCRIPT_INTERVAL_S}\n"
                      f"    timeout {KA_SCRIPT_INTERVAL_S}\n"
                      f"    fall {KA_SCRIPT_FALL}\n"
                      f"    rise {KA_SCRIPT_RISE}\n"
                      f"    weight {KA_SCRIPT_WEIGHT}\n"
                      "}\n")
            track = "    track_script {\n        chk_pub\n    }\n"
        path.write_text(
            "global_defs {\n"
            f"    router_id {head}\n"
            f"{version}"
            + ("    script_user root\n" if self.track else "") +
            "}\n"
            f"{script}"
            "vrrp_instance VI_1 {\n"
            f"    state {'MASTER' if head == 'head1' else 'BACKUP'}\n"
            "    interface lana\n"
            "    virtual_router_id 71\n"
            f"    priority {self.PRIORITY[head]}\n"
            f"    advert_int {t.advert_s:g}\n"
            "    virtual_ipaddress {\n"
            f"        {ALIAS}/24 dev pub\n"
            "    }\n"
            f"{track}"
            "}\n")
        return path

    def start(self) -> None:
        for head in ("head1", "head2"):
            log = self.work / f"keepalived-{head}.log"
            self.logs.append(log)
            argv = (KEEPALIVED, "-n", "-l", "-D", "-P", "-f", str(self.conf(head)),
                    "-p", str(self.work / f"{head}.pid"), "-r", str(self.work / f"{head}-vrrp.pid"),
                    "-c", str(self.work / f"{head}-checkers.pid"))
            if self.track:   # its lines time-stamped as they arrive (its own stamps are in seconds)
                self.procs[head] = self.c.popen(head, *argv, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, text=True, bufsize=1)
                self.stamped[head] = StampedLog(self.procs[head], log)
            else:
                self.procs[head] = self.c.popen(head, *argv, stdout=log.open("w"), stderr=subprocess.STDOUT)
        # Both start as BACKUP and wait one master down interval; head1 (150) wins.
        limit = self.timing.master_down_ms() / 1000 + 10

        def head1_alone() -> bool:
            return self.holders() == {"head1"}
        if not wait_until(head1_alone, limit):
            raise RuntimeError(f"keepalived: head1 did not become the only VIP holder within {limit:.0f}s")
        self.active_since = time.monotonic()
        # and stays so (head2 may have become master at the same instant and yield)
        time.sleep(min(1.0, 3 * self.timing.advert_s))
        if not head1_alone():
            if not wait_until(head1_alone, 3 * self.timing.advert_s + 2):
                raise RuntimeError("keepalived: head1 did not stay the only VIP holder")
            self.active_since = time.monotonic()

    def holders(self) -> set[str]:
        return self.c.holding(("head1", "head2"), "pub", ALIAS)

    def settle_s(self, fault: str) -> float:
        # vrrp_garp_master_delay (default 5 s): the old master's second ARP burst.
        return 5.5 if fault == "isolation" else 0.0

    def fault(self, fault: str) -> None:
        pgid = self.procs["head1"].pid     # popen starts a new session: pgid = parent pid
        if fault == "kill":
            os.killpg(pgid, signal.SIGKILL)
        elif fault == "kill-parent":
            os.kill(pgid, signal.SIGKILL)
        elif fault == "freeze":
            os.killpg(pgid, signal.SIGSTOP)
        elif fault == "cut":
            self.cut = True
            cut_both(self.c)
        elif fault == "hbfreeze":
            assert self.frozen is not None, "prepare_freeze first"
            self.frozen.stop()
        elif fault == "pubsilent":
            self.pub_muted = True
            self.c.mute("head1", "pub")
        else:
            self.muted = True
            self.c.mute("head1", "lana")

    SCRIPT_OK = "VRRP_Script(chk_pub) succeeded"

    def wait_public_ready(self) -> float:
        """pubsilent: keepalived+ts, until the script succeeded on both heads and head1 still
        holds the VIP alone; plain keepalived has nothing to wait for."""
        t0 = time.monotonic()
        if not self.track:
            return 0.0
        limit = 3 * (KA_SCRIPT_RISE + 1) * KA_SCRIPT_INTERVAL_S + 5
        for head in ("head1", "head2"):
            if not wait_until(lambda head=head: self.stamped[head].first(self.SCRIPT_OK) is not None,
                              max(0.5, t0 + limit - time.monotonic())):
                raise RuntimeError(f"keepalived+ts: the track script did not succeed on {head} "
                                   f"within {limit:.0f} s")
        if not wait_until(lambda: self.holders() == {"head1"}, 3 * self.timing.advert_s + 2):
            raise RuntimeError("keepalived+ts: head1 is not the only VIP holder once the scripts succeeded")
        return time.monotonic() - t0

    def unmute_pub(self) -> None:
        if self.pub_muted:
            self.c.unmute("head1", "pub")
            self.pub_muted = False

    TRACK_STAGES = {
        "head1": (("script failed", "VRRP_Script(chk_pub) failed"),
                  ("priority lowered", "Changing effective priority"),
                  ("backup", "Entering BACKUP STATE")),
        "head2": (("master", "Entering MASTER STATE"),),
    }

    def track_stages(self, t_fault: float) -> dict[str, float]:
        """pubsilent, keepalived+ts: each step's line as it reached us, ms after the mute
        ('head1 script failed', ...)."""
        out: dict[str, float] = {}
        for head, stages in self.TRACK_STAGES.items():
            log = self.stamped.get(head)
            if log is None:
                continue
            for name, marker in stages:
                t = log.first(marker, after=t_fault)
                if t is not None:
                    out[f"{head} {name}"] = round((t - t_fault) * 1000, 1)
        return out

    def prepare_freeze(self, fault: str) -> None:
        """hbfreeze: head1's VRRP child: its pid file, checked against /proc (a child of the
        parent)."""
        assert fault == "hbfreeze", f"keepalived has no {fault}"
        parent = self.procs["head1"].pid
        pid = int((self.work / "head1-vrrp.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if int(fields[1]) != parent:
            raise RuntimeError(f"keepalived's VRRP pid {pid} is not a child of {parent}")
        self.frozen = Frozen(pid)

    def unfreeze(self) -> str:
        return self.frozen.cont() if self.frozen is not None else ""

    def stop(self) -> None:
        for head, proc in self.procs.items():
            try:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            # the VRRP child is not our child: wait until the group is empty
            wait_until(lambda: not _group_alive(proc.pid), 5, 0.02)
        for log in self.stamped.values():
            log.close()
        self.unmute_pub()
        if self.muted:
            self.c.unmute("head1", "lana")
        if self.cut:
            for lan in ("lana", "lanb"):
                self.c.carrier_up("head1", lan)
        for head in ("head1", "head2"):
            self.c.run(head, "ip", "addr", "del", f"{ALIAS}/24", "dev", "pub", check=False)

    def log_tail(self) -> str:
        return "".join(p.read_text(errors="replace")[-1500:] for p in self.logs if p.exists())

    def bug(self) -> str:
        return ""


class StampedLog:
    """A process's output lines, each time-stamped (monotonic) as it arrives, also written
    to a file."""

    def __init__(self, proc: subprocess.Popen, path: Path) -> None:
        self.proc = proc
        self.lines: list[tuple[float, str]] = []
        self._file = path.open("w")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t = time.monotonic()
            self.lines.append((t, line))
            try:
                self._file.write(f"[{t:.4f}] {line}")
                self._file.flush()
            except ValueError:    # closed
                pass

    def first(self, marker: str, after: float = 0.0) -> float | None:
        return next((t for t, line in list(self.lines) if t >= after and marker in line), None)

    def close(self) -> None:
        self._thread.join(2)
        self._file.close()


def mute_both(c: Any) -> None:
    """Mute head1's lana and lanb in ONE nft transaction (two `mute` calls would take two
    nft runs, ~8 ms each); falls back to them if the harness's nft set changed."""
    from tests.scenarios import netns
    ports = ", ".join(f'"{c.port("head1", lan)}"' for lan in ("lana", "lanb"))
    table = getattr(netns, "NFT_TABLE", None)
    if table and c.run("sw", "nft", f"add element bridge {table} muted {{ {ports} }}",
                       check=False).returncode == 0:
        return
    c.mute("head1", "lana")
    c.mute("head1", "lanb")


def cut_both(c: Any) -> None:
    """Carrier off on head1's lana and lanb in one `ip -batch` in the switch namespace."""
    c._batch(c.ns("sw"), [f"link set {c.port('head1', lan)} down" for lan in ("lana", "lanb")])


def _group_alive(pgid: int) -> bool:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


# ======================================================================================
# Report.
# ======================================================================================

def stats(values: list[float]) -> tuple[float, float, float, int] | None:
    return (statistics.median(values), min(values), max(values), len(values)) if values else None


def fmt_stats(s: tuple[float, float, float, int] | None, _n: int = 0) -> str:
    if s is None:
        return "-"
    if s[3] == 1:
        return f"{s[0]:.0f}"
    return f"{s[0]:.0f} [{s[1]:.0f}..{s[2]:.0f}]"


def report(results: list[dict], timings: list[Timing], faults: list[str], impls: list[str]) -> dict:
    def sel(impl: str, timing: str, fault: str) -> list[dict]:
        return [r for r in results if (r["impl"], r["timing"], r["fault"]) == (impl, timing, fault)]

    if all(f == "pubsilent" for f in faults):   # nothing for the main table
        return {"table": {"pubsilent": report_pubsilent(results, timings, impls)}, "aims": {}}
    print("""
All times in ms; median [min..max] over the N successful runs.
  detect    the detection interval: ours the dead time, keepalived the master down interval
  failover  fault -> first reply from the standby at the client (the fault comes 5 ms after a
            heartbeat/advert reached the standby, so the standby waits its whole detection interval)
  overhead  failover - detect (the definition asked for; it is short of the true overhead by the
            5 ms between the last heartbeat and the fault, plus the time to apply the fault)
  expiry    the moment the standby's detection interval ran out: last heartbeat/advert seen
            arriving at the standby + detect; then  ->garp  the standby's first gratuitous ARP
            reaching the client,  ->reply  its first reply (the true overhead, incl. 0..10 ms probe wait)
  published haoscarLastFailoverDuration read from head2 (its own figure: peer declared dead ->
            alias added, state ACTIVE)
  silence   the longest time the client went without ANY reply between the fault and the switch
""")
    head = (f"{'timing':10} {'fault':9} {'implementation':13} {'N':>2} {'detect':>6} "
            f"{'failover':>17} {'overhead':>13} {'expiry->garp':>13} {'expiry->reply':>13} "
            f"{'published':>11} {'silence':>7}")
    print(head)
    print("-" * len(head))
    summary: dict[str, Any] = {}
    for t in timings:
        for f in faults:
            if f == "pubsilent":      # its own table below: no detection interval involved
                continue
            for impl in impls:
                rs = sel(impl, t.name, f)
                if not rs and (f in DEFAULT_TIMING_ONLY_ON_REQUEST or impl == "keepalived-track"):
                    continue
                ok = [r for r in rs if "failover_ms" in r]
                n = len(ok)

                def st(key: str) -> tuple[float, float, float, int] | None:
                    return stats([float(r[key]) for r in ok if r.get(key) is not None])
                row = {k: st(k) for k in ("failover_ms", "overhead_ms", "garp_from_last_heard_ms",
                                          "overhead_from_last_heard_ms", "published_ms")}
                sil = max((r["longest_silence_ms"] for r in ok), default=None)
                failed = len(rs) - n
                print(f"{t.name:10} {f:9} {LABEL[impl]:13} {n:>2} {t.detection_ms(impl):6.0f} "
                      f"{fmt_stats(row['failover_ms'], n):>17} {fmt_stats(row['overhead_ms'], n):>13} "
                      f"{fmt_stats(row['garp_from_last_heard_ms'], n):>13} "
                      f"{fmt_stats(row['overhead_from_last_heard_ms'], n):>13} "
                      f"{fmt_stats(row['published_ms'], n) if impl == 'ours' else 'n/a':>11} "
                      f"{'-' if sil is None else f'{sil:.0f}':>7}"
                      + (f"   ({failed} run(s) failed)" if failed else ""))
                summary[f"{impl}/{t.name}/{f}"] = dict(row, n=n, failed=failed, silence_max=sil)

    # -- hbfreeze, dfreeze: who held the alias -------------------------------------------------------
    for fault in FROZEN_ALONE:
        if fault in faults:
            summary[fault] = report_frozen(results, timings, impls, fault)
    if "pubsilent" in faults:
        summary["pubsilent"] = report_pubsilent(results, timings, impls)

    # -- where our time goes ---------------------------------------------------------------
    aims: dict[str, Any] = {}
    if "ours" not in impls or not any("overhead_from_last_heard_ms" in r for r in results if r["impl"] == "ours"):
        return {"table": summary, "aims": aims}   # (faults without a dead time counted from them only)
    names = [n for n, _ in Ours.STAGES] + ["garp at client", "reply at client"]
    print("\nhaoscar-snmp, step by step: ms after the dead time ran out (medians; daemon steps from "
          "head2's log, 1 ms resolution)")
    head1 = f"{'timing':10} {'fault':9} " + " ".join(f"{n:>18}" for n in names)
    print(head1)
    print("-" * len(head1))
    for t in timings:
        for f in faults:
            ok = [r for r in sel("ours", t.name, f) if "overhead_from_last_heard_ms" in r]
            if not ok:
                continue
            cols = []
            for n in names:
                if n == "garp at client":
                    v = [r["garp_from_last_heard_ms"] for r in ok if r.get("garp_from_last_heard_ms") is not None]
                elif n == "reply at client":
                    v = [r["overhead_from_last_heard_ms"] for r in ok]
                else:
                    v = [r["stages_ms"][n] for r in ok if n in r.get("stages_ms", {})]
                cols.append(f"{statistics.median(v):18.1f}" if v else f"{'-':>18}")
            print(f"{t.name:10} {f:9} " + " ".join(cols))

    # -- ratios and aims -------------------------------------------------------------------
    both = "keepalived" in impls
    print(f"\nAim 1: our overhead beyond the dead time under {AIM_OVERHEAD_MS:.0f} ms, judged on every run's "
          "expiry->reply (the strictest figure).")
    if both:
        print("Aim 2: failover no slower than keepalived at equal detection settings: our median "
              "expiry->reply against keepalived's\n        (the detection intervals differ: "
              + "; ".join(f"{t.name} {t.dead_ms} vs {t.master_down_ms():.1f} ms" for t in timings)
              + "; the raw ratio includes that difference).")
    head2 = (f"{'timing':10} {'fault':9} {'failover ours/ka':>16} {'ratio':>6} {'beyond ours':>11} "
             f"{'beyond ka':>9}  {'aim 1':28}" + ("  aim 2" if both else ""))
    print("\n" + head2)
    print("-" * (len(head2) + 40))
    for t in timings:
        for f in faults:
            ours = [r for r in sel("ours", t.name, f) if "overhead_from_last_heard_ms" in r]
            ka = [r for r in sel("keepalived", t.name, f) if "overhead_from_last_heard_ms" in r]
            if not ours:
                continue
            over = [r["overhead_from_last_heard_ms"] for r in ours]
            bad = sum(1 for o in over if o >= AIM_OVERHEAD_MS)
            aim1 = ("MET" if bad == 0 else "NOT MET") + f" ({len(over) - bad}/{len(over)} runs < {AIM_OVERHEAD_MS:.0f})"
            ov_o = statistics.median(over)
            fo_o = statistics.median(r["failover_ms"] for r in ours)
            entry: dict[str, Any] = {"aim1": aim1, "beyond_ours": ov_o}
            if not ka:
                print(f"{t.name:10} {f:9} {'-':>16} {'-':>6} {ov_o:11.1f} {'-':>9}  {aim1:28}")
                aims[f"{t.name}/{f}"] = entry
                continue
            fo_k = statistics.median(r["failover_ms"] for r in ka)
            ov_k = statistics.median(r["overhead_from_last_heard_ms"] for r in ka)
            diff = ov_o - ov_k
            if diff <= 0:
                aim2 = f"MET ({-diff:.0f} ms less beyond detection)"
            elif diff < PROBE_INTERVAL_MS:
                aim2 = f"NOT MET by {diff:.0f} ms (under the {PROBE_INTERVAL_MS} ms probe step)"
            else:
                aim2 = f"NOT MET ({diff:.0f} ms more beyond detection)"
            aim2 += f"; raw time {'shorter' if fo_o <= fo_k else 'longer'}"
            print(f"{t.name:10} {f:9} {f'{fo_o:.0f}/{fo_k:.0f}':>16} {fo_o / fo_k:6.3f} {ov_o:11.1f} "
                  f"{ov_k:9.1f}  {aim1:28}  {aim2}")
            entry.update(aim2=aim2, ratio=fo_o / fo_k, beyond_ka=ov_k)
            aims[f"{t.name}/{f}"] = entry
    return {"table": summary, "aims": aims}


def report_frozen(results: list[dict], timings: list[Timing], impls: list[str], fault: str) -> dict:
    """One process of head1 frozen alone (hbfreeze: the heartbeat process / VRRP child;
    dfreeze: our daemon): when the alias left head1 and reached head2, and how long two
    heads (or none) held it."""
    cols = (("failover_ms", "client<-head2"), ("head1_removed_ms", "head1 removed"),
            ("head2_added_ms", "head2 added"), ("head2_alone_ms", "head2 alone"),
            ("two_holders_ms", "two holders"), ("two_holders_end_ms", "two ended"),
            ("no_holder_ms", "no holder"), ("head1_readded_ms", "head1 again"), ("freeze_ms", "frozen"))
    what = ("only the heartbeat process (ours) / the VRRP child (keepalived) of head1 stopped"
            if fault == "hbfreeze" else "only the daemon of head1 stopped, its heartbeat process running")
    print(f"\n{fault}: {what};\n"
          "ms after the fault, median [min..max]; holders exact from the address monitors (add/remove\n"
          "events), 'head1 again' = head1 holds it again (ours: auto-failback, once its new heartbeat\n"
          "process hears head2), 'samples 2' = Cluster.holding samples every "
          f"{HOLDER_SAMPLE_S * 1000:.0f} ms that saw two holders (cross-check)")
    head = (f"{'timing':10} {'implementation':13} {'N':>2} " + " ".join(f"{h:>14}" for _, h in cols)
            + f" {'samples 2':>10}")
    print(head)
    print("-" * len(head))
    out: dict[str, Any] = {}
    for t in timings:
        for impl in impls:
            ok = [r for r in results if (r["impl"], r["timing"], r["fault"]) == (impl, t.name, fault)
                  and "two_holders_ms" in r]
            if not ok:
                continue
            row = {k: stats([float(r[k]) for r in ok if r.get(k) is not None]) for k, _ in cols}
            s2 = sum(r["samples_two"] for r in ok)
            sn = sum(r["samples"] for r in ok)
            print(f"{t.name:10} {LABEL[impl]:13} {len(ok):>2} "
                  + " ".join(f"{fmt_stats(row[k]):>14}" for k, _ in cols) + f" {f'{s2}/{sn}':>10}")
            out[f"{impl}/{t.name}"] = dict(row, samples_two=s2, samples=sn)
    ours = [r for r in results if r["impl"] == "ours" and r["fault"] == fault and r.get("head1_stages_ms")]
    if ours:
        names = [n for n, _ in (Ours.HEAD1_STAGES if fault == "hbfreeze" else Ours.DFREEZE_STAGES)]
        rule = ("the silence bound is max(2 x interval, dead time / 2) + interval / 2" if fault == "hbfreeze"
                else "the heartbeat process fences after max(1 s, dead time) without a word from the daemon")
        print(f"\nhaoscar-snmp {fault}, head1's log (ms after the fault, medians; {rule})")
        print(f"{'timing':10} {'bound':>6} " + " ".join(f"{n:>20}" for n in names))
        for t in timings:
            rs = [r for r in ours if r["timing"] == t.name]
            if not rs:
                continue
            bound = (max(2 * t.interval_ms, t.dead_ms // 2) + t.interval_ms // 2 if fault == "hbfreeze"
                     else max(1000, t.dead_ms))
            vals = []
            for n in names:
                v = [r["head1_stages_ms"][n] for r in rs if n in r["head1_stages_ms"]]
                vals.append(f"{statistics.median(v):20.0f}" if v else f"{'-':>20}")
            print(f"{t.name:10} {bound:6d} " + " ".join(vals))
    return out


def fmt_stats_1(s: tuple[float, float, float, int] | None) -> str:
    """As fmt_stats, to 0.1 ms (for short overlaps and gaps)."""
    if s is None:
        return "-"
    return f"{s[0]:.1f}" if s[3] == 1 else f"{s[0]:.1f} [{s[1]:.1f}..{s[2]:.1f}]"


def report_pubsilent(results: list[dict], timings: list[Timing], impls: list[str]) -> dict:
    """The public link of head1 silent (port muted, carrier up): when the client was first
    served by head2, when the alias left head1 and reached head2, two holders, none."""
    cols = (("failover_ms", "client<-head2"), ("head1_removed_ms", "head1 removed"),
            ("head2_added_ms", "head2 added"), ("two_holders_before_ms", "2 holders muted"),
            ("no_holder_before_ms", "none muted"), ("two_holders_after_ms", "2 after unmute"),
            ("no_holder_after_ms", "none after"), ("longest_silence_ms", "client no answer"),
            ("last_old_reply_ms", "last from head1"), ("fault_apply_ms", "mute applied"),
            ("muted_ms", "muted"))
    FINE = ("two_holders_before_ms", "no_holder_before_ms", "two_holders_after_ms",   # noqa: N806
            "no_holder_after_ms")
    print("\npubsilent: head1's public port muted at the switch (carrier up); ms after the mute, "
          "median [min..max];\nholders exact from the address monitors, while the port was muted "
          f"and in the {HOLDER_TAIL_S:g} s after\nthe unmute (ours: the hold-down keeps head1 standby "
          "then; keepalived+ts fails back);\n'client no answer' = the longest time the client got no "
          "reply at all (from the mute to head2's\nfirst reply, or to the bound when head2 never "
          "answered);\n'last from head1' = the client's last reply "
          "from head1 (the mute as the client saw it; times are\nafter the nft command returned, "
          "which took 'mute applied');\nkeepalived+ts = keepalived with a vrrp_script "
          f"pinging {' and '.join(PUBLIC_TARGETS)} (interval {KA_SCRIPT_INTERVAL_S} s, fall "
          f"{KA_SCRIPT_FALL}, rise {KA_SCRIPT_RISE}, weight {KA_SCRIPT_WEIGHT})")
    head = (f"{'timing':10} {'implementation':13} {'N':>2} " + " ".join(f"{h:>16}" for _, h in cols)
            + f" {'not served':>10}")
    print(head)
    print("-" * len(head))
    out: dict[str, Any] = {}
    for t in timings:
        for impl in impls:
            rs = [r for r in results if (r["impl"], r["timing"], r["fault"]) == (impl, t.name, "pubsilent")]
            ok = [r for r in rs if "two_holders_ms" in r and "error" not in r]
            if not rs:
                continue
            row = {k: stats([float(r[k]) for r in ok if r.get(k) is not None]) for k, _ in cols}
            unserved = sum(1 for r in ok if "not_served_within_s" in r)
            failed = len(rs) - len(ok)
            print(f"{t.name:10} {LABEL[impl]:13} {len(ok):>2} "
                  + " ".join(f"{fmt_stats_1(row[k]) if k in FINE else fmt_stats(row[k]):>16}"
                             for k, _ in cols)
                  + f" {f'{unserved}/{len(ok)}':>10}"
                  + (f"   ({failed} run(s) failed)" if failed else ""))
            out[f"{impl}/{t.name}"] = dict(row, not_served=unserved, n=len(ok), failed=failed,
                                          bound_s=pubsilent_wait_s(t))
        print(f"{'':10} ('not served' = runs where the client got no reply from head2 within "
              f"{pubsilent_wait_s(t):g} s of the mute)")
    names = {"ours": [n for n, _ in Ours.PUBSILENT_STAGES["head1"]] + [f"head2 {n}" for n, _ in
                                                                         Ours.PUBSILENT_STAGES["head2"]],
             "keepalived-track": [f"{h} {n}" for h, st in Keepalived.TRACK_STAGES.items() for n, _ in st]}
    for impl in ("ours", "keepalived-track"):
        rs = [r for r in results if r["impl"] == impl and r["fault"] == "pubsilent"
              and (r.get("head1_stages_ms") or r.get("head2_stages_ms"))]
        if not rs:
            continue
        if impl == "ours":
            print("\nhaoscar-snmp pubsilent, the heads' logs (ms after the mute, median [min..max]); "
                  "bound from the mute to the release,\nbefore the handover: public_fall to "
                  "public_fall + 1 probe intervals + one probe interval + one heartbeat interval")
        else:
            print("\nkeepalived+ts pubsilent, the heads' output lines as they arrived (ms after the "
                  "mute, median [min..max])")
        print(f"{'timing':10} {'bound':>9} " + " ".join(f"{n:>22}" for n in names[impl]))
        for t in timings:
            rt = [r for r in rs if r["timing"] == t.name]
            if not rt:
                continue
            lo, hi = pubsilent_bound_ms(t)
            vals = []
            for n in names[impl]:
                key, name = "head1_stages_ms", n
                if impl == "ours" and n.startswith("head2 "):
                    key, name = "head2_stages_ms", n[len("head2 "):]
                vals.append(f"{fmt_stats(stats([r[key][name] for r in rt if name in r.get(key, {})])):>22}")
            bound = f"{lo}..{hi}" if impl == "ours" else "-"
            print(f"{t.name:10} {bound:>9} " + " ".join(vals))
    return out


# ======================================================================================

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="short run: aggressive timing only, 2 repetitions (about 1 minute)")
    p.add_argument("--reps-aggressive", type=int, help="repetitions at aggressive timing (default 5)")
    p.add_argument("--reps-default", type=int, help="repetitions at default timing (default 1)")
    p.add_argument("--timings", nargs="+", choices=list(TIMINGS), help="default: both")
    p.add_argument("--faults", nargs="+", choices=FAULTS + EXTRA_FAULTS,
                   help="default: kill freeze isolation cut hbfreeze dfreeze pubsilent (hbfreeze, dfreeze "
                        "and pubsilent at the aggressive timing only, unless named here; dfreeze for "
                        "ours only); kill-parent (SIGKILL of "
                        "keepalived's parent process only) on request")
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS),
                   help="default: all; keepalived-track (keepalived with a track script pinging the "
                        "public targets) runs for pubsilent only")
    p.add_argument("--json", type=Path, help="also write every run as JSON")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (configs, logs)")
    p.add_argument("--helper", choices=("echo", "probe", "sniff", "addrmon"), help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--interval-ms", type=int, help=argparse.SUPPRESS)
    p.add_argument("--old", help=argparse.SUPPRESS)
    p.add_argument("--new", help=argparse.SUPPRESS)
    p.add_argument("--max-s", type=float, default=60, help=argparse.SUPPRESS)
    p.add_argument("--tail-s", type=float, default=TAIL_S, help=argparse.SUPPRESS)
    p.add_argument("--warm", type=int, default=20, help=argparse.SUPPRESS)
    p.add_argument("--stop-on-stdin", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ifaces", help=argparse.SUPPRESS)
    p.add_argument("--sources", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.helper:
        return helper_main(args)
    faults_named = args.faults is not None
    args.faults = args.faults or list(FAULTS)

    def wanted(timing: Timing, fault: str) -> bool:
        return faults_named or timing.name != "default" or fault not in DEFAULT_TIMING_ONLY_ON_REQUEST

    if os.geteuid() != 0:
        print("bench_failover.py needs root (network namespaces); run it from the repository "
              "root as: sudo .venv/bin/python bench/bench_failover.py", file=sys.stderr)
        return 2
    missing = [tool for tool in ("ip", "nft", "snmpget") if not shutil.which(tool)]
    if "keepalived" in args.impls and not Path(KEEPALIVED).exists():
        missing.append(KEEPALIVED)
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    timings = [TIMINGS[n] for n in (args.timings or (["aggressive"] if args.quick else list(TIMINGS)))]
    reps = {"aggressive": args.reps_aggressive or (2 if args.quick else 5),
            "default": args.reps_default or 1}


    unwind_on_signals()

    from tests.scenarios.netns import Cluster
    bench = Bench(args)
    started = time.monotonic()
    results: list[dict] = []
    cluster = Cluster(prefix=f"fb{os.getpid() % 10000}")
    try:
        with cluster:
            bench.cluster = cluster
            ka_version = subprocess.run([KEEPALIVED, "--version"], capture_output=True, text=True,
                                        timeout=10).stderr.splitlines()[:1] if Path(KEEPALIVED).exists() else ["-"]
            print(f"failover time, haoscar-snmp vs keepalived ({time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
                  f"{os.cpu_count()} CPUs, {os.uname().release}, load average {_loadavg()}; "
                  f"{ka_version[0] if ka_version else '?'})")
            print(f"namespaces {cluster.prefix}-*; probe every {PROBE_INTERVAL_MS} ms from the client "
                  f"to {ALIAS}:{ECHO_PORT}/udp; fault {FAULT_DELAY_S * 1000:.0f} ms after a "
                  "heartbeat/advert from head1 arrived at head2")
            for t in timings:
                print(f"  {t.name}: ours heartbeat {t.interval_ms} ms, dead {t.dead_ms} ms; keepalived "
                      f"advert_int {t.advert_s:g} s, VRRPv{t.vrrp_version}, master down "
                      f"{t.master_down_ms():.1f} ms; {reps[t.name]} repetition(s)")
            bench.start_helpers()
            for t in timings:
                for rep in range(reps[t.name]):
                    for f in args.faults:
                        if not wanted(t, f):
                            continue
                        for impl in args.impls:
                            if impl == "keepalived-track" and f not in TRACK_ONLY_FAULTS:
                                continue
                            if impl != "ours" and f in OURS_ONLY_FAULTS:
                                continue
                            r = bench.run_one(impl, t, f, rep)
                            results.append(r)
                            print(f"  [{time.monotonic() - started:5.0f}s] {t.name:10} {f:9} "
                                  f"{LABEL[impl]:13} run {rep + 1}: " + _one_line(r), flush=True)
            out = report(results, timings, args.faults, args.impls)
            print(f"\nload average at the end {_loadavg()}; "
                  f"total {time.monotonic() - started:.0f} s")
            if args.json:
                args.json.write_text(json.dumps({"results": results, "summary": out,
                                                 "argv": sys.argv}, indent=1, default=str))
        if not cluster.wait_gone():
            print("WARNING: namespaces still listed after teardown", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        cluster.teardown()
        if args.keep_tmp:
            print(f"kept {bench.tmp}")
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)


def _one_line(r: dict) -> str:
    if r["fault"] == "pubsilent" and "error" not in r and "two_holders_ms" in r:
        return _one_line_pubsilent(r)
    if "failover_ms" not in r:
        return f"FAILED: {r.get('error')}" + (f"\n{r.get('log_tail', '')}" if r.get("log_tail") else "")
    text = f"failover {r['failover_ms']:.0f} ms"
    if "overhead_ms" in r:   # not for dfreeze: no dead time counted from the fault
        text += (f" (overhead {r['overhead_ms']:+.0f}, expiry->reply "
                 f"{r.get('overhead_from_last_heard_ms', float('nan')):+.0f})")
    if "published_ms" in r:
        text += f", published {r['published_ms']} ms"
    text += f", silence {r['longest_silence_ms']:.0f} ms"
    if r.get("frames_after_fault"):
        why = {"kill-parent": " (its priority-0 goodbye)",
               "hbfreeze": " (head1's new heartbeat process)" if r["impl"] == "ours" else " (WARNING)",
               "dfreeze": " (its heartbeat process, until it fenced)"}
        text += (f", {r['frames_after_fault']} heartbeat/advert(s) from head1 after the fault"
                 + why.get(r["fault"], " (WARNING)"))
    if r["fault"] in FROZEN_ALONE and "two_holders_ms" in r:
        def ms(key: str) -> str:
            return "-" if r.get(key) is None else f"{r[key]:.0f}"
        text += (f"; holders: head1 removed {ms('head1_removed_ms')}, head2 added {ms('head2_added_ms')}, "
                 f"head2 alone {ms('head2_alone_ms')}, two holders {r['two_holders_ms']:.0f} ms"
                 f" (ended {ms('two_holders_end_ms')}), none {r['no_holder_ms']:.0f} ms; "
                 f"frozen {r['freeze_ms']:.0f} ms, SIGCONT: {r.get('unfrozen') or '-'}; samples with two "
                 f"holders {r['samples_two']}/{r['samples']}")
        if r.get("head1_stages_ms"):
            text += "; head1 log: " + ", ".join(f"{k} {v:.0f}" for k, v in r["head1_stages_ms"].items())
    if r.get("bug"):
        text += f", {r['bug']}"
    return text


def _one_line_pubsilent(r: dict) -> str:
    def ms(key: str) -> str:
        return "-" if r.get(key) is None else f"{r[key]:.0f}"
    if "failover_ms" in r:
        text = f"client served by head2 {r['failover_ms']:.0f} ms after the mute"
    else:
        text = f"client NOT served by head2 within {r['not_served_within_s']:g} s"
    text += (f"; holders: head1 removed {ms('head1_removed_ms')}, head2 added {ms('head2_added_ms')}, "
             f"while muted two holders {r['two_holders_before_ms']:.1f} ms, none "
             f"{r['no_holder_before_ms']:.1f} ms; after the unmute two {r['two_holders_after_ms']:.1f}, "
             f"none {r['no_holder_after_ms']:.1f} ms; at the end "
             f"{'+'.join(r.get('holders_at_end', [])) or 'none'}; client without answer "
             f"{r.get('longest_silence_ms', float('nan')):.0f} ms (last reply from head1 "
             f"{ms('last_old_reply_ms')}); muted {r['muted_ms']:.0f} ms "
             f"(mute {r.get('fault_apply_ms', float('nan')):.0f} ms to apply); samples with two holders "
             f"{r['samples_two']}/{r['samples']}")
    first = "head1 log" if r["impl"] == "ours" else "output lines"
    for key, who in (("head1_stages_ms", first), ("head2_stages_ms", "head2 log")):
        if r.get(key):
            text += f"; {who}: " + ", ".join(f"{k} {v:.0f}" for k, v in r[key].items())
    if r.get("bug"):
        text += f", {r['bug']}"
    return text


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
