"""The bridge between the AgentX codec's plain values and the pysnmp values of the view
and the SET checks."""

from __future__ import annotations

import ipaddress

import pytest
from pyasn1.type import univ
from pysnmp.proto import rfc1902, rfc1905

from haoscar_snmp.snmp.agentx.pdu import ValueType, VarBind
from haoscar_snmp.snmp.agentx.values import from_pysnmp, to_pysnmp, varbind

CASES = [
    (rfc1902.Integer32(-5), ValueType.INTEGER, -5),
    (rfc1902.OctetString(b"head1"), ValueType.OCTET_STRING, b"head1"),
    (univ.Null(""), ValueType.NULL, None),
    (rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1)), ValueType.OBJECT_IDENTIFIER,
     (1, 3, 6, 1, 4, 1)),
    (rfc1902.IpAddress("10.0.0.1"), ValueType.IP_ADDRESS, ipaddress.IPv4Address("10.0.0.1")),
    (rfc1902.Counter32(4294967295), ValueType.COUNTER32, 4294967295),
    (rfc1902.Gauge32(7), ValueType.GAUGE32, 7),
    (rfc1902.TimeTicks(100), ValueType.TIME_TICKS, 100),
    (rfc1902.Opaque(b"\x9f\x78"), ValueType.OPAQUE, b"\x9f\x78"),
    (rfc1902.Counter64(2**64 - 1), ValueType.COUNTER64, 2**64 - 1),
    (rfc1905.noSuchObject, ValueType.NO_SUCH_OBJECT, None),
    (rfc1905.noSuchInstance, ValueType.NO_SUCH_INSTANCE, None),
    (rfc1905.endOfMibView, ValueType.END_OF_MIB_VIEW, None),
]


@pytest.mark.parametrize("value, tag, plain", CASES, ids=[c[1].name for c in CASES])
def test_both_ways(value: object, tag: ValueType, plain: object) -> None:
    assert from_pysnmp(value) == (tag, plain)
    back = to_pysnmp(VarBind((1,), tag, plain))
    assert back.tagSet == value.tagSet and back == value


def test_tags_decide_not_classes() -> None:
    """Unsigned32 is Gauge32 on the wire; a plain INTEGER is Integer."""
    assert from_pysnmp(rfc1902.Unsigned32(3)) == (ValueType.GAUGE32, 3)
    assert from_pysnmp(univ.Integer(3)) == (ValueType.INTEGER, 3)


def test_varbind_from_a_view_answer() -> None:
    assert varbind([1, 3, 6], rfc1902.Gauge32(1)) == VarBind((1, 3, 6), ValueType.GAUGE32, 1)


def test_a_type_agentx_cannot_carry() -> None:
    with pytest.raises(ValueError):
        from_pysnmp(univ.Boolean(True))
