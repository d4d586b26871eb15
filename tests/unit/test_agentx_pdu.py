"""The AgentX codec: every PDU type both ways in both byte orders, byte strings written by
hand from RFC 2741's layouts (sections 5 and 6), OID prefix compression, octet string
padding, the stream decoder cut at every byte, and what a malformed PDU does."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from haoscar_snmp.snmp.agentx.decoder import ParseError, decode, decode_header
from haoscar_snmp.snmp.agentx.encoder import encode
from haoscar_snmp.snmp.agentx.pdu import (
    MAX_ITEMS,
    MAX_OID_LEN,
    MAX_PAYLOAD,
    PDU_CLASSES,
    AddAgentCaps,
    CleanupSet,
    Close,
    CloseReason,
    CommitSet,
    Flag,
    Get,
    GetBulk,
    GetNext,
    IndexAllocate,
    IndexDeallocate,
    Notify,
    Open,
    Pdu,
    PduType,
    Ping,
    Register,
    RemoveAgentCaps,
    Response,
    ResponseError,
    SearchRange,
    TestSet,
    UndoSet,
    Unregister,
    ValueType,
    VarBind,
)
from haoscar_snmp.snmp.agentx.stream import StreamDecoder

ENTERPRISE = (1, 3, 6, 1, 4, 1, 9999)
IDS = {"session_id": 0x01020304, "transaction_id": 7, "packet_id": 0xFFFFFFFF}

EVERY_VALUE = (
    VarBind(ENTERPRISE + (1, 0), ValueType.INTEGER, -2**31),
    VarBind(ENTERPRISE + (2, 0), ValueType.INTEGER, 2**31 - 1),
    VarBind(ENTERPRISE + (3, 0), ValueType.OCTET_STRING, b"head1"),
    VarBind(ENTERPRISE + (4, 0), ValueType.OCTET_STRING, b""),
    VarBind(ENTERPRISE + (5, 0), ValueType.NULL),
    VarBind(ENTERPRISE + (6, 0), ValueType.OBJECT_IDENTIFIER, (1, 3, 6, 1, 6, 3, 1, 1, 5, 1)),
    VarBind(ENTERPRISE + (7, 0), ValueType.OBJECT_IDENTIFIER, ()),
    VarBind(ENTERPRISE + (8, 0), ValueType.IP_ADDRESS, ipaddress.IPv4Address("192.0.2.1")),
    VarBind(ENTERPRISE + (9, 0), ValueType.COUNTER32, 0xFFFFFFFF),
    VarBind(ENTERPRISE + (10, 0), ValueType.GAUGE32, 42),
    VarBind(ENTERPRISE + (11, 0), ValueType.TIME_TICKS, 123456),
    VarBind(ENTERPRISE + (12, 0), ValueType.OPAQUE, b"\x9f\x78\x04\x00\x00\x00\x01"),
    VarBind(ENTERPRISE + (13, 0), ValueType.COUNTER64, 0xFFFFFFFFFFFFFFFF),
    VarBind(ENTERPRISE + (14, 0), ValueType.NO_SUCH_OBJECT),
    VarBind(ENTERPRISE + (15, 0), ValueType.NO_SUCH_INSTANCE),
    VarBind((1, 3, 6, 1, 2, 1, 1, 3, 0), ValueType.END_OF_MIB_VIEW),
)
RANGES = (
    SearchRange(ENTERPRISE + (1,), ENTERPRISE + (2,), include=True),
    SearchRange((1, 3, 6, 1, 2, 1, 1, 1, 0)),
    SearchRange((), ()),
)

# One or more of each of the 18 PDU types, with and without a context where allowed.
SAMPLES: list[Pdu] = [
    Open(timeout=5, id=ENTERPRISE, descr=b"haoscar-snmp", **IDS),
    Open(),
    Close(reason=CloseReason.BY_MANAGER, **IDS),
    Close(reason=200),                   # an unknown reason survives as a number
    Register(subtree=ENTERPRISE, timeout=10, priority=100, **IDS),
    Register(subtree=ENTERPRISE + (1, 1), range_subid=9, upper_bound=2000, context=b"c1",
             instance_registration=True),
    Unregister(subtree=ENTERPRISE, priority=100, **IDS),
    Unregister(subtree=ENTERPRISE + (1, 1), range_subid=8, upper_bound=7, context=b""),
    Get(ranges=RANGES, **IDS),
    Get(ranges=(), context=b"ctx"),
    GetNext(ranges=RANGES, context=b"a context of some length", **IDS),
    GetBulk(non_repeaters=1, max_repetitions=0xFFFF, ranges=RANGES, **IDS),
    GetBulk(ranges=RANGES[:1], context=b"x"),
    TestSet(varbinds=EVERY_VALUE, **IDS),
    TestSet(varbinds=EVERY_VALUE[:1], context=b"abcd"),
    CommitSet(**IDS),
    UndoSet(**IDS),
    CleanupSet(**IDS),
    Notify(varbinds=EVERY_VALUE[-3:], **IDS),
    Notify(varbinds=(), context=b"abc"),
    Ping(**IDS),
    Ping(context=b"ctx"),
    IndexAllocate(varbinds=EVERY_VALUE[:2], new_index=True, **IDS),
    IndexAllocate(varbinds=EVERY_VALUE[:2], any_index=True, context=b"c"),
    IndexDeallocate(varbinds=EVERY_VALUE[2:4], **IDS),
    IndexDeallocate(varbinds=(), context=b"c"),
    AddAgentCaps(id=ENTERPRISE + (10,), descr=b"caps", **IDS),
    AddAgentCaps(id=(), context=b"c"),
    RemoveAgentCaps(id=ENTERPRISE + (10,), **IDS),
    RemoveAgentCaps(id=(1, 3), context=b"c"),
    Response(sys_uptime=0xFFFFFFFF, error=ResponseError.NOT_WRITABLE, index=3,
             varbinds=EVERY_VALUE, **IDS),
    Response(error=999),                 # an unknown error survives as a number
]


def hexbytes(text: str) -> bytes:
    """Hex written with spaces and comments (after '#') for readability."""
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def test_the_samples_cover_every_pdu_type() -> None:
    assert {type(p) for p in SAMPLES} == set(PDU_CLASSES.values())
    assert len(PDU_CLASSES) == 18


@pytest.mark.parametrize("network_byte_order", [True, False], ids=["network", "little"])
@pytest.mark.parametrize("pdu", SAMPLES, ids=lambda p: type(p).__name__)
def test_round_trip(pdu: Pdu, network_byte_order: bool) -> None:
    data = encode(pdu, network_byte_order=network_byte_order)
    assert len(data) % 4 == 0
    header = decode_header(data)
    assert header.type == pdu.TYPE
    assert header.network_byte_order is network_byte_order
    assert header.payload_length == len(data) - 20
    assert decode(data) == pdu


# ------------------------------------------------------------ bytes written from the RFC

OPEN_NETWORK = hexbytes("""
    01 01 10 00     # version 1, type Open, flags NETWORK_BYTE_ORDER, reserved
    00 00 00 00     # session ID
    00 00 00 00     # transaction ID
    00 00 00 01     # packet ID
    00 00 00 1c     # payload length 28
    05 00 00 00     # o.timeout 5, reserved
    02 04 00 00     # o.id: n_subid 2, prefix 4 (1.3.6.1.4), include 0
    00 00 00 01
    00 00 27 0f     # .1.9999
    00 00 00 07     # o.descr: length 7
    68 61 6f 73 63 61 72 00   # "haoscar" and one octet of padding
""")
OPEN_LITTLE = hexbytes("""
    01 01 00 00
    00 00 00 00
    00 00 00 00
    01 00 00 00
    1c 00 00 00
    05 00 00 00
    02 04 00 00
    01 00 00 00
    0f 27 00 00
    07 00 00 00
    68 61 6f 73 63 61 72 00
""")
OPEN = Open(timeout=5, id=(1, 3, 6, 1, 4, 1, 9999), descr=b"haoscar", packet_id=1)


@pytest.mark.parametrize("data, network_byte_order", [(OPEN_NETWORK, True),
                                                      (OPEN_LITTLE, False)])
def test_open_as_the_rfc_lays_it_out(data: bytes, network_byte_order: bool) -> None:
    assert encode(OPEN, network_byte_order=network_byte_order) == data
    assert decode(data) == OPEN


GET_TWO_RANGES = hexbytes("""
    01 05 18 00     # Get, flags NETWORK_BYTE_ORDER | NON_DEFAULT_CONTEXT
    00 00 00 07  00 00 00 08  00 00 00 09
    00 00 00 40     # payload length 64
    00 00 00 03  63 74 78 00            # context "ctx", padded
    04 02 01 00     # start 1.3.6.1.2.1.1.1.0: n_subid 4, prefix 2, include 1
    00 00 00 01  00 00 00 01  00 00 00 01  00 00 00 00
    00 00 00 00     # end: the null OID
    03 04 00 00     # start 1.3.6.1.4.1.9999.1, include 0
    00 00 00 01  00 00 27 0f  00 00 00 01
    03 04 00 00     # end 1.3.6.1.4.1.9999.2
    00 00 00 01  00 00 27 0f  00 00 00 02
""")


def test_get_with_two_search_ranges() -> None:
    pdu = Get(session_id=7, transaction_id=8, packet_id=9, context=b"ctx", ranges=(
        SearchRange((1, 3, 6, 1, 2, 1, 1, 1, 0), (), include=True),
        SearchRange(ENTERPRISE + (1,), ENTERPRISE + (2,))))
    assert encode(pdu) == GET_TWO_RANGES
    assert decode(GET_TWO_RANGES) == pdu


def name(n: int) -> str:
    """1.3.6.1.4.1.9999.n as the RFC encodes it: 3 subids after prefix 4."""
    return f"03 04 00 00  00 00 00 01  00 00 27 0f  {n:08x}"


RESPONSE_EVERY_TYPE = hexbytes(f"""
    01 12 10 00  00 00 00 01  00 00 00 02  00 00 00 03
    00 00 01 60     # payload length 352: 8 + 14 varbind heads of 20 + 64 of data
    00 00 30 39     # res.sysUpTime 12345
    00 00 00 00     # res.error 0, res.index 0
    00 02 00 00  {name(1)}   00 00 00 2a                        # Integer 42
    00 02 00 00  {name(2)}   ff ff ff ff                        # Integer -1
    00 04 00 00  {name(3)}   00 00 00 05  61 62 63 64 65 00 00 00  # Octet String "abcde"
    00 05 00 00  {name(4)}                                      # Null
    00 06 00 00  {name(5)}   01 02 00 00  00 00 00 01           # OID 1.3.6.1.2.1
    00 40 00 00  {name(6)}   00 00 00 04  0a 00 00 01           # IpAddress 10.0.0.1
    00 41 00 00  {name(7)}   ff ff ff fe                        # Counter32
    00 42 00 00  {name(8)}   00 00 00 07                        # Gauge32 7
    00 43 00 00  {name(9)}   00 00 00 64                        # TimeTicks 100
    00 44 00 00  {name(10)}  00 00 00 02  9f 78 00 00           # Opaque
    00 46 00 00  {name(11)}  01 02 03 04  05 06 07 08           # Counter64
    00 80 00 00  {name(12)}                                     # noSuchObject
    00 81 00 00  {name(13)}                                     # noSuchInstance
    00 82 00 00  {name(14)}                                     # endOfMibView
""")


def test_response_with_every_varbind_type() -> None:
    n = lambda i: ENTERPRISE + (i,)
    pdu = Response(session_id=1, transaction_id=2, packet_id=3, sys_uptime=12345, varbinds=(
        VarBind(n(1), ValueType.INTEGER, 42),
        VarBind(n(2), ValueType.INTEGER, -1),
        VarBind(n(3), ValueType.OCTET_STRING, b"abcde"),
        VarBind(n(4), ValueType.NULL),
        VarBind(n(5), ValueType.OBJECT_IDENTIFIER, (1, 3, 6, 1, 2, 1)),
        VarBind(n(6), ValueType.IP_ADDRESS, ipaddress.IPv4Address("10.0.0.1")),
        VarBind(n(7), ValueType.COUNTER32, 0xFFFFFFFE),
        VarBind(n(8), ValueType.GAUGE32, 7),
        VarBind(n(9), ValueType.TIME_TICKS, 100),
        VarBind(n(10), ValueType.OPAQUE, b"\x9f\x78"),
        VarBind(n(11), ValueType.COUNTER64, 0x0102030405060708),
        VarBind(n(12), ValueType.NO_SUCH_OBJECT),
        VarBind(n(13), ValueType.NO_SUCH_INSTANCE),
        VarBind(n(14), ValueType.END_OF_MIB_VIEW)))
    assert encode(pdu) == RESPONSE_EVERY_TYPE
    assert decode(RESPONSE_EVERY_TYPE) == pdu


def test_little_endian_integers_and_counter64() -> None:
    data = hexbytes("""
        01 12 00 00  05 00 00 00  00 00 00 00  00 00 00 00
        20 00 00 00     # payload length 32
        10 00 00 00     # sysUpTime 16
        11 01 02 00     # error 273 (0x111), index 2
        46 00 00 00     # Counter64
        02 04 00 00  01 00 00 00  0f 27 00 00     # 1.3.6.1.4.1.9999
        08 07 06 05 04 03 02 01     # 0x0102030405060708, least significant octet first
    """)
    pdu = Response(session_id=5, sys_uptime=16, error=273, index=2, varbinds=(
        VarBind(ENTERPRISE, ValueType.COUNTER64, 0x0102030405060708),))
    assert encode(pdu, network_byte_order=False) == data
    assert decode(data) == pdu


def test_register_with_a_range_and_instance_registration() -> None:
    data = hexbytes("""
        01 03 11 00     # Register, NETWORK_BYTE_ORDER | INSTANCE_REGISTRATION
        00 00 00 05  00 00 00 00  00 00 00 06
        00 00 00 1c
        0a 7f 09 00     # r.timeout 10, r.priority 127, r.range_subid 9
        04 04 00 00  00 00 00 01  00 00 27 0f  00 00 00 01  00 00 00 01
        00 00 00 05     # r.upper_bound
    """)
    pdu = Register(session_id=5, packet_id=6, timeout=10, subtree=ENTERPRISE + (1, 1),
                   range_subid=9, upper_bound=5, instance_registration=True)
    assert encode(pdu) == data
    assert decode(data) == pdu


def test_close_and_the_header_only_pdus() -> None:
    close = hexbytes("01 02 10 00  00 00 00 05  00 00 00 00  00 00 00 00  00 00 00 04"
                     "05 00 00 00")
    assert encode(Close(session_id=5, reason=CloseReason.SHUTDOWN)) == close
    assert decode(close) == Close(session_id=5, reason=CloseReason.SHUTDOWN)
    commit = hexbytes("01 09 10 00  00 00 00 05  00 00 00 06  00 00 00 07  00 00 00 00")
    assert encode(CommitSet(session_id=5, transaction_id=6, packet_id=7)) == commit


def test_index_allocate_flags_and_getbulk_counts() -> None:
    data = encode(IndexAllocate(new_index=True, any_index=True))
    assert data[2] == Flag.NETWORK_BYTE_ORDER | Flag.NEW_INDEX | Flag.ANY_INDEX
    bulk = encode(GetBulk(non_repeaters=2, max_repetitions=0x0103))
    assert bulk[20:] == hexbytes("00 02 01 03")


def test_context_flag_is_ignored_where_the_rfc_has_no_context() -> None:
    """Open, Close, Response and the SET phases have no context field: the flag on them
    changes nothing (net-snmp clears it there; a stray one must not shift the payload)."""
    data = bytearray(encode(CommitSet(session_id=1)))
    data[2] |= Flag.NON_DEFAULT_CONTEXT
    assert decode(bytes(data)) == CommitSet(session_id=1)
    assert encode(Response(), network_byte_order=True)[2] == Flag.NETWORK_BYTE_ORDER


def test_unknown_flag_bits_and_reserved_octets_are_ignored() -> None:
    data = bytearray(OPEN_NETWORK)
    data[2] |= 0xE0
    data[3] = 0xAA
    data[20 + 1] = 0xBB          # reserved octets after o.timeout
    assert decode(bytes(data)) == OPEN


def test_response_answering_copies_the_ids() -> None:
    request = Get(session_id=1, transaction_id=2, packet_id=3)
    answer = Response.answering(request, sys_uptime=9, error=ResponseError.GEN_ERR, index=1)
    assert (answer.session_id, answer.transaction_id, answer.packet_id) == (1, 2, 3)
    assert (answer.sys_uptime, answer.error, answer.index) == (9, 5, 1)


def test_error_codes_and_close_reasons_have_the_rfc_numbers() -> None:
    assert [ResponseError.OPEN_FAILED, ResponseError.NOT_OPEN, ResponseError.INDEX_WRONG_TYPE,
            ResponseError.PARSE_ERROR, ResponseError.REQUEST_DENIED,
            ResponseError.PROCESSING_ERROR] == [256, 257, 258, 266, 267, 268]
    assert [ResponseError.WRONG_TYPE, ResponseError.COMMIT_FAILED, ResponseError.UNDO_FAILED,
            ResponseError.NOT_WRITABLE, ResponseError.INCONSISTENT_NAME] == [7, 14, 15, 17, 18]
    assert [r.value for r in CloseReason] == [1, 2, 3, 4, 5, 6]
    assert PduType.RESPONSE == 18 and ValueType.END_OF_MIB_VIEW == 130


# ------------------------------------------------------------------ OID compression

def oid_octets(oid: tuple[int, ...], include: bool = False) -> bytes:
    """The OID as the first search range of a Get, cut out of the encoded PDU."""
    data = encode(Get(ranges=(SearchRange(oid, (), include),)))
    return data[20:-4]           # drop the header and the null end OID


@pytest.mark.parametrize("x", range(1, 256))
def test_internet_prefix_is_compressed_for_every_x(x: int) -> None:
    oid = (1, 3, 6, 1, x, 7)
    assert oid_octets(oid) == bytes((1, x, 0, 0)) + struct.pack(">I", 7)
    assert decode(encode(Get(ranges=(SearchRange(oid),)))).ranges[0].start == oid


@pytest.mark.parametrize("oid, octets", [
    ((), "00 00 00 00"),                                     # the null OID
    ((1, 3, 6, 1), "04 00 00 00  00000001 00000003 00000006 00000001"),  # too short
    ((1, 3, 6), "03 00 00 00  00000001 00000003 00000006"),
    ((1, 3, 6, 1, 5), "00 05 00 00"),                        # prefix, no subids after it
    ((1, 3, 6, 1, 0, 1), "06 00 00 00  00000001 00000003 00000006 00000001 00000000 00000001"),
    ((1, 3, 6, 1, 256), "05 00 00 00  00000001 00000003 00000006 00000001 00000100"),
    ((1, 3, 6, 2, 4), "05 00 00 00  00000001 00000003 00000006 00000002 00000004"),
    ((2, 3, 6, 1, 4), "05 00 00 00  00000002 00000003 00000006 00000001 00000004"),
    ((0xFFFFFFFF,), "01 00 00 00  ffffffff"),
])
def test_oid_edge_cases(oid: tuple[int, ...], octets: str) -> None:
    assert oid_octets(oid) == hexbytes(octets)
    assert decode(encode(Get(ranges=(SearchRange(oid),)))).ranges[0].start == oid


def test_include_octet() -> None:
    assert oid_octets((1, 3, 6, 1, 4, 1), include=True) == hexbytes("01 04 01 00 00000001")


def test_an_uncompressed_internet_oid_decodes_the_same() -> None:
    long_form = hexbytes("""
        01 05 10 00  00000000 00000000 00000000  00000024
        07 00 00 00  00000001 00000003 00000006 00000001 00000004 00000001 0000270f
        00 00 00 00
    """)
    assert decode(long_form).ranges == (SearchRange(ENTERPRISE),)


def test_oid_length_limit() -> None:
    longest = tuple(range(MAX_OID_LEN))
    assert decode(encode(Get(ranges=(SearchRange(longest),)))).ranges[0].start == longest
    with pytest.raises(ValueError, match="129 subidentifiers"):
        encode(Get(ranges=(SearchRange(longest + (1,)),)))
    # 124 subids after prefix 4: 129 in all, one too many
    payload = bytes((124, 4, 0, 0)) + bytes(4 * 124) + bytes(4)
    data = struct.pack(">BBBxIIII", 1, 5, 0x10, 0, 0, 0, len(payload)) + payload
    with pytest.raises(ParseError, match="129 subidentifiers"):
        decode(data)


# ------------------------------------------------------------ octet string padding

@pytest.mark.parametrize("n", range(10))
def test_octet_string_padding(n: int) -> None:
    text = bytes(range(65, 65 + n))
    data = encode(Ping(context=text))
    padded = (n + 3) // 4 * 4
    assert len(data) == 20 + 4 + padded
    assert data[24:24 + n] == text and data[24 + n:] == bytes(padded - n)
    assert decode(data) == Ping(context=text)


def test_missing_padding_is_a_parse_error() -> None:
    # "abc" with its length but without the padding octet; the header says 8
    data = struct.pack(">BBBxIIII", 1, 13, 0x18, 0, 0, 0, 8) + struct.pack(">I", 3) + b"abc"
    with pytest.raises(ParseError):
        decode(data)


# ------------------------------------------------------------------- malformed PDUs

def frame(pdu_type: int, payload: bytes, flags: int = 0x10) -> bytes:
    return struct.pack(">BBBxIIII", 1, pdu_type, flags, 1, 2, 3, len(payload)) + payload


@pytest.mark.parametrize("data, reason", [
    (b"", "a header needs 20"),
    (b"\x01" * 19, "a header needs 20"),
    (b"\x02" + bytes(19), "version 2"),
    (frame(99, b""), "unknown PDU type 99"),
    (frame(0, b""), "unknown PDU type 0"),
    (frame(2, b""), "Close reason needs 4"),                     # Close without its reason
    (frame(9, bytes(4)), "left over"),                       # CommitSet with a payload
    (frame(12, bytes((0, 3, 0, 0)) + bytes(4)), "unknown varbind type 3"),
    (frame(12, bytes((0, 64, 0, 0)) + bytes(4) + struct.pack(">I", 5) + bytes(8)),
     "IpAddress of 5 octets"),
    (frame(12, bytes((0, 4, 0, 0)) + bytes(4) + struct.pack(">I", 0xFFFFFFFF)),
     "octet string needs"),
    (frame(12, bytes((0, 2, 0, 0)) + bytes(4)), "Integer needs 4"),
    (frame(5, bytes((200, 0, 0, 0)) + bytes(4)), "200 subidentifiers"),
    (frame(5, bytes((2, 0, 0, 0)) + bytes(4)), "OID needs 8 octets"),
    (frame(5, bytes(4)), "OID needs"),                       # a start without its end
    (frame(3, bytes((0, 0, 3, 0)) + bytes((2, 0, 0, 0)) + bytes(8) + bytes(4)),
     "range_subid 3 is outside"),
    (frame(18, bytes(4)), "Response fields needs 8"),
])
def test_malformed_pdus_raise_parse_error_with_the_header(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        decode(data)
    if len(data) >= 20 and data[0] == 1:
        assert caught.value.header is not None and caught.value.header.packet_id == 3


@pytest.mark.parametrize("length, reason", [(6, "multiple of 4"),
                                            (MAX_PAYLOAD + 4, "exceeds the limit")])
def test_bad_payload_lengths(length: int, reason: str) -> None:
    data = struct.pack(">BBBxIIII", 1, 13, 0x10, 1, 2, 3, length)
    with pytest.raises(ParseError, match=reason) as caught:
        decode_header(data)
    assert caught.value.header.packet_id == 3 and not caught.value.resumable


def test_length_disagreeing_with_the_buffer() -> None:
    with pytest.raises(ParseError, match="the header says"):
        decode(OPEN_NETWORK + bytes(4))
    with pytest.raises(ParseError, match="the header says"):
        decode(OPEN_NETWORK[:-4])


def test_too_many_varbinds() -> None:
    null = bytes((0, 5, 0, 0)) + bytes(4)          # a Null varbind with the null OID
    assert len(decode(frame(12, null * MAX_ITEMS)).varbinds) == MAX_ITEMS
    with pytest.raises(ParseError, match="more than 65535 varbinds"):
        decode(frame(12, null * (MAX_ITEMS + 1)))


@pytest.mark.parametrize("pdu", [
    Get(ranges=(SearchRange((1, 2**32)),)),
    Get(ranges=(SearchRange((1, -1)),)),
    Get(ranges=(SearchRange([1, 3]),)),                        # type: ignore[arg-type]
    Notify(varbinds=(VarBind((1,), ValueType.INTEGER, 2**31),)),
    Notify(varbinds=(VarBind((1,), ValueType.INTEGER, True),)),
    Notify(varbinds=(VarBind((1,), ValueType.COUNTER32, -1),)),
    Notify(varbinds=(VarBind((1,), ValueType.COUNTER64, 2**64),)),
    Notify(varbinds=(VarBind((1,), ValueType.OCTET_STRING, "text"),)),
    Notify(varbinds=(VarBind((1,), ValueType.IP_ADDRESS, b"\x0a\x00\x00\x01"),)),
    Notify(varbinds=(VarBind((1,), ValueType.NULL, 0),)),
    Notify(varbinds=(VarBind((1,), 3, 0),)),                   # type: ignore[arg-type]
    Register(subtree=(1, 2), range_subid=3, upper_bound=1),
    Register(subtree=(1, 2), range_subid=1),
    Register(subtree=(1, 2), upper_bound=1),
    Register(subtree=(1, 2), priority=256),
    Open(timeout=-1),
    Response(index=0x10000),
    Ping(session_id=2**32),
])
def test_encode_refuses_what_the_wire_cannot_carry(pdu: Pdu) -> None:
    with pytest.raises((ValueError, TypeError)):
        encode(pdu)


# ------------------------------------------------------------------ stream decoding

STREAM_PDUS = [OPEN, SAMPLES[5], SAMPLES[10], SAMPLES[13], CommitSet(packet_id=4),
               SAMPLES[30], Ping(context=b"ctx")]
STREAM = b"".join(encode(p, network_byte_order=i % 2 == 0) for i, p in enumerate(STREAM_PDUS))


def test_stream_split_at_every_byte_boundary() -> None:
    for cut in range(len(STREAM) + 1):
        decoder = StreamDecoder()
        decoder.feed(STREAM[:cut])
        got = list(decoder)
        decoder.feed(STREAM[cut:])
        got += list(decoder)
        assert got == STREAM_PDUS, f"cut at {cut}"
        assert decoder.buffered == 0


def test_stream_fed_one_byte_at_a_time() -> None:
    decoder = StreamDecoder()
    got = []
    for i in range(len(STREAM)):
        decoder.feed(STREAM[i:i + 1])
        got += list(decoder)
    assert got == STREAM_PDUS


def test_stream_skips_a_bad_pdu_and_goes_on() -> None:
    bad = frame(99, bytes(8))                                # unknown type, framed
    worse = frame(12, bytes((0, 3, 0, 0)) + bytes(4))        # unknown varbind type
    decoder = StreamDecoder()
    decoder.feed(encode(OPEN) + bad + encode(Ping()) + worse + encode(CleanupSet()))
    assert decoder.next_pdu() == OPEN
    with pytest.raises(ParseError) as first:
        decoder.next_pdu()
    assert first.value.resumable and first.value.header.type == 99
    assert decoder.next_pdu() == Ping()
    with pytest.raises(ParseError) as second:
        decoder.next_pdu()
    assert second.value.resumable and second.value.header.packet_id == 3
    assert decoder.next_pdu() == CleanupSet()
    assert decoder.next_pdu() is None and decoder.failed is None


@pytest.mark.parametrize("garbage", [
    b"\x00" * 20,                                            # version 0
    struct.pack(">BBBxIIII", 1, 13, 0x10, 0, 0, 0, 0xFFFFFFFC),  # 4 GiB payload
    struct.pack(">BBBxIIII", 1, 13, 0x10, 0, 0, 0, 5),           # not a multiple of 4
])
def test_stream_stops_for_good_when_the_framing_is_lost(garbage: bytes) -> None:
    decoder = StreamDecoder()
    decoder.feed(encode(Ping()) + garbage + encode(Ping()))
    assert decoder.next_pdu() == Ping()
    with pytest.raises(ParseError) as caught:
        decoder.next_pdu()
    assert not caught.value.resumable
    assert decoder.failed.reason == caught.value.reason and decoder.buffered == 0
    decoder.feed(encode(Ping()))                             # dropped
    with pytest.raises(ParseError):
        decoder.next_pdu()
    assert decoder.buffered == 0


def test_stream_judges_the_header_before_awaiting_the_payload() -> None:
    decoder = StreamDecoder()
    decoder.feed(struct.pack("<BBBxIIII", 1, 18, 0, 0, 0, 0, MAX_PAYLOAD + 4))
    with pytest.raises(ParseError, match="exceeds the limit"):
        decoder.next_pdu()
    decoder = StreamDecoder()
    decoder.feed(struct.pack("<BBBxIIII", 1, 18, 0, 0, 0, 0, MAX_PAYLOAD))
    assert decoder.next_pdu() is None and decoder.buffered == 20


def test_stream_with_a_smaller_limit() -> None:
    decoder = StreamDecoder(max_payload=16)
    decoder.feed(encode(Ping(context=b"1234567890")))        # payload 4 + 12 = 16
    assert decoder.next_pdu() == Ping(context=b"1234567890")
    decoder.feed(encode(Ping(context=b"12345678901234")))    # payload 20
    with pytest.raises(ParseError, match="exceeds the limit of 16"):
        decoder.next_pdu()
