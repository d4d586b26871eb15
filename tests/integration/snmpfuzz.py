"""Malformed and mutated SNMP datagrams, and a paced sender that accounts for each one.

Shared by the integration test `test_fuzz.py` (a few thousand datagrams) and
`bench/bench_fuzz.py` (100,000 and more). Nothing here starts a daemon.

The valid messages the mutations start from are what net-snmp's own tools send: `capture`
puts a UDP relay between a tool and the agent and keeps every datagram the tool sent
(v1 and v2c GET, GETNEXT, GETBULK and SET, the v3 discovery probe and v3 authPriv
requests with the agent's real engine ID, boots and time). Mutations work on the BER
layout itself (`Tlv`): a message re-encoded by an encoder could not carry a wrong length.

The sender paces itself by the agent: after every `chunk` datagrams it sends one valid
v2c GET from a second socket and waits for its answer. The agent reads its socket in
order, so that answer means every datagram before it has been read: nothing is lost to a
full receive buffer, and `snmpInPkts` must have grown by exactly what was sent.
"""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator

from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import univ
from pysnmp.proto import api

SNMP_IN_PKTS = "1.3.6.1.2.1.11.1.0"
SNMP_IN_BAD_VERSIONS = "1.3.6.1.2.1.11.3.0"
SNMP_IN_BAD_COMMUNITY_NAMES = "1.3.6.1.2.1.11.4.0"
SNMP_IN_ASN_PARSE_ERRS = "1.3.6.1.2.1.11.6.0"
HAOSCAR_SNMP_AUTH_FAILURES = "1.3.6.1.4.1.32473.1.1.13.1.0"
HAOSCAR_MALFORMED_PACKETS = "1.3.6.1.4.1.32473.1.1.13.6.0"
COUNTERS = {
    "snmpInPkts": SNMP_IN_PKTS,
    "snmpInBadVersions": SNMP_IN_BAD_VERSIONS,
    "snmpInBadCommunityNames": SNMP_IN_BAD_COMMUNITY_NAMES,
    "snmpInASNParseErrs": SNMP_IN_ASN_PARSE_ERRS,
    "haoscarSnmpAuthFailures": HAOSCAR_SNMP_AUTH_FAILURES,
    "haoscarMalformedPackets": HAOSCAR_MALFORMED_PACKETS,
}

KINDS = ("random", "truncated", "bitflip", "hugelength", "badversion", "garbageusm",
         "wrongcommunity", "wrongpdu")


# -- BER layout -----------------------------------------------------------------------

@dataclass
class Tlv:
    """One BER element: its tag octet and either raw content or child elements."""

    tag: int
    content: bytes = b""
    children: list["Tlv"] | None = None

    def encode(self) -> bytes:
        body = b"".join(c.encode() for c in self.children) if self.children is not None \
            else self.content
        return bytes([self.tag]) + length_octets(len(body)) + body


def length_octets(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def parse(data: bytes) -> Tlv:
    """The element tree of a well-formed message (the seeds only). Constructed elements
    (bit 0x20 of the tag: SEQUENCE and the PDUs) are parsed down; the rest kept raw."""
    tlv, end = _parse_at(data, 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the message")
    return tlv


def _parse_at(data: bytes, pos: int) -> tuple[Tlv, int]:
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise ValueError("element runs past the end")
    if tag & 0x20:
        children = []
        while pos < end:
            child, pos = _parse_at(data, pos)
            children.append(child)
        return Tlv(tag, children=children), end
    return Tlv(tag, data[pos:end]), end


def header_offsets(data: bytes) -> list[int]:
    """Offsets of the length octet of every element of a well-formed message."""
    out: list[int] = []

    def walk(pos: int, end: int) -> None:
        while pos < end:
            tag, first = data[pos], data[pos + 1]
            out.append(pos + 1)
            n = first & 0x7F if first >= 0x80 else 0
            length = int.from_bytes(data[pos + 2:pos + 2 + n], "big") if n else first
            start = pos + 2 + n
            if tag & 0x20:
                walk(start, start + length)
            pos = start + length

    walk(0, len(data))
    return out


def integer(value: int) -> Tlv:
    return Tlv(0x02, encoder.encode(univ.Integer(value))[2:])


# -- seeds: what net-snmp's tools send -----------------------------------------------

@dataclass
class Seeds:
    """Valid datagrams by kind: 'v1', 'v2c', 'v3' (authPriv, with the agent's engine ID)
    and 'v3probe' (the discovery probe)."""

    by_kind: dict[str, list[bytes]] = field(default_factory=dict)

    def add(self, kind: str, datagram: bytes) -> None:
        self.by_kind.setdefault(kind, []).append(datagram)

    def all(self) -> list[bytes]:
        return [d for ds in self.by_kind.values() for d in ds]


def version_of(datagram: bytes) -> int:
    return int.from_bytes(parse(datagram).children[0].content, "big", signed=True)  # type: ignore[index]


class Relay:
    """A UDP relay on loopback between one tool and the agent, keeping what the tool sent."""

    def __init__(self, agent: tuple[str, int]) -> None:
        self.agent = agent
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.sent: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def port(self) -> int:
        return self.front.getsockname()[1]

    def __enter__(self) -> "Relay":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.front.close()
        self.back.close()

    def _run(self) -> None:
        import selectors
        client: tuple[str, int] | None = None
        with selectors.DefaultSelector() as sel:
            sel.register(self.front, selectors.EVENT_READ)
            sel.register(self.back, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(0.05):
                    data, addr = key.fileobj.recvfrom(65535)  # type: ignore[union-attr]
                    if key.fileobj is self.front:
                        client = addr
                        self.sent.append(data)
                        self.back.sendto(data, self.agent)
                    elif client is not None:
                        self.front.sendto(data, client)


def capture(agent: tuple[str, int], community: str, v3_args: list[str],
            run: Callable[[list[str]], None] | None = None) -> Seeds:
    """Run net-snmp's tools through a relay and keep what they sent.

    `v3_args` are the security options of a v3 user the agent knows (-u, -l, -a, -A,
    -x, -X); only reads are captured for v3, so a replayed seed never changes anything.
    A v2c SET with a read-only community is captured too: the agent must refuse it.
    """
    run = run or (lambda cmd: subprocess.run(cmd, capture_output=True, timeout=20, check=False))
    seeds = Seeds()
    sys_descr, sys_uptime = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0"
    ours, top = "1.3.6.1.4.1.32473.1.1.1.0", "1.3.6.1.4.1.32473.1"
    v2c = ["-v2c", "-c", community]
    commands = [   # (tool, options, what follows the address)
        ("snmpget", ["-v1", "-c", community], [sys_descr, ours]),
        ("snmpget", v2c, [sys_descr, sys_uptime, ours]),
        ("snmpgetnext", v2c, [top]),
        ("snmpbulkget", [*v2c, "-Cn1", "-Cr10"], [sys_uptime, top]),
        ("snmpset", v2c, ["1.3.6.1.2.1.1.6.0", "s", "fuzz"]),
        ("snmpget", ["-v3", *v3_args], [sys_descr, ours]),
        ("snmpgetnext", ["-v3", *v3_args], [top]),
        ("snmpbulkget", ["-v3", *v3_args, "-Cr20"], [top]),
    ]
    for tool, options, rest in commands:
        with Relay(agent) as relay:
            run([tool, "-M", "", "-m", "", "-t", "1", "-r", "0", "-On", *options,
                 f"127.0.0.1:{relay.port}", *rest])
            time.sleep(0.05)
        for d in relay.sent:
            v = version_of(d)
            if v == 3:
                usm = parse(parse(d).children[2].content)  # type: ignore[index]
                seeds.add("v3" if usm.children[0].content else "v3probe", d)  # type: ignore[index]
            else:
                seeds.add("v1" if v == 0 else "v2c", d)
    return seeds


# -- mutations ---------------------------------------------------------------------------

class Mutator:
    """Yields (kind, datagram) from seeds, every kind in turn, reproducibly from `seed`."""

    def __init__(self, seeds: Seeds, seed: int = 1) -> None:
        self.seeds = seeds
        self.rng = random.Random(seed)
        self.all = seeds.all()
        self.community = [d for k in ("v1", "v2c") for d in seeds.by_kind.get(k, [])]
        self.v3 = seeds.by_kind.get("v3", []) + seeds.by_kind.get("v3probe", [])
        if not self.community or not self.v3:
            raise ValueError(f"capture incomplete: {sorted(seeds.by_kind)}")

    def stream(self, count: int, kinds: tuple[str, ...] = KINDS) -> Iterator[tuple[str, bytes]]:
        makers = [getattr(self, kind) for kind in kinds]
        for n in range(count):
            maker = makers[n % len(makers)]
            yield maker.__name__, maker()

    def random(self) -> bytes:
        n = self.rng.choice((0, 1, 2, 3, 8, 40, 200, 1400, self.rng.randrange(1, 1500)))
        data = self.rng.randbytes(n)
        if n and self.rng.random() < 0.5:
            data = b"\x30" + data[1:]       # looks like a SEQUENCE: goes deeper
        return data

    def truncated(self) -> bytes:
        d = self.rng.choice(self.all)
        return d[:self.rng.randrange(0, len(d))]

    def bitflip(self) -> bytes:
        d = bytearray(self.rng.choice(self.all))
        for _ in range(self.rng.choice((1, 1, 2, 3, 8))):
            d[self.rng.randrange(len(d))] ^= 1 << self.rng.randrange(8)
        return bytes(d)

    def hugelength(self) -> bytes:
        """One element's length replaced by a huge, indefinite or over-long one."""
        d = self.rng.choice(self.all)
        at = self.rng.choice(header_offsets(d))
        old = d[at]
        skip = 1 + (old & 0x7F if old >= 0x80 else 0)
        new = self.rng.choice((b"\x84\xff\xff\xff\xff", b"\x84\x7f\xff\xff\xff", b"\x80",
                               b"\x88" + b"\xff" * 8, b"\xff", b"\x81\xff", b"\x82\xff\xff",
                               b"\x8f" + b"\x01" * 15, b"\xfe"))
        return d[:at] + new + d[at + skip:]

    def badversion(self) -> bytes:
        """A well-formed message whose version is no SNMP version (2, big, negative)."""
        tree = parse(self.rng.choice(self.all))
        v = self.rng.choice((2, 4, 100, -1, 2**31 - 1, 2**31, 2**63, -(2**70), 255))
        tree.children[0] = integer(v)  # type: ignore[index]
        return tree.encode()

    def garbageusm(self) -> bytes:
        """A v3 message whose USM parameters are random bytes or random fields."""
        tree = parse(self.rng.choice(self.v3))
        rng = self.rng
        if rng.random() < 0.3:
            params = rng.randbytes(rng.randrange(0, 120))
        else:
            usm = parse(tree.children[2].content)  # type: ignore[index]
            fields = usm.children or []
            which = rng.randrange(6)
            if which == 0:
                fields[0] = Tlv(0x04, rng.randbytes(rng.choice((0, 1, 4, 5, 32, 33, 300))))
            elif which in (1, 2):
                fields[which] = integer(rng.choice((-1, 0, 2**31 - 1, 2**31, 2**64, rng.randrange(2**31))))
            elif which == 3:
                fields[3] = Tlv(0x04, rng.randbytes(rng.choice((0, 1, 5, 32, 33, 200))))
            elif which == 4:
                fields[4] = Tlv(0x04, rng.randbytes(rng.choice((0, 11, 12, 24, 48, 100))))
            else:
                fields[5] = Tlv(0x04, rng.randbytes(rng.choice((0, 7, 8, 16, 64))))
            if rng.random() < 0.2:
                fields[rng.randrange(6)] = Tlv(rng.choice((0x02, 0x04, 0x05, 0x06, 0x30)),
                                               rng.randbytes(rng.randrange(0, 9)))
            params = usm.encode()
        tree.children[2] = Tlv(0x04, params)  # type: ignore[index]
        return tree.encode()

    def wrongpdu(self) -> bytes:
        """A v1/v2c message with the right community whose PDU is no request: an
        InformRequest, a Response, a v1 or v2 Trap, a Report, or a tag that is no PDU."""
        tree = parse(self.rng.choice(self.community))
        tree.children[2].tag = self.rng.choice((0xA6, 0xA6, 0xA2, 0xA4, 0xA7, 0xA8, 0xA9, 0xBF))  # type: ignore[index]
        return tree.encode()

    def wrongcommunity(self) -> bytes:
        tree = parse(self.rng.choice(self.community))
        name = self.rng.choice((b"", b"Public", b"public ", b"private", b"\x00" * 4,
                                self.rng.randbytes(self.rng.randrange(1, 300))))
        if name == b"public":   # never the real one
            name = b"public!"
        tree.children[1] = Tlv(0x04, name)  # type: ignore[index]
        return tree.encode()


# -- the paced sender ------------------------------------------------------------------------

def v2c_get(community: str, request_id: int, *oids: str) -> bytes:
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = p.GetRequestPDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, request_id)
    p.apiPDU.set_varbinds(pdu, [(o, p.Null("")) for o in oids])
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, community)
    p.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def v2c_values(answer: bytes) -> tuple[int, dict[str, int]]:
    """(request-id, {oid: integer value}) of a v2c response."""
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    msg, _ = decoder.decode(answer, asn1Spec=p.Message())
    pdu = p.apiMessage.get_pdu(msg)
    out = {}
    for oid, value in p.apiPDU.get_varbinds(pdu):
        try:
            out[str(oid)] = int(value)
        except (TypeError, ValueError):
            pass
    return int(p.apiPDU.get_request_id(pdu)), out


@dataclass
class FuzzRun:
    sent: Counter = field(default_factory=Counter)      # by kind
    answered: int = 0                                   # responses to fuzz datagrams
    syncs: int = 0                                      # pacing GETs sent (and answered)
    sync_lost: int = 0                                  # pacing GETs that timed out
    seconds: float = 0.0
    last_in_pkts: int = 0

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def send_paced(agent: tuple[str, int], datagrams: Iterator[tuple[str, bytes]], community: str,
               chunk: int = 64, max_seconds: float = 600.0,
               on_sync: Callable[[FuzzRun], None] | None = None) -> FuzzRun:
    """Send every datagram to `agent`, pausing after each `chunk` for a pacing GET's
    answer (of snmpInPkts). Bounded by the iterator's length and by `max_seconds`; a pacing
    GET unanswered within 2 s is counted lost and the run goes on."""
    run = FuzzRun()
    fam = socket.AF_INET6 if ":" in agent[0] else socket.AF_INET
    start = time.monotonic()
    with socket.socket(fam, socket.SOCK_DGRAM) as fuzz, socket.socket(fam, socket.SOCK_DGRAM) as sync:
        fuzz.setblocking(False)
        sync.settimeout(2.0)
        in_chunk = 0
        rid = 7_000_000
        for kind, data in datagrams:
            try:
                fuzz.sendto(data, agent)
            except OSError:  # e.g. too long for a datagram: not sent, not counted
                continue
            run.sent[kind] += 1
            in_chunk += 1
            if in_chunk < chunk:
                continue
            in_chunk = 0
            rid += 1
            _sync(sync, agent, community, rid, run)
            run.answered += _drain(fuzz)
            if on_sync:
                on_sync(run)
            if time.monotonic() - start > max_seconds:
                break
        rid += 1
        _sync(sync, agent, community, rid, run)
        run.answered += _drain(fuzz)
    run.seconds = time.monotonic() - start
    return run


def _sync(sock: socket.socket, agent: tuple[str, int], community: str, rid: int, run: FuzzRun) -> None:
    sock.sendto(v2c_get(community, rid, SNMP_IN_PKTS), agent)
    run.syncs += 1
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            answer = sock.recv(65535)
        except TimeoutError:
            break
        got, values = v2c_values(answer)
        if got == rid:
            run.last_in_pkts = values.get(SNMP_IN_PKTS, run.last_in_pkts)
            return
    run.sync_lost += 1


def _drain(sock: socket.socket) -> int:
    n = 0
    for _ in range(100_000):
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
        n += 1
    return n
