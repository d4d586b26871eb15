"""The ICMP sockets of the prober: one per address family, opened, filtered and numbered.

An unprivileged ICMP datagram socket is preferred (the kernel sets the identifier to the
socket's port, delivers only the replies to that identifier, and reports ICMP errors
through the error queue). It needs the daemon's group in net.ipv4.ping_group_range;
where that is not so, a raw socket is used. A raw socket sees every ICMP packet of the
host, so the kernel is told to drop what is not ours: a type filter (echo replies and the
errors that can be about an echo request) and a small classic BPF program that keeps only
echo replies carrying our identifier. Each request also carries a random token of the
prober, and a reply must carry it back, so another program's pings with the same
identifier are never taken for ours.

A `Channel` is one such socket with its identifier and its sequence space: sequence
numbers count up per socket and wrap at 16 bits, and the slot of each one remembers
which target the request went to, when, and whether it was answered.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING

from .icmppacket import ECHO_REPLY, ECHO_REQUEST, ERRORS, HEADER, fold, ones_sum

if TYPE_CHECKING:
    from .icmp import Target

SEQUENCES = 1 << 16       # sequence numbers wrap here
RECV_BUFFER = 1 << 20     # the kernel doubles it: a second of replies at 2,000 targets
MARK = b"haoscar-"        # shows up in a packet capture

# Socket options the socket module does not name.
SOL_RAW = 255
ICMP_FILTER = 1           # IPv4 raw: a bit mask of ICMP types to block
ICMP6_FILTER = 1          # IPv6 raw: eight 32-bit words, a set bit blocks that type
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
IP_RECVERR = 11
IPV6_RECVERR = 25


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


class Channel:
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
        self.owner: list[Target | None] = [None] * SEQUENCES
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
        self._base = ones_sum(HEADER.pack(ECHO_REQUEST[version], 0, 0, self.ident, 0) + self.payload)

    def request(self, seq: int) -> bytes:
        """The echo request with sequence number `seq`, checksum included (IPv6 raw and
        datagram sockets have theirs computed by the kernel, which overwrites it)."""
        return HEADER.pack(ECHO_REQUEST[self.version], 0, ~fold(self._base + seq) & 0xFFFF,
                           self.ident, seq) + self.payload


def reason(exc: OSError) -> str:
    """A failed send in a few words: 'no route to host', 'operation not permitted'."""
    return (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
