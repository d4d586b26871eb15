"""ICMP echo packets, made and read: checksums, replies, errors quoting a request. Pure code.

What comes in is checked here, not trusted: `parse` takes what an ICMP socket read (with
the IPv4 header in front for a raw IPv4 socket, whose checksum is then verified here,
since the kernel hands raw sockets the packet before checking it) and returns an echo
reply, an ICMP error about an echo request, NOT_ECHO for other well-formed ICMP, or None
for what cannot be parsed. `parse_queued_error` does the same for what a datagram socket's
error queue holds. The prober (fault/lan/icmp.py) decides whether a parsed packet is its own.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

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

HEADER = struct.Struct("!BBHHH")            # type, code, checksum, identifier, sequence
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
