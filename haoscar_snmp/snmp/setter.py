"""SNMP SET, two-phase: validate every var-bind, then commit what cannot fail.

Phase one checks, in the order RFC 3416 section 4.2.5 gives, each var-bind's object
(notWritable / noCreation), type (wrongType: pysnmp never checks the tag), length
(wrongLength), value (wrongValue), then the RowStatus rules of RFC 2579 and the
configuration's cross-field rules (inconsistentValue / inconsistentName) on the whole
candidate configuration. Nothing is changed unless every var-bind passes. Phase two hands
the candidate to the `Committer`, which persists it atomically before the agent answers.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import ControlAction

from .bindings import TIMING_SCALARS, notify_email
from .mib import OID, MibModel, MibObject
from .values import WIRE_TYPES

RECOVERY_NAMES = {1: "restart-then-failover", 2: "restart-then-notify", 3: "notify-only"}
RECOVERY_VALUES = {v: k for k, v in RECOVERY_NAMES.items()}


class RowStatus(enum.IntEnum):
    ACTIVE = 1
    NOT_IN_SERVICE = 2
    NOT_READY = 3
    CREATE_AND_GO = 4
    CREATE_AND_WAIT = 5
    DESTROY = 6


class SetError(Exception):
    """A var-bind was refused: `status` is the RFC 3416 error-status name, `index` 0-based."""

    def __init__(self, status: str, index: int, why: str) -> None:
        super().__init__(f"{status} at var-bind {index + 1}: {why}")
        self.status = status
        self.index = index
        self.why = why


@dataclass(frozen=True)
class Change:
    """One accepted change, for the audit trail and the configChanged notification."""

    oid: OID
    name: str
    old: str
    new: str


@dataclass
class SetPlan:
    """What a validated SET will do. Committing it cannot fail validation any more."""

    overrides: dict[str, Any]
    pending: dict[str, dict[int, dict[str, Any]]]
    changes: list[Change] = field(default_factory=list)
    actions: list[ControlAction] = field(default_factory=list)
    config_changed: bool = False


class ConfigSource(Protocol):
    """What the SET path needs from the configuration side (fcaps/configuration)."""

    def current(self) -> Config: ...
    def overrides(self) -> dict[str, Any]: ...
    def pending(self) -> dict[str, dict[int, dict[str, Any]]]: ...
    def check(self, overrides: dict[str, Any]) -> list[Any]: ...
    def file_indexes(self, kind: str) -> set[int]: ...


# Per creatable table: state slice, overrides key, columns -> row-dict field, mandatory fields.
@dataclass(frozen=True)
class _RowTable:
    key: str                       # "services" | "aliases"
    row_status: str                # RowStatus column name
    columns: dict[str, str]        # MIB column -> row-dict field
    mandatory: tuple[str, ...]     # row-dict fields needed before active
    defaults: dict[str, Any]


_SERVICES = _RowTable(
    key="services", row_status="haoscarServiceRowStatus",
    columns={
        "haoscarServiceName": "name", "haoscarServiceCheck": "check",
        "haoscarServiceRetryThreshold": "retry_threshold", "haoscarServiceRecovery": "recovery",
        "haoscarServiceAdminStatus": "enabled", "haoscarServiceRestartCommand": "restart",
        "haoscarServiceActiveOnly": "active_only",
    },
    mandatory=("name", "check"),
    # Every column is listed, so a row re-created over a destroyed file row inherits nothing.
    defaults={"restart": "", "recovery": "restart-then-failover", "enabled": True,
              "active_only": False, "retry_threshold": None},
)
_ALIASES = _RowTable(
    key="aliases", row_status="haoscarAliasRowStatus",
    columns={"haoscarAliasAddress": "address", "haoscarAliasPrefixLength": "prefix_length",
             "haoscarAliasInterface": "interface"},
    mandatory=("address", "interface"),
    defaults={"prefix_length": 24},
)
_ROW_TABLES = {"haoscarServiceEntry": _SERVICES, "haoscarAliasEntry": _ALIASES}


def service_row_dict(svc: Any) -> dict[str, Any]:
    """A configured service as the overrides file stores it."""
    return {"name": svc.name, "check": svc.check, "restart": svc.restart or "",
            "retry_threshold": svc.retry_threshold, "recovery": _enum_text(svc.recovery),
            "enabled": svc.enabled, "active_only": svc.active_only,
            "row_status": _enum_text(svc.row_status)}


def alias_row_dict(alias: Any) -> dict[str, Any]:
    return {"address": str(alias.address), "prefix_length": alias.prefix_length,
            "interface": alias.interface, "row_status": _enum_text(alias.row_status)}


def _enum_text(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


class SetHandler:
    """Validates SET var-bind lists against the MIB, the state and the configuration."""

    def __init__(self, mib: MibModel, source: ConfigSource) -> None:
        self.mib = mib
        self.source = source
        self._objects = sorted(
            (o for o in mib.objects.values() if o.node in ("scalar", "column")),
            key=lambda o: o.oid)

    # -- phase one ---------------------------------------------------------------------

    def prepare(self, varbinds: list[tuple[OID, Any]]) -> SetPlan:
        config = self.source.current()
        plan = SetPlan(overrides=copy.deepcopy(self.source.overrides()),
                       pending=copy.deepcopy(self.source.pending()))
        rows = {"services": {s.index: service_row_dict(s) for s in config.services},
                "aliases": {a.index: alias_row_dict(a) for a in config.aliases}}
        for kind, entries in plan.pending.items():
            rows[kind].update(copy.deepcopy(entries))
        touched: dict[tuple[str, int], int] = {}   # (table, index) -> first var-bind position
        statuses: dict[tuple[str, int], tuple[RowStatus, int]] = {}
        decoded: list[tuple[MibObject, OID, Any]] = []

        for i, (oid, value) in enumerate(varbinds):
            obj, instance = self._object_for(oid, i)
            checked = self._check_value(obj, value, i)
            self._check_instance(obj, instance, i)
            decoded.append((obj, instance, checked))
        # Old values are read before anything below touches the rows.
        olds = [self._current_display(obj, instance, config, rows) for obj, instance, _ in decoded]

        # Row creation and deletion first, so that columns set in the same PDU land in
        # the new row whatever their order in the PDU (RFC 2579 allows any order).
        for i, (obj, instance, value) in enumerate(decoded):
            table = self._row_table(obj)
            if table and obj.name == table.row_status:
                key = (table.key, instance[0])
                if key in statuses:
                    raise SetError("inconsistentValue", i, "RowStatus set twice for one row")
                statuses[key] = (RowStatus(value), i)
                self._row_status_transition(table, rows[table.key], instance[0], RowStatus(value), i)

        for i, (obj, instance, value) in enumerate(decoded):
            old = olds[i]
            if obj.node == "scalar":
                self._set_scalar(plan, obj, value, i)
            else:
                table = self._row_table(obj)
                if obj.name == table.row_status:
                    touched.setdefault((table.key, instance[0]), i)
                    plan.changes.append(Change(obj.oid + instance, obj.name, old, _status_text(value)))
                    continue
                index = instance[0]
                row = rows[table.key].get(index)
                if row is None:
                    raise SetError("noCreation", i,
                                   f"{table.key} row {index} does not exist; create it with "
                                   f"{table.row_status} createAndGo or createAndWait")
                row[table.columns[obj.name]] = self._row_value(obj, value)
                touched.setdefault((table.key, index), i)
            plan.changes.append(Change(obj.oid + instance, obj.name, old,
                                       self._new_display(obj, value)))

        for (kind, index), first in touched.items():
            table = _SERVICES if kind == "services" else _ALIASES
            self._settle_row(plan, table, rows[kind], index, statuses.get((kind, index)), first)

        if plan.config_changed:
            problems = self.source.check(plan.overrides)
            if problems:
                raise SetError("inconsistentValue", self._blame(problems, varbinds), "; ".join(
                    f"{p.key}: {p.message}" for p in problems))
        return plan

    def _object_for(self, oid: OID, i: int) -> tuple[MibObject, OID]:
        """The scalar or column the name belongs to, and the instance part of the name."""
        obj = None
        for candidate in self._objects:
            if oid[: len(candidate.oid)] == candidate.oid:
                obj = candidate
        if obj is None:
            raise SetError("notWritable", i, "no writable object has this name")
        if not obj.writable:
            raise SetError("notWritable", i, f"{obj.name} is {obj.access}")
        return obj, oid[len(obj.oid):]

    def _check_instance(self, obj: MibObject, instance: OID, i: int) -> None:
        if obj.node == "scalar":
            if instance != (0,):
                raise SetError("noCreation", i, f"{obj.name} has only the instance .0")
        elif len(instance) != 1 or not 1 <= instance[0] <= 65535:
            raise SetError("noCreation", i, f"{obj.name}: index must be one number in 1..65535")

    def _check_value(self, obj: MibObject, value: Any, i: int) -> Any:
        wire = WIRE_TYPES[obj.base]
        if value is None or not value.isSameTypeWith(wire(), matchConstraints=False):
            got = type(value).__name__
            raise SetError("wrongType", i, f"{obj.name} takes {obj.tc or obj.base}, not {got}")
        if obj.base == "OctetString":
            raw = value.asOctets()
            sizes = obj.sizes or ((0, 65535),)
            if not any(lo <= len(raw) <= hi for lo, hi in sizes):
                raise SetError("wrongLength", i, f"{obj.name} length {len(raw)} not in {list(sizes)}")
            if obj.display:
                if not all(32 <= b < 127 for b in raw):
                    raise SetError("wrongValue", i, f"{obj.name} takes printable ASCII text only")
                return raw.decode("ascii")
            return raw
        number = int(value)
        if obj.enums and number not in obj.enums.values():
            raise SetError("wrongValue", i, f"{obj.name}: {number} is not one of {obj.enums}")
        if obj.ranges and not any(lo <= number <= hi for lo, hi in obj.ranges):
            raise SetError("wrongValue", i, f"{obj.name}: {number} not in {list(obj.ranges)}")
        if obj.tc == "RowStatus" and number == RowStatus.NOT_READY:
            raise SetError("wrongValue", i, "notReady cannot be written")
        return number

    def _row_table(self, obj: MibObject) -> _RowTable | None:
        if obj.node != "column":
            return None
        return _ROW_TABLES.get(self.mib.row_of(obj).name)

    def _row_status_transition(self, table: _RowTable, rows: dict[int, dict], index: int,
                               wanted: RowStatus, i: int) -> None:
        row = rows.get(index)
        if wanted in (RowStatus.CREATE_AND_GO, RowStatus.CREATE_AND_WAIT):
            if row is not None:
                raise SetError("inconsistentValue", i, f"{table.key} row {index} exists already")
            rows[index] = dict(table.defaults, row_status="new")
        elif wanted == RowStatus.DESTROY:
            if row is not None:
                row["row_status"] = "destroy"
        elif row is None:
            raise SetError("inconsistentValue", i, f"{table.key} row {index} does not exist")

    def _settle_row(self, plan: SetPlan, table: _RowTable, rows: dict[int, dict], index: int,
                    status: tuple[RowStatus, int] | None, first: int) -> None:
        """Decide the row's final status, then place it in overrides or pending."""
        key = str(index)
        row = rows.get(index)
        if row is None:  # destroy of a row that does not exist: RFC 2579 says noError
            return
        complete = all(row.get(f) not in (None, "") for f in table.mandatory)
        wanted = status[0] if status else None
        where = status[1] if status else first
        current = row.get("row_status")
        if wanted == RowStatus.DESTROY:
            plan.pending.get(table.key, {}).pop(index, None)
            if self._in_file(table, index):
                plan.overrides.setdefault(table.key, {})[key] = {"deleted": True}
            else:
                plan.overrides.get(table.key, {}).pop(key, None)
            plan.config_changed = True
            return
        if wanted in (RowStatus.CREATE_AND_GO, RowStatus.ACTIVE):
            if not complete:
                missing = [f for f in table.mandatory if row.get(f) in (None, "")]
                raise SetError("inconsistentValue", where,
                               f"{table.key} row {index} cannot be active without {missing}")
            row["row_status"] = "active"
        elif wanted == RowStatus.CREATE_AND_WAIT:
            row["row_status"] = "notInService" if complete else "notReady"
        elif wanted == RowStatus.NOT_IN_SERVICE:
            if not complete:
                raise SetError("inconsistentValue", where,
                               f"{table.key} row {index} is notReady: set its mandatory columns first")
            row["row_status"] = "notInService"
        elif current == "notReady" and complete:
            row["row_status"] = "notInService"
        if row["row_status"] == "notReady":
            plan.pending.setdefault(table.key, {})[index] = row
            plan.overrides.get(table.key, {}).pop(key, None)
        else:
            plan.pending.get(table.key, {}).pop(index, None)
            plan.overrides.setdefault(table.key, {})[key] = row
            plan.config_changed = True

    def _in_file(self, table: _RowTable, index: int) -> bool:
        """Does the operator's file (not an earlier SET) define this row?"""
        return index in self.source.file_indexes(table.key)

    def _set_scalar(self, plan: SetPlan, obj: MibObject, value: Any, i: int) -> None:
        if obj.name in TIMING_SCALARS:
            if obj.tc == "TruthValue":
                value = value == 1
            plan.overrides.setdefault("timing", {})[TIMING_SCALARS[obj.name]] = value
            plan.config_changed = True
        elif obj.name == "haoscarNotifyEmail":
            plan.overrides["notify_email"] = value
            plan.config_changed = True
        elif obj.name == "haoscarControlAction":
            plan.actions.append(ControlAction(value))
        else:  # a writable object nobody handles: a MIB/agent mismatch, caught by tests
            raise SetError("notWritable", i, f"{obj.name} has no SET handler")

    def _row_value(self, obj: MibObject, value: Any) -> Any:
        if obj.name == "haoscarServiceRecovery":
            return RECOVERY_NAMES[value]
        if obj.name == "haoscarServiceAdminStatus":
            return value == 1
        if obj.tc == "TruthValue":
            return value == 1
        return value

    def _current_display(self, obj: MibObject, instance: OID, config: Config,
                         rows: dict[str, dict[int, dict]]) -> str:
        """The object's value before this SET, written as `_new_display` writes new ones."""
        table = self._row_table(obj)
        if table is not None:
            row = rows[table.key].get(instance[0])
            if row is None:
                return "absent"
            if obj.name == table.row_status:
                return str(row.get("row_status"))
            value = row.get(table.columns[obj.name])
            if obj.name == "haoscarServiceRetryThreshold" and value is None:
                value = config.timing.service_retry_threshold  # inherited, as the MIB shows it
            return self._new_display(obj, self._mib_value(obj, value))
        if obj.name in TIMING_SCALARS:
            value = getattr(config.timing, TIMING_SCALARS[obj.name])
            return self._new_display(obj, self._mib_value(obj, value))
        if obj.name == "haoscarNotifyEmail":
            return notify_email(config)
        return ""

    @staticmethod
    def _mib_value(obj: MibObject, value: Any) -> Any:
        """A configuration value as the MIB carries it (enum number, TruthValue 1/2)."""
        if obj.name == "haoscarServiceRecovery":
            return RECOVERY_VALUES.get(str(value), value)
        if obj.name == "haoscarServiceAdminStatus":
            return 1 if value else 2
        if isinstance(value, bool):
            return 1 if value else 2
        return value

    def _new_display(self, obj: MibObject, value: Any) -> str:
        if obj.tc == "TruthValue":
            return "true" if value == 1 else "false"
        if obj.enums:
            names = {v: k for k, v in obj.enums.items()}
            return names.get(value, str(value))
        return str(value)

    def _blame(self, problems: list[Any], varbinds: list[tuple[OID, Any]]) -> int:
        """Index of the var-bind a configuration problem is about (first one if unknown)."""
        keys = " ".join(p.key for p in problems)
        for i, (oid, _value) in enumerate(varbinds):
            for name, timing_key in TIMING_SCALARS.items():
                if oid[:-1] == self.mib[name].oid and timing_key in keys:
                    return i
        return 0


def _status_text(value: int) -> str:
    """RowStatus in the MIB's words: createAndGo, notInService, ..."""
    head, *rest = RowStatus(value).name.lower().split("_")
    return head + "".join(word.capitalize() for word in rest)
