"""Var-bind values between the AgentX codec and the pysnmp types of the SNMP layer.

The view answers with pysnmp values (`snmp.values.encoder`) and the SET checks expect
them (`snmp.values.WIRE_TYPES`); the codec speaks plain Python with a `ValueType` tag.
These two functions are the only bridge, so the codec never imports pysnmp.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pyasn1.type import univ
from pysnmp.proto import rfc1902, rfc1905

from .pdu import Oid, Value, ValueType, VarBind

# By ASN.1 tag, not by class: Unsigned32 and Gauge32 share one tag, as do Integer32 and
# the plain INTEGER, and pysnmp's class hierarchy does not follow the tags.
_BY_TAG = {
    rfc1902.Integer32.tagSet: ValueType.INTEGER,
    rfc1902.OctetString.tagSet: ValueType.OCTET_STRING,
    univ.Null.tagSet: ValueType.NULL,
    rfc1902.ObjectIdentifier.tagSet: ValueType.OBJECT_IDENTIFIER,
    rfc1902.IpAddress.tagSet: ValueType.IP_ADDRESS,
    rfc1902.Counter32.tagSet: ValueType.COUNTER32,
    rfc1902.Gauge32.tagSet: ValueType.GAUGE32,
    rfc1902.TimeTicks.tagSet: ValueType.TIME_TICKS,
    rfc1902.Opaque.tagSet: ValueType.OPAQUE,
    rfc1902.Counter64.tagSet: ValueType.COUNTER64,
    rfc1905.noSuchObject.tagSet: ValueType.NO_SUCH_OBJECT,
    rfc1905.noSuchInstance.tagSet: ValueType.NO_SUCH_INSTANCE,
    rfc1905.endOfMibView.tagSet: ValueType.END_OF_MIB_VIEW,
}
_EXCEPTIONS = {
    ValueType.NO_SUCH_OBJECT: rfc1905.noSuchObject,
    ValueType.NO_SUCH_INSTANCE: rfc1905.noSuchInstance,
    ValueType.END_OF_MIB_VIEW: rfc1905.endOfMibView,
}
_INTEGERS = {
    ValueType.INTEGER: rfc1902.Integer32,
    ValueType.COUNTER32: rfc1902.Counter32,
    ValueType.GAUGE32: rfc1902.Gauge32,
    ValueType.TIME_TICKS: rfc1902.TimeTicks,
    ValueType.COUNTER64: rfc1902.Counter64,
}


def from_pysnmp(value: Any) -> tuple[ValueType, Value]:
    """The AgentX type tag and plain value of a pysnmp/pyasn1 value."""
    t = _BY_TAG.get(value.tagSet)
    if t is None:
        raise ValueError(f"no AgentX type for {value.__class__.__name__}")
    if t in _INTEGERS:
        return t, int(value)
    if t in (ValueType.OCTET_STRING, ValueType.OPAQUE):
        return t, value.asOctets()
    if t is ValueType.IP_ADDRESS:
        return t, ipaddress.IPv4Address(value.asOctets())
    if t is ValueType.OBJECT_IDENTIFIER:
        return t, tuple(value.asTuple())
    return t, None


def varbind(name: Oid, value: Any) -> VarBind:
    """A VarBind for `name` holding a pysnmp value, as the view returns them."""
    t, plain = from_pysnmp(value)
    return VarBind(tuple(name), t, plain)


def to_pysnmp(vb: VarBind) -> Any:
    """The pysnmp value of a decoded VarBind, as the SET checks expect it."""
    t, v = vb.type, vb.value
    if t in _INTEGERS:
        return _INTEGERS[t](v)
    if t is ValueType.OCTET_STRING:
        return rfc1902.OctetString(v)
    if t is ValueType.OPAQUE:
        return rfc1902.Opaque(v)
    if t is ValueType.IP_ADDRESS:
        return rfc1902.IpAddress(v.packed if isinstance(v, ipaddress.IPv4Address) else v)
    if t is ValueType.OBJECT_IDENTIFIER:
        return rfc1902.ObjectIdentifier(v)
    if t is ValueType.NULL:
        return univ.Null("")
    return _EXCEPTIONS[t]
