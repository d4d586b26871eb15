"""Bytes to AgentX PDUs (RFC 2741 sections 5 and 6), honouring the NETWORK_BYTE_ORDER
flag of each PDU.

Decoding trusts nothing. Whatever the bytes, `decode_header`, `decode` and
`decode_payload` return a value or raise `ParseError`, never anything else; nothing is
allocated for a length field before it is checked against the octets actually there;
every loop consumes at least four octets per turn and stops at MAX_ITEMS.

Leniency where the RFC's intent is plain and strictness would only break interworking:
reserved octets and unknown flag bits are ignored, any non-zero include octet is true,
the include octet of an OID value means nothing (net-snmp sets it), the padding octets of
an octet string need not be zero, and NON_DEFAULT_CONTEXT on a PDU whose layout has no
context (Open, Close, Response, the SET phases) changes nothing.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable

from .pdu import (
    CONTEXT_TYPES,
    HEADER_SIZE,
    INTERNET,
    MAX_ITEMS,
    MAX_OID_LEN,
    MAX_PAYLOAD,
    NO_DATA_TYPES,
    PDU_CLASSES,
    UNSIGNED32_TYPES,
    VERSION,
    AddAgentCaps,
    CleanupSet,
    Close,
    CloseReason,
    CommitSet,
    Flag,
    Get,
    GetBulk,
    GetNext,
    Header,
    IndexAllocate,
    IndexDeallocate,
    Notify,
    Oid,
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
    Value,
    ValueType,
    VarBind,
)


class ParseError(Exception):
    """Bytes that are not a valid AgentX PDU.

    `header` is set when the 20-octet header was readable (version 1), so the session
    can answer with parseError using its IDs. `resumable` is set by the stream decoder
    when it could skip the bad PDU whole and go on with the next; when it is False the
    stream has lost its framing and the session must close.
    """

    def __init__(self, reason: str, header: Header | None = None,
                 resumable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.header = header
        self.resumable = resumable

    def __str__(self) -> str:
        if self.header is None:
            return self.reason
        h = self.header
        return (f"{self.reason} (type {h.type}, session {h.session_id}, "
                f"transaction {h.transaction_id}, packet {h.packet_id})")


def decode_header(data: bytes | bytearray | memoryview,
                  max_payload: int = MAX_PAYLOAD) -> Header:
    """The header at the start of `data`. Raises ParseError without a header when fewer
    than 20 octets are there or the version is not 1, with the header when its payload
    length is not a multiple of 4 or exceeds `max_payload`."""
    if len(data) < HEADER_SIZE:
        raise ParseError(f"{len(data)} octets, a header needs {HEADER_SIZE}")
    version, pdu_type, flags = data[0], data[1], data[2]
    if version != VERSION:
        raise ParseError(f"AgentX version {version}, only {VERSION} is spoken")
    order = ">" if flags & Flag.NETWORK_BYTE_ORDER else "<"
    session, transaction, packet, length = struct.unpack_from(order + "IIII", data, 4)
    header = Header(pdu_type, flags, session, transaction, packet, length)
    if length % 4:
        raise ParseError(f"payload length {length} is not a multiple of 4", header)
    if length > max_payload:
        raise ParseError(f"payload length {length} exceeds the limit of {max_payload}",
                         header)
    return header


def decode(data: bytes | bytearray | memoryview, max_payload: int = MAX_PAYLOAD) -> Pdu:
    """The one PDU that `data` holds exactly. Raises ParseError, never anything else."""
    header = decode_header(data, max_payload)
    if len(data) != HEADER_SIZE + header.payload_length:
        raise ParseError(f"{len(data) - HEADER_SIZE} octets of payload, the header says "
                         f"{header.payload_length}", header)
    return decode_payload(header, bytes(data[HEADER_SIZE:]))


def decode_payload(header: Header, payload: bytes) -> Pdu:
    """The PDU that `header` announces, from exactly its payload octets."""
    try:
        pdu_type = PduType(header.type)
    except ValueError:
        raise ParseError(f"unknown PDU type {header.type}", header) from None
    r = _Reader(payload, header)
    try:
        context = r.octets() if (header.flags & Flag.NON_DEFAULT_CONTEXT
                                 and pdu_type in CONTEXT_TYPES) else None
        pdu = _DECODERS[pdu_type](r, header, context)
    except (struct.error, ValueError, IndexError, OverflowError) as exc:
        # The reader checks lengths before every read, so this is a defect of ours; a
        # peer's bytes must still never raise anything but ParseError.
        raise ParseError(f"undecodable payload ({exc.__class__.__name__}: {exc})",
                         header) from exc
    if r.pos != len(payload):
        raise ParseError(f"{len(payload) - r.pos} octets left over after the "
                         f"{pdu_type.name} payload", header)
    return pdu


class _Reader:
    """Reads one payload from the front; every read checks the octets are there."""

    def __init__(self, data: bytes, header: Header) -> None:
        self.data = data
        self.pos = 0
        self.header = header
        self.order = ">" if header.flags & Flag.NETWORK_BYTE_ORDER else "<"

    def fail(self, reason: str) -> ParseError:
        return ParseError(reason, self.header)

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.left:
            raise self.fail(f"{what} needs {n} octets, {self.left} left")

    def bytes4(self, what: str) -> tuple[int, int, int]:
        """Three one-octet fields and a reserved octet."""
        self.need(4, what)
        a, b, c = self.data[self.pos:self.pos + 3]
        self.pos += 4
        return a, b, c

    def unpack(self, fmt: str, size: int, what: str) -> tuple:
        self.need(size, what)
        values = struct.unpack_from(self.order + fmt, self.data, self.pos)
        self.pos += size
        return values

    def u16(self, what: str) -> int:
        return self.unpack("H", 2, what)[0]

    def u32(self, what: str) -> int:
        return self.unpack("I", 4, what)[0]

    def oid(self) -> tuple[Oid, bool]:
        n, prefix, include = self.bytes4("OID")
        total = n + 5 if prefix else n
        if total > MAX_OID_LEN:
            raise self.fail(f"OID of {total} subidentifiers (at most {MAX_OID_LEN})")
        subids = self.unpack(f"{n}I", 4 * n, "OID") if n else ()
        if prefix:
            return INTERNET + (prefix,) + subids, include != 0
        return subids, include != 0

    def octets(self) -> bytes:
        n = self.u32("octet string length")
        padded = n + (-n % 4)
        self.need(padded, "octet string")
        value = self.data[self.pos:self.pos + n]
        self.pos += padded
        return value

    def items(self, read: Callable[[], object], what: str) -> tuple:
        """Items to the end of the payload; each read consumes at least 4 octets."""
        out = []
        while self.left:
            if len(out) == MAX_ITEMS:
                raise self.fail(f"more than {MAX_ITEMS} {what}")
            out.append(read())
        return tuple(out)

    def search_range(self) -> SearchRange:
        start, include = self.oid()
        end, _ = self.oid()
        return SearchRange(start, end, include)

    def varbind(self) -> VarBind:
        code, = self.unpack("Hxx", 4, "varbind")
        try:
            t = ValueType(code)
        except ValueError:
            raise self.fail(f"unknown varbind type {code}") from None
        name, _ = self.oid()
        return VarBind(name, t, self.value(t))

    def value(self, t: ValueType) -> Value:
        if t in NO_DATA_TYPES:
            return None
        if t is ValueType.INTEGER:
            return self.unpack("i", 4, "Integer")[0]
        if t in UNSIGNED32_TYPES:
            return self.u32(t.name)
        if t is ValueType.COUNTER64:
            return self.unpack("Q", 8, "Counter64")[0]
        if t is ValueType.OBJECT_IDENTIFIER:
            return self.oid()[0]   # net-snmp sets the include octet here; it means nothing
        octets = self.octets()
        if t is ValueType.IP_ADDRESS:
            if len(octets) != 4:
                raise self.fail(f"IpAddress of {len(octets)} octets")
            return ipaddress.IPv4Address(octets)
        return octets               # OCTET_STRING, OPAQUE


def _ids(h: Header) -> dict[str, int]:
    return {"session_id": h.session_id, "transaction_id": h.transaction_id,
            "packet_id": h.packet_id}


def _known(enum_type: type, value: int) -> int:
    """The enum member for `value` if there is one; an unknown number is kept as is."""
    try:
        return enum_type(value)
    except ValueError:
        return value


def _open(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    timeout, _, _ = r.bytes4("Open fields")
    oid, _ = r.oid()
    return Open(timeout=timeout, id=oid, descr=r.octets(), **_ids(h))


def _close(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    reason, _, _ = r.bytes4("Close reason")
    return Close(reason=_known(CloseReason, reason), **_ids(h))


def _register_fields(r: _Reader) -> dict:
    timeout, priority, range_subid = r.bytes4("registration fields")
    subtree, _ = r.oid()
    if range_subid > len(subtree):
        raise r.fail(f"range_subid {range_subid} is outside a subtree of {len(subtree)}")
    upper = r.u32("upper bound") if range_subid else None
    return {"timeout": timeout, "priority": priority, "range_subid": range_subid,
            "subtree": subtree, "upper_bound": upper}


def _register(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    return Register(context=context, **_register_fields(r), **_ids(h),
                    instance_registration=bool(h.flags & Flag.INSTANCE_REGISTRATION))


def _unregister(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    fields = _register_fields(r)
    del fields["timeout"]           # reserved in Unregister
    return Unregister(context=context, **fields, **_ids(h))


def _get(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    return Get(context=context, ranges=r.items(r.search_range, "search ranges"), **_ids(h))


def _get_next(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    return GetNext(context=context, ranges=r.items(r.search_range, "search ranges"),
                   **_ids(h))


def _get_bulk(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    non_repeaters, max_repetitions = r.unpack("HH", 4, "GetBulk counts")
    return GetBulk(context=context, non_repeaters=non_repeaters,
                   max_repetitions=max_repetitions,
                   ranges=r.items(r.search_range, "search ranges"), **_ids(h))


def _varbind_pdu(cls: type) -> Callable[[_Reader, Header, bytes | None], Pdu]:
    def decode_it(r: _Reader, h: Header, context: bytes | None) -> Pdu:
        return cls(context=context, varbinds=r.items(r.varbind, "varbinds"), **_ids(h))
    return decode_it


def _index_allocate(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    return IndexAllocate(context=context, varbinds=r.items(r.varbind, "varbinds"),
                         new_index=bool(h.flags & Flag.NEW_INDEX),
                         any_index=bool(h.flags & Flag.ANY_INDEX), **_ids(h))


def _empty(cls: type) -> Callable[[_Reader, Header, bytes | None], Pdu]:
    def decode_it(r: _Reader, h: Header, context: bytes | None) -> Pdu:
        return cls(**_ids(h))
    return decode_it


def _ping(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    return Ping(context=context, **_ids(h))


def _add_agent_caps(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    oid, _ = r.oid()
    return AddAgentCaps(context=context, id=oid, descr=r.octets(), **_ids(h))


def _remove_agent_caps(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    oid, _ = r.oid()
    return RemoveAgentCaps(context=context, id=oid, **_ids(h))


def _response(r: _Reader, h: Header, context: bytes | None) -> Pdu:
    uptime, error, index = r.unpack("IHH", 8, "Response fields")
    return Response(sys_uptime=uptime, error=_known(ResponseError, error), index=index,
                    varbinds=r.items(r.varbind, "varbinds"), **_ids(h))


_DECODERS: dict[PduType, Callable[[_Reader, Header, bytes | None], Pdu]] = {
    PduType.OPEN: _open,
    PduType.CLOSE: _close,
    PduType.REGISTER: _register,
    PduType.UNREGISTER: _unregister,
    PduType.GET: _get,
    PduType.GET_NEXT: _get_next,
    PduType.GET_BULK: _get_bulk,
    PduType.TEST_SET: _varbind_pdu(TestSet),
    PduType.COMMIT_SET: _empty(CommitSet),
    PduType.UNDO_SET: _empty(UndoSet),
    PduType.CLEANUP_SET: _empty(CleanupSet),
    PduType.NOTIFY: _varbind_pdu(Notify),
    PduType.PING: _ping,
    PduType.INDEX_ALLOCATE: _index_allocate,
    PduType.INDEX_DEALLOCATE: _varbind_pdu(IndexDeallocate),
    PduType.ADD_AGENT_CAPS: _add_agent_caps,
    PduType.REMOVE_AGENT_CAPS: _remove_agent_caps,
    PduType.RESPONSE: _response,
}
assert set(_DECODERS) == set(PDU_CLASSES)
