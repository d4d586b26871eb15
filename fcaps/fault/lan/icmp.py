"""ICMP echo for the LAN poller: one socket per address family, thousands of probes a second.

The LAN poller asks, every poll interval, whether each monitored address of the cluster
answers ICMP echo. A `Prober` sends those requests from one socket per address family,
registered on the daemon's event loop: `probe(address)` hands one request to the kernel and
returns at once, and the loop's reader matches the replies to their requests by identifier
and sequence number. There is no subprocess and no socket per probe, so 2,000 targets a
second cost one `sendto` and one `recvfrom` each.

The sockets (datagram or raw, their filters, identifiers and sequence spaces) are in
fault/lan/icmpsocket.py; making and reading the packets, in fault/lan/icmppacket.py; the
`Sweep` that spreads a list of targets over each poll interval, in fault/lan/sweep.py.

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

Times come from the injected clock's monotonic reading. A round-trip time includes how long
the reply waited for the loop to read it: it is an upper bound.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import Clock, SystemClock

from .icmppacket import Parsed, parse, parse_queued_error
from .icmpsocket import Channel, Opener, open_socket, reason

log = logging.getLogger(__name__)

RECV_SIZE = 2048          # an echo reply is under 100 bytes; an ICMP error quotes at most 576
READ_BUDGET = 32          # packets read per reader callback (~20 us each), so a flood cannot hold the loop
TOKEN_SIZE = 8


class Target:
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
        self._channels: dict[int, Channel] = {}
        self._targets: dict[str, Target] = {}
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
                channel = Channel(version, sock, raw, self._token)
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
            target = self._targets[address] = Target(address)
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

    def _failed(self, target: Target, why: str) -> None:
        """A request that never left: an error, and the target owes a reply as if the
        request had been lost."""
        target.errors += 1
        target.last_error = why
        target.newest = -1

    # -- receiving ---------------------------------------------------------------------

    def _readable(self, channel: Channel) -> None:
        try:
            self._read(channel)
        except Exception:
            log.exception("the ICMP reader failed; %s", BUG_MARKER)

    def _read(self, channel: Channel) -> None:
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

    def _read_error_queue(self, channel: Channel) -> None:
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

    def _match(self, channel: Channel, parsed: Parsed, source: str) -> None:
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
