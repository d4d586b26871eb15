"""Serving our MIB subtree from the live view inside pysnmp, and delegating the rest.

pysnmp calls an instrumentation controller synchronously for GET, GETNEXT and GETBULK.
This one answers names under HAOSCAR-MIB from `MibView` and hands every other name to
pysnmp's own controller (SNMPv2-MIB system group, snmp counters, ...). It calls the
access-control function from the request context for every instance it returns, so
VACM applies to our subtree exactly as it does to pysnmp's (skipping this would silently
bypass VACM). Writes never come here: `responders.SetResponder` handles SET.
"""

from __future__ import annotations

from typing import Any

from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi import error as smi_error
from pysnmp.smi.instrum import AbstractMibInstrumController

from .mib import OID
from .view import NO_SUCH_OBJECT, MibView

END_OF_MIB_VIEW = rfc1905.endOfMibView
_NULL = rfc1902.Null("")


def _principal(context: dict[str, Any]) -> tuple[Any, Any]:
    """(security model, security name) of the request being served."""
    engine = context.get("snmpEngine")
    if engine is None:
        return (None, None)
    ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
    return (int(ctx["securityModel"]), bytes(ctx["securityName"]))


class HaoscarInstrumController(AbstractMibInstrumController):
    """Dispatches our subtree to `MibView`, everything else to pysnmp's controller."""

    def __init__(self, view: MibView, fallback: Any) -> None:
        self.view = view
        self.fallback = fallback
        self.root: OID = view.root
        # Per principal, the smallest OID after which pysnmp's tree had nothing visible.
        # pysnmp finds "nothing more" by scanning its USM/VACM tables and access-checking
        # every row, ~25 ms a time; a GETBULK at the end of the view asks that up to 64
        # times in one request and stalled the loop for over a second. Views do not
        # change while the agent runs, so the answer can be remembered.
        self._end_of_view: dict[tuple[Any, Any], OID] = {}
        # Per principal, whether our subtree is in its read view. Every view the agent
        # defines (agent.py) includes or excludes HAOSCAR-MIB as a whole, so one check
        # per principal answers for every instance; pysnmp's check costs ~70 us each.
        self._subtree_readable: dict[tuple[Any, Any], bool] = {}

    def read_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        ac_fun = context.get("acFun")
        for idx, (name, val) in enumerate(varBinds):
            oid = tuple(name)
            context["idx"] = idx
            if not self.view.contains(oid):
                try:
                    out.extend(self._fallback("read_variables", name, val, idx, context))
                except smi_error.NoAccessError:
                    # pysnmp's tree refuses a name outside the read view (or a
                    # not-accessible one) for the whole request; RFC 3416 4.2.1 and RFC
                    # 3415 3.2 make it this var-bind's noSuchObject (SNMPv1: noSuchName
                    # at its index), the others answered.
                    out.append((rfc1902.ObjectName(oid), NO_SUCH_OBJECT))
                continue
            value = self.view.get(oid)
            if ac_fun and not self._readable(oid, value, context):
                value = NO_SUCH_OBJECT  # not in this principal's view
            out.append((rfc1902.ObjectName(oid), value))
        return out

    def read_next_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        for idx, (name, val) in enumerate(varBinds):
            context["idx"] = idx
            out.append(self._next(tuple(name), idx, context))
        return out

    def write_variables(self, *varBinds: Any, **context: Any) -> list[tuple[Any, Any]]:
        raise smi_error.NotWritableError(idx=context.get("idx", 0))

    # -- helpers ------------------------------------------------------------------------

    def _next(self, oid: OID, idx: int, context: dict[str, Any]) -> tuple[Any, Any]:
        root = self.root
        if oid[: len(root)] == root:
            ours = self._our_next(oid, context)
            # pysnmp's tree has nothing inside our subtree: its next is past our end.
            return ours or self._fallback_next(oid, idx, context)
        if oid < root:
            theirs = self._fallback_next(oid, idx, context)
            if theirs[1] is not END_OF_MIB_VIEW and tuple(theirs[0]) < root:
                return theirs
            ours = self._our_next(oid, context)
            return ours or theirs
        return self._fallback_next(oid, idx, context)

    def _our_next(self, oid: OID, context: dict[str, Any]) -> tuple[Any, Any] | None:
        ac_fun = context.get("acFun")
        while True:
            found = self.view.next(oid)
            if found is None:
                return None
            oid, value = found
            if ac_fun:
                try:
                    if not self._readable(oid, value, context):
                        continue  # not in view: keep looking
                except smi_error.NoAccessError:
                    continue  # e.g. Counter64 asked for over SNMPv1 (RFC 2576 4.1.2.1)
            return rfc1902.ObjectName(oid), value

    def _readable(self, oid: OID, value: Any, context: dict[str, Any]) -> bool:
        """VACM read access to an instance of our subtree, checked once per principal.

        SNMPv1 requests always go through pysnmp's check, which also hides Counter64
        values from them. A missing group or access entry raises every time (never cached).
        """
        who = _principal(context)
        if who[0] == 1:
            return not context["acFun"]("read", (oid, value), **context)
        readable = self._subtree_readable.get(who)
        if readable is None:
            readable = not context["acFun"]("read", (self.root, None), **context)
            self._subtree_readable[who] = readable
        return readable

    def _fallback_next(self, oid: OID, idx: int, context: dict[str, Any]) -> tuple[Any, Any]:
        who = _principal(context)
        end = self._end_of_view.get(who)
        if end is not None and oid >= end:
            return rfc1902.ObjectName(oid), END_OF_MIB_VIEW
        result = self._fallback("read_next_variables", rfc1902.ObjectName(oid), _NULL, idx, context)[0]
        if result[1] is END_OF_MIB_VIEW or result[1] == END_OF_MIB_VIEW:
            self._end_of_view[who] = oid if end is None else min(oid, end)
        return result

    def _fallback(self, method: str, name: Any, val: Any, idx: int,
                  context: dict[str, Any]) -> list[tuple[Any, Any]]:
        try:
            return getattr(self.fallback, method)((name, val), **context)
        except smi_error.MibOperationError as exc:
            exc.update({"idx": idx})  # pysnmp saw one var-bind; report the PDU's position
            raise
