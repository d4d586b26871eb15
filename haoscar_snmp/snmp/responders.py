"""The command responders: GET, GETNEXT and GETBULK served by pysnmp's responders with
RFC 3416's error rules, and the SET responder, which checks access while the request is
in hand, then queues.

Reads. pysnmp reports an error raised while reading (authorizationError, genErr) at
error-index 1 whenever the request has more var-binds than the failed one's position;
`ExactErrorIndex` reports it at the var-bind that failed. pysnmp's GETBULK answers
nothing when it has no var-binds to return (no var-binds asked, or max-repetitions 0
without non-repeaters); `BulkResponder` answers them with an empty list (RFC 3416
4.2.3), treats negative counts as zero, and names its requests to the `ResponseFitter`
(fit.py), which cuts an oversized GETBULK response short instead of answering tooBig.

SET.
pysnmp answers a SET synchronously from its receive callback. We must not answer before
the change is on disk (an acknowledged SET survives `kill -9`), and must not block the
event loop on fsync either. So the handler only records the request: it
checks VACM write access for every var-bind (the request's security context is only
available now), notes who asked, and queues. One worker takes SETs in arrival order,
validates all var-binds against the then-current configuration, has the committer
persist and apply the change, and only then sends the response.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from pyasn1.codec.ber import encoder
from pysnmp.entity.rfc3413 import cmdrsp
from pysnmp.proto.api import v2c
from pysnmp.smi import error as smi_error

from haoscar_snmp.config.errors import CommitRefused
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.state import SecurityCounters

from .fastpath import ber
from .fit import ResponseFitter
from .mib import OID
from .setter import SetError, SetHandler, SetPlan
from .values import display

log = logging.getLogger(__name__)
audit = logging.getLogger("haoscar_snmp.audit")

_MODELS = {1: "v1", 2: "v2c", 3: "v3"}


class Committer(Protocol):
    """Persists and applies a validated SET (fcaps/configuration implements it)."""

    async def commit(self, plan: SetPlan, principal: str) -> None: ...

    def rejected(self, principal: str, request: str, status: str, index: int, why: str) -> None:
        """A refused SET: `request` is the var-binds as an operator reads them (escaped)."""


def describe(varbinds: list[tuple[OID, Any]]) -> str:
    """A var-bind list for the audit log: dotted names and escaped values."""
    return ", ".join(".".join(map(str, oid)) + "=" + display(value) for oid, value in varbinds)


def principal_of(snmp_engine: Any) -> str:
    """Who is asking, as the audit trail names them: 'v3:admin@127.0.0.1'."""
    ctx = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
    model = _MODELS.get(int(ctx["securityModel"]), str(ctx["securityModel"]))
    address = ctx.get("transportAddress")
    host = address[0] if address else "?"
    return f"{model}:{display(ctx['securityName'])}@{host}"


class ExactErrorIndex:
    """Reports an error raised while serving a read at the var-bind that caused it."""

    def handle_management_operation(self, snmpEngine: Any, stateReference: Any,
                                     contextName: Any, PDU: Any) -> None:
        try:
            self._serve(snmpEngine, stateReference, contextName, PDU)
        except smi_error.MibOperationError as exc:
            if "oid" in exc:       # pysnmp turns these into a report: leave them to it
                raise
            varbinds = list(v2c.apiPDU.get_varbinds(PDU))
            status = cmdrsp.CommandResponderBase.SMI_ERROR_MAP.get(type(exc), "genErr")
            index = exc.get("idx")
            index = index + 1 if isinstance(index, int) and 0 <= index < len(varbinds) else 1
            self.send_varbinds(snmpEngine, stateReference, status, index, varbinds)  # type: ignore[attr-defined]
            self.release_state_information(stateReference)  # type: ignore[attr-defined]

    def _serve(self, snmpEngine: Any, stateReference: Any, contextName: Any, PDU: Any) -> None:
        """pysnmp's own handling of the request."""
        super().handle_management_operation(  # type: ignore[misc]
            snmpEngine, stateReference, contextName, PDU)


class GetResponder(ExactErrorIndex, cmdrsp.GetCommandResponder):
    """GET (RFC 3416 4.2.1)."""


class NextResponder(ExactErrorIndex, cmdrsp.NextCommandResponder):
    """GETNEXT (RFC 3416 4.2.2)."""


def _varbind_size(varbind: Any) -> int:
    """The BER length of a var-bind's name and value (its SEQUENCE header left out: the
    budget only has to tell when a response can no longer fit)."""
    name, value = varbind
    return len(ber.oid(tuple(name))) + len(encoder.encode(value))


class BulkResponder(ExactErrorIndex, cmdrsp.BulkCommandResponder):
    """GETBULK (RFC 3416 4.2.3): N non-repeaters answered once, then up to M repetitions
    of the R others, as far as the message size allows: repetitions stop once the
    var-binds read would no longer fit the response's limit (the agent's
    snmpEngineMaxMessageSize, or a lower SNMPv3 msgMaxSize), and the fitter then cuts
    the response to the exact number that fits.

    And at most `max_varbinds` repeated var-binds (500, pysnmp's own cap is 64): this
    path reads a var-bind in about 100 us, so a response filled to 65,507 octets (some
    3,000 var-binds) would hold the loop for a third of a second; 500 keep it near 50 ms.
    RFC 3416 4.2.3 lets an agent answer fewer var-binds when the processing would take
    long. The fast path, some 40 times cheaper, fills the message; this path serves the
    names outside HAOSCAR-MIB and walks past its end."""

    max_varbinds = 500

    def __init__(self, snmp_engine: Any, snmp_context: Any, fitter: ResponseFitter) -> None:
        super().__init__(snmp_engine, snmp_context)
        self._fitter = fitter

    def handle_management_operation(self, snmpEngine: Any, stateReference: Any,
                                     contextName: Any, PDU: Any) -> None:
        self._fitter.truncatable.add(stateReference)
        try:
            super().handle_management_operation(snmpEngine, stateReference, contextName, PDU)
        finally:
            self._fitter.truncatable.discard(stateReference)

    def _serve(self, snmpEngine: Any, stateReference: Any, contextName: Any, PDU: Any) -> None:
        asked = list(v2c.apiPDU.get_varbinds(PDU))
        n = min(max(int(v2c.apiBulkPDU.get_non_repeaters(PDU)), 0), len(asked))
        r = len(asked) - n
        m = min(max(int(v2c.apiBulkPDU.get_max_repetitions(PDU)), 0), self.max_varbinds // r) if r else 0
        read_next = self.snmpContext.get_mib_instrum(contextName).read_next_variables
        context = dict(snmpEngine=snmpEngine, acFun=self.verify_access, cbCtx=self.cbCtx)
        out: list[Any] = list(read_next(*asked[:n], **context)) if n else []
        budget = self._fitter.limit(snmpEngine, stateReference) - sum(map(_varbind_size, out))
        row = asked[n:]
        for _ in range(m):
            if budget < 0:      # what was read already does not fit: the fitter cuts it
                break
            try:
                row = list(read_next(*row, **context))
            except smi_error.MibOperationError as exc:
                if isinstance(exc.get("idx"), int):
                    exc.update({"idx": n + exc["idx"]})   # its place in the request
                raise
            out.extend(row)
            budget -= sum(map(_varbind_size, row))
        self.send_varbinds(snmpEngine, stateReference, 0, 0, out)
        self.release_state_information(stateReference)


class SetResponder(cmdrsp.SetCommandResponder):
    """Two-phase, persisted-before-acknowledged SET over our subtree only."""

    def __init__(self, snmp_engine: Any, snmp_context: Any, handler: SetHandler,
                 committer: Committer, counters: SecurityCounters, root: OID) -> None:
        super().__init__(snmp_engine, snmp_context)
        self._handler = handler
        self._committer = committer
        self._counters = counters
        self._root = root
        self._deferred: set[Any] = set()
        self._queue: asyncio.Queue[tuple[Any, Any, list, str]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.queued = 0                 # SETs queued, ever (the request meter reads it)

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="snmp-set")

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass

    def handle_management_operation(self, snmpEngine: Any, stateReference: Any,
                                     contextName: Any, PDU: Any) -> None:
        varbinds = list(v2c.apiPDU.get_varbinds(PDU))
        principal = principal_of(snmpEngine)
        context = dict(snmpEngine=snmpEngine, acFun=self.verify_access, cbCtx=self.cbCtx)
        for idx, (name, val) in enumerate(varbinds):
            context["idx"] = idx
            try:
                not_in_view = self.verify_access("write", (name, val), **context)
            except Exception as exc:  # pysnmp maps missing group/access to authorizationError
                status = cmdrsp.CommandResponderBase.SMI_ERROR_MAP.get(type(exc), "genErr")
                self._refuse(snmpEngine, stateReference, varbinds, principal,
                             SetError(status, idx, "no write access for this principal"))
                return
            if not_in_view:
                self._refuse(snmpEngine, stateReference, varbinds, principal,
                             SetError("noAccess", idx, "object not in this principal's write view"))
                return
            if tuple(name)[: len(self._root)] != self._root:
                self._refuse(snmpEngine, stateReference, varbinds, principal,
                             SetError("notWritable", idx, "only HAOSCAR-MIB objects are writable"))
                return
        self._deferred.add(stateReference)
        self.queued += 1
        self._queue.put_nowait((snmpEngine, stateReference, varbinds, principal))

    def release_state_information(self, stateReference: Any) -> None:
        if stateReference in self._deferred:
            return  # the worker answers later, and releases then
        super().release_state_information(stateReference)

    def _refuse(self, engine: Any, ref: Any, varbinds: list, principal: str, err: SetError) -> None:
        self._counters.snmp_set_rejected += 1
        self._committer.rejected(principal, describe([(tuple(n), v) for n, v in varbinds]),
                                 err.status, err.index, err.why)
        self.send_varbinds(engine, ref, err.status, err.index + 1, varbinds)

    async def _work(self) -> None:
        while True:
            engine, ref, varbinds, principal = await self._queue.get()
            try:
                await self._process(engine, ref, varbinds, principal)
            except Exception:  # the catch-all at this loop's edge
                log.exception("SET processing failed; %s", BUG_MARKER)
                self._answer(engine, ref, "genErr", 1, varbinds)

    async def _process(self, engine: Any, ref: Any, varbinds: list, principal: str) -> None:
        request = [(tuple(name), val) for name, val in varbinds]
        try:
            plan = self._handler.prepare(request)
        except SetError as err:
            self._counters.snmp_set_rejected += 1
            self._committer.rejected(principal, describe(request), err.status, err.index, err.why)
            self._answer(engine, ref, err.status, err.index + 1, varbinds)
            return
        try:
            await self._committer.commit(plan, principal)
        except CommitRefused as err:
            # The peer head refused a cluster-wide change: nothing changed on either head.
            self._counters.snmp_set_rejected += 1
            self._committer.rejected(principal, describe(request), err.status, 0, err.why)
            self._answer(engine, ref, err.status, 1, varbinds)
            return
        except Exception:
            # Persisting failed (disk full, read-only fs): nothing was applied.
            log.exception("could not commit SET from %s; nothing changed", principal)
            self._counters.snmp_set_rejected += 1
            self._answer(engine, ref, "commitFailed", 1, varbinds)
            return
        self._counters.snmp_set_accepted += 1
        self._answer(engine, ref, 0, 0, varbinds)

    def _answer(self, engine: Any, ref: Any, status: Any, index: int, varbinds: list) -> None:
        self._deferred.discard(ref)
        try:
            self.send_varbinds(engine, ref, status, index, varbinds)
        finally:
            super().release_state_information(ref)
