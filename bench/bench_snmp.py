#!/usr/bin/env python3
"""SNMP read throughput: haoscar-snmp against net-snmp's snmpd, side by side, in one run.

What it measures, for each agent, with the SAME client (haoscar-snmp runs three times: with
its fast read path, with every request through pysnmp, HAOSCAR_SNMP_FASTPATH=0, and as
the AgentX subagent of a second snmpd, which the client asks; --no-agentx leaves the last
one out):

* GET requests/s       single-var-bind GETs, sequential (one outstanding request), one client;
* GETNEXT varbinds/s   a walk of a 2,000+ row table, like `snmpwalk`;
* GETBULK varbinds/s   the same walk with GETBULK, like `snmpbulkwalk -Cr25` and `-Cr50`;
* the GET and GETBULK rows again over SNMPv3, authPriv with HMAC-SHA-256-192 and
  AES-128-CFB, one user ("bench") on every agent (--no-v3 leaves them out);

then prints ours/snmpd for each, the project's aims (our GETBULK walk rate at least 1/2 of
snmpd's, our GET rate at least 1/4) and whether they were met, each agent's CPU use during each test and its memory.
It never fails on a number: a benchmark prints figures, it does not pass or fail on time.

The tables:

* haoscar-snmp: haoscarServiceTable (1.3.6.1.4.1.32473.1.1.8) with 2,000 `[[services]]`
  rows that have `enabled = false` (nothing is ever executed), 13 readable columns each;
* snmpd: IF-MIB::ifTable (1.3.6.1.2.1.2.2) in a private network namespace that holds
  2,000 virtual interfaces plus lo, 22 columns each. The interfaces are `dummy`, or `ifb`
  where the kernel has no dummy driver, or `bridge` as a last resort (the kernel takes
  ~30 s to clean up a namespace with 2,000 bridges, and blocks every `ip netns add` on the
  machine meanwhile; ifb and dummy take well under a second).

Through AgentX the table is the same haoscarServiceTable, and the CPU and memory shown
are the second snmpd's plus the subagent daemon's. All the agents run inside that namespace and listen on its 127.0.0.1 only; the client runs
there too (`ip netns exec`). Everything created (namespace and its interfaces, the two
agents, the temporary directory) is removed at the end, also on error or Ctrl-C.

The client is this file run with `--client`: a plain blocking UDP socket, SNMPv2c
messages BER-encoded by a small hand-written codec (checked byte for byte against
pysnmp's message API `pysnmp.proto.api.v2c` at start), responses parsed only as far as
needed (request-id, error-status, var-bind OIDs and value tags). For SNMPv3 the same
PDUs are wrapped by `snmpv3_client.py` (engine discovery once per client, then every
message encrypted and signed anew, every response's digest checked). With one request in
flight, a rate is 1 / (client time + kernel round trip + agent time): the report shows the
CPU each side used, and the varbinds served per agent CPU-second, which does not depend
on the client at all.

Run as root (network namespaces):  sudo .venv/bin/python bench/bench_snmp.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchsignals import unwind_on_signals  # noqa: E402  (bench/ is on sys.path)
REPO = Path(__file__).resolve().parents[1]

OURS_TABLE = "1.3.6.1.4.1.32473.1.1.8"   # HAOSCAR-MIB::haoscarServiceTable
SNMPD_TABLE = "1.3.6.1.2.1.2.2"          # IF-MIB::ifTable
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
COMMUNITY = "public"
# The SNMPv3 rows: one user at authPriv, SHA-256 / AES-128, on every agent.
V3_USER, V3_AUTH, V3_PRIV = "bench", "bench-auth-passphrase", "bench-priv-passphrase"
AIMS = {"bulk": 0.50, "get": 0.25}  # project aims: ours/snmpd for GETBULK walks and GETs

# ======================================================================================
# The client: a minimal SNMPv2c codec and timed loops (runs as `--client JSON`).
# ======================================================================================

TAG_GET, TAG_GETNEXT, TAG_RESPONSE, TAG_GETBULK, REPORT_TAG = 0xA0, 0xA1, 0xA2, 0xA5, 0xA8
EXCEPTION_TAGS = {0x80: "noSuchObject", 0x81: "noSuchInstance", 0x82: "endOfMibView"}
REQID_BASE = 0x10000000  # request-ids stay in 0x10000000..0x7FFFFFFF: always 4 octets


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _len(len(body)) + body


def _int(v: int) -> bytes:
    return _tlv(0x02, v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True))


def oid_body(dotted: str) -> bytes:
    """BER contents octets of an OBJECT IDENTIFIER."""
    arcs = [int(a) for a in dotted.strip(".").split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def oid_arcs(body: bytes) -> tuple[int, ...]:
    arcs: list[int] = []
    val = 0
    for b in body:
        val = (val << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(val)
            val = 0
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def oid_str(body: bytes) -> str:
    return ".".join(map(str, oid_arcs(body)))


def pdu_bytes(tag: int, reqid: int, a: int, b: int, oid: bytes) -> bytes:
    """One request PDU with one var-bind (OID, NULL); a/b = error-status/index or
    non-repeaters/max-repetitions."""
    varbinds = _tlv(0x30, _tlv(0x30, _tlv(0x06, oid) + b"\x05\x00"))
    return _tlv(tag, _int(reqid) + _int(a) + _int(b) + varbinds)


def request(tag: int, community: bytes, reqid: int, a: int, b: int, oid: bytes) -> bytes:
    """One SNMPv2c request with one var-bind."""
    return _tlv(0x30, _int(1) + _tlv(0x04, community) + pdu_bytes(tag, reqid, a, b, oid))


def _read_tl(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, length, position of the contents) of the TLV at `pos`."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, n, pos


def parse_response(buf: bytes) -> tuple[int, int, list[tuple[bytes, int]]]:
    """(request-id, error-status, [(OID contents, value tag), ...]) of a Response-PDU."""
    _, _, pos = _read_tl(buf, 0)             # Message SEQUENCE
    _, n, pos = _read_tl(buf, pos)           # version
    pos += n
    _, n, pos = _read_tl(buf, pos)           # community
    pos += n
    return parse_pdu(buf, pos)


def parse_pdu(buf: bytes, pos: int) -> tuple[int, int, list[tuple[bytes, int]]]:
    """parse_response's work from the PDU at `pos` on (SNMPv3: the decrypted PDU)."""
    tag, _, pos = _read_tl(buf, pos)         # PDU
    if tag != TAG_RESPONSE:
        raise ValueError(f"not a Response-PDU: tag 0x{tag:02x}")
    _, n, pos = _read_tl(buf, pos)
    reqid = int.from_bytes(buf[pos:pos + n], "big", signed=True)
    pos += n
    _, n, pos = _read_tl(buf, pos)
    errstat = int.from_bytes(buf[pos:pos + n], "big", signed=True)
    pos += n
    _, n, pos = _read_tl(buf, pos)           # error-index
    pos += n
    _, n, pos = _read_tl(buf, pos)           # VarBindList
    end = pos + n
    vbs: list[tuple[bytes, int]] = []
    while pos < end:
        _, n, pos = _read_tl(buf, pos)       # VarBind
        nxt = pos + n
        _, n, pos = _read_tl(buf, pos)       # name
        oid = buf[pos:pos + n]
        vbs.append((oid, buf[pos + n]))      # value tag
        pos = nxt
    return reqid, errstat, vbs


class Client:
    """Sequential SNMPv2c requests over one UDP socket; one request in flight at a time.
    With `usm` (snmpv3_client.py) the same PDUs travel as SNMPv3 authPriv messages."""

    def __init__(self, host: str, port: int, community: str, timeout: float = 2.0,
                 retries: int = 3, usm: Any = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((host, port))
        self.sock.settimeout(timeout)
        self.community = community.encode()
        self.retries = retries
        self.reqid = REQID_BASE + random.randrange(0x1000000)
        self.resends = 0
        self.usm = usm
        if usm is not None:
            self.sock.send(usm.discovery())
            usm.learn(self.sock.recv(65535))

    def next_reqid(self) -> int:
        self.reqid += 1
        if self.reqid > 0x7FFFFFFF:
            self.reqid = REQID_BASE
        return self.reqid

    def exchange(self, packet: bytes, reqid: int) -> tuple[int, list[tuple[bytes, int]]]:
        for attempt in range(self.retries + 1):
            if attempt:
                self.resends += 1
            self.sock.send(packet)
            try:
                while True:
                    data = self.sock.recv(65535)
                    rid, errstat, vbs = parse_response(data)
                    if rid == reqid:
                        return errstat, vbs
                    # a late answer to an earlier request: ignore it and keep waiting
            except socket.timeout:
                continue
        raise TimeoutError(f"no response after {self.retries + 1} tries")

    def send(self, tag: int, oid: bytes, a: int = 0, b: int = 0):
        rid = self.next_reqid()
        if self.usm is not None:
            return self.exchange_v3(pdu_bytes(tag, rid, a, b, oid), rid)
        return self.exchange(request(tag, self.community, rid, a, b, oid), rid)

    def exchange_v3(self, pdu: bytes, reqid: int) -> tuple[int, list[tuple[bytes, int]]]:
        """`exchange` for SNMPv3: each try is wrapped anew (time, salt); a report (the
        agent's time moved on) is learnt from and the request sent again."""
        for attempt in range(self.retries + 1):
            if attempt:
                self.resends += 1
            self.sock.send(self.usm.wrap(pdu))
            try:
                while True:
                    data = self.sock.recv(65535)
                    answer = self.usm.unwrap(data)
                    if answer[0] == REPORT_TAG:
                        self.usm.learn(data)
                        break
                    rid, errstat, vbs = parse_pdu(answer, 0)
                    if rid == reqid:
                        return errstat, vbs
            except socket.timeout:
                continue
        raise TimeoutError(f"no response after {self.retries + 1} tries")


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def op_ready(c: Client, spec: dict) -> dict:
    """Does the agent answer a GET of sysUpTime.0 (or of spec["oid"]) with a value?"""
    try:
        errstat, vbs = c.send(TAG_GET, oid_body(spec.get("oid", SYS_UPTIME)))
        return {"ok": errstat == 0 and len(vbs) == 1 and vbs[0][1] not in EXCEPTION_TAGS}
    except (TimeoutError, OSError):
        return {"ok": False}


def op_get(c: Client, spec: dict) -> dict:
    """Sequential single-var-bind GETs cycling over `oids`, bounded in count and time."""
    bodies = [oid_body(o) for o in spec["oids"]]
    # One template per OID; only the 4-octet request-id changes from request to request.
    templates = []
    for body in bodies:
        pkt = request(TAG_GET, c.community, 0x7EADBEEF, 0, 0, body)
        i = pkt.index(b"\x02\x04\x7e\xad\xbe\xef") + 2
        templates.append((pkt[:i], pkt[i + 4:]))
    max_requests, max_seconds = spec["max_requests"], spec["max_seconds"]
    errors = 0
    n = 0
    k = len(templates)
    c0 = _own_cpu()
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    while n < max_requests:
        if c.usm is not None:   # SNMPv3: every message is encrypted and signed anew
            errstat, vbs = c.send(TAG_GET, bodies[n % k])
        else:
            head, tail = templates[n % k]
            rid = c.next_reqid()
            errstat, vbs = c.exchange(head + rid.to_bytes(4, "big") + tail, rid)
        if errstat or len(vbs) != 1 or vbs[0][1] in EXCEPTION_TAGS:
            errors += 1
        n += 1
        if not n & 63 and time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - t0
    return {"requests": n, "varbinds": n, "elapsed": elapsed, "errors": errors,
            "resends": c.resends, "complete": n >= max_requests, "client_cpu": _own_cpu() - c0}


def op_walk(c: Client, spec: dict) -> dict:
    """Walk `root` with GETNEXT (max_reps 0) or GETBULK like snmpwalk / snmpbulkwalk,
    bounded in requests and time; count the var-binds inside the subtree."""
    root = oid_body(spec["root"])
    max_reps = spec["max_reps"]
    tag = TAG_GETBULK if max_reps else TAG_GETNEXT
    max_requests, max_seconds = spec["max_requests"], spec["max_seconds"]
    rl = len(root)
    cur = root
    varbinds = requests = errors = 0
    complete = False
    c0 = _own_cpu()
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    while requests < max_requests:
        errstat, vbs = c.send(tag, cur, 0, max_reps)
        requests += 1
        if errstat or not vbs:
            errors += 1
            break
        last = cur
        for oid, vtag in vbs:
            if vtag == 0x82 or len(oid) <= rl or oid[:rl] != root:
                complete = True  # left the subtree or end of the MIB view
                break
            varbinds += 1
            last = oid
        if complete:
            break
        if last == cur:  # an agent answering the same OID again would loop for ever
            errors += 1
            break
        cur = last
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - t0
    return {"requests": requests, "varbinds": varbinds, "elapsed": elapsed,
            "errors": errors, "resends": c.resends, "complete": complete,
            "client_cpu": _own_cpu() - c0}


def op_discover(c: Client, spec: dict) -> dict:
    """Untimed: check the codec against pysnmp, walk the whole table with GETBULK,
    check OIDs strictly increase, and pick the instances the GET test will ask for."""
    from pyasn1.codec.ber import decoder, encoder
    from pysnmp.proto.api import v2c

    # 1. Our request encoder must produce exactly what pysnmp's message API produces.
    rid = REQID_BASE + 12345
    for pdu_cls, tag, reps in ((v2c.GetRequestPDU, TAG_GET, 0),
                               (v2c.GetNextRequestPDU, TAG_GETNEXT, 0),
                               (v2c.GetBulkRequestPDU, TAG_GETBULK, 50)):
        pdu = pdu_cls()
        api = v2c.apiBulkPDU if tag == TAG_GETBULK else v2c.apiPDU
        api.set_defaults(pdu)
        api.set_request_id(pdu, rid)
        if tag == TAG_GETBULK:
            api.set_non_repeaters(pdu, 0)
            api.set_max_repetitions(pdu, reps)
        api.set_varbinds(pdu, [(v2c.ObjectIdentifier(spec["root"]), v2c.null)])
        msg = v2c.Message()
        v2c.apiMessage.set_defaults(msg)
        v2c.apiMessage.set_community(msg, COMMUNITY)
        v2c.apiMessage.set_pdu(msg, pdu)
        ref = encoder.encode(msg)
        ours = request(tag, c.community, rid, 0, reps, oid_body(spec["root"]))
        if ref != ours:
            raise SystemExit(f"codec mismatch for tag 0x{tag:02x}:\n{ref.hex()}\n{ours.hex()}")

    # 2. Walk the table; decode the first responses with pysnmp as well and compare.
    root = oid_body(spec["root"])
    rl = len(root)
    cur = root
    oids: list[tuple[int, ...]] = []
    checked = 0
    value_tags: dict[str, int] = {}
    while True:
        rid = c.next_reqid()
        packet = request(TAG_GETBULK, c.community, rid, 0, 50, cur)
        for _ in range(4):
            c.sock.send(packet)
            try:
                while True:
                    data = c.sock.recv(65535)
                    if parse_response(data)[0] == rid:
                        break
                break
            except socket.timeout:
                continue
        else:
            raise SystemExit("discover: no response")
        _, errstat, vbs = parse_response(data)
        if checked < 20:
            msg, _ = decoder.decode(data, asn1Spec=v2c.Message())
            pdu = v2c.apiMessage.get_pdu(msg)
            ref = [(tuple(n), v) for n, v in v2c.apiPDU.get_varbinds(pdu)]
            mine = [oid_arcs(o) for o, _ in vbs]
            if [n for n, _ in ref] != mine or int(v2c.apiPDU.get_error_status(pdu)) != errstat:
                raise SystemExit("response parser disagrees with pysnmp")
            checked += 1
        if errstat:
            raise SystemExit(f"discover: error-status {errstat}")
        done = False
        for oid, vtag in vbs:
            if vtag == 0x82 or len(oid) <= rl or oid[:rl] != root:
                done = True
                break
            arcs = oid_arcs(oid)
            if oids and arcs <= oids[-1]:
                raise SystemExit(f"OID not increasing: {arcs} after {oids[-1]}")
            oids.append(arcs)
            name = EXCEPTION_TAGS.get(vtag, f"0x{vtag:02x}")
            value_tags[name] = value_tags.get(name, 0) + 1
            cur = oid
        if done or not vbs:
            break
    n = len(spec["root"].split(".")) + 1   # table.entry -> column is the next arc
    columns = sorted({o[n] for o in oids})
    rows = {o[n + 1:] for o in oids}
    # GET targets: evenly spaced over the whole table (every column, every region).
    step = max(1, len(oids) // spec["get_samples"])
    sample = [".".join(map(str, o)) for o in oids[::step]][: spec["get_samples"]]
    return {"varbinds": len(oids), "rows": len(rows), "columns": columns,
            "first": ".".join(map(str, oids[0])) if oids else "",
            "last": ".".join(map(str, oids[-1])) if oids else "",
            "value_tags": value_tags, "checked_responses": checked, "get_oids": sample}


def client_main(spec: dict) -> None:
    usm = None
    if spec.get("v3"):
        from snmpv3_client import Usm       # beside this file
        usm = Usm(V3_USER, V3_AUTH, V3_PRIV)
    c = Client(spec["host"], spec["port"], COMMUNITY, usm=usm)
    ops = {"ready": op_ready, "get": op_get, "walk": op_walk, "discover": op_discover}
    print(json.dumps(ops[spec["op"]](c, spec)))


# ======================================================================================
# The orchestrator: namespace, agents, measurements, report.
# ======================================================================================

def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def proc_status(pids: list[int]) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of processes, summed."""
    out = {"VmRSS": 0, "VmHWM": 0}
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in out:
                    out[key] += int(rest.split()[0])
    return out


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of processes, summed, in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="haoscar-bench-"))
        self.ns: str | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.link_type = ""
        self.interfaces = 0
        self.py = _python()
        self.logs: list = []

    # -- set-up ---------------------------------------------------------------------------

    def netns_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns] if self.ns else []

    def make_namespace(self) -> None:
        ns = f"haoscar-bench-{os.getpid()}"
        self.ns = ns  # set first: teardown deletes it even if `ip netns add` is interrupted
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for kind, extra in (("dummy", []), ("ifb", []), ("bridge", [])):
            probe = sh("ip", "-n", ns, "link", "add", "probe0", "type", kind, *extra, check=False)
            if probe.returncode == 0:
                sh("ip", "-n", ns, "link", "del", "probe0")
                self.link_type = kind
                break
        else:
            raise SystemExit("cannot create dummy, ifb or bridge interfaces in a namespace")
        batch = self.tmp / "links.batch"
        batch.write_text("".join(f"link add b{i} type {self.link_type}\n"
                                 for i in range(self.args.rows)))
        sh("ip", "-n", ns, "-batch", str(batch))
        self.interfaces = len(sh("ip", "-n", ns, "-o", "link").stdout.splitlines())

    def write_our_config(self, port: int, name: str, agentx_master: Path | None = None) -> Path:
        lines = [
            "# generated by bench/bench_snmp.py",
            "[cluster]", 'name = "bench"', 'local_head = "head1"',
            f'state_dir = "{self.tmp / ("state-" + name)}"', "",
            "[[heads]]", 'name = "head1"', 'preferred_role = "primary"', "",
            "[snmp]", f'listen = ["127.0.0.1:{port}"]', "",
            "[[snmp.communities]]", f'name = "{COMMUNITY}"', 'access = "read"', "",
            "[[snmp.users]]", f'name = "{V3_USER}"', 'auth_protocol = "sha256"',
            f'auth_key_file = "{self.secret("auth", V3_AUTH)}"', 'priv_protocol = "aes128"',
            f'priv_key_file = "{self.secret("priv", V3_PRIV)}"', 'access = "read"', "",
            "[log]", 'level = "warning"', "",
        ]
        if agentx_master is not None:
            lines += ["[snmp.agentx]", "enabled = true", f'master = "{agentx_master}"', ""]
        for i in range(1, self.args.rows + 1):
            lines += ["[[services]]", f'name = "bench-svc-{i:05d}"', 'check = "true"',
                      'restart = ""', 'recovery = "notify-only"', "enabled = false", ""]
        path = self.tmp / f"haoscar-{name}.toml"
        path.write_text("\n".join(lines))
        return path

    def secret(self, name: str, text: str) -> Path:
        """A key file, mode 0600, as the daemon requires."""
        path = self.tmp / f"v3-{name}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        return path

    def start_ours(self, port: int, name: str = "ours", agentx_master: Path | None = None) -> None:
        """haoscar-snmp as `name`: "ours" with the fast read path, "pysnmp" without it,
        "agentx-daemon" as the AgentX subagent of the snmpd at `agentx_master` (its own
        UDP listener on `port` is not measured)."""
        cfg = self.write_our_config(port, name, agentx_master)
        check = sh(self.py, "-m", "haoscar_snmp", "check-config", "-c", str(cfg), check=False)
        if check.returncode:
            raise SystemExit(f"generated config rejected:\n{check.stdout}{check.stderr}")
        log = (self.tmp / f"haoscar-{name}.log").open("w")
        self.logs.append(log)
        env = dict(os.environ, HAOSCAR_SNMP_FASTPATH="0" if name == "pysnmp" else "1")
        self.procs[name] = subprocess.Popen(
            [*self.netns_prefix(), self.py, "-m", "haoscar_snmp", "run", "-c", str(cfg)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True, env=env)
        self.ports[name] = port

    def start_snmpd(self, port: int, name: str = "snmpd", agentx_socket: Path | None = None) -> None:
        """net-snmp's snmpd as `name`: "snmpd" serves its own ifTable; "agentx" is a
        second snmpd, AgentX master on `agentx_socket`, that serves our MIB for a
        subagent daemon."""
        conf = self.tmp / f"{name}.conf"
        text = (f"agentaddress udp:127.0.0.1:{port}\nrocommunity {COMMUNITY} 127.0.0.1\n"
                f"createUser {V3_USER} SHA-256 {V3_AUTH} AES {V3_PRIV}\nrouser {V3_USER} priv\n")
        if agentx_socket is not None:
            text += (f"master agentx\nagentXSocket {agentx_socket}\nagentXPerms 0600 0700\n"
                     "agentXTimeout 5\nagentXRetries 0\n")
        conf.write_text(text)
        persist = self.tmp / f"{name}-persist"
        persist.mkdir()
        log = (self.tmp / f"{name}.log").open("w")
        self.logs.append(log)
        env = dict(os.environ, SNMP_PERSISTENT_DIR=str(persist))
        self.procs[name] = subprocess.Popen(
            [*self.netns_prefix(), self.args.snmpd, "-C", "-c", str(conf), "-f", "-Lo"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.tmp,
            start_new_session=True)
        self.ports[name] = port

    def client(self, agent: str, spec: dict, timeout: float = 120.0) -> dict:
        spec = dict(spec, host="127.0.0.1", port=self.ports[agent])
        cmd = [*self.netns_prefix(), self.py, str(Path(__file__).resolve()),
               "--client", json.dumps(spec)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode:
            raise RuntimeError(f"client failed for {agent}: {p.stderr.strip()[-2000:]}")
        return json.loads(p.stdout)

    def wait_ready(self, agent: str, timeout: float = 60.0) -> float:
        """Seconds until `agent` answers; through AgentX, until the subagent's table is
        there (snmpd answers before the subagent has registered)."""
        t0 = time.monotonic()
        spec = {"op": "ready", **({"oid": OURS_TABLE + ".1.2.1"} if agent == "agentx" else {})}
        while time.monotonic() - t0 < timeout:
            for name in PROCS[agent]:
                proc = self.procs[name]
                if proc.poll() is not None:
                    log = (self.tmp / (f"{name}.log" if name in ("snmpd", "agentx") else f"haoscar-{name}.log"))
                    raise SystemExit(f"{name} exited with {proc.returncode}:\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            if self.client(agent, spec)["ok"]:
                return time.monotonic() - t0
            time.sleep(0.2)
        raise SystemExit(f"{agent} did not answer within {timeout:.0f}s")

    # -- teardown -------------------------------------------------------------------------

    def teardown(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # finish the clean-up
            signal.signal(sig, signal.SIG_IGN)
        for name, proc in self.procs.items():
            try:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)
            except Exception as exc:  # keep tearing the rest down
                print(f"teardown: stopping {name}: {exc}", file=sys.stderr)
        for log in self.logs:
            log.close()
        if self.ns and Path("/run/netns", self.ns).exists():
            r = sh("ip", "netns", "del", self.ns, check=False)
            if r.returncode:
                print(f"teardown: ip netns del {self.ns}: {r.stderr.strip()}", file=sys.stderr)
        if self.args.keep_tmp:
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- measurements ---------------------------------------------------------------------------

AGENTS = ("ours", "pysnmp", "snmpd", "agentx")   # "agentx" is left out with --no-agentx
LABEL = {"ours": "haoscar-snmp", "pysnmp": "haoscar (pysnmp)", "snmpd": "net-snmp snmpd",
         "agentx": "haoscar via snmpd (AgentX)"}
COLUMN = {"ours": "haoscar-snmp", "pysnmp": "(pysnmp path)", "snmpd": "snmpd", "agentx": "(via AgentX)"}
# The processes whose CPU and memory count for each measured agent: through AgentX, both
# snmpd (the master) and our daemon (the subagent) do the work.
PROCS = {"ours": ("ours",), "pysnmp": ("pysnmp",), "snmpd": ("snmpd",),
         "agentx": ("agentx", "agentx-daemon")}


def tests(args: argparse.Namespace) -> list[tuple[str, str, dict]]:
    t, w = args.seconds, args.walk_seconds
    return [
        ("get", "GET requests/s (1 varbind, sequential)",
         {"op": "get", "max_requests": 200_000, "max_seconds": t}),
        ("getnext", "GETNEXT walk varbinds/s",
         {"op": "walk", "max_reps": 0, "max_requests": 200_000, "max_seconds": w}),
        *[(f"bulk{r}", f"GETBULK r={r} walk varbinds/s",
           {"op": "walk", "max_reps": r, "max_requests": 20_000, "max_seconds": w})
          for r in args.max_reps],
        *([] if args.no_v3 else [
            ("v3get", "v3 authPriv GET requests/s",
             {"op": "get", "v3": True, "max_requests": 200_000, "max_seconds": t}),
            *[(f"v3bulk{r}", f"v3 authPriv GETBULK r={r} varbinds/s",
               {"op": "walk", "v3": True, "max_reps": r, "max_requests": 20_000, "max_seconds": w})
              for r in args.max_reps]]),
    ]


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="short run: 1 s per GET test, 1.5 s per walk, 1 repetition, "
                        "no net-snmp cross-check")
    p.add_argument("--rows", type=int, default=2000, help="table rows per agent (default 2000)")
    p.add_argument("--seconds", type=float, help="time bound of each GET measurement (default 4)")
    p.add_argument("--walk-seconds", type=float,
                   help="time bound of each walk; a walk that reaches the end of the table "
                        "stops earlier (default 8)")
    p.add_argument("--reps", type=int, help="repetitions, interleaved, median reported (default 3)")
    p.add_argument("--max-reps", type=int, nargs="+", default=[25, 50],
                   help="GETBULK max-repetitions values (default 25 50)")
    p.add_argument("--snmpd", default="/usr/sbin/snmpd", help="net-snmp agent binary")
    p.add_argument("--no-v3", action="store_true",
                   help="leave out the SNMPv3 rows (authPriv, SHA-256 / AES-128)")
    p.add_argument("--no-agentx", action="store_true",
                   help="leave out our MIB through a second snmpd as AgentX master")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    p.add_argument("--client", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client:
        client_main(json.loads(args.client))
        return 0
    args.seconds = args.seconds or (1.0 if args.quick else 4.0)
    args.walk_seconds = args.walk_seconds or (1.5 if args.quick else 8.0)
    args.reps = args.reps or (1 if args.quick else 3)
    if args.rows < 2000 and not args.quick:
        print(f"note: --rows {args.rows} is below the 2,000 rows this benchmark is meant for")
    if os.geteuid() != 0:
        print("bench_snmp.py needs root (it creates a network namespace for snmpd's table);\n"
              "run it as: sudo .venv/bin/python bench/bench_snmp.py", file=sys.stderr)
        return 2
    if not shutil.which("ip"):
        print("the `ip` command (iproute2) is needed", file=sys.stderr)
        return 2
    if not Path(args.snmpd).exists():
        print(f"{args.snmpd} not found (apt-get install snmpd)", file=sys.stderr)
        return 2

    unwind_on_signals()

    bench = Bench(args)
    started = time.monotonic()
    try:
        return run(bench, args, started)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        bench.teardown()


def run(bench: Bench, args: argparse.Namespace, started: float) -> int:
    print("haoscar-snmp vs net-snmp snmpd: SNMPv2c and SNMPv3 read throughput "
          f"({time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, "
          f"{os.uname().release}, load average {_loadavg()})")
    snmpd_version = sh(args.snmpd, "-v", check=False).stdout
    snmpd_version = next((line.split(":", 1)[1].strip() for line in snmpd_version.splitlines()
                          if "version" in line.lower()), "?")
    ours_version = sh(bench.py, "-c", "import importlib.metadata as m;"
                      "print(m.version('haoscar-snmp'), m.version('pysnmp'))").stdout.split()

    agents = tuple(a for a in AGENTS if a != "agentx" or not args.no_agentx)
    bench.make_namespace()
    port_ours, port_pysnmp, port_snmpd, port_agentx, port_sub = random.sample(range(20000, 60000), 5)
    bench.start_ours(port_ours)
    bench.start_ours(port_pysnmp, "pysnmp")
    bench.start_snmpd(port_snmpd)
    if "agentx" in agents:
        master = bench.tmp / "agentx-master"
        bench.start_snmpd(port_agentx, "agentx", agentx_socket=master)
        bench.start_ours(port_sub, "agentx-daemon", agentx_master=master)
        bench.ports["agentx"] = port_agentx
    print(f"namespace {bench.ns}: lo + {args.rows} {bench.link_type} interfaces "
          f"({bench.interfaces} links); the agents and the client run inside it")
    ready = {a: bench.wait_ready(a) for a in agents}
    pids = {a: [bench.procs[n].pid for n in PROCS[a]] for a in agents}
    rss_start = {a: proc_status(pids[a]) for a in agents}

    # -- what each agent serves ------------------------------------------------------------
    tables = {"ours": OURS_TABLE, "pysnmp": OURS_TABLE, "snmpd": SNMPD_TABLE, "agentx": OURS_TABLE}
    names = {"ours": "HAOSCAR-MIB::haoscarServiceTable", "pysnmp": "HAOSCAR-MIB::haoscarServiceTable",
             "snmpd": "IF-MIB::ifTable", "agentx": "HAOSCAR-MIB::haoscarServiceTable"}
    found = {}
    for a in agents:
        d = bench.client(a, {"op": "discover", "root": tables[a], "get_samples": 200})
        found[a] = d
        print(f"  {LABEL[a]:26} {names[a]} ({tables[a]}): {d['rows']:,} rows x "
              f"{len(d['columns'])} columns = {d['varbinds']:,} varbinds "
              f"[{d['first']} .. {d['last']}]; ready {ready[a]:.1f}s after start; "
              f"codec checked against pysnmp on {d['checked_responses']} responses")
    ok = all(found[a]["rows"] >= args.rows for a in agents)
    if not ok:
        print(f"WARNING: a table has fewer than {args.rows} rows; figures are not comparable")

    crosscheck = {}
    if not args.quick:  # an independent client over one full walk: net-snmp's own tool
        for a in agents:
            cmd = [*bench.netns_prefix(), "snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-On", "-Oq",
                   "-Cr50", "-t", "5", "-r", "1", f"127.0.0.1:{bench.ports[a]}", tables[a]]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            dt = time.perf_counter() - t0
            # count var-binds, not lines: a MAC address with a 0x0a octet prints over two
            n = sum(1 for line in r.stdout.splitlines() if line.startswith(".1."))
            crosscheck[a] = {"varbinds": n, "elapsed": dt, "rc": r.returncode}
            if n != found[a]["varbinds"]:
                print(f"WARNING: snmpbulkwalk saw {n} varbinds from {a}, "
                      f"our client {found[a]['varbinds']}")

    idle0 = {a: cpu_seconds(pids[a]) for a in agents}
    time.sleep(2.0)
    idle_cpu = {a: (cpu_seconds(pids[a]) - idle0[a]) / 2.0 for a in agents}

    # -- timed runs ------------------------------------------------------------------------
    print(f"\nmethod: one client process per measurement (this file, --client), blocking UDP "
          f"socket, one request in flight;\n        each GET test bounded by {args.seconds:g} s, "
          f"each walk by {args.walk_seconds:g} s (and all by a request cap); every walk starts "
          f"at the table root;\n"
          f"        {args.reps} repetition(s), agents and tests interleaved, median reported.")
    results: dict[str, dict[str, list[dict]]] = {}
    for rep in range(args.reps):
        for key, _, spec in tests(args):
            for a in agents:
                s = dict(spec)
                if s["op"] == "walk":
                    s["root"] = tables[a]
                else:
                    s["oids"] = found[a]["get_oids"]
                c0 = cpu_seconds(pids[a])
                r = bench.client(a, s)
                r["agent_cpu"] = cpu_seconds(pids[a]) - c0
                results.setdefault(key, {}).setdefault(a, []).append(r)
                if r["errors"] or r["resends"]:
                    print(f"  note: {a} {key} rep {rep + 1}: {r['errors']} errors, "
                          f"{r['resends']} resends")
        print(f"  repetition {rep + 1}/{args.reps} done ({time.monotonic() - started:.0f}s)")
    rss_end = {a: proc_status(pids[a]) for a in agents}

    # -- report ----------------------------------------------------------------------------
    def rate(r: dict) -> float:
        return r["varbinds"] / r["elapsed"] if r["elapsed"] > 0 else 0.0

    summary = {}
    others = [a for a in agents if a != "snmpd"]   # each shown beside snmpd as a ratio
    print()
    hdr = (f"{'test':40} " + " ".join(f"{COLUMN[a]:>13}" for a in agents) + " "
           + " ".join(f"{a + '/snmpd':>13}" for a in others) + "   ours walk coverage")
    print(hdr)
    print("-" * len(hdr))
    for key, title, spec in tests(args):
        runs = results[key]
        med = {a: statistics.median(rate(r) for r in runs[a]) for a in agents}
        spread = {a: (min(rate(r) for r in runs[a]), max(rate(r) for r in runs[a]))
                  for a in agents}
        busy = {a: sum(r["elapsed"] for r in runs[a]) for a in agents}
        cpu = {a: 100 * sum(r["agent_cpu"] for r in runs[a]) / busy[a] for a in agents}
        ccpu = {a: 100 * sum(r["client_cpu"] for r in runs[a]) / busy[a] for a in agents}
        ratios = {a: med[a] / med["snmpd"] if med["snmpd"] else float("nan") for a in others}
        cover = ""
        if spec["op"] == "walk":
            total = found["ours"]["varbinds"]
            got = statistics.median(r["varbinds"] for r in runs["ours"])
            done = sum(r["complete"] for r in runs["ours"])
            cover = f"{got / total:.0%} of the table ({done}/{args.reps} walks complete)"
        print(f"{title:40} " + " ".join(f"{fmt(med[a]):>13}" for a in agents) + " "
              + " ".join(f"{ratios[a]:>13.3f}" for a in others) + f"   {cover}")
        summary[key] = {"title": title, "median": med, "min_max": spread, "ratio": ratios["ours"],
                        "ratio_pysnmp_path": ratios["pysnmp"], "ratio_agentx": ratios.get("agentx"),
                        "agent_cpu_percent": cpu, "client_cpu_percent": ccpu, "runs": runs}
    print("-" * len(hdr))
    def mib(kb: int) -> str:
        return f"{kb / 1024:.1f} MiB"

    for title, src, field in (("memory: VmRSS after the run", rss_end, "VmRSS"),
                              ("        VmRSS right after start-up", rss_start, "VmRSS"),
                              ("        VmHWM (peak resident)", rss_end, "VmHWM")):
        d = src["snmpd"][field]
        print(f"{title:40} " + " ".join(f"{mib(src[a][field]):>13}" for a in agents) + " "
              + " ".join(f"{src[a][field] / d:>13.2f}" for a in others))
    print(f"{'agent CPU while idle (2 s), % of a core':40} "
          + " ".join(f"{100 * idle_cpu[a]:>12.1f}%" for a in agents))
    if "agentx" in agents:
        print("(via AgentX: CPU and memory are snmpd's as master plus our daemon's as subagent)")
    print("\nCPU during the timed loops, % of one core (agent = the agent process(es), client = the "
          "benchmark client),\nand varbinds served per second of agent CPU (capacity, "
          "independent of round-trip latency):")
    print(f"  {'test':40} " + " ".join(f"{'agent ' + a:>13} {'client':>7}" for a in agents)
          + "  vb/CPU-s: " + " ".join(f"{a:>9}" for a in agents))
    for key, s in summary.items():
        a, c = s["agent_cpu_percent"], s["client_cpu_percent"]
        eff = {}
        for ag in agents:
            cpu_s = sum(r["agent_cpu"] for r in s["runs"][ag])
            eff[ag] = sum(r["varbinds"] for r in s["runs"][ag]) / cpu_s if cpu_s else float("nan")
        s["varbinds_per_agent_cpu_second"] = eff
        print(f"  {s['title']:40} " + " ".join(f"{a[ag]:>12.0f}% {c[ag]:>6.0f}%" for ag in agents)
              + "            " + " ".join(f"{fmt(eff[ag]):>9}" for ag in agents))
    print("\nspread (min .. max over repetitions):")
    for key, s in summary.items():
        print(f"  {s['title']:40} " + "; ".join(
            f"{a} {fmt(s['min_max'][a][0])} .. {fmt(s['min_max'][a][1])}" for a in agents))
    if crosscheck:
        print("\ncross-check with net-snmp's own client, one full `snmpbulkwalk -Cr50 -On -Oq` "
              "(includes process start-up and output formatting):")
        for a in agents:
            c = crosscheck[a]
            print(f"  {LABEL[a]:26} {c['varbinds']:>7,} varbinds in {c['elapsed']:6.2f} s = "
                  f"{fmt(c['varbinds'] / c['elapsed']):>8} varbinds/s")
        cr = ((crosscheck["ours"]["varbinds"] / crosscheck["ours"]["elapsed"]) /
              (crosscheck["snmpd"]["varbinds"] / crosscheck["snmpd"]["elapsed"]))
        print(f"  ratio ours/snmpd: {cr:.3f}")

    print(f"\naims (project): our GETBULK walk varbind rate >= {AIMS['bulk']:.2f} x snmpd's, "
          f"our GET rate >= {AIMS['get']:.2f} x snmpd's")
    for key, s in summary.items():
        aim = AIMS.get("bulk" if key.startswith("bulk") else key)
        if aim is not None:
            verdict = "MET" if s["ratio"] >= aim else "NOT MET"
            print(f"  {s['title']:40} ratio {s['ratio']:.3f} (pysnmp path {s['ratio_pysnmp_path']:.3f}): "
                  f"{verdict}")
    print(f"\nload average at the end: {_loadavg()} (other work on the machine skews figures)")
    commit = (sh("git", "-C", str(REPO), "rev-parse", "--short", "HEAD", check=False).stdout.strip()
              if shutil.which("git") else "")
    print(f"versions: haoscar-snmp {' / pysnmp '.join(ours_version)} (commit {commit or '?'}), "
          f"net-snmp {snmpd_version},"
          f" Python {sys.version.split()[0]}; total {time.monotonic() - started:.0f}s")

    if args.json:
        args.json.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
            "rows": args.rows, "link_type": bench.link_type, "seconds": args.seconds,
            "walk_seconds": args.walk_seconds,
            "reps": args.reps, "tables": {a: {k: v for k, v in found[a].items() if k != "get_oids"}
                                          for a in agents},
            "results": summary, "rss_kb_start": rss_start, "rss_kb_end": rss_end,
            "idle_cpu": idle_cpu, "crosscheck": crosscheck}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
