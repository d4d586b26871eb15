"""AgentX PDUs to bytes (RFC 2741 sections 5 and 6), in the byte order asked for:
network byte order unless told otherwise.

Encoding checks what it is given and raises ValueError for a value the wire cannot carry
(a subidentifier over 32 bits, an OID over 128 subidentifiers, a count that does not fit
its field) and TypeError for a value of the wrong Python type: both are bugs of the
caller, not a peer's fault.
"""

from __future__ import annotations

import ipaddress
import struct

from .pdu import (
    CONTEXT_TYPES,
    INTERNET,
    MAX_ITEMS,
    MAX_OID_LEN,
    NO_DATA_TYPES,
    UNSIGNED32_TYPES,
    VERSION,
    AddAgentCaps,
    CleanupSet,
    Close,
    CommitSet,
    Flag,
    Get,
    GetBulk,
    GetNext,
    IndexAllocate,
    IndexDeallocate,
    Notify,
    Oid,
    Open,
    Pdu,
    Ping,
    Register,
    RemoveAgentCaps,
    Response,
    SearchRange,
    TestSet,
    UndoSet,
    Unregister,
    ValueType,
    VarBind,
)

_U8, _U16, _U32, _U64 = 0xFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF


class _Writer:
    """Accumulates one payload in one byte order."""

    def __init__(self, network_byte_order: bool) -> None:
        self.order = ">" if network_byte_order else "<"
        self.parts: list[bytes] = []

    def octets4(self, **fields: int) -> None:
        """Four octets: up to three one-octet fields, then reserved zeros."""
        for name, v in fields.items():
            _check(name, v, 0, _U8)
        self.parts.append(bytes(list(fields.values()) + [0] * (4 - len(fields))))

    def u16(self, name: str, v: int) -> None:
        _check(name, v, 0, _U16)
        self.parts.append(struct.pack(self.order + "H", v))

    def u32(self, name: str, v: int) -> None:
        _check(name, v, 0, _U32)
        self.parts.append(struct.pack(self.order + "I", v))

    def oid(self, oid: Oid, include: bool = False) -> None:
        if not isinstance(oid, tuple):
            raise TypeError(f"an OID must be a tuple of ints, got {oid!r}")
        if len(oid) > MAX_OID_LEN:
            raise ValueError(f"OID of {len(oid)} subidentifiers (at most {MAX_OID_LEN})")
        for sub in oid:
            _check("subidentifier", sub, 0, _U32)
        prefix = 0
        if len(oid) >= 5 and oid[:4] == INTERNET and 0 < oid[4] <= _U8:
            prefix, oid = oid[4], oid[5:]
        self.parts.append(bytes((len(oid), prefix, 1 if include else 0, 0)))
        if oid:
            self.parts.append(struct.pack(f"{self.order}{len(oid)}I", *oid))

    def octets(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"octet string must be bytes, not {type(data).__name__}")
        self.u32("octet string length", len(data))
        self.parts.append(bytes(data) + bytes(-len(data) % 4))

    def context(self, pdu: Pdu) -> None:
        context = getattr(pdu, "context", None)
        if context is not None:
            self.octets(context)

    def varbinds(self, varbinds: tuple[VarBind, ...]) -> None:
        _check("number of varbinds", len(varbinds), 0, MAX_ITEMS)
        for vb in varbinds:
            self.varbind(vb)

    def varbind(self, vb: VarBind) -> None:
        t = ValueType(vb.type)
        self.u16("varbind type", t)
        self.parts.append(bytes(2))
        self.oid(vb.name)
        v = vb.value
        if t in NO_DATA_TYPES:
            if v is not None:
                raise ValueError(f"{t.name} carries no value, got {v!r}")
        elif t is ValueType.INTEGER:
            _check("Integer", v, -(1 << 31), (1 << 31) - 1)
            self.parts.append(struct.pack(self.order + "i", v))
        elif t in UNSIGNED32_TYPES:
            _check(t.name, v, 0, _U32)
            self.parts.append(struct.pack(self.order + "I", v))
        elif t is ValueType.COUNTER64:
            _check("Counter64", v, 0, _U64)
            self.parts.append(struct.pack(self.order + "Q", v))
        elif t in (ValueType.OCTET_STRING, ValueType.OPAQUE):
            self.octets(v)  # type: ignore[arg-type]
        elif t is ValueType.IP_ADDRESS:
            if not isinstance(v, ipaddress.IPv4Address):
                raise TypeError(f"IpAddress must be an IPv4Address, got {v!r}")
            self.octets(v.packed)
        elif t is ValueType.OBJECT_IDENTIFIER:
            self.oid(v)  # type: ignore[arg-type]

    def ranges(self, ranges: tuple[SearchRange, ...]) -> None:
        _check("number of search ranges", len(ranges), 0, MAX_ITEMS)
        for r in ranges:
            self.oid(r.start, r.include)
            self.oid(r.end)


def _check(name: str, v: object, low: int, high: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, got {v!r}")
    if not low <= v <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {v}")


def _register_body(w: _Writer, pdu: Register | Unregister, timeout: int) -> None:
    if pdu.range_subid:
        if not 0 < pdu.range_subid <= len(pdu.subtree):
            raise ValueError(f"range_subid {pdu.range_subid} is outside the subtree")
        if pdu.upper_bound is None:
            raise ValueError("range_subid needs an upper_bound")
    elif pdu.upper_bound is not None:
        raise ValueError("upper_bound needs a range_subid")
    w.octets4(timeout=timeout, priority=pdu.priority, range_subid=pdu.range_subid)
    w.oid(pdu.subtree)
    if pdu.upper_bound is not None:
        w.u32("upper bound", pdu.upper_bound)


def _encode_payload(pdu: Pdu, w: _Writer) -> None:
    if pdu.TYPE in CONTEXT_TYPES:
        w.context(pdu)
    match pdu:
        case Open():
            w.octets4(timeout=pdu.timeout)
            w.oid(pdu.id)
            w.octets(pdu.descr)
        case Close():
            w.octets4(reason=pdu.reason)
        case Register():
            _register_body(w, pdu, pdu.timeout)
        case Unregister():
            _register_body(w, pdu, 0)   # the timeout octet is reserved in Unregister
        case GetBulk():
            w.u16("non_repeaters", pdu.non_repeaters)
            w.u16("max_repetitions", pdu.max_repetitions)
            w.ranges(pdu.ranges)
        case Get() | GetNext():
            w.ranges(pdu.ranges)
        case TestSet() | Notify() | IndexAllocate() | IndexDeallocate():
            w.varbinds(pdu.varbinds)
        case AddAgentCaps():
            w.oid(pdu.id)
            w.octets(pdu.descr)
        case RemoveAgentCaps():
            w.oid(pdu.id)
        case Response():
            w.u32("sysUpTime", pdu.sys_uptime)
            w.u16("error", pdu.error)
            w.u16("index", pdu.index)
            w.varbinds(pdu.varbinds)
        case CommitSet() | UndoSet() | CleanupSet() | Ping():
            pass
        case _:
            raise ValueError(f"not an AgentX PDU: {pdu!r}")


def _flags(pdu: Pdu, network_byte_order: bool) -> int:
    flags = Flag.NETWORK_BYTE_ORDER if network_byte_order else Flag(0)
    if pdu.TYPE in CONTEXT_TYPES and getattr(pdu, "context", None) is not None:
        flags |= Flag.NON_DEFAULT_CONTEXT
    if isinstance(pdu, Register) and pdu.instance_registration:
        flags |= Flag.INSTANCE_REGISTRATION
    if isinstance(pdu, IndexAllocate):
        flags |= (Flag.NEW_INDEX if pdu.new_index else 0) | (
            Flag.ANY_INDEX if pdu.any_index else 0)
    return int(flags)


def encode(pdu: Pdu, *, network_byte_order: bool = True) -> bytes:
    """The bytes of `pdu`, header included, in the byte order asked for."""
    w = _Writer(network_byte_order)
    _encode_payload(pdu, w)
    payload = b"".join(w.parts)
    for name in ("session_id", "transaction_id", "packet_id"):
        _check(name, getattr(pdu, name), 0, _U32)
    header = struct.pack(w.order + "BBBxIIII", VERSION, pdu.TYPE,
                         _flags(pdu, network_byte_order), pdu.session_id,
                         pdu.transaction_id, pdu.packet_id, len(payload))
    return header + payload
