"""A small BER codec for exactly what SNMP reads need (X.690 definite-length form).

Encoding: INTEGER, OCTET STRING, NULL, OBJECT IDENTIFIER, SEQUENCE, the SMI application
types (IpAddress, Counter32, Gauge32/Unsigned32, TimeTicks, Opaque, Counter64), the three
SNMPv2 exceptions, and any PDU tag through `tlv`. Lengths are always minimal, as pyasn1
writes them. OBJECT IDENTIFIER contents are cached per OID prefix (`OidCache`).

Decoding is strict: definite lengths only, no length running past its container, no
non-minimal sub-identifier. Anything else raises `BerError`; the caller then hands the
datagram to pysnmp unchanged, which decides (and counts) as it always did.
"""

from __future__ import annotations

from typing import Iterable

OID = tuple[int, ...]

INTEGER, OCTET_STRING, NULL_TAG, OBJECT_ID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GETNEXT, RESPONSE, SET, GETBULK = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5

NULL = b"\x05\x00"
EXC_NO_SUCH_OBJECT = b"\x80\x00"
EXC_NO_SUCH_INSTANCE = b"\x81\x00"
EXC_END_OF_MIB_VIEW = b"\x82\x00"

MAX_ARC = 0xFFFFFFFF      # SMI sub-identifiers are 32-bit unsigned
MAX_ARCS = 128            # SMI: at most 128 sub-identifiers


class BerError(ValueError):
    """The bytes are not the BER this codec reads."""


# -- encoding ------------------------------------------------------------------------

SHORT_LENGTHS = [bytes([n]) for n in range(0x80)]


def length(n: int) -> bytes:
    """The length octets of `n` contents octets (short form below 128)."""
    if n < 0x80:
        return SHORT_LENGTHS[n]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    return bytes([tag]) + length(n) + body


def integer_body(value: int) -> bytes:
    """Two's complement contents octets of a signed INTEGER, minimal."""
    return value.to_bytes((value + (value < 0)).bit_length() // 8 + 1, "big", signed=True)


def unsigned_body(value: int) -> bytes:
    """Contents octets of a non-negative value (Counter32, Gauge32, TimeTicks, Counter64)."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


_SMALL_INTS = {v: tlv(INTEGER, integer_body(v)) for v in range(-1, 256)}


def integer(value: int) -> bytes:
    """An INTEGER TLV (the small ones cached)."""
    cached = _SMALL_INTS.get(value)
    return cached if cached is not None else tlv(INTEGER, integer_body(value))


def unsigned(value: int, tag: int) -> bytes:
    """A TLV of an unsigned application type (Counter32, Gauge32, TimeTicks, Counter64)."""
    if 0 <= value < 0x80:
        return bytes((tag, 1, value))
    if value < 0:
        raise BerError("negative value for an unsigned type")
    return tlv(tag, unsigned_body(value))


def octets(value: bytes, tag: int = OCTET_STRING) -> bytes:
    return tlv(tag, value)


def _arc(arc: int) -> bytes:
    if arc < 0x80:
        return SHORT_LENGTHS[arc]
    out = [arc & 0x7F]
    arc >>= 7
    while arc:
        out.append(0x80 | (arc & 0x7F))
        arc >>= 7
    return bytes(reversed(out))


def oid_body(arcs: Iterable[int]) -> bytes:
    """Contents octets of an OBJECT IDENTIFIER (at least two arcs, the first 0..2)."""
    arcs = tuple(arcs)
    if len(arcs) < 2 or not 0 <= arcs[0] <= 2 or (arcs[0] < 2 and not 0 <= arcs[1] < 40):
        raise BerError(f"not an encodable OBJECT IDENTIFIER: {arcs}")
    return _arc(arcs[0] * 40 + arcs[1]) + arcs_body(arcs[2:])


def arcs_body(arcs: Iterable[int]) -> bytes:
    """Contents octets of sub-identifiers after the first two (a suffix of an OID)."""
    arcs = tuple(arcs)
    if not arcs or max(arcs) < 0x80:
        if arcs and min(arcs) < 0:
            raise BerError("negative sub-identifier")
        return bytes(arcs)
    return b"".join(_arc(a) for a in arcs)


def oid(arcs: Iterable[int]) -> bytes:
    return tlv(OBJECT_ID, oid_body(arcs))


class OidCache:
    """Contents octets of OIDs, the prefixes (MIB objects' OIDs) kept once encoded."""

    def __init__(self, limit: int = 4096) -> None:
        self._prefixes: dict[OID, bytes] = {}
        self._limit = limit

    def prefix(self, arcs: OID) -> bytes:
        body = self._prefixes.get(arcs)
        if body is None:
            body = oid_body(arcs)
            if len(self._prefixes) < self._limit:
                self._prefixes[arcs] = body
        return body

    def tlv(self, prefix: OID, suffix: OID) -> bytes:
        """The OBJECT IDENTIFIER TLV of prefix + suffix, the prefix's octets from the cache."""
        return tlv(OBJECT_ID, self.prefix(prefix) + arcs_body(suffix))


# -- decoding ------------------------------------------------------------------------

def header(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at `pos`, checked against
    `end`. Single-octet tags only (SNMP uses no other)."""
    if pos + 2 > end:
        raise BerError("truncated header")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise BerError("multi-octet tag")
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > end:
            raise BerError("indefinite, oversized or truncated length")
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise BerError("length runs past its container")
    return tag, pos, pos + n


def read_integer(buf: bytes, start: int, stop: int) -> int:
    """A signed INTEGER. A redundant leading octet is accepted: pyasn1 writes -128 as
    ff 80, and pysnmp managers send what pyasn1 writes."""
    if start == stop:
        raise BerError("empty INTEGER")
    return int.from_bytes(buf[start:stop], "big", signed=True)


def read_oid(buf: bytes, start: int, stop: int) -> OID:
    if start == stop:
        raise BerError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    val = 0
    first = True
    for b in buf[start:stop]:
        if first and b == 0x80:
            raise BerError("non-minimal sub-identifier")
        val = (val << 7) | (b & 0x7F)
        if b & 0x80:
            first = False
            continue
        arcs.append(val)
        val = 0
        first = True
    if not first:
        raise BerError("OBJECT IDENTIFIER ends inside a sub-identifier")
    head = arcs[0]
    out = (head // 40, head % 40) if head < 80 else (2, head - 80)
    result = (*out, *arcs[1:])
    if len(result) > MAX_ARCS or max(result) > MAX_ARC:
        raise BerError("OBJECT IDENTIFIER outside the SMI's limits")
    return result
