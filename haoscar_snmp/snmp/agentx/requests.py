"""What the subagent answers: Get, GetNext and GetBulk from the shared MIB view, and the
four SET phases through the same SetHandler and Committer as the standalone agent.

No I/O here: `answer` returns the Response for a request (None for CleanupSet, which
RFC 2741 section 7.2.4.4 says is never answered); only CommitSet and UndoSet await, on
the committer, which persists a change before it is acknowledged.

SET phases (RFC 2741 section 7.2.4), one `_Txn` per transaction ID:

    TestSet   -> SetHandler.prepare: the exact SNMP error (wrongType, wrongValue,
                 noCreation, notWritable, inconsistentValue, ...) at the var-bind's index;
    CommitSet -> the committer persists and applies, then we answer (commitFailed if
                 it raised: nothing was applied). If the configuration changed since
                 TestSet (another SET, a reload), the request is validated again first;
    UndoSet   -> before a commit: the plan is dropped, noError. After one: the previous
                 overrides are committed back if nothing else changed since and the SET
                 held no operator action; otherwise undoFailed, honestly;
    CleanupSet-> the transaction is forgotten; no response.
"""

from __future__ import annotations

import copy
import enum
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from haoscar_snmp.config.errors import CommitRefused
from haoscar_snmp.config.mibmap import Change, SetPlan
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.state import SecurityCounters

from ..mib import OID
from ..responders import Committer, describe
from ..setter import SetError, SetHandler
from ..view import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, MibView
from .pdu import (
    CleanupSet,
    CommitSet,
    Get,
    GetBulk,
    GetNext,
    Pdu,
    Response,
    ResponseError,
    SearchRange,
    TestSet,
    UndoSet,
    ValueType,
    VarBind,
)
from .values import to_pysnmp, varbind

log = logging.getLogger(__name__)

# A GetBulk answer is cut at this many var-binds: a full SNMP message holds fewer, and it
# bounds how long one request holds the loop (about 10 us per step).
MAX_BULK_VARBINDS = 2048
# Transactions whose CleanupSet never came (a master that died mid-SET) are forgotten
# oldest first beyond this many.
MAX_TRANSACTIONS = 32

# RFC 3416 error-status names, as SetError carries them, to the Response's res.error.
_ERRORS = {
    "tooBig": ResponseError.TOO_BIG, "noSuchName": ResponseError.NO_SUCH_NAME,
    "badValue": ResponseError.BAD_VALUE, "readOnly": ResponseError.READ_ONLY,
    "genErr": ResponseError.GEN_ERR, "noAccess": ResponseError.NO_ACCESS,
    "wrongType": ResponseError.WRONG_TYPE, "wrongLength": ResponseError.WRONG_LENGTH,
    "wrongEncoding": ResponseError.WRONG_ENCODING, "wrongValue": ResponseError.WRONG_VALUE,
    "noCreation": ResponseError.NO_CREATION, "inconsistentValue": ResponseError.INCONSISTENT_VALUE,
    "resourceUnavailable": ResponseError.RESOURCE_UNAVAILABLE,
    "commitFailed": ResponseError.COMMIT_FAILED, "undoFailed": ResponseError.UNDO_FAILED,
    "authorizationError": ResponseError.AUTHORIZATION_ERROR,
    "notWritable": ResponseError.NOT_WRITABLE, "inconsistentName": ResponseError.INCONSISTENT_NAME,
}


def error_code(status: str) -> int:
    """The res.error of an RFC 3416 error-status name (genErr for a name we do not know)."""
    return _ERRORS.get(status, ResponseError.GEN_ERR)


class TxnPhase(enum.Enum):
    TESTED = "tested"          # TestSet passed: a plan waits for CommitSet
    COMMITTED = "committed"    # CommitSet persisted and applied it
    PARTIAL = "partial"        # CommitSet failed after part of it was applied on both heads


@dataclass
class _Txn:
    request: list[tuple[OID, Any]]
    plan: SetPlan
    basis: tuple[Any, Any, Any]            # (config, overrides, pending) the plan was made on
    phase: TxnPhase = TxnPhase.TESTED
    before: tuple[Any, Any] | None = None  # overrides and pending before the commit
    after: tuple[Any, Any, Any] | None = None


@dataclass
class RequestHandler:
    """Answers the master's requests for one session. `principal` names the master in the
    audit trail ("agentx:/var/agentx/master"): VACM is the master's, not ours."""

    view: MibView
    set_handler: SetHandler
    committer: Committer
    counters: SecurityCounters
    principal: str
    uptime: Callable[[], int]
    _txns: OrderedDict[int, _Txn] = field(default_factory=OrderedDict)

    @property
    def open_transactions(self) -> int:
        return len(self._txns)

    def reset(self) -> None:
        """A new session: transactions of the old one are void."""
        self._txns.clear()

    async def answer(self, pdu: Pdu) -> Response | None:
        try:
            if getattr(pdu, "context", None) is not None:
                return self._foreign_context(pdu)
            match pdu:
                case Get():
                    return self._reply(pdu, tuple(self._get(r) for r in pdu.ranges))
                case GetNext():
                    return self._reply(pdu, tuple(self._next(r) for r in pdu.ranges))
                case GetBulk():
                    return self._reply(pdu, self._bulk(pdu))
                case TestSet():
                    return self._test_set(pdu)
                case CommitSet():
                    return await self._commit_set(pdu)
                case UndoSet():
                    return await self._undo_set(pdu)
                case CleanupSet():
                    self._txns.pop(pdu.transaction_id, None)
                    return None
            return self._reply(pdu, (), ResponseError.PROCESSING_ERROR)
        except Exception:  # the catch-all at this request's edge: answer, keep the session
            log.exception("AgentX %s failed; %s", type(pdu).__name__, BUG_MARKER)
            if isinstance(pdu, CleanupSet):
                return None
            return self._reply(pdu, (), ResponseError.GEN_ERR, 1)

    def _reply(self, pdu: Pdu, varbinds: tuple[VarBind, ...], error: int = 0,
               index: int = 0) -> Response:
        return Response.answering(pdu, sys_uptime=self.uptime(), error=error, index=index,
                                  varbinds=varbinds)

    def _foreign_context(self, pdu: Pdu) -> Response | None:
        """We register in the default context only, so a master never routes another one
        here; if one comes, it finds nothing: noSuchObject, endOfMibView, notWritable."""
        match pdu:
            case Get():
                return self._reply(pdu, tuple(VarBind(r.start, ValueType.NO_SUCH_OBJECT)
                                              for r in pdu.ranges))
            case GetNext() | GetBulk():
                return self._reply(pdu, tuple(VarBind(r.start, ValueType.END_OF_MIB_VIEW)
                                              for r in pdu.ranges))
            case TestSet():
                return self._reply(pdu, (), ResponseError.NOT_WRITABLE, 1 if pdu.varbinds else 0)
        return self._reply(pdu, (), ResponseError.PROCESSING_ERROR)

    # -- reads ---------------------------------------------------------------------------

    def _get(self, r: SearchRange) -> VarBind:
        if not self.view.contains(r.start):
            return VarBind(r.start, ValueType.NO_SUCH_OBJECT)
        return varbind(r.start, self.view.get(r.start))

    def _next(self, r: SearchRange) -> VarBind:
        """The first instance at or after r.start (at only when r.include), before r.end."""
        if r.include and self.view.contains(r.start):
            value = self.view.get(r.start)
            if value is not NO_SUCH_OBJECT and value is not NO_SUCH_INSTANCE:
                return varbind(r.start, value)
        found = self.view.next(r.start)
        if found is None or (r.end and found[0] >= r.end):
            return VarBind(r.start, ValueType.END_OF_MIB_VIEW)
        return varbind(*found)

    def _bulk(self, pdu: GetBulk) -> tuple[VarBind, ...]:
        """RFC 2741 section 7.2.3.3: non-repeaters once, then up to max-repetitions rows of
        the repeaters, stopping once a whole row is endOfMibView."""
        n = min(pdu.non_repeaters, len(pdu.ranges))
        out = [self._next(r) for r in pdu.ranges[:n]]
        repeaters = list(pdu.ranges[n:])
        for _ in range(pdu.max_repetitions):
            if not repeaters or len(out) + len(repeaters) > MAX_BULK_VARBINDS:
                break
            row = [self._next(r) for r in repeaters]
            out.extend(row)
            if all(vb.type == ValueType.END_OF_MIB_VIEW for vb in row):
                break
            # The next row goes on from each answer, never including it again.
            repeaters = [SearchRange(vb.name, r.end, False) if vb.type != ValueType.END_OF_MIB_VIEW
                         else SearchRange(vb.name, vb.name, False)
                         for vb, r in zip(row, repeaters)]
        return tuple(out)

    # -- SET -----------------------------------------------------------------------------

    def _basis(self) -> tuple[Any, Any, Any]:
        source = self.set_handler.source
        return (source.current(), source.overrides(), source.pending())

    def _test_set(self, pdu: TestSet) -> Response:
        request = [(vb.name, to_pysnmp(vb)) for vb in pdu.varbinds]
        basis = self._basis()
        try:
            plan = self.set_handler.prepare(request)
        except SetError as err:
            self._refused(request, err)
            return self._reply(pdu, (), error_code(err.status), err.index + 1)
        self._txns[pdu.transaction_id] = _Txn(request, plan, basis)
        self._txns.move_to_end(pdu.transaction_id)
        while len(self._txns) > MAX_TRANSACTIONS:
            self._txns.popitem(last=False)
        return self._reply(pdu, ())

    def _refused(self, request: list[tuple[OID, Any]], err: SetError) -> None:
        self.counters.snmp_set_rejected += 1
        self.committer.rejected(self.principal, describe(request), err.status, err.index, err.why)

    async def _commit_set(self, pdu: CommitSet) -> Response:
        txn = self._txns.get(pdu.transaction_id)
        if txn is None or txn.phase is not TxnPhase.TESTED:
            return self._reply(pdu, (), ResponseError.COMMIT_FAILED, 1)
        if not _same(self._basis(), txn.basis):
            # Another SET or a reload came between TestSet and CommitSet: the plan was
            # made on a configuration that is gone. Validate again on the current one.
            try:
                txn.plan = self.set_handler.prepare(txn.request)
            except SetError as err:
                self._txns.pop(pdu.transaction_id, None)
                self._refused(txn.request, err)
                return self._reply(pdu, (), ResponseError.COMMIT_FAILED, err.index + 1)
        source = self.set_handler.source
        before = (copy.deepcopy(source.overrides()), copy.deepcopy(source.pending()))
        try:
            await self.committer.commit(txn.plan, self.principal)
        except CommitRefused as err:
            # The peer head refused a cluster-wide change; a CommitSet can only fail. When
            # part of it stays applied (the first of two timing steps), the master's
            # UndoSet that follows is answered undoFailed, which is what the manager hears.
            self._refused(txn.request, SetError("commitFailed", 0, err.why))
            if err.status == "undoFailed":
                txn.phase = TxnPhase.PARTIAL
            else:
                self._txns.pop(pdu.transaction_id, None)
            return self._reply(pdu, (), ResponseError.COMMIT_FAILED, 1)
        except Exception:
            # Persisting failed (disk full, read-only fs): nothing was applied.
            log.exception("could not commit SET from %s; nothing changed", self.principal)
            self._txns.pop(pdu.transaction_id, None)
            self.counters.snmp_set_rejected += 1
            return self._reply(pdu, (), ResponseError.COMMIT_FAILED, 1)
        self.counters.snmp_set_accepted += 1
        txn.phase, txn.before, txn.after = TxnPhase.COMMITTED, before, self._basis()
        return self._reply(pdu, ())

    async def _undo_set(self, pdu: UndoSet) -> Response:
        txn = self._txns.pop(pdu.transaction_id, None)
        if txn is None or txn.phase is TxnPhase.TESTED:
            return self._reply(pdu, ())          # nothing of ours was applied
        if txn.phase is TxnPhase.PARTIAL:
            log.warning("SET by %s: undo asked after a commit that stayed partly applied on both "
                        "heads, refused (set it again)", self.principal)
            return self._reply(pdu, (), ResponseError.UNDO_FAILED, 1)
        assert txn.before is not None and txn.after is not None
        if txn.plan.actions or not _same(self._basis(), txn.after):
            why = ("it triggered an operator action" if txn.plan.actions
                   else "the configuration changed again since")
            log.warning("SET by %s: undo asked after commit, refused: %s", self.principal, why)
            return self._reply(pdu, (), ResponseError.UNDO_FAILED, 1)
        revert = SetPlan(overrides=txn.before[0], pending=txn.before[1],
                         changes=[Change(c.oid, c.name, c.new, c.old) for c in txn.plan.changes],
                         config_changed=txn.plan.config_changed)
        try:
            await self.committer.commit(revert, f"{self.principal} (undo)")
        except Exception:
            log.exception("could not undo SET from %s", self.principal)
            return self._reply(pdu, (), ResponseError.UNDO_FAILED, 1)
        return self._reply(pdu, ())


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """The same objects: the store replaces, never edits, what it holds."""
    return all(x is y for x, y in zip(a, b))
