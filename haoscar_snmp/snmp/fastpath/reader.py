"""Answering a decoded read request from the MIB view, straight to response octets.

GET, GETNEXT and GETBULK over HAOSCAR-MIB, for SNMPv1 and SNMPv2c, as RFC 3416 (and RFC
2576 4.1.2 for SNMPv1) has them and as the pysnmp path answers them:

* GET: an OID under the MIB's root with no object is noSuchObject, an object without
  that instance noSuchInstance; SNMPv1 answers either, and a Counter64, with noSuchName
  and the request's var-binds, the error-index found as pysnmp's RFC 2576 translation
  finds it.
* GETNEXT / GETBULK: the next instance in the view; SNMPv1 skips Counter64 instances.
  GETBULK takes N = max(min(non-repeaters, L), 0) and M = max(max-repetitions, 0), and
  stops adding var-binds when the next would make the message larger than the agent's
  maximum message size (RFC 3416 4.2.3): a walk gets as many as fit. (The pysnmp path
  also caps the repetitions at 64 var-binds; this one does not.)
* A GET or GETNEXT whose response does not fit is answered tooBig (error-index 0, no
  var-binds in SNMPv2c, the request's in SNMPv1; the caller counts snmpOutTooBigs); if
  even that does not fit, nothing is sent (the caller counts snmpSilentDrops).

An SNMPv3 request is answered by SNMPv2c's rules; its `envelope` (usm.py) wraps the
response PDU and says how long the message around a PDU is, so that the size bound
holds for the whole SNMPv3 message.

A request that reaches outside the MIB's subtree (a name elsewhere, a GETNEXT past the
MIB's last instance) raises `HandOver`: pysnmp's tree serves the rest of the agent's
view, so pysnmp answers the whole request. Nothing here has side effects, so handing over
half-way changes nothing.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..mib import OID
from ..view import MISSING, MibView
from . import ber
from .request import V1, ReadRequest
from .wire import Wire, wire_encoder

NO_SUCH_NAME, TOO_BIG = 2, 1
_PAST = 1 << 32     # an arc after any real one: node.oid + (_PAST,) follows all its instances
_SHORT = ber.SHORT_LENGTHS
_SUFFIX_CACHE = 65536   # encoded instance suffixes (row indexes) kept; they repeat per column
_ZERO_STATUS = b"\x02\x01\x00\x02\x01\x00"


class HandOver(Exception):
    """This request is pysnmp's to answer."""


def _lenlen(n: int) -> int:
    return 1 if n < 0x80 else 1 + (n.bit_length() + 7) // 8


class FastReader:
    """Builds response messages for read requests over one `MibView`."""

    def __init__(self, view: MibView) -> None:
        self.view = view
        self.root: OID = view.root
        self._oids = ber.OidCache()
        self._nodes: dict[OID, tuple[bytes, Wire, bool, int]] = {}
        self._suffixes: dict[OID, bytes] = {}

    def answer(self, req: ReadRequest, max_size: int) -> tuple[bytes | None, bool]:
        """The response message to `req` (None if no response fits in `max_size`), and
        whether it is a tooBig."""
        if req.tag == ber.GET:
            status, index, vbs = self._get(req)
        elif req.tag == ber.GETNEXT:
            status, index, vbs = self._getnext(req)
        else:
            return self._message(req, 0, 0, self._bulk(req, max_size)), False
        message = self._message(req, status, index, vbs)
        if len(message) <= max_size:
            return message, False
        message = self._message(req, TOO_BIG, 0, self._request_varbinds(req) if req.version == V1 else [])
        return (message, True) if len(message) <= max_size else (None, False)

    # -- the three reads ------------------------------------------------------------------

    def _get(self, req: ReadRequest) -> tuple[int, int, list[bytes]]:
        root, n, view = self.root, len(self.root), self.view
        vbs: list[bytes] = []
        bad: list[tuple[int, bool]] = []        # (position, is a Counter64) for SNMPv1
        for idx, (name, name_tlv) in enumerate(zip(req.names, req.name_tlvs)):
            if name[:n] != root:
                raise HandOver
            node = view.node_for(name)
            if node is None:
                value = ber.EXC_NO_SUCH_OBJECT
                bad.append((idx, False))
            else:
                raw = node.raw_get(name)
                if raw is MISSING:
                    value = ber.EXC_NO_SUCH_INSTANCE
                    bad.append((idx, False))
                else:
                    _, wire, c64, _ = self._info(node)
                    value = wire(raw)
                    if c64:
                        bad.append((idx, True))
            vbs.append(ber.tlv(ber.SEQUENCE, name_tlv + value))
        if req.version == V1 and bad:
            return NO_SUCH_NAME, self._v1_error_index(bad), self._request_varbinds(req)
        return 0, 0, vbs

    @staticmethod
    def _v1_error_index(bad: list[tuple[int, bool]]) -> int:
        """RFC 2576 4.1.2 as pysnmp applies it: scanning from the last var-bind, each
        exception moves the index down to it; a Counter64 sets it and stops the scan."""
        index = 0
        for idx, c64 in reversed(bad):
            index = idx + 1
            if c64:
                break
        return index

    def _getnext(self, req: ReadRequest) -> tuple[int, int, list[bytes]]:
        v1 = req.version == V1
        return 0, 0, [self._next(name, v1) for name in req.names]

    def _bulk(self, req: ReadRequest, max_size: int) -> list[bytes]:
        names = req.names
        count = len(names)
        n = min(max(req.non_repeaters, 0), count)
        m = max(req.max_repetitions, 0)
        r = count - n
        limit = self._room(req, max_size)
        vbs: list[bytes] = []
        used = 0
        for name in names[:n]:
            vb = next(self._cursor(name, False))
            used += len(vb)
            if used > limit:
                return vbs
            vbs.append(vb)
        if not r or not m:
            return vbs
        cursors = [self._cursor(name, False) for name in names[n:]]
        append = vbs.append
        for _ in range(m):
            for cursor in cursors:
                vb = next(cursor)
                used += len(vb)
                if used > limit:
                    return vbs
                append(vb)
        return vbs

    # -- pieces -----------------------------------------------------------------------------

    def _next(self, oid: OID, v1: bool) -> bytes:
        """The var-bind of the next instance after `oid`; HandOver past the MIB's end."""
        return next(self._cursor(oid, v1))

    def _cursor(self, oid: OID, v1: bool) -> Iterator[bytes]:
        """The var-binds of the instances after `oid`, in order; HandOver past the MIB's
        end (pysnmp's tree is next). SNMPv1 never sees a Counter64 (RFC 2576 4.1.2.1)."""
        if oid[: len(self.root)] != self.root:
            raise HandOver
        suffixes = self._suffixes
        while True:
            for inst, node, raw in self.view.walk_raw(oid):
                prefix, wire, c64, n = self._info(node)
                if v1 and c64:
                    oid = node.oid + (_PAST,)
                    break
                suffix = inst[n:]
                tail = suffixes.get(suffix)
                if tail is None:
                    tail = ber.arcs_body(suffix)
                    if len(suffixes) < _SUFFIX_CACHE:
                        suffixes[suffix] = tail
                name = prefix + tail
                size = len(name)
                body = (b"\x06" + _SHORT[size] + name if size < 0x80 else ber.tlv(ber.OBJECT_ID, name)) + wire(raw)
                size = len(body)
                yield b"\x30" + _SHORT[size] + body if size < 0x80 else ber.tlv(ber.SEQUENCE, body)
            else:
                raise HandOver

    def _info(self, node: Any) -> tuple[bytes, Wire, bool, int]:
        """(the OID's contents octets, the value encoder, is it a Counter64, OID length)."""
        info = self._nodes.get(node.oid)
        if info is None:
            info = (self._oids.prefix(node.oid), wire_encoder(node.obj), node.obj.base == "Counter64",
                    len(node.oid))
            self._nodes[node.oid] = info
        return info

    @staticmethod
    def _request_varbinds(req: ReadRequest) -> list[bytes]:
        return [ber.tlv(ber.SEQUENCE, name_tlv + ber.NULL) for name_tlv in req.name_tlvs]

    @staticmethod
    def _room(req: ReadRequest, max_size: int) -> int:
        """The most var-bind octets a response to `req` may hold in `max_size` octets."""
        ids = len(ber.integer(req.request_id)) + len(_ZERO_STATUS)
        envelope = req.envelope
        head = 3 + _lenlen(len(req.community)) + len(req.community)     # version + community

        def size(content: int) -> int:
            pdu = ids + 1 + _lenlen(content) + content
            pdu += 1 + _lenlen(pdu)
            if envelope is not None:
                return envelope.size(pdu)
            msg = head + pdu
            return 1 + _lenlen(msg) + msg
        room = max(max_size - (size(max_size) - max_size), 0)
        while room > 0 and size(room) > max_size:   # a few steps at most (length octets)
            room -= 1
        return room

    @staticmethod
    def _message(req: ReadRequest, status: int, index: int, vbs: list[Any]) -> bytes:
        pdu = ber.tlv(ber.RESPONSE, ber.integer(req.request_id) + ber.integer(status) + ber.integer(index)
                      + ber.tlv(ber.SEQUENCE, b"".join(vbs)))
        if req.envelope is not None:
            return req.envelope.seal(pdu)
        return ber.tlv(ber.SEQUENCE, ber.integer(req.version) + ber.tlv(ber.OCTET_STRING, req.community) + pdu)
