"""The fast path's BER codec against pyasn1, property by property (hypothesis): every
value it encodes is what pyasn1 encodes, octet for octet, and decodes back to itself;
the request decoder reads what pysnmp encodes and never raises on junk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import univ
from pysnmp.proto import api, rfc1902, rfc1905

from haoscar_snmp.snmp.fastpath import ber
from haoscar_snmp.snmp.fastpath.request import decode_read

INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
U32 = st.integers(0, (1 << 32) - 1)
ARC = st.integers(0, (1 << 32) - 1)


@st.composite
def oids(draw: st.DrawFn) -> tuple[int, ...]:
    first = draw(st.integers(0, 2))
    second = draw(st.integers(0, 39) if first < 2 else st.integers(0, 1000))
    return (first, second, *draw(st.lists(ARC | st.integers(0, 200), max_size=30)))


@given(st.integers(-(1 << 70), 1 << 70) | st.sampled_from([-128, -32768, -(1 << 31), -256, -1, 127, 128]))
def test_integers_are_pyasn1s(value: int) -> None:
    octets = ber.integer(value)
    if value < 0 and (-value) & (-value - 1) == 0:
        # pyasn1 writes the negative powers of two with a redundant leading ff (-128 as
        # ff 80); the minimal form decodes to the same value
        assert encoder.encode(univ.Integer(value))[2:] in (b"\xff" + octets[2:], octets[2:])
    else:
        assert octets == encoder.encode(univ.Integer(value))
    assert int(decoder.decode(octets, asn1Spec=univ.Integer())[0]) == value
    tag, start, stop = ber.header(octets, 0, len(octets))
    assert tag == ber.INTEGER and ber.read_integer(octets, start, stop) == value


@given(st.sampled_from([(rfc1902.Counter32, ber.COUNTER32, U32), (rfc1902.Gauge32, ber.GAUGE32, U32),
                        (rfc1902.Unsigned32, ber.GAUGE32, U32), (rfc1902.TimeTicks, ber.TIMETICKS, U32),
                        (rfc1902.Counter64, ber.COUNTER64, st.integers(0, (1 << 64) - 1))]).flatmap(
    lambda t: st.tuples(st.just(t[0]), st.just(t[1]), t[2])))
def test_unsigned_types_are_pysnmps(case: tuple) -> None:
    kind, tag, value = case
    octets = ber.unsigned(value, tag)
    assert octets == encoder.encode(kind(value))
    assert int(decoder.decode(octets, asn1Spec=kind())[0]) == value


@given(st.binary(max_size=300) | st.binary(min_size=60000, max_size=66000))
@settings(max_examples=60)
def test_octet_strings_and_long_lengths_are_pyasn1s(value: bytes) -> None:
    octets = ber.tlv(ber.OCTET_STRING, value)
    assert octets == encoder.encode(univ.OctetString(value))
    assert bytes(decoder.decode(octets, asn1Spec=univ.OctetString())[0]) == value


@given(oids())
def test_object_identifiers_are_pyasn1s_and_read_back(arcs: tuple[int, ...]) -> None:
    octets = ber.oid(arcs)
    assert octets == encoder.encode(univ.ObjectIdentifier(arcs))
    assert tuple(decoder.decode(octets, asn1Spec=univ.ObjectIdentifier())[0]) == arcs
    tag, start, stop = ber.header(octets, 0, len(octets))
    assert ber.read_oid(octets, start, stop) == arcs
    cache = ber.OidCache()
    assert cache.tlv(arcs[:3], arcs[3:]) == octets == cache.tlv(arcs[:3], arcs[3:])


@given(st.binary(min_size=4, max_size=4))
def test_ip_addresses_and_the_fixed_values_are_pysnmps(raw: bytes) -> None:
    assert ber.tlv(ber.IP_ADDRESS, raw) == encoder.encode(rfc1902.IpAddress(raw))
    assert ber.NULL == encoder.encode(univ.Null(""))
    assert ber.EXC_NO_SUCH_OBJECT == encoder.encode(rfc1905.noSuchObject)
    assert ber.EXC_NO_SUCH_INSTANCE == encoder.encode(rfc1905.noSuchInstance)
    assert ber.EXC_END_OF_MIB_VIEW == encoder.encode(rfc1905.endOfMibView)


@given(st.sampled_from([0, 1]), st.binary(max_size=40), INT32, st.integers(0, 200), st.integers(0, 200),
       st.lists(oids(), max_size=8), st.sampled_from(["get", "next", "bulk"]))
def test_requests_pysnmp_encodes_are_read_back(version: int, community: bytes, request_id: int,
                                               a: int, b: int, names: list, kind: str) -> None:
    p = api.PROTOCOL_MODULES[version]
    if kind == "bulk" and version == 0:
        kind = "next"
    pdu = {"get": p.GetRequestPDU, "next": p.GetNextRequestPDU,
           "bulk": getattr(p, "GetBulkRequestPDU", None)}[kind]()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, request_id)
    if kind == "bulk":
        p.apiBulkPDU.set_non_repeaters(pdu, a)
        p.apiBulkPDU.set_max_repetitions(pdu, b)
    else:
        p.apiPDU.set_error_status(pdu, a % 19)
        p.apiPDU.set_error_index(pdu, b)
        a = a % 19
    p.apiPDU.set_varbinds(pdu, [(n, p.Null("")) for n in names])
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, community)
    p.apiMessage.set_pdu(msg, pdu)
    read = decode_read(encoder.encode(msg))
    assert read is not None
    assert (read.version, read.community, read.request_id, read.non_repeaters, read.max_repetitions) == \
        (version, community, request_id, a, b)
    assert read.names == names and read.name_tlvs == [ber.oid(n) for n in names]
    assert read.tag == {"get": ber.GET, "next": ber.GETNEXT, "bulk": ber.GETBULK}[kind]


@given(st.binary(max_size=200))
def test_junk_never_raises(junk: bytes) -> None:
    decode_read(junk)
    decode_read(b"\x30" + bytes([len(junk)]) + junk if len(junk) < 128 else junk)


# A GETBULK like snmpbulkwalk's: v2c, "public", max-repetitions 25, one name.
SEED = ber.tlv(ber.SEQUENCE, ber.integer(1) + ber.tlv(ber.OCTET_STRING, b"public") + ber.tlv(
    ber.GETBULK, ber.integer(0x10000000) + ber.integer(0) + ber.integer(25) + ber.tlv(
        ber.SEQUENCE, ber.tlv(ber.SEQUENCE, ber.oid((1, 3, 6, 1, 4, 1, 32473, 1, 1, 8)) + ber.NULL))))


def test_the_seed_is_a_read() -> None:
    read = decode_read(SEED)
    assert read is not None and read.max_repetitions == 25 and read.names == [(1, 3, 6, 1, 4, 1, 32473, 1, 1, 8)]


@given(st.data())
@settings(max_examples=300)
def test_mutated_requests_never_raise(data: st.DataObject) -> None:
    message = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(message) - 1))
        message[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(message)))
    decode_read(bytes(message[:cut]))
    decode_read(bytes(message))
