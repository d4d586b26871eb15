"""State values to BER, per MIB object: the fast path's twin of `snmp.values.encoder`.

Each function turns what a getter returns into the TLV octets of the value pysnmp would
send for it: the same conversions (TruthValue, enumerations, DateAndTime, clamping and
wrapping of the unsigned types). A value pysnmp would refuse (an Integer32 out of range,
an OCTET STRING over 65,535 octets) raises `ValueError`, and the request goes to pysnmp,
which answers it as it always did.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from ..mib import MibObject
from ..values import date_and_time, integer_of, octets_of
from . import ber

Wire = Callable[[Any], bytes]

_INT32 = (-(1 << 31), (1 << 31) - 1)
_MAX_OCTETS = 65535


_SHORT = ber.SHORT_LENGTHS


def _octet_string(raw: bytes) -> bytes:
    n = len(raw)
    if n < 0x80:
        return b"\x04" + _SHORT[n] + raw
    if n > _MAX_OCTETS:
        raise ValueError("OCTET STRING longer than 65535 octets")
    return ber.tlv(ber.OCTET_STRING, raw)


def _text(v: Any) -> bytes:
    """An OCTET STRING value: as `values.octets_of` converts it."""
    return _octet_string(v if isinstance(v, bytes) else octets_of(v))


def _int32(v: Any) -> bytes:
    n = v if type(v) is int else integer_of(v)
    if not _INT32[0] <= n <= _INT32[1]:
        raise ValueError(f"{n} is outside Integer32")
    return ber.integer(n)


def _ip(v: Any) -> bytes:
    raw = v if isinstance(v, bytes) else ipaddress.IPv4Address(str(v)).packed
    if len(raw) != 4:
        raise ValueError("an IpAddress is four octets")
    return ber.tlv(ber.IP_ADDRESS, raw)


def _object_id(v: Any) -> bytes:
    arcs = tuple(int(a) for a in v.strip(".").split(".")) if isinstance(v, str) else tuple(v)
    return ber.oid(arcs)


def wire_encoder(obj: MibObject) -> Wire:
    """Return a function turning a state value into the TLV octets of `obj`'s value."""
    base = obj.base
    if obj.tc == "DateAndTime":
        return lambda v: _octet_string(v if isinstance(v, bytes) else date_and_time(v))
    if base == "OctetString":
        return _text
    if base == "Integer32":
        return _int32
    if base in ("Unsigned32", "Gauge32"):
        return lambda v: ber.unsigned(min(max(integer_of(v), 0), 0xFFFFFFFF), ber.GAUGE32)
    if base == "Counter32":
        return lambda v: ber.unsigned(integer_of(v) & 0xFFFFFFFF, ber.COUNTER32)
    if base == "Counter64":
        return lambda v: ber.unsigned(integer_of(v) & 0xFFFFFFFFFFFFFFFF, ber.COUNTER64)
    if base == "TimeTicks":
        return lambda v: ber.unsigned(integer_of(v) & 0xFFFFFFFF, ber.TIMETICKS)
    if base == "IpAddress":
        return _ip
    if base == "ObjectIdentifier":
        return _object_id
    raise ValueError(f"{obj.name}: unsupported base type {base!r}")
