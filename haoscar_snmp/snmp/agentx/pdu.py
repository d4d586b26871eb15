"""What AgentX carries, as plain Python: the PDUs of RFC 2741 section 6 and their parts.

Every PDU is a small frozen dataclass with keyword-only fields. Values are plain Python
with an explicit type tag (`ValueType`): int, bytes, a tuple of ints for an OID,
`ipaddress.IPv4Address`, or None. Nothing here depends on pysnmp; `values` converts.

The header's flags are not fields of their own: NON_DEFAULT_CONTEXT is "context is not
None", NETWORK_BYTE_ORDER is chosen when encoding, and INSTANCE_REGISTRATION, NEW_INDEX
and ANY_INDEX are booleans of the one PDU each applies to.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import ClassVar

HEADER_SIZE = 20
VERSION = 1

Oid = tuple[int, ...]
Value = int | bytes | Oid | ipaddress.IPv4Address | None

# An SNMP message travels in one UDP datagram (65,507 octets at most) and snmpd hands a
# subagent at most one message's worth of varbinds. AgentX's fixed-width encoding can
# grow it about fourfold (a one-octet BER subidentifier takes four), so no legitimate PDU
# comes near 256 KiB. 1 MiB keeps a fourfold margin and bounds what one session buffers.
MAX_PAYLOAD = 1 << 20
# RFC 2578 section 3.5: at most 128 subidentifiers in an OID.
MAX_OID_LEN = 128
# Response's res.index is 16 bits: a PDU with more varbinds or search ranges than it can
# number could not have its errors reported. It also bounds the objects one PDU makes.
MAX_ITEMS = 0xFFFF
# An OID under 1.3.6.1.x, x in 1..255, travels as "prefix x" and the rest (section 5.1).
INTERNET = (1, 3, 6, 1)


class PduType(enum.IntEnum):
    """h.type (RFC 2741 section 6.1)."""

    OPEN = 1
    CLOSE = 2
    REGISTER = 3
    UNREGISTER = 4
    GET = 5
    GET_NEXT = 6
    GET_BULK = 7
    TEST_SET = 8
    COMMIT_SET = 9
    UNDO_SET = 10
    CLEANUP_SET = 11
    NOTIFY = 12
    PING = 13
    INDEX_ALLOCATE = 14
    INDEX_DEALLOCATE = 15
    ADD_AGENT_CAPS = 16
    REMOVE_AGENT_CAPS = 17
    RESPONSE = 18


class Flag(enum.IntFlag):
    """h.flags bits (RFC 2741 section 6.1)."""

    INSTANCE_REGISTRATION = 0x01
    NEW_INDEX = 0x02
    ANY_INDEX = 0x04
    NON_DEFAULT_CONTEXT = 0x08
    NETWORK_BYTE_ORDER = 0x10


class ValueType(enum.IntEnum):
    """v.type of a VarBind (RFC 2741 section 5.4)."""

    INTEGER = 2
    OCTET_STRING = 4
    NULL = 5
    OBJECT_IDENTIFIER = 6
    IP_ADDRESS = 64
    COUNTER32 = 65
    GAUGE32 = 66
    TIME_TICKS = 67
    OPAQUE = 68
    COUNTER64 = 70
    NO_SUCH_OBJECT = 128
    NO_SUCH_INSTANCE = 129
    END_OF_MIB_VIEW = 130


UNSIGNED32_TYPES = (ValueType.COUNTER32, ValueType.GAUGE32, ValueType.TIME_TICKS)
# Null and the three exceptions carry no data after the name.
NO_DATA_TYPES = (ValueType.NULL, ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_INSTANCE,
                 ValueType.END_OF_MIB_VIEW)

class CloseReason(enum.IntEnum):
    """c.reason of a Close PDU (RFC 2741 section 6.2.2)."""

    OTHER = 1
    PARSE_ERROR = 2
    PROTOCOL_ERROR = 3
    TIMEOUTS = 4
    SHUTDOWN = 5
    BY_MANAGER = 6


class ResponseError(enum.IntEnum):
    """res.error of a Response: the AgentX administrative errors (256..268) and the SNMP
    error-status values a subagent returns for Get and the SET phases."""

    NO_ERROR = 0                # noAgentXError / noError
    TOO_BIG = 1
    NO_SUCH_NAME = 2
    BAD_VALUE = 3
    READ_ONLY = 4
    GEN_ERR = 5
    NO_ACCESS = 6
    WRONG_TYPE = 7
    WRONG_LENGTH = 8
    WRONG_ENCODING = 9
    WRONG_VALUE = 10
    NO_CREATION = 11
    INCONSISTENT_VALUE = 12
    RESOURCE_UNAVAILABLE = 13
    COMMIT_FAILED = 14
    UNDO_FAILED = 15
    AUTHORIZATION_ERROR = 16
    NOT_WRITABLE = 17
    INCONSISTENT_NAME = 18
    OPEN_FAILED = 256
    NOT_OPEN = 257
    INDEX_WRONG_TYPE = 258
    INDEX_ALREADY_ALLOCATED = 259
    INDEX_NONE_AVAILABLE = 260
    INDEX_NOT_ALLOCATED = 261
    UNSUPPORTED_CONTEXT = 262
    DUPLICATE_REGISTRATION = 263
    UNKNOWN_REGISTRATION = 264
    UNKNOWN_AGENT_CAPS = 265
    PARSE_ERROR = 266
    REQUEST_DENIED = 267
    PROCESSING_ERROR = 268


@dataclass(frozen=True, slots=True)
class Header:
    """The 20-octet header as read off the wire. `type` stays an int: a header whose
    type is unknown is still a header (the session answers it with parseError)."""

    type: int
    flags: int
    session_id: int
    transaction_id: int
    packet_id: int
    payload_length: int
    version: int = VERSION

    @property
    def network_byte_order(self) -> bool:
        return bool(self.flags & Flag.NETWORK_BYTE_ORDER)


@dataclass(frozen=True, slots=True)
class SearchRange:
    """A range the master asks about: from `start` (itself included when `include`) up
    to `end`, excluded; an empty `end` means no upper bound (RFC 2741 section 5.2)."""

    start: Oid
    end: Oid = ()
    include: bool = False


@dataclass(frozen=True, slots=True)
class VarBind:
    """A name, its type tag and its value (None for Null and the three exceptions)."""

    name: Oid
    type: ValueType
    value: Value = None


@dataclass(frozen=True, kw_only=True)
class Pdu:
    """Fields every PDU has in its header. Subclasses set TYPE."""

    TYPE: ClassVar[PduType]

    session_id: int = 0
    transaction_id: int = 0
    packet_id: int = 0


# PDUs whose layout has an optional context (RFC 2741 section 6.2); the others never
# carry one and the NON_DEFAULT_CONTEXT flag means nothing for them.
@dataclass(frozen=True, kw_only=True)
class _WithContext(Pdu):
    context: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class Open(Pdu):
    TYPE = PduType.OPEN
    timeout: int = 0            # seconds; 0: the master's default
    id: Oid = ()                # the subagent's identity (sysObjectID-like), may be empty
    descr: bytes = b""


@dataclass(frozen=True, kw_only=True)
class Close(Pdu):
    TYPE = PduType.CLOSE
    reason: int = CloseReason.SHUTDOWN


@dataclass(frozen=True, kw_only=True)
class Register(_WithContext):
    TYPE = PduType.REGISTER
    subtree: Oid
    timeout: int = 0
    priority: int = 127         # RFC 2741's default; lower is preferred
    range_subid: int = 0        # 1-based position in subtree of the ranging subid; 0: none
    upper_bound: int | None = None   # present exactly when range_subid != 0
    instance_registration: bool = False


@dataclass(frozen=True, kw_only=True)
class Unregister(_WithContext):
    TYPE = PduType.UNREGISTER
    subtree: Oid
    priority: int = 127
    range_subid: int = 0
    upper_bound: int | None = None


@dataclass(frozen=True, kw_only=True)
class Get(_WithContext):
    TYPE = PduType.GET
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GetNext(_WithContext):
    TYPE = PduType.GET_NEXT
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GetBulk(_WithContext):
    TYPE = PduType.GET_BULK
    non_repeaters: int = 0
    max_repetitions: int = 0
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TestSet(_WithContext):
    TYPE = PduType.TEST_SET
    __test__ = False            # not a pytest test class, despite the name
    varbinds: tuple[VarBind, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CommitSet(Pdu):
    TYPE = PduType.COMMIT_SET


@dataclass(frozen=True, kw_only=True)
class UndoSet(Pdu):
    TYPE = PduType.UNDO_SET


@dataclass(frozen=True, kw_only=True)
class CleanupSet(Pdu):
    TYPE = PduType.CLEANUP_SET


@dataclass(frozen=True, kw_only=True)
class Notify(_WithContext):
    TYPE = PduType.NOTIFY
    varbinds: tuple[VarBind, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Ping(_WithContext):
    TYPE = PduType.PING


@dataclass(frozen=True, kw_only=True)
class IndexAllocate(_WithContext):
    TYPE = PduType.INDEX_ALLOCATE
    varbinds: tuple[VarBind, ...] = ()
    new_index: bool = False
    any_index: bool = False


@dataclass(frozen=True, kw_only=True)
class IndexDeallocate(_WithContext):
    TYPE = PduType.INDEX_DEALLOCATE
    varbinds: tuple[VarBind, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AddAgentCaps(_WithContext):
    TYPE = PduType.ADD_AGENT_CAPS
    id: Oid
    descr: bytes = b""


@dataclass(frozen=True, kw_only=True)
class RemoveAgentCaps(_WithContext):
    TYPE = PduType.REMOVE_AGENT_CAPS
    id: Oid


@dataclass(frozen=True, kw_only=True)
class Response(Pdu):
    TYPE = PduType.RESPONSE
    sys_uptime: int = 0         # hundredths of a second
    error: int = ResponseError.NO_ERROR
    index: int = 0              # 1-based index of the varbind in error; 0: none
    varbinds: tuple[VarBind, ...] = ()

    @classmethod
    def answering(cls, request: Pdu, *, sys_uptime: int = 0, error: int = 0, index: int = 0,
                  varbinds: tuple[VarBind, ...] = ()) -> Response:
        """The Response to `request`: same session, transaction and packet IDs."""
        return cls(session_id=request.session_id, transaction_id=request.transaction_id,
                   packet_id=request.packet_id, sys_uptime=sys_uptime, error=error,
                   index=index, varbinds=varbinds)


PDU_CLASSES: dict[PduType, type[Pdu]] = {
    cls.TYPE: cls for cls in (
        Open, Close, Register, Unregister, Get, GetNext, GetBulk, TestSet, CommitSet,
        UndoSet, CleanupSet, Notify, Ping, IndexAllocate, IndexDeallocate, AddAgentCaps,
        RemoveAgentCaps, Response)
}
CONTEXT_TYPES = frozenset(t for t, cls in PDU_CLASSES.items() if issubclass(cls, _WithContext))
