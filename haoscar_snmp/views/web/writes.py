"""The panel's writes, through the same path as an SNMP SET.

A form becomes a `SetPlan` (the overrides as they would be after the change, the
changes for the audit trail, the operator actions), built with the configuration
domain's `ConfigMap`, the same map the SET path uses. It is then checked by the store
(`check`: every rule the file and a SET obey, and what the peer head holds), and
committed by the store (`commit`: the cluster-wide proposal to the peer, persistence
before anything is applied, the audit line and the configChanged event), with the
principal `web:<user>`. A refusal is reported to the store (`rejected`), so it is
audited and counted as a refused SET is; its text is the store's.

So the panel can change only what SNMP can (the writable objects of HAOSCAR-MIB), and
never accepts what a SET would refuse. Row indexes of new rows are the smallest free
ones; a row still waiting for its mandatory columns over SNMP (notReady) is left alone.
"""

from __future__ import annotations

import copy
import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from haoscar_snmp.config.errors import CommitRefused, Problem
from haoscar_snmp.config.mibmap import Change, ConfigMap, RowLayout, SetPlan
from haoscar_snmp.config.schema import AliasConfig, Config, ServiceConfig, TimingConfig
from haoscar_snmp.core.state import ControlAction, ControlResult, ServiceSelection, State

log = logging.getLogger(__name__)

OID = tuple[int, ...]
TABLES = {"services": "haoscarServiceEntry", "aliases": "haoscarAliasEntry"}
MODELS: dict[str, type[BaseModel]] = {"services": ServiceConfig, "aliases": AliasConfig}
# Operator actions the panel offers, by the word its forms use.
ACTIONS = {"switchover": ControlAction.SWITCHOVER, "failback": ControlAction.FAILBACK,
           "reset_counters": ControlAction.RESET_COUNTERS, "reset_service": ControlAction.RESET_SERVICE,
           "pull_peer_config": ControlAction.PULL_PEER_CONFIG,
           "push_local_config": ControlAction.PUSH_LOCAL_CONFIG}


class Store(Protocol):
    """What the panel needs of the configuration store (fcaps/configuration/store.py)."""

    def current(self) -> Config: ...
    def overrides(self) -> dict[str, Any]: ...
    def pending(self) -> dict[str, dict[int, dict[str, Any]]]: ...
    def check(self, overrides: dict[str, Any]) -> list[Problem]: ...
    def file_indexes(self, kind: str) -> set[int]: ...
    async def commit(self, plan: SetPlan, principal: str) -> None: ...
    def rejected(self, principal: str, request: str, status: str, index: int, why: str) -> None: ...


class Refused(Exception):
    """The write was refused; nothing changed. `why` is shown to the operator."""

    def __init__(self, why: str, status: str = "inconsistentValue") -> None:
        super().__init__(why)
        self.why = why
        self.status = status


@dataclass(frozen=True)
class Field:
    """A writable setting as a form shows it: `kind` is int, optint (empty: inherited),
    bool, text or choice (from `choices`)."""

    key: str
    kind: str
    choices: tuple[str, ...] = ()


def fields_of(model: type[BaseModel], keys: tuple[str, ...] | list[str]) -> tuple[Field, ...]:
    """The form fields of `keys`, typed from the model's defaults and annotations."""
    out = []
    for key in keys:
        info = model.model_fields[key]
        default = info.default
        annotation = info.annotation
        if isinstance(default, bool):
            out.append(Field(key, "bool"))
        elif isinstance(default, enum.Enum):
            out.append(Field(key, "choice", tuple(str(member.value) for member in type(default))))
        elif isinstance(default, int):
            out.append(Field(key, "int"))
        elif default is None and "int" in str(annotation):
            out.append(Field(key, "optint"))
        else:
            out.append(Field(key, "text"))
    return tuple(out)


def parse_value(field: Field, raw: str | None) -> Any:
    """A form value as the configuration holds it; Refused (wrongValue) if it is not one."""
    if field.kind == "bool":
        return raw in ("on", "true", "1")
    raw = (raw or "").strip() if field.kind != "text" else (raw or "")
    if field.kind == "optint" and raw == "":
        return None
    if field.kind in ("int", "optint"):
        try:
            return int(raw, 10)
        except ValueError:
            raise Refused(f"{field.key}: {raw[:40]!r} is not a whole number", "wrongValue") from None
    if field.kind == "choice" and raw not in field.choices:
        raise Refused(f"{field.key}: must be one of {', '.join(field.choices)}", "wrongValue")
    return raw


class WebWrites:
    """Builds, checks and commits the panel's changes; one instance per daemon."""

    def __init__(self, store: Store, config_map: ConfigMap, oid_of: Callable[[str], OID], state: State) -> None:
        self.store = store
        self.map = config_map
        self.oid_of = oid_of
        self.state = state
        self.layouts: dict[str, RowLayout] = {kind: config_map.tables[entry] for kind, entry in TABLES.items()}
        # Writable settings, by the configuration key: the map's scalars under [timing], and
        # the one notification address.
        self.timing_scalars = {s.path[1]: name for name, s in config_map.scalars.items()
                               if s.path[0] == "timing"}
        self.timing_fields = fields_of(TimingConfig, sorted(self.timing_scalars))
        self.row_fields = {kind: fields_of(MODELS[kind], sorted(set(layout.columns.values())))
                           for kind, layout in self.layouts.items()}

    # -- what the forms show -----------------------------------------------------------

    def rows(self, kind: str) -> list[dict[str, Any]]:
        """The configured rows of a table as the overrides hold them (index included)."""
        layout = self.layouts[kind]
        return [dict(layout.row(row), index=row.index) for row in getattr(self.store.current(), kind)]

    def timing(self) -> dict[str, Any]:
        timing = self.store.current().timing
        return {key: getattr(timing, key) for key in self.timing_scalars}

    def notify_email(self) -> str:
        return ",".join(self.store.current().notify.email.to)

    # -- writes ------------------------------------------------------------------------

    async def set_timing(self, form: Mapping[str, str], principal: str) -> str:
        request = _describe("timing", form)
        try:
            values = _values(self.timing_fields, form)
            plan = self._plan()
            current = self.timing()
            for key, value in values.items():
                if value == current[key]:
                    continue
                plan.overrides.setdefault("timing", {})[key] = value
                name = self.timing_scalars[key]
                plan.changes.append(Change(self.oid_of(name) + (0,), name, _show(current[key]), _show(value)))
                plan.config_changed = True
            if not plan.config_changed:
                return "nothing changed"
            await self._commit(plan, principal, request)
        except Refused as refused:
            self._refused(principal, request, refused)
        return f"timing changed: {', '.join(c.name for c in plan.changes)}"

    async def set_notify_email(self, address: str, principal: str) -> str:
        request = f"notify_email={address[:80]!r}"
        try:
            old = self.notify_email()
            if address == old:
                return "nothing changed"
            plan = self._plan()
            plan.overrides["notify_email"] = address
            plan.changes.append(Change(self.oid_of("haoscarNotifyEmail") + (0,), "haoscarNotifyEmail", old, address))
            plan.config_changed = True
            await self._commit(plan, principal, request)
        except Refused as refused:
            self._refused(principal, request, refused)
        return "notification address changed"

    async def save_row(self, kind: str, index: int | None, form: Mapping[str, str], principal: str) -> int:
        """Create a row (index None: the smallest free) or change one; returns its index."""
        request = f"{kind} row {index or 'new'}: {_describe('', form)}"
        try:
            layout = self.layouts[kind]
            fields = self.row_fields[kind]
            values = _values(fields, form)
            plan = self._plan()
            rows = {row["index"]: row for row in self.rows(kind)}
            if index is None:
                index = self._free_index(kind, rows)
                old_row: dict[str, Any] = {}
                row = dict(layout.defaults, row_status="active")
            else:
                if index not in rows:
                    raise Refused(f"{kind} row {index} does not exist")
                old_row = rows[index]
                row = {k: v for k, v in old_row.items() if k != "index"}
            row.update(values)
            missing = [key for key in layout.mandatory if row.get(key) in (None, "")]
            if missing:
                raise Refused(f"{kind} row {index} cannot be active without {missing}")
            plan.overrides.setdefault(kind, {})[str(index)] = row
            plan.config_changed = True
            if not old_row:
                plan.changes.append(self._change(kind, layout.row_status, index, "absent", "createAndGo"))
            for column, key in layout.columns.items():
                if key in values and (not old_row or old_row.get(key) != row.get(key)):
                    plan.changes.append(self._change(kind, column, index, _show(old_row.get(key, "")),
                                                     _show(row.get(key))))
            if old_row and len(plan.changes) == 0:
                return index
            await self._commit(plan, principal, request)
        except Refused as refused:
            self._refused(principal, request, refused)
        return index

    async def set_row_status(self, kind: str, index: int, status: str, principal: str) -> str:
        """`status`: active (resume), notInService (suspend) or destroy (delete)."""
        request = f"{kind} row {index}: {status}"
        try:
            layout = self.layouts[kind]
            rows = {row["index"]: row for row in self.rows(kind)}
            if index not in rows:
                raise Refused(f"{kind} row {index} does not exist")
            plan = self._plan()
            old = str(rows[index]["row_status"])
            key = str(index)
            if status == "destroy":
                plan.pending.get(kind, {}).pop(index, None)
                if index in self.store.file_indexes(kind):
                    plan.overrides.setdefault(kind, {})[key] = {"deleted": True}
                else:
                    plan.overrides.get(kind, {}).pop(key, None)
            elif status in ("active", "notInService"):
                row = {k: v for k, v in rows[index].items() if k != "index"}
                row["row_status"] = status
                plan.overrides.setdefault(kind, {})[key] = row
            else:
                raise Refused(f"{status!r} is not active, notInService or destroy", "wrongValue")
            plan.config_changed = True
            plan.changes.append(self._change(kind, layout.row_status, index, old, status))
            await self._commit(plan, principal, request)
        except Refused as refused:
            self._refused(principal, request, refused)
        return {"destroy": "deleted", "active": "resumed", "notInService": "suspended"}[status]

    async def action(self, word: str, service_index: int | None, principal: str) -> str:
        """An operator action; returns the result text as haoscarControlResultText gives it."""
        request = f"action {word}" + (f" (service {service_index})" if service_index is not None else "")
        try:
            action = ACTIONS.get(word)
            if action is None:
                raise Refused(f"{word!r} is not an operator action", "wrongValue")
            plan = self._plan()
            if action == ControlAction.RESET_SERVICE:
                if service_index is None or not 0 <= service_index <= 65535:
                    raise Refused("reset_service needs a service index (0: every service)", "wrongValue")
                plan.actions.append(ServiceSelection(service_index))
            plan.actions.append(action)
            await self._commit(plan, principal, request)
        except Refused as refused:
            self._refused(principal, request, refused)
        control = self.state.control
        if control.result == ControlResult.REFUSED:
            raise Refused(control.result_text or f"{word} refused", "ok")
        return control.result_text or word

    # -- the shared path ---------------------------------------------------------------

    def _plan(self) -> SetPlan:
        return SetPlan(overrides=copy.deepcopy(self.store.overrides()),
                       pending=copy.deepcopy(self.store.pending()))

    def _free_index(self, kind: str, rows: Mapping[int, Any]) -> int:
        taken = set(rows) | set(self.store.pending().get(kind, {}))
        index = 1
        while index in taken:
            index += 1
        if index > 65535:
            raise Refused(f"{kind}: no free row index")
        return index

    def _change(self, kind: str, column: str, index: int, old: str, new: str) -> Change:
        return Change(self.oid_of(column) + (index,), column, old, new)

    async def _commit(self, plan: SetPlan, principal: str, request: str) -> None:
        if plan.config_changed:
            problems = self.store.check(plan.overrides)
            if problems:
                raise Refused("; ".join(f"{p.key}: {p.message}" for p in problems))
        try:
            await self.store.commit(plan, principal)
        except CommitRefused as refused:
            raise Refused(refused.why, refused.status) from None
        except Refused:
            raise
        except Exception:     # persisting failed (disk full, read-only file system): nothing applied
            log.exception("could not commit the web panel's change from %s; nothing changed", principal)
            raise Refused("the change could not be saved (see the daemon's log); nothing changed",
                          "commitFailed") from None

    def _refused(self, principal: str, request: str, refused: Refused) -> None:
        if refused.status != "ok":     # "ok": an action accepted by the SET path, refused by its owner
            self.store.rejected(principal, request, refused.status, 0, refused.why)
        raise refused


def _values(fields: tuple[Field, ...], form: Mapping[str, str]) -> dict[str, Any]:
    """The values a form gives. A checkbox left unticked is absent from a form, so the
    form names its checkboxes in `_bools`; the others keep their value."""
    bools = set(form.get("_bools", "").split(","))
    return {f.key: parse_value(f, form.get(f.key)) for f in fields
            if (f.key in bools if f.kind == "bool" else f.key in form)}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _describe(prefix: str, form: Mapping[str, str]) -> str:
    parts = [f"{key}={str(value)[:80]!r}" for key, value in form.items() if key not in ("csrf", "_bools")]
    return (prefix + ": " if prefix else "") + ", ".join(parts)[:400]
