"""Responses that fit the message size, and GETBULKs with negative counts: two fixes
made at pysnmp's message-processing seam, where the encoded size is known.

Size (RFC 3416 4.2.1-4.2.5, RFC 1157 4.1.2, RFC 3412 7.1.8). A response is encoded
once, as pysnmp always did. If the message is longer than the agent's limit
(snmpEngineMaxMessageSize) or, in SNMPv3, than the manager's msgMaxSize, pysnmp
drops it and counts snmpSilentDrops (twice). Instead, the request's state is put back
and the response encoded again, smaller:

- a GETBULK response loses var-binds from its end: it keeps the largest number of
  leading var-binds whose message fits (RFC 3416 4.2.3), no error;
- any other response becomes tooBig with error-index 0: in SNMPv2c and SNMPv3 with an
  empty var-bind list (RFC 3416), in SNMPv1 with the request's var-binds (RFC 1157
  4.1.2, "of identical form"), and snmpOutTooBigs counts it.

Only when even that does not fit is the response dropped, counted once in
snmpSilentDrops. Reports (SNMPv3 discovery, wrong credentials) are left as they are.

pysnmp keeps a request's state in two caches (the message processing model's, by
state reference, and the security model's) and pops both while encoding; this module
reads both entries before the encoding and puts them back for the second one. It
reaches them by their private names: a pysnmp that renames them makes `install` log a
warning and leave pysnmp's own behaviour in place.

Negative counts (RFC 3416 4.2.3: "if ... non-repeaters ... is less than zero, ... zero
is used"; the same for max-repetitions). pysnmp's decoder refuses a GetBulkRequest
whose non-repeaters or max-repetitions is negative as a parse error. The SNMPv2c and
SNMPv3 decoders get a message type whose GetBulkRequest takes any Integer32 there; the
bulk responder clamps them to zero.
"""

from __future__ import annotations

import logging
from typing import Any

from pyasn1.codec.ber import encoder
from pyasn1.type import namedtype
from pysnmp.proto import errind, error, rfc1157, rfc1901, rfc1902, rfc1905
from pysnmp.proto.api import v1, v2c
from pysnmp.proto.mpmod import rfc3412 as mp3

log = logging.getLogger(__name__)

TOO_BIG = 1
_RESPONSES = (rfc1905.ResponsePDU.tagSet, rfc1157.GetResponsePDU.tagSet)   # one tag, [2]
_MP_CACHE = "_Cache__stateReferenceIndex"      # pysnmp.proto.mpmod.cache.Cache
_SM_CACHE = "_Cache__cache_entries"            # pysnmp.proto.secmod.cache.Cache
_MAX_TRIES = 16                                # encodings of one response, at most


# -- negative GETBULK counts -----------------------------------------------------------

def _with(cls: type, name: str, replace: dict[str, Any]) -> type:
    """A subclass of an ASN.1 SEQUENCE/CHOICE type with some components' types replaced."""
    types = [namedtype.NamedType(t.name, replace.get(t.name, t.asn1Object))
             for t in cls.componentType.namedTypes]
    return type(name, (cls,), {"componentType": namedtype.NamedTypes(*types)})


_LenientBulk = _with(rfc1905.GetBulkRequestPDU, "LenientGetBulkRequestPDU",
                     {"non-repeaters": rfc1902.Integer32(), "max-repetitions": rfc1902.Integer32()})
_LenientPDUs = _with(rfc1905.PDUs, "LenientPDUs", {"get-bulk-request": _LenientBulk()})
_LenientV2cMessage = _with(rfc1901.Message, "LenientV2cMessage", {"data": _LenientPDUs()})
_LenientScopedPDU = _with(mp3.ScopedPDU, "LenientScopedPDU", {"data": _LenientPDUs()})
_LenientScopedPduData = _with(mp3.ScopedPduData, "LenientScopedPduData", {"plaintext": _LenientScopedPDU()})
_LenientV3Message = _with(mp3.SNMPv3Message, "LenientV3Message", {"msgData": _LenientScopedPduData()})


def accept_negative_bulk_counts(engine: Any) -> None:
    """Decode GetBulkRequests whose non-repeaters or max-repetitions is negative."""
    for model, spec in ((1, _LenientV2cMessage), (3, _LenientV3Message)):
        mp = engine.message_processing_subsystems.get(model)
        if mp is None or not hasattr(mp, "_snmpMsgSpec"):
            log.warning("pysnmp's message processing model %d has no message spec: negative "
                        "GETBULK counts stay parse errors (pysnmp changed?)", model)
            continue
        mp._snmpMsgSpec = spec()


# -- responses that fit ----------------------------------------------------------------

class ResponseFitter:
    """Re-encodes a response that does not fit, smaller (see the module's docstring).

    The bulk responder names the requests it serves (`truncatable`); their responses are
    cut short instead of becoming tooBig."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.truncatable: set[Any] = set()
        builder = engine.get_mib_builder()
        (self._engine_max,) = builder.import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineMaxMessageSize")
        (self._too_bigs,) = builder.import_symbols("__SNMPv2-MIB", "snmpOutTooBigs")

    def install(self) -> bool:
        """Wrap every message processing model's response encoder; False if pysnmp's
        caches are not where this module looks (then nothing is wrapped)."""
        models = self.engine.message_processing_subsystems
        for mp in models.values():
            if not isinstance(getattr(getattr(mp, "_cache", None), _MP_CACHE, None), dict):
                log.warning("pysnmp's message cache has changed: responses that do not fit "
                            "stay dropped (no tooBig)")
                return False
        for mp in models.values():
            mp.prepare_response_message = self._wrap(mp, mp.prepare_response_message)
        return True

    def _wrap(self, mp: Any, original: Any) -> Any:
        def prepare_response_message(snmpEngine: Any, mpModel: Any, secModel: Any, secName: Any,
                                     secLevel: Any, ctxEngineId: Any, ctxName: Any, pduVersion: Any,
                                     pdu: Any, maxSize: Any, stateReference: Any, statusInformation: Any) -> Any:
            def encode(response: Any) -> Any:
                return original(snmpEngine, mpModel, secModel, secName, secLevel, ctxEngineId, ctxName,
                                pduVersion, response, maxSize, stateReference, statusInformation)

            if pdu is None or pdu.tagSet not in _RESPONSES or "oid" in (statusInformation or {}):
                return encode(pdu)                  # a report: left as pysnmp makes it
            peeked = self._peek(snmpEngine, mp, stateReference)
            if peeked is None:
                return encode(pdu)
            limit, saved = peeked
            answer, size = self._try(encode, pdu, limit)
            if answer is not None:
                return answer

            def attempt(response: Any) -> tuple[Any, int | None]:
                self._restore(mp, stateReference, saved)
                return self._try(encode, response, limit)

            return self._smaller(snmpEngine, int(mpModel) == 0, stateReference, attempt, pdu, limit, size)

        return prepare_response_message

    def _smaller(self, engine: Any, snmpv1: bool, ref: Any, attempt: Any, pdu: Any, limit: int,
                 size: int | None) -> Any:
        api = v1 if snmpv1 else v2c     # (the two response PDUs have the same tag)
        varbinds = list(api.apiPDU.get_varbinds(pdu))
        if ref in self.truncatable and varbinds:
            return self._truncate(attempt, pdu, limit, size, varbinds)
        api.apiPDU.set_error_status(pdu, TOO_BIG)
        api.apiPDU.set_error_index(pdu, 0)
        api.apiPDU.set_varbinds(pdu, self._request_varbinds(engine, pdu) if api is v1 else [])
        answer, _ = attempt(pdu)
        if answer is None:
            raise error.StatusInformation(errorIndication=errind.tooBig)
        self._too_bigs.syntax += 1
        return answer

    def _truncate(self, attempt: Any, pdu: Any, limit: int, size: int | None, varbinds: list) -> Any:
        """The response with the largest number of leading var-binds whose message fits.

        The first guess comes from the size of the message that did not fit: dropping
        var-binds never makes the other parts longer, so it fits; a length field that got
        shorter may leave room for one more, which is tried. Without that size (SNMPv3
        refuses an oversized message before telling it) the count is bisected."""
        n = len(varbinds)
        guess = n // 2
        if size is not None:
            encoded = v2c.apiPDU.get_varbind_list(pdu)
            guess, excess = n, size - limit
            while guess and excess > 0:
                guess -= 1
                excess -= len(encoder.encode(encoded[guess]))
        fits, too_big = -1, n              # largest count known to fit, smallest known not to
        best, last, count = None, None, guess
        for _ in range(_MAX_TRIES):
            if too_big - fits <= 1:
                break
            if not fits < count < too_big:
                count = (fits + too_big) // 2
            v2c.apiPDU.set_varbinds(pdu, varbinds[:count])
            answer, _ = attempt(pdu)
            last = count
            if answer is None:
                too_big = count
            else:
                fits, best = count, answer
                count += 1
        if best is None:
            raise error.StatusInformation(errorIndication=errind.tooBig)
        if last != fits:                   # the last encoding was not the one sent
            v2c.apiPDU.set_varbinds(pdu, varbinds[:fits])
            best, _ = attempt(pdu)
            if best is None:
                raise error.StatusInformation(errorIndication=errind.tooBig)
        return best

    def _try(self, encode: Any, pdu: Any, limit: int) -> tuple[Any, int | None]:
        """(the encoded answer if it fits else None, the message's size if known). Either
        way the request's state has been taken out of pysnmp's caches."""
        try:
            answer = encode(pdu)
        except error.StatusInformation as exc:
            if exc.get("errorIndication") != errind.tooBig:
                raise
            return None, None               # SNMPv3 refuses it before telling its size
        size = len(answer[2])
        return (answer if size <= limit else None), size

    # -- pysnmp's state caches ---------------------------------------------------------

    def limit(self, engine: Any, ref: Any) -> int:
        """The size a response to the request `ref` may have: the agent's own limit, or
        the manager's msgMaxSize if lower (SNMPv3)."""
        own = int(self._engine_max.syntax)
        for mp in engine.message_processing_subsystems.values():
            entry = getattr(getattr(mp, "_cache", None), _MP_CACHE, {}).get(ref)
            if entry is not None:
                return min(own, int(entry[0].get("msgMaxSize") or own))
        return own

    def _peek(self, engine: Any, mp: Any, ref: Any) -> tuple[int, tuple[dict, Any, dict]] | None:
        """The size limit of the response, and copies of the request's entries in both
        caches. The entry left in the message cache gets the agent's own limit as the
        manager's msgMaxSize, so that SNMPv3 encodes a message over the manager's limit
        and its size is known; the limit returned is the lower of the two."""
        entry = getattr(mp._cache, _MP_CACHE).get(ref)
        if entry is None:
            return None
        live = entry[0]
        sm = engine.security_models.get(int(live.get("securityModel", 0)))
        entries = getattr(getattr(sm, "_cache", None), _SM_CACHE, None)
        sec_ref = live.get("securityStateReference")
        if not isinstance(entries, dict) or sec_ref not in entries:
            return None
        own = int(self._engine_max.syntax)
        limit = min(own, int(live.get("msgMaxSize") or own))
        live["msgMaxSize"] = own
        return limit, (dict(live), sm, dict(entries[sec_ref]))

    def _restore(self, mp: Any, ref: Any, saved: tuple[dict, Any, Any]) -> None:
        info, sm, security = saved
        getattr(mp._cache, _MP_CACHE).pop(ref, None)
        mp._cache.push_by_state_reference(ref, **info)
        getattr(sm._cache, _SM_CACHE)[info["securityStateReference"]] = dict(security)

    def _request_varbinds(self, engine: Any, pdu: Any) -> list:
        """SNMPv1's tooBig echoes the request's var-binds: those of the request in hand
        (the response carries its request-id), else the response's own."""
        try:
            request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")["pdu"]
        except KeyError:
            request = None
        if request is not None and v1.apiPDU.get_request_id(request) == v1.apiPDU.get_request_id(pdu):
            return list(v1.apiPDU.get_varbinds(request))
        return list(v1.apiPDU.get_varbinds(pdu))
