"""A thin ctypes binding over Corosync's client libraries: libquorum, libvotequorum, libcmap.

No maintained Python binding exists, so this module declares the few C calls the
membership source needs, from the public headers of Corosync 3 (`corosync/quorum.h`,
`votequorum.h`, `cmap.h`, `corotypes.h`), and nothing else:

    quorum      initialize (model V1), finalize, fd_get, dispatch, trackstart, trackstop,
                and the V1 notify callback (quorate, ring id, member list)
    votequorum  initialize, finalize, fd_get, dispatch, getinfo, trackstart, trackstop,
                and the quorum / expected-votes notify callbacks
    cmap        initialize_map (icmap or stats), finalize, get, iteration over a prefix

Rules:
- Loading is deferred: importing this module needs no Corosync. The first handle opened
  loads the shared objects (sonames of Debian's libquorum5, libvotequorum8, libcmap4);
  a missing one raises `LibraryMissing`, which says which package brings it.
- Every call that returns a `cs_error_t` other than CS_OK raises `CsError`, one exception
  type that carries the call, the code and the code's name.
- A handle keeps its ctypes callback objects (and the structure that points at them) as
  attributes for as long as it lives: the C library calls them during `dispatch`, and a
  collected callback object would be a jump into freed memory.
- Callbacks only record what they were told (the handle's `events` list); the caller
  decides what to do after `dispatch` returns. Nothing here blocks beyond one local IPC
  round trip, and nothing here touches the event loop: the caller runs these calls where
  a stalled Corosync cannot stall anything else.
"""

from __future__ import annotations

import ctypes
from ctypes import (CFUNCTYPE, POINTER, Structure, byref, c_char, c_char_p, c_int, c_size_t, c_uint32,
                    c_uint64, c_void_p)
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

# cs_dispatch_flags_t, track flags (corotypes.h)
CS_DISPATCH_ALL = 2
CS_TRACK_CURRENT = 0x01
CS_TRACK_CHANGES = 0x02

CS_OK = 1
CS_ERR_NO_SECTIONS = 27
CS_ERRORS = {
    1: "CS_OK", 2: "CS_ERR_LIBRARY", 3: "CS_ERR_VERSION", 4: "CS_ERR_INIT", 5: "CS_ERR_TIMEOUT",
    6: "CS_ERR_TRY_AGAIN", 7: "CS_ERR_INVALID_PARAM", 8: "CS_ERR_NO_MEMORY", 9: "CS_ERR_BAD_HANDLE",
    10: "CS_ERR_BUSY", 11: "CS_ERR_ACCESS", 12: "CS_ERR_NOT_EXIST", 13: "CS_ERR_NAME_TOO_LONG",
    14: "CS_ERR_EXIST", 15: "CS_ERR_NO_SPACE", 16: "CS_ERR_INTERRUPT", 17: "CS_ERR_NAME_NOT_FOUND",
    18: "CS_ERR_NO_RESOURCES", 19: "CS_ERR_NOT_SUPPORTED", 20: "CS_ERR_BAD_OPERATION",
    21: "CS_ERR_FAILED_OPERATION", 22: "CS_ERR_MESSAGE_ERROR", 23: "CS_ERR_QUEUE_FULL",
    24: "CS_ERR_QUEUE_NOT_AVAILABLE", 25: "CS_ERR_BAD_FLAGS", 26: "CS_ERR_TOO_BIG",
    27: "CS_ERR_NO_SECTIONS", 28: "CS_ERR_CONTEXT_NOT_FOUND", 30: "CS_ERR_TOO_MANY_GROUPS",
    100: "CS_ERR_SECURITY",
}

# votequorum.h
VOTEQUORUM_INFO_QUORATE = 2
VOTEQUORUM_NODESTATE_MEMBER = 1
VOTEQUORUM_NODESTATE_DEAD = 2
VOTEQUORUM_NODESTATE_LEAVING = 3
VOTEQUORUM_QDEVICE_MAX_NAME_LEN = 255

# cmap.h
CMAP_MAP_ICMAP = 0
CMAP_MAP_STATS = 1
CMAP_KEYNAME_MAXLEN = 255
QUORUM_MODEL_V1 = 1

SONAMES = {"quorum": ("libquorum.so.5", "libquorum5"),
           "votequorum": ("libvotequorum.so.8", "libvotequorum8"),
           "cmap": ("libcmap.so.4", "libcmap4")}


class CsError(Exception):
    """A Corosync library call that did not return CS_OK."""

    def __init__(self, call: str, code: int) -> None:
        self.call = call
        self.code = code
        self.name = CS_ERRORS.get(code, f"cs_error_t {code}")
        super().__init__(f"{call}: {self.name}")


class LibraryMissing(RuntimeError):
    """A Corosync client library could not be loaded."""


# -- C types ---------------------------------------------------------------------------


class RingId(Structure):
    """struct quorum_ring_id / votequorum_ring_id_t: the same layout."""

    _fields_ = [("nodeid", c_uint32), ("seq", c_uint64)]


QUORUM_V1_QUORUM_FN = CFUNCTYPE(None, c_uint64, c_uint32, RingId, c_uint32, POINTER(c_uint32))
QUORUM_V1_NODELIST_FN = CFUNCTYPE(None, c_uint64, RingId, c_uint32, POINTER(c_uint32), c_uint32,
                                  POINTER(c_uint32), c_uint32, POINTER(c_uint32))


class QuorumModelV1Data(Structure):
    _fields_ = [("model", c_int), ("quorum_notify_fn", QUORUM_V1_QUORUM_FN),
                ("nodelist_notify_fn", QUORUM_V1_NODELIST_FN)]


class VotequorumNode(Structure):
    _fields_ = [("nodeid", c_uint32), ("state", c_uint32)]


VQ_QUORUM_FN = CFUNCTYPE(None, c_uint64, c_uint64, c_uint32, c_uint32, POINTER(VotequorumNode))
VQ_EXPECTED_FN = CFUNCTYPE(None, c_uint64, c_uint64, c_uint32)
VQ_NODELIST_FN = CFUNCTYPE(None, c_uint64, c_uint64, RingId, c_uint32, POINTER(c_uint32))


class VotequorumCallbacks(Structure):
    _fields_ = [("quorum_notify_fn", VQ_QUORUM_FN), ("expectedvotes_notify_fn", VQ_EXPECTED_FN),
                ("nodelist_notify_fn", VQ_NODELIST_FN)]


class VotequorumInfoC(Structure):
    _fields_ = [("node_id", ctypes.c_uint), ("node_state", ctypes.c_uint), ("node_votes", ctypes.c_uint),
                ("node_expected_votes", ctypes.c_uint), ("highest_expected", ctypes.c_uint),
                ("total_votes", ctypes.c_uint), ("quorum", ctypes.c_uint), ("flags", ctypes.c_uint),
                ("qdevice_votes", ctypes.c_uint), ("qdevice_name", c_char * VOTEQUORUM_QDEVICE_MAX_NAME_LEN)]


# -- loading ---------------------------------------------------------------------------

_H = POINTER(c_uint64)
_SIGNATURES: dict[str, dict[str, tuple[Any, ...]]] = {
    "quorum": {
        "quorum_model_initialize": (_H, c_int, c_void_p, POINTER(c_uint32), c_void_p),
        "quorum_finalize": (c_uint64,),
        "quorum_fd_get": (c_uint64, POINTER(c_int)),
        "quorum_dispatch": (c_uint64, c_int),
        "quorum_trackstart": (c_uint64, ctypes.c_uint),
        "quorum_trackstop": (c_uint64,),
    },
    "votequorum": {
        "votequorum_initialize": (_H, POINTER(VotequorumCallbacks)),
        "votequorum_finalize": (c_uint64,),
        "votequorum_fd_get": (c_uint64, POINTER(c_int)),
        "votequorum_dispatch": (c_uint64, c_int),
        "votequorum_getinfo": (c_uint64, ctypes.c_uint, POINTER(VotequorumInfoC)),
        "votequorum_trackstart": (c_uint64, c_uint64, ctypes.c_uint),
        "votequorum_trackstop": (c_uint64,),
    },
    "cmap": {
        "cmap_initialize_map": (_H, c_int),
        "cmap_finalize": (c_uint64,),
        "cmap_get": (c_uint64, c_char_p, c_void_p, POINTER(c_size_t), POINTER(c_int)),
        "cmap_iter_init": (c_uint64, c_char_p, _H),
        "cmap_iter_next": (c_uint64, c_uint64, c_void_p, POINTER(c_size_t), POINTER(c_int)),
        "cmap_iter_finalize": (c_uint64, c_uint64),
    },
}
_loaded: dict[str, SimpleNamespace] = {}


def library(kind: str) -> SimpleNamespace:
    """The calls of one library ("quorum", "votequorum", "cmap"), each built from its
    prototype (every one returns a cs_error_t), loaded on first use."""
    lib = _loaded.get(kind)
    if lib is not None:
        return lib
    soname, package = SONAMES[kind]
    try:
        cdll = ctypes.CDLL(soname)
    except OSError as exc:
        raise LibraryMissing(f"cannot load {soname} ({exc}); install Debian's {package} "
                             f"(it comes with corosync)") from None
    lib = SimpleNamespace(**{name: ctypes.CFUNCTYPE(c_int, *argtypes)((name, cdll))
                             for name, argtypes in _SIGNATURES[kind].items()})
    _loaded[kind] = lib
    return lib


def _check(call: str, code: int) -> None:
    if code != CS_OK:
        raise CsError(call, code)


# -- quorum ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuorumEvent:
    """What the quorum V1 notify callback said."""

    quorate: bool
    ring_nodeid: int
    ring_seq: int
    members: tuple[int, ...]


class QuorumHandle:
    """A libquorum connection (model V1). `events` collects QuorumEvents during dispatch."""

    def __init__(self) -> None:
        self._lib = library("quorum")
        self.events: list[QuorumEvent] = []
        self._handle = c_uint64(0)
        # Kept alive as long as the handle: the library calls them from dispatch.
        self._quorum_fn = QUORUM_V1_QUORUM_FN(self._on_quorum)
        self._nodelist_fn = ctypes.cast(None, QUORUM_V1_NODELIST_FN)
        self._model = QuorumModelV1Data(QUORUM_MODEL_V1, self._quorum_fn, self._nodelist_fn)
        quorum_type = c_uint32(0)
        _check("quorum_model_initialize", self._lib.quorum_model_initialize(
            byref(self._handle), QUORUM_MODEL_V1, ctypes.cast(byref(self._model), c_void_p),
            byref(quorum_type), None))
        self.quorum_type = quorum_type.value
        self._open = True

    def _on_quorum(self, _handle: int, quorate: int, ring_id: RingId, entries: int, members: Any) -> None:
        self.events.append(QuorumEvent(bool(quorate), ring_id.nodeid, ring_id.seq,
                                       tuple(members[i] for i in range(entries))))

    def fd(self) -> int:
        fd = c_int(-1)
        _check("quorum_fd_get", self._lib.quorum_fd_get(self._handle, byref(fd)))
        return fd.value

    def trackstart(self, flags: int = CS_TRACK_CURRENT | CS_TRACK_CHANGES) -> None:
        _check("quorum_trackstart", self._lib.quorum_trackstart(self._handle, flags))

    def trackstop(self) -> None:
        _check("quorum_trackstop", self._lib.quorum_trackstop(self._handle))

    def dispatch(self) -> None:
        """Run the callbacks of every notification waiting (CS_DISPATCH_ALL; returns at once
        when none is)."""
        _check("quorum_dispatch", self._lib.quorum_dispatch(self._handle, CS_DISPATCH_ALL))

    def finalize(self) -> None:
        if self._open:
            self._open = False
            _check("quorum_finalize", self._lib.quorum_finalize(self._handle))


# -- votequorum ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VotequorumInfo:
    node_id: int
    state: int                  # VOTEQUORUM_NODESTATE_*
    votes: int
    expected_votes: int
    highest_expected: int
    total_votes: int
    quorum: int                 # votes needed
    flags: int                  # VOTEQUORUM_INFO_*

    @property
    def quorate(self) -> bool:
        return bool(self.flags & VOTEQUORUM_INFO_QUORATE)


@dataclass(frozen=True, slots=True)
class VotequorumEvent:
    """What one votequorum notify callback said: kind "quorum" (quorate, nodes with their
    state) or "expected" (expected_votes)."""

    kind: str
    quorate: bool = False
    nodes: tuple[tuple[int, int], ...] = ()
    expected_votes: int = 0


class VotequorumHandle:
    """A libvotequorum connection. `events` collects VotequorumEvents during dispatch."""

    def __init__(self) -> None:
        self._lib = library("votequorum")
        self.events: list[VotequorumEvent] = []
        self._handle = c_uint64(0)
        self._quorum_fn = VQ_QUORUM_FN(self._on_quorum)
        self._expected_fn = VQ_EXPECTED_FN(self._on_expected)
        self._callbacks = VotequorumCallbacks(self._quorum_fn, self._expected_fn,
                                              ctypes.cast(None, VQ_NODELIST_FN))
        _check("votequorum_initialize", self._lib.votequorum_initialize(byref(self._handle),
                                                                        byref(self._callbacks)))
        self._open = True

    def _on_quorum(self, _handle: int, _context: int, quorate: int, entries: int, nodes: Any) -> None:
        self.events.append(VotequorumEvent("quorum", quorate=bool(quorate),
                                           nodes=tuple((nodes[i].nodeid, nodes[i].state) for i in range(entries))))

    def _on_expected(self, _handle: int, _context: int, expected: int) -> None:
        self.events.append(VotequorumEvent("expected", expected_votes=expected))

    def fd(self) -> int:
        fd = c_int(-1)
        _check("votequorum_fd_get", self._lib.votequorum_fd_get(self._handle, byref(fd)))
        return fd.value

    def trackstart(self, flags: int = CS_TRACK_CURRENT | CS_TRACK_CHANGES) -> None:
        _check("votequorum_trackstart", self._lib.votequorum_trackstart(self._handle, 0, flags))

    def trackstop(self) -> None:
        _check("votequorum_trackstop", self._lib.votequorum_trackstop(self._handle))

    def dispatch(self) -> None:
        _check("votequorum_dispatch", self._lib.votequorum_dispatch(self._handle, CS_DISPATCH_ALL))

    def getinfo(self, node_id: int = 0) -> VotequorumInfo:
        """What votequorum knows of a node (0: the local node)."""
        info = VotequorumInfoC()
        _check("votequorum_getinfo", self._lib.votequorum_getinfo(self._handle, node_id, byref(info)))
        return VotequorumInfo(info.node_id, info.node_state, info.node_votes, info.node_expected_votes,
                              info.highest_expected, info.total_votes, info.quorum, info.flags)

    def finalize(self) -> None:
        if self._open:
            self._open = False
            _check("votequorum_finalize", self._lib.votequorum_finalize(self._handle))


# -- cmap ------------------------------------------------------------------------------

_INTS = {1: ctypes.c_int8, 2: ctypes.c_uint8, 3: ctypes.c_int16, 4: ctypes.c_uint16, 5: ctypes.c_int32,
         6: ctypes.c_uint32, 7: ctypes.c_int64, 8: ctypes.c_uint64}
_FLOATS = {9: ctypes.c_float, 10: ctypes.c_double}
CMAP_VALUETYPE_STRING = 11
CMAP_VALUETYPE_BINARY = 12
_VALUE_BUFFER = 1024


def decode_value(kind: int, raw: bytes) -> int | float | str | bytes:
    """A cmap value from its type and bytes."""
    if kind in _INTS:
        return _INTS[kind].from_buffer_copy(raw.ljust(ctypes.sizeof(_INTS[kind]), b"\0")).value
    if kind in _FLOATS:
        return _FLOATS[kind].from_buffer_copy(raw.ljust(ctypes.sizeof(_FLOATS[kind]), b"\0")).value
    if kind == CMAP_VALUETYPE_STRING:
        return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
    return raw


class CmapHandle:
    """A libcmap connection to one map: the configuration and runtime map (icmap), or the
    statistics map (stats=True), where knet's per-link figures live."""

    def __init__(self, stats: bool = False) -> None:
        self._lib = library("cmap")
        self._handle = c_uint64(0)
        _check("cmap_initialize_map", self._lib.cmap_initialize_map(
            byref(self._handle), CMAP_MAP_STATS if stats else CMAP_MAP_ICMAP))
        self._open = True
        self._buffer = ctypes.create_string_buffer(_VALUE_BUFFER)

    def get(self, key: str) -> int | float | str | bytes:
        """One key's value; CsError CS_ERR_NOT_EXIST if there is no such key."""
        size = c_size_t(_VALUE_BUFFER)
        kind = c_int(0)
        _check(f"cmap_get {key}", self._lib.cmap_get(self._handle, key.encode(), self._buffer,
                                                      byref(size), byref(kind)))
        return decode_value(kind.value, self._buffer.raw[: size.value])

    def keys(self, prefix: str) -> list[str]:
        """The names of the keys under prefix, in cmap's order."""
        it = c_uint64(0)
        _check(f"cmap_iter_init {prefix}", self._lib.cmap_iter_init(self._handle, prefix.encode(), byref(it)))
        names: list[str] = []
        name = ctypes.create_string_buffer(CMAP_KEYNAME_MAXLEN + 1)
        try:
            for _ in range(100_000):        # bounded: a map is far smaller
                size = c_size_t(0)
                kind = c_int(0)
                code = self._lib.cmap_iter_next(self._handle, it, name, byref(size), byref(kind))
                if code == CS_ERR_NO_SECTIONS:
                    break
                _check("cmap_iter_next", code)
                names.append(name.value.decode("utf-8", errors="replace"))
        finally:
            self._lib.cmap_iter_finalize(self._handle, it)
        return names

    def items(self, prefix: str) -> dict[str, int | float | str | bytes]:
        return {key: self.get(key) for key in self.keys(prefix)}

    def finalize(self) -> None:
        if self._open:
            self._open = False
            _check("cmap_finalize", self._lib.cmap_finalize(self._handle))
