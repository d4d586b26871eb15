"""ICMP echo for the LAN poller: one socket per address family, thousands of probes a second.

The LAN poller asks, every poll interval, whether each monitored address of the cluster
answers ICMP echo. A `Prober` sends those requests from one socket per address family,
registered on the daemon's event loop: `probe(address)` hands one request to the kernel and
returns at once, and the loop's reader matches the replies to their requests by identifier
and sequence number. There is no subprocess and no socket per probe, so 2,000 targets a
second cost one `sendto` and one `recvfrom` each.

Sockets. An unprivileged ICMP datagram socket is preferred (the kernel sets the identifier
to the socket's port, delivers only the replies to that identifier, and reports ICMP
errors through the error queue). It needs the daemon's group in net.ipv4.ping_group_range;
where that is not so, a raw socket is used. A raw socket sees every ICMP packet of the host,
so the kernel is told to drop what is not ours: a type filter (echo replies and the errors
that can be about an echo request) and a small classic BPF program that keeps only echo
replies carrying our identifier. Each request also carries a random token of this prober,
and a reply must carry it back, so another program's pings with the same identifier are
never taken for ours.

Matching. Sequence numbers count up per socket and wrap at 16 bits; the slot of each
sequence number remembers which target the request went to and when. A reply is ours when
its identifier, token and sequence number match and it comes from the address the request
went to. Each request is answered once: a duplicate is counted and dropped. A reply to a
request that is no longer the target's newest, or that comes after `timeout`, is late: it
counts as received (the target is alive) but gives no round-trip time, so `last_rtt` is
always the time of a request the target answered in time. A reply older than one turn of
the sequence numbers (65,536 probes) can no longer be told from a new one; at 2,000 probes
a second that is 32 seconds.

Failures never raise out of the loop: a `sendto` that fails (no route, an nftables drop,
a full buffer) and an ICMP error about one of our requests (host unreachable after a failed
neighbour lookup, a prohibited route) count against the target with a short reason.
Packets that cannot be parsed, or are not ours, are counted on the prober and dropped.

`Sweep` probes a list of targets once per interval, spread evenly across it in batches
of at most BATCH (one `loop.call_at` callback each), so 2,000 targets do not leave in one
burst that holds the event loop and queues 2,000 replies at once.

Times come from the injected clock's monotonic reading. A round-trip time includes how long
the reply waited for the loop to read it: it is an upper bound.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import ipaddress
import logging
import math
import os
import socket
import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import Clock, SystemClock

log = logging.getLogger(__name__)

SEQUENCES = 1 << 16       # sequence numbers wrap here
RECV_SIZE = 2048          # an echo reply is under 100 bytes; an ICMP error quotes at most 576
READ_BUDGET = 32          # packets read per reader callback (~20 us each), so a flood cannot hold the loop
RECV_BUFFER = 1 << 20     # the kernel doubles it: a second of replies at 2,000 targets
TOKEN_SIZE = 8
MARK = b"haoscar-"        # shows up in a packet capture

# Socket options the socket module does not name.
SOL_RAW = 255
ICMP_FILTER = 1           # IPv4 raw: a bit mask of ICMP types to block
ICMP6_FILTER = 1          # IPv6 raw: eight 32-bit words, a set bit blocks that type
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
IP_RECVERR = 11
IPV6_RECVERR = 25

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
# The ICMP errors that may be about an echo request we sent, and how to say them.
ERRORS = {
    4: {3: "unreachable", 11: "TTL exceeded", 12: "parameter problem"},
    6: {1: "unreachable", 2: "packet too big", 3: "hop limit exceeded", 4: "parameter problem"},
}
UNREACHABLE = {
    4: {0: "network unreachable", 1: "host unreachable", 9: "network prohibited",
        10: "host prohibited", 13: "administratively prohibited"},
    6: {0: "no route", 1: "administratively prohibited", 3: "address unreachable"},
}
UNREACHABLE_TYPE = {4: 3, 6: 1}

_HEADER = struct.Struct("!BBHHH")           # type, code, checksum, identifier, sequence
_IDENT_SEQ = struct.Struct("!HH")
_EXTENDED_ERR = struct.Struct("=IBBBBII")   # struct sock_extended_err


def ones_sum(data: bytes) -> int:
    """The one's complement sum of `data` taken as big-endian 16-bit words, folded to 16 bits.

    2**16 is 1 modulo 0xFFFF, so the words' sum and the whole data read as one big number
    leave the same remainder: one C-speed division instead of a loop. A non-zero multiple
    of 0xFFFF sums to 0xFFFF (one's complement has two zeros; a sum of words that are not
    all zero is never +0)."""
    if len(data) % 2:
        data += b"\0"
    number = int.from_bytes(data, "big")
    rest = number % 0xFFFF
    return 0xFFFF if rest == 0 and number else rest


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`; 0 when `data` holds a correct one."""
    return ~ones_sum(data) & 0xFFFF


def fold(total: int) -> int:
    """A one's complement sum of 16-bit values folded to 16 bits."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


class Parsed(NamedTuple):
    """An ICMP packet that may be ours: an echo reply, or an error about an echo request."""

    ident: int
    seq: int
    payload: bytes      # a reply's payload; for an error, what it quotes of our request's
    error: str = ""     # empty for a reply
    about: str = ""     # an error: the destination of the request it is about


def error_text(version: int, kind: int, code: int) -> str:
    if kind == UNREACHABLE_TYPE[version]:
        return UNREACHABLE[version].get(code, f"unreachable (code {code})")
    return ERRORS[version].get(kind, f"ICMP type {kind} code {code}")


NOT_ECHO = Parsed(-1, 0, b"")    # well formed, but no echo of anybody's: another type, or an
                                # error about another protocol's packet


def parse(version: int, data: bytes, ip_header: bool) -> Parsed | None:
    """An echo reply or an ICMP error quoting an echo request, from what the socket read.

    `ip_header`: the data starts with the IPv4 header (raw IPv4 sockets); its checksum is
    then checked here, since the kernel hands raw sockets the packet before checking it.
    NOT_ECHO for other well-formed ICMP; None for what cannot be parsed (too short, a bad
    checksum, an error that quotes too little)."""
    start = (data[0] & 0x0F) * 4 if ip_header and data else 0
    if len(data) < start + 8 or (ip_header and checksum(data[start:]) != 0):
        return None
    kind, code = data[start], data[start + 1]
    if kind == ECHO_REPLY[version]:
        ident, seq = _IDENT_SEQ.unpack_from(data, start + 4)
        return Parsed(ident, seq, data[start + 8:])
    if kind not in ERRORS[version]:
        return NOT_ECHO
    inner = start + 8
    if version == 4:
        if len(data) < inner + 20:
            return None
        if data[inner + 9] != socket.IPPROTO_ICMP:
            return NOT_ECHO
        about = socket.inet_ntop(socket.AF_INET, data[inner + 16: inner + 20])
        quoted = inner + (data[inner] & 0x0F) * 4
    else:
        if len(data) < inner + 40:
            return None
        if data[inner + 6] != socket.IPPROTO_ICMPV6:
            return NOT_ECHO
        about = socket.inet_ntop(socket.AF_INET6, data[inner + 24: inner + 40])
        quoted = inner + 40
    if len(data) < quoted + 8:
        return None
    if data[quoted] != ECHO_REQUEST[version]:
        return NOT_ECHO
    ident, seq = _IDENT_SEQ.unpack_from(data, quoted + 4)
    return Parsed(ident, seq, data[quoted + 8:], error_text(version, kind, code), about)


def parse_queued_error(version: int, data: bytes, ancillary: list[tuple[int, int, bytes]],
                       destination: str) -> tuple[Parsed, str] | None:
    """An ICMP error from a datagram socket's error queue, and who sent it: the kernel gives
    back our request (`data`), its destination, and the error in a `sock_extended_err` with
    the sender's address after it. None for what is not an ICMP error about an echo request."""
    if len(data) < 8 or data[0] != ECHO_REQUEST[version]:
        return None
    for _level, _kind, value in ancillary:
        if len(value) < _EXTENDED_ERR.size:
            continue
        _errno, origin, kind, code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(value)
        if origin not in (2, 3):            # SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6
            continue
        ident, seq = _IDENT_SEQ.unpack_from(data, 4)
        return (Parsed(ident, seq, data[8:], error_text(version, kind, code), destination),
                offender(version, value[_EXTENDED_ERR.size:]))
    return None


def offender(version: int, sockaddr: bytes) -> str:
    """The address in the sockaddr that follows a `sock_extended_err`, or ''."""
    if version == 4 and len(sockaddr) >= 8:
        return socket.inet_ntop(socket.AF_INET, sockaddr[4:8])
    if version == 6 and len(sockaddr) >= 24:
        return socket.inet_ntop(socket.AF_INET6, sockaddr[8:24])
    return ""


def type_filter(version: int) -> bytes:
    """The raw socket's type filter: block every type but echo reply and our errors."""
    allowed = [ECHO_REPLY[version], *ERRORS[version]]
    if version == 4:
        return struct.pack("=I", ~sum(1 << t for t in allowed) & 0xFFFFFFFF)
    words = [0xFFFFFFFF] * 8
    for t in allowed:
        words[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


def ident_filter(version: int, ident: int) -> bytes:
    """A classic BPF program for a raw socket: an echo reply passes only with our identifier;
    the ICMP errors the type filter lets through pass (they are few, and checked here)."""
    insn = struct.Struct("=HBBI")           # struct sock_filter: code, jt, jf, k
    accept, drop = insn.pack(0x06, 0, 0, 0xFFFF), insn.pack(0x06, 0, 0, 0)
    if version == 4:                        # IPv4 raw sockets see the IP header first
        head = [insn.pack(0xB1, 0, 0, 0),           # X = IP header length
                insn.pack(0x50, 0, 0, 0)]           # A = ICMP type
        ident_at = 0x48                             # A = half-word at X + k
    else:                                   # IPv6 raw sockets see the ICMPv6 header first
        head = [insn.pack(0x30, 0, 0, 0)]           # A = ICMPv6 type
        ident_at = 0x28                             # A = half-word at k
    return b"".join([*head,
                     insn.pack(0x15, 0, 2, ECHO_REPLY[version]),   # a reply? else accept
                     insn.pack(ident_at, 0, 0, 4),                 # A = identifier
                     insn.pack(0x15, 0, 1, ident),                 # ours? accept : drop
                     accept, drop])


def attach_filter(sock: socket.socket, program: bytes) -> None:
    """SO_ATTACH_FILTER: the kernel copies the program, so the buffer may go afterwards."""
    buffer = ctypes.create_string_buffer(program, len(program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                    struct.pack("HP", len(program) // 8, ctypes.addressof(buffer)))


def open_socket(version: int) -> tuple[socket.socket, bool]:
    """An ICMP socket for one address family and whether it is raw: the datagram kind if
    ping_group_range allows it, else raw (needs CAP_NET_RAW). Raises OSError if neither."""
    family, proto = ((socket.AF_INET, socket.IPPROTO_ICMP) if version == 4
                     else (socket.AF_INET6, socket.IPPROTO_ICMPV6))
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        return socket.socket(family, socket.SOCK_RAW, proto), True


Opener = Callable[[int], tuple[socket.socket, bool]]   # IP version -> (socket, is raw)


class _Target:
    """One address's counters; only the prober writes them."""

    __slots__ = ("address", "version", "sockaddr", "text", "sent", "received", "late", "errors",
                 "last_error", "last_sent", "last_reply", "last_rtt", "newest", "waiting_since")

    def __init__(self, address: str) -> None:
        ip = ipaddress.ip_address(address)
        self.address = address
        self.version = ip.version
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        self.text = socket.inet_ntop(family, ip.packed)    # as recvfrom names the source
        self.sockaddr: tuple[Any, ...]
        if "%" in address:      # a link-local address with its interface: the kernel needs the index
            self.sockaddr = socket.getaddrinfo(address, 0, family, socket.SOCK_DGRAM, 0,
                                               socket.AI_NUMERICHOST)[0][4]
        else:
            self.sockaddr = (self.text, 0) if ip.version == 4 else (self.text, 0, 0, 0)
        self.sent = self.received = self.late = self.errors = 0
        self.last_error = ""
        self.last_sent: float | None = None
        self.last_reply: float | None = None
        self.last_rtt: float | None = None
        self.newest = -1                # sequence number of the newest request; -1: its send failed
        self.waiting_since: float | None = None


@dataclass(frozen=True)
class TargetStats:
    """What the prober knows of one address, as of one moment."""

    address: str
    sent: int                   # requests the kernel took
    received: int               # requests answered, late ones included
    late: int                   # answered after `timeout`, or after a newer request went
    errors: int                 # failed sends and ICMP errors about our requests
    last_error: str
    last_sent: float | None     # monotonic seconds
    last_reply: float | None
    last_rtt: float | None      # seconds, of the newest request answered in time
    waiting_since: float | None  # owes a reply: the first request since it last answered


@dataclass(frozen=True)
class ProberCounters:
    """What the prober dropped, over its lifetime."""

    malformed: int      # could not be parsed: too short, a bad checksum, a cut-off quote
    foreign: int        # well formed but not ours: other ICMP, or another identifier, token,
                        # sequence number or source
    duplicates: int     # a second reply to an answered request
    send_errors: int
    socket_errors: int  # errors reading the sockets


class _Channel:
    """One socket of one address family, its identifier and its sequence space."""

    def __init__(self, version: int, sock: socket.socket, raw: bool, token: bytes) -> None:
        self.version = version
        self.sock = sock
        self.raw = raw
        self.payload = MARK + token
        # The slots of the sequence numbers: which target each request went to, when, and
        # whether it was answered. Flat arrays, not an object per request: 65,536 live
        # objects would make every full garbage collection walk them, holding the loop.
        self.seq = 0
        self.owner: list[_Target | None] = [None] * SEQUENCES
        self.sent_at = array("d", bytes(8 * SEQUENCES))
        self.answered = bytearray(SEQUENCES)
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECV_BUFFER)
        except OSError:             # without CAP_NET_ADMIN: as much as rmem_max allows
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        if raw:
            self.ident = int.from_bytes(os.urandom(2), "big")
            level = SOL_RAW if version == 4 else socket.IPPROTO_ICMPV6
            sock.setsockopt(level, ICMP_FILTER if version == 4 else ICMP6_FILTER, type_filter(version))
            attach_filter(sock, ident_filter(version, self.ident))
        else:                       # the kernel picks the identifier when the socket binds
            if version == 4:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                sock.bind(("0.0.0.0", 0))
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
                sock.bind(("::", 0))
            self.ident = sock.getsockname()[1]
        # The checksum of a request changes only with its sequence number: sum the rest once.
        self._base = ones_sum(_HEADER.pack(ECHO_REQUEST[version], 0, 0, self.ident, 0) + self.payload)

    def request(self, seq: int) -> bytes:
        """The echo request with sequence number `seq`, checksum included (IPv6 raw and
        datagram sockets have theirs computed by the kernel, which overwrites it)."""
        return _HEADER.pack(ECHO_REQUEST[self.version], 0, ~fold(self._base + seq) & 0xFFFF,
                            self.ident, seq) + self.payload


def reason(exc: OSError) -> str:
    """A failed send in a few words: 'no route to host', 'operation not permitted'."""
    return (os.strerror(exc.errno) if exc.errno else str(exc)).lower()


class Prober:
    """ICMP echo to any number of addresses from one socket per address family.

    `probe(address)` sends one request and never waits; `stats(address)` is what came of
    them so far. Only the prober writes its counters; readers get frozen snapshots.
    """

    def __init__(self, timeout: float = 1.0, clock: Clock | None = None,
                 opener: Opener = open_socket) -> None:
        self.timeout = timeout
        self.unavailable: dict[int, str] = {}   # IP version -> why it has no socket
        self._clock = clock or SystemClock()
        self._opener = opener
        self._token = os.urandom(TOKEN_SIZE)
        self._channels: dict[int, _Channel] = {}
        self._targets: dict[str, _Target] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._malformed = self._foreign = self._duplicates = 0
        self._send_errors = self._socket_errors = 0

    # -- life cycle --------------------------------------------------------------------

    async def open(self) -> None:
        """Open a socket per address family on the running loop. A family that cannot have
        one is noted in `unavailable` (its probes count as errors); if neither can, raise."""
        loop = asyncio.get_running_loop()
        self.close()
        self.unavailable.clear()
        for version in (4, 6):
            try:
                sock, raw = self._opener(version)
            except OSError as exc:
                self.unavailable[version] = f"no IPv{version} ICMP socket: {reason(exc)}"
                continue
            try:
                channel = _Channel(version, sock, raw, self._token)
            except OSError as exc:
                sock.close()
                self.unavailable[version] = f"IPv{version} ICMP socket unusable: {reason(exc)}"
                continue
            loop.add_reader(sock.fileno(), self._readable, channel)
            self._channels[version] = channel
        self._loop = loop
        if not self._channels:
            raise OSError(errno.EPERM, "; ".join(self.unavailable.values()))

    async def ensure_open(self) -> None:
        """Open the sockets unless they are open: the LAN poller and the public-reach job
        share one prober, whichever needs it first opens it. Raises as `open` does."""
        if not self._channels:
            await self.open()

    def close(self) -> None:
        """Stop reading and close the sockets; the counters stay readable."""
        for channel in self._channels.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(channel.sock.fileno())
            channel.sock.close()
        self._channels.clear()
        for version in (4, 6):
            self.unavailable.setdefault(version, "the prober is closed")

    def describe(self) -> str:
        """One sentence for the log: which sockets, which identifiers."""
        parts = [f"IPv{c.version} {'raw' if c.raw else 'datagram'} socket, identifier {c.ident}"
                 for c in self._channels.values()]
        return "; ".join(parts + [self.unavailable[v] for v in sorted(self.unavailable)])

    # -- sending -----------------------------------------------------------------------

    def probe(self, address: str) -> None:
        """Send one echo request to `address` (an IPv4 or IPv6 address; raises ValueError
        for anything else). Returns at once; a failure counts against the target."""
        target = self._targets.get(address)
        if target is None:
            target = self._targets[address] = _Target(address)
        channel = self._channels.get(target.version)
        now = self._clock.monotonic()
        if target.waiting_since is None:
            target.waiting_since = now
        if channel is None:
            self._failed(target, self.unavailable.get(target.version, "the prober is not open"))
            return
        seq = channel.seq
        channel.seq = (seq + 1) & 0xFFFF
        try:
            channel.sock.sendto(channel.request(seq), target.sockaddr)
        except OSError as exc:
            self._send_errors += 1
            self._failed(target, f"send: {reason(exc)}")
            return
        channel.owner[seq] = target
        channel.sent_at[seq] = now
        channel.answered[seq] = 0
        target.sent += 1
        target.last_sent = now
        target.newest = seq

    def _failed(self, target: _Target, why: str) -> None:
        """A request that never left: an error, and the target owes a reply as if the
        request had been lost."""
        target.errors += 1
        target.last_error = why
        target.newest = -1

    # -- receiving ---------------------------------------------------------------------

    def _readable(self, channel: _Channel) -> None:
        try:
            self._read(channel)
        except Exception:
            log.exception("the ICMP reader failed; %s", BUG_MARKER)

    def _read(self, channel: _Channel) -> None:
        """Read what the socket holds, at most READ_BUDGET packets (the loop calls again
        while more is there). A datagram socket reports an ICMP error about one of our
        requests by failing one read; the error itself waits in the error queue."""
        read, errors_queued = 0, False
        ip_header = channel.raw and channel.version == 4
        for _ in range(READ_BUDGET):
            try:
                data, source = channel.sock.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                if channel.raw:
                    self._socket_errors += 1
                    break
                errors_queued = True
                continue
            read += 1
            parsed = parse(channel.version, data, ip_header)
            if parsed is None:
                self._malformed += 1
            else:
                self._match(channel, parsed, source[0])
        if not channel.raw and (errors_queued or read == 0):
            self._read_error_queue(channel)

    def _read_error_queue(self, channel: _Channel) -> None:
        for _ in range(READ_BUDGET):
            try:
                data, ancillary, _flags, address = channel.sock.recvmsg(RECV_SIZE, 512,
                                                                        socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._socket_errors += 1
                return
            found = parse_queued_error(channel.version, data, ancillary, address[0] if address else "")
            if found is None:
                self._malformed += 1
            else:
                self._match(channel, *found)

    def _match(self, channel: _Channel, parsed: Parsed, source: str) -> None:
        """Credit a reply or an error to the request it answers; `source` is who sent it."""
        seq = parsed.seq
        target = channel.owner[seq]
        if (target is None or parsed.ident != channel.ident
                or self._targets.get(target.address) is not target):
            self._foreign += 1          # not ours, or for an address forgotten since
            return
        if parsed.error:
            # An error quotes as much of our request as the sender chose to: often all of
            # it, sometimes only the ICMP header.
            if parsed.about != target.text or not channel.payload.startswith(parsed.payload):
                self._foreign += 1
                return
            target.errors += 1
            target.last_error = f"{parsed.error} from {source}" if source else parsed.error
            return
        if parsed.payload != channel.payload or (
                source != target.text and source.partition("%")[0] != target.text):
            self._foreign += 1
            return
        if channel.answered[seq]:
            self._duplicates += 1
            return
        channel.answered[seq] = 1
        now = self._clock.monotonic()
        target.received += 1
        target.last_reply = now
        rtt = now - channel.sent_at[seq]
        if seq == target.newest:
            target.waiting_since = None
            if rtt <= self.timeout:
                target.last_rtt = rtt
                return
        elif target.waiting_since is not None and target.last_sent is not None:
            # Alive, but the newer requests are still owed; the newest is the one known.
            target.waiting_since = max(target.waiting_since, target.last_sent)
        target.late += 1

    # -- reading the results ---------------------------------------------------------------

    def stats(self, address: str) -> TargetStats | None:
        """What came of the probes of `address`; None if it was never probed."""
        t = self._targets.get(address)
        if t is None:
            return None
        return TargetStats(t.address, t.sent, t.received, t.late, t.errors, t.last_error,
                           t.last_sent, t.last_reply, t.last_rtt, t.waiting_since)

    def forget(self, address: str) -> None:
        """Drop an address's counters (it is no longer monitored); replies still on their
        way are then foreign."""
        self._targets.pop(address, None)

    @property
    def counters(self) -> ProberCounters:
        return ProberCounters(self._malformed, self._foreign, self._duplicates,
                              self._send_errors, self._socket_errors)


class Probe(Protocol):
    """What a sweep needs of a prober."""

    def probe(self, address: str) -> None: ...


BATCH = 10      # probes per callback: a send costs 5 to 40 us, so a batch stays well under 1 ms


def batches(count: int) -> int:
    """How many callbacks one interval's `count` probes are spread over: as few as keep
    each at BATCH probes or fewer (every wake-up of the loop costs, too)."""
    return max(1, math.ceil(count / BATCH))


class Sweep:
    """Probe every target once per interval, spread evenly across it.

    Batch k of a cycle is due at cycle start + k * interval / batches, on the loop's
    monotonic clock; each batch is one callback. A loop that runs late sends the batches
    that are due one per callback, not all at once; one that fell a whole interval behind
    starts the next cycle afresh (counted in `restarts`) instead of catching up in a burst.
    A new list of targets takes effect at the next cycle.
    """

    def __init__(self, prober: Probe, interval: float, targets: Sequence[str] = ()) -> None:
        if interval <= 0:
            raise ValueError("a sweep needs a positive interval")
        self.prober = prober
        self.interval = interval
        self.cycles = 0
        self.restarts = 0
        self._targets = list(targets)
        self._next: list[str] | None = None
        self._batches = batches(len(self._targets))
        self._index = 0
        self._start = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def set_targets(self, targets: Sequence[str]) -> None:
        self._next = list(targets)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._index = 0
        self._handle = self._loop.call_at(self._start, self._run)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        assert self._loop is not None
        count = len(self._targets)
        first = self._index * count // self._batches
        last = (self._index + 1) * count // self._batches
        for address in self._targets[first:last]:
            try:
                self.prober.probe(address)
            except Exception:       # one address's trouble is not the others'
                log.exception("the ICMP sweep failed on %s; %s", address, BUG_MARKER)
        self._index += 1
        if self._index >= self._batches:
            self._next_cycle(self._loop.time())
        self._handle = self._loop.call_at(
            self._start + self._index * self.interval / self._batches, self._run)

    def _next_cycle(self, now: float) -> None:
        self.cycles += 1
        self._index = 0
        self._start += self.interval
        if self._next is not None:
            self._targets, self._next = self._next, None
            self._batches = batches(len(self._targets))
        if now - self._start > self.interval:
            self._start = now
            self.restarts += 1
