"""The SET command responder: checks access while the request is in hand, then queues.

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

from pysnmp.entity.rfc3413 import cmdrsp
from pysnmp.proto.api import v2c

from haoscar_snmp.config.errors import CommitRefused
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.state import SecurityCounters

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
