"""Decoding a community-based read request, as far as a read needs and no further.

`decode_read` takes a whole datagram and returns a `ReadRequest` for an SNMPv1 GET or
GETNEXT, or an SNMPv2c GET, GETNEXT or GETBULK, whose every var-bind value is NULL, whose
fields pysnmp's own decoder would also accept. For anything else it returns None and the
datagram goes to pysnmp unchanged: SET, notifications, responses, SNMPv3, other versions,
and anything malformed (pysnmp then counts it where it always did: snmpInASNParseErrs,
snmpInBadVersions...). The first octets decide most of it: a datagram whose version or
PDU tag is not one of ours costs a few octet comparisons.

`decode_pdu` reads the PDU alone, for the SNMPv3 path (`usm.py`), which decodes the
message around it.

One exception to "pysnmp's decoder would accept it": a negative non-repeaters or
max-repetitions, which pysnmp refuses as malformed, is served with the value 0 (RFC 3416
4.2.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from . import ber

V1, V2C = 0, 1
READ_TAGS = {V1: (ber.GET, ber.GETNEXT), V2C: (ber.GET, ber.GETNEXT, ber.GETBULK)}
_INT32 = (-(1 << 31), (1 << 31) - 1)


@dataclass
class ReadRequest:
    version: int
    community: bytes
    tag: int
    request_id: int
    non_repeaters: int       # error-status of GET/GETNEXT
    max_repetitions: int     # error-index of GET/GETNEXT
    names: list[ber.OID]
    name_tlvs: list[bytes]   # each name's OBJECT IDENTIFIER TLV as it came
    envelope: Envelope | None = None    # SNMPv3: what wraps the response PDU (usm.py)


class Envelope(Protocol):
    """The message around a response PDU, for a request that is not community-based."""

    limit: int      # the longest response message the request allows

    def size(self, pdu: int) -> int:
        """The length of the message that carries a PDU TLV of `pdu` octets."""

    def seal(self, pdu: bytes) -> bytes:
        """The message that carries the PDU TLV `pdu`."""


def decode_read(buf: bytes) -> ReadRequest | None:
    """The read request in `buf`, or None if it is not one the fast path serves."""
    try:
        return _decode(buf)
    except (ber.BerError, IndexError):
        return None


def _decode(buf: bytes) -> ReadRequest | None:
    header, read_integer = ber.header, ber.read_integer
    end = len(buf)
    tag, start, stop = header(buf, 0, end)
    if tag != ber.SEQUENCE or stop != end:
        return None                     # trailing octets, or not a message: pysnmp decides
    tag, vstart, vstop = header(buf, start, stop)
    if tag != ber.INTEGER:
        return None
    version = read_integer(buf, vstart, vstop)
    tags = READ_TAGS.get(version)
    if tags is None:
        return None
    tag, cstart, cstop = header(buf, vstop, stop)
    if tag != ber.OCTET_STRING:
        return None
    return decode_pdu(buf, cstop, stop, version, buf[cstart:cstop])


def decode_pdu(buf: bytes, pos: int, stop: int, version: int, community: bytes = b"") -> ReadRequest | None:
    """The read PDU that fills `buf[pos:stop]`, by the rules of `version` (an SNMPv3
    scoped PDU's is read as SNMPv2c's: the same PDUs and error rules); None if it is not
    one the fast path serves. Raises `ber.BerError` or IndexError on malformed octets."""
    header, read_integer = ber.header, ber.read_integer
    tags = READ_TAGS[version]
    pdu_tag, pstart, pstop = header(buf, pos, stop)
    if pdu_tag not in tags or pstop != stop:
        return None
    fields = []
    pos = pstart
    for _ in range(3):
        tag, istart, pos = header(buf, pos, pstop)
        if tag != ber.INTEGER:
            return None
        fields.append(read_integer(buf, istart, pos))
    request_id, a, b = fields
    if not _INT32[0] <= request_id <= _INT32[1]:
        return None
    if pdu_tag == ber.GETBULK:
        if a > _INT32[1] or b > _INT32[1]:
            return None
    elif not (0 <= b <= _INT32[1] and -(1 << 63) <= a < (1 << 63)):
        return None                     # pysnmp's decoder refuses a negative error-index
    tag, lstart, lstop = header(buf, pos, pstop)
    if tag != ber.SEQUENCE or lstop != pstop:
        return None
    names: list[ber.OID] = []
    name_tlvs: list[bytes] = []
    pos = lstart
    while pos < lstop:
        tag, vbstart, vbstop = header(buf, pos, lstop)
        if tag != ber.SEQUENCE:
            return None
        tag, ostart, ostop = header(buf, vbstart, vbstop)
        if tag != ber.OBJECT_ID or buf[ostop:vbstop] != ber.NULL:
            return None                 # a value other than NULL in a read: pysnmp decides
        names.append(ber.read_oid(buf, ostart, ostop))
        name_tlvs.append(buf[vbstart:ostop])
        pos = vbstop
    return ReadRequest(version, community, pdu_tag, request_id, a, b, names, name_tlvs)
