"""Conversions between the state model's Python values and SNMP wire types."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Callable

from pysnmp.proto import rfc1902

from haoscar_snmp.core.text import printable

from .mib import MibObject

NEVER = bytes(8)  # DateAndTime for "never happened" (documented in the MIB)


def date_and_time(timestamp: float) -> bytes:
    """SNMPv2-TC DateAndTime (11 octets, UTC) for a wall-clock timestamp; 0 means never."""
    if not timestamp:
        return NEVER
    t = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    deci = t.microsecond // 100_000
    return bytes([t.year >> 8, t.year & 0xFF, t.month, t.day, t.hour, t.minute, t.second,
                  deci, ord("+"), 0, 0])


def octets_of(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def integer_of(value: Any) -> int:
    if isinstance(value, bool):  # TruthValue: true(1), false(2)
        return 1 if value else 2
    if isinstance(value, enum.Enum):
        return int(value.value)
    return int(value)


def encoder(obj: MibObject) -> Callable[[Any], Any]:
    """Return a function turning a state value into the pysnmp value for `obj`."""
    base = obj.base
    if obj.tc == "DateAndTime":
        return lambda v: rfc1902.OctetString(v if isinstance(v, bytes) else date_and_time(v))
    if base == "OctetString":
        return lambda v: rfc1902.OctetString(octets_of(v))
    if base == "Integer32":
        return lambda v: rfc1902.Integer32(integer_of(v))
    if base == "Unsigned32":
        return lambda v: rfc1902.Unsigned32(min(max(integer_of(v), 0), 0xFFFFFFFF))
    if base == "Gauge32":
        return lambda v: rfc1902.Gauge32(min(max(integer_of(v), 0), 0xFFFFFFFF))
    if base == "Counter32":
        return lambda v: rfc1902.Counter32(integer_of(v) & 0xFFFFFFFF)
    if base == "Counter64":
        return lambda v: rfc1902.Counter64(integer_of(v) & 0xFFFFFFFFFFFFFFFF)
    if base == "TimeTicks":
        return lambda v: rfc1902.TimeTicks(integer_of(v) & 0xFFFFFFFF)
    if base == "IpAddress":
        return lambda v: rfc1902.IpAddress(v)
    if base == "ObjectIdentifier":
        return lambda v: rfc1902.ObjectIdentifier(v)
    raise ValueError(f"{obj.name}: unsupported base type {base!r}")


# The ASN.1 tag each base type must arrive with in a SET (pysnmp never checks it).
WIRE_TYPES: dict[str, type] = {
    "OctetString": rfc1902.OctetString,
    "Integer32": rfc1902.Integer32,
    "Unsigned32": rfc1902.Unsigned32,
    "Gauge32": rfc1902.Gauge32,
    "Counter32": rfc1902.Counter32,
    "Counter64": rfc1902.Counter64,
    "TimeTicks": rfc1902.TimeTicks,
    "IpAddress": rfc1902.IpAddress,
    "ObjectIdentifier": rfc1902.ObjectIdentifier,
}


def display(value: Any) -> str:
    """A var-bind value as an operator reads it in a log line or audit record: escaped
    and bounded (`core.text.printable`), since it came from the network."""
    if isinstance(value, rfc1902.OctetString):
        raw = value.asOctets()
        try:
            return printable(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return printable("0x" + raw.hex())
    if value is None:
        return ""
    return printable(value.prettyPrint() if hasattr(value, "prettyPrint") else str(value))
