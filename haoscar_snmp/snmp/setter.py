"""SNMP SET, two-phase: validate every var-bind, then commit what cannot fail.

Phase one checks, in the order RFC 3416 section 4.2.5 gives, each var-bind's object
(notWritable / noCreation), type (wrongType: pysnmp never checks the tag), length
(wrongLength), value (wrongValue: the MIB's ranges, and the configuration's own rule for
that one value, e.g. an alias address must be an address), then the RowStatus rules of
RFC 2579 and the configuration's cross-field rules (inconsistentValue / inconsistentName)
on the whole candidate configuration. Every error names the var-bind at fault: a
cross-field problem, the one that set the value the problem names. Nothing is changed unless every var-bind passes. Phase two hands
the candidate to the `Committer`, which persists it atomically before the agent answers.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from haoscar_snmp.config.mibmap import Change, ConfigMap, RowLayout, SetPlan
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import RowStatus

from .mib import OID, MibModel, MibObject
from .values import WIRE_TYPES

__all__ = ["Change", "ConfigSource", "RowStatus", "SetError", "SetHandler", "SetPlan"]


class SetError(Exception):
    """A var-bind was refused: `status` is the RFC 3416 error-status name, `index` 0-based."""

    def __init__(self, status: str, index: int, why: str) -> None:
        super().__init__(f"{status} at var-bind {index + 1}: {why}")
        self.status = status
        self.index = index
        self.why = why


class ConfigSource(Protocol):
    """What the SET path needs from the configuration side (fcaps/configuration)."""

    def current(self) -> Config: ...
    def overrides(self) -> dict[str, Any]: ...
    def pending(self) -> dict[str, dict[int, dict[str, Any]]]: ...
    def check(self, overrides: dict[str, Any]) -> list[Any]: ...
    def file_indexes(self, kind: str) -> set[int]: ...


class SetHandler:
    """Validates SET var-bind lists against the MIB, the state and the configuration."""

    def __init__(self, mib: MibModel, source: ConfigSource, config_map: ConfigMap) -> None:
        self.mib = mib
        self.source = source
        self.map = config_map
        self._objects = sorted(
            (o for o in mib.objects.values() if o.node in ("scalar", "column")),
            key=lambda o: o.oid)

    # -- phase one ---------------------------------------------------------------------

    def prepare(self, varbinds: list[tuple[OID, Any]]) -> SetPlan:
        config = self.source.current()
        plan = SetPlan(overrides=copy.deepcopy(self.source.overrides()),
                       pending=copy.deepcopy(self.source.pending()))
        rows = {layout.key: {r.index: layout.row(r) for r in getattr(config, layout.key)}
                for layout in self.map.tables.values()}
        for kind, entries in plan.pending.items():
            rows[kind].update(copy.deepcopy(entries))
        touched: dict[tuple[str, int], int] = {}   # (table, index) -> first var-bind position
        statuses: dict[tuple[str, int], tuple[RowStatus, int]] = {}
        decoded: list[tuple[MibObject, OID, Any]] = []

        for i, (oid, value) in enumerate(varbinds):
            obj, instance = self._object_for(oid, i)
            checked = self._check_value(obj, value, i)
            self._check_config_value(obj, checked, i)
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
                row[table.columns[obj.name]] = self._row_value(table, obj, value)
                touched.setdefault((table.key, index), i)
            plan.changes.append(Change(obj.oid + instance, obj.name, old,
                                       self._new_display(obj, value)))

        layouts = {layout.key: layout for layout in self.map.tables.values()}
        for (kind, index), first in touched.items():
            self._settle_row(plan, layouts[kind], rows[kind], index, statuses.get((kind, index)), first)

        if plan.config_changed:
            problems = self.source.check(plan.overrides)
            if problems:
                raise SetError("inconsistentValue", self._blame(problems, decoded), "; ".join(
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

    def _check_config_value(self, obj: MibObject, value: Any, i: int) -> None:
        """wrongValue for a value that no configuration could take (an alias address that
        is no address), whatever the other values: the configuration's own rule for that
        one value. A value that only conflicts with others is inconsistentValue, later."""
        table = self._row_table(obj)
        scalar = self.map.scalars.get(obj.name)
        if table is not None and obj.name in table.columns:
            why = table.value_problem(obj.name, self._row_value(table, obj, value))
        elif scalar is not None:
            why = scalar.value_problem(scalar.to_config(value))
        else:
            return
        if why is not None:
            raise SetError("wrongValue", i, f"{obj.name}: {why}")

    def _row_table(self, obj: MibObject) -> RowLayout | None:
        if obj.node != "column":
            return None
        return self.map.tables.get(self.mib.row_of(obj).name)

    def _row_status_transition(self, table: RowLayout, rows: dict[int, dict], index: int,
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

    def _settle_row(self, plan: SetPlan, table: RowLayout, rows: dict[int, dict], index: int,
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

    def _in_file(self, table: RowLayout, index: int) -> bool:
        """Does the operator's file (not an earlier SET) define this row?"""
        return index in self.source.file_indexes(table.key)

    def _set_scalar(self, plan: SetPlan, obj: MibObject, value: Any, i: int) -> None:
        scalar = self.map.scalars.get(obj.name)
        action = self.map.actions.get(obj.name)
        if scalar is not None:
            *parents, last = scalar.path
            target = plan.overrides
            for key in parents:
                target = target.setdefault(key, {})
            target[last] = scalar.to_config(value)
            plan.config_changed = True
        elif action is not None:
            plan.actions.append(action(value))
        else:  # a writable object nobody handles: a MIB/agent mismatch, caught by tests
            raise SetError("notWritable", i, f"{obj.name} has no SET handler")

    def _row_value(self, table: RowLayout, obj: MibObject, value: Any) -> Any:
        convert = table.to_config.get(obj.name)
        if convert is not None:
            return convert(value)
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
            if value is None and obj.name in table.inherited:
                value = table.inherited[obj.name](config)   # inherited, as the MIB shows it
            convert = table.to_mib.get(obj.name)
            if convert is not None:
                value = convert(value)
            elif isinstance(value, bool):
                value = 1 if value else 2
            return self._new_display(obj, value)
        scalar = self.map.scalars.get(obj.name)
        if scalar is not None:
            return self._new_display(obj, scalar.read(config))
        return ""

    def _new_display(self, obj: MibObject, value: Any) -> str:
        if obj.tc == "TruthValue":
            return "true" if value == 1 else "false"
        if obj.enums:
            names = {v: k for k, v in obj.enums.items()}
            return names.get(value, str(value))
        return str(value)

    def _blame(self, problems: list[Any], decoded: list[tuple[MibObject, OID, Any]]) -> int:
        """Index of the var-bind a configuration problem is about.

        A problem's key names the configuration value at fault ("overrides.aliases.3.
        prefix_length", "timing.heartbeat_interval_ms"). The var-bind that set that value
        is blamed; else one that set another value of the same row; else the first."""
        keys = [p.key.split(".") for p in problems]
        same_row = None
        for i, (obj, instance, _value) in enumerate(decoded):
            table = self._row_table(obj)
            if table is not None:
                column = table.columns.get(obj.name, "row_status")
                for parts in keys:
                    if table.key in parts and str(instance[0]) in parts:
                        if parts[-1] == column:
                            return i
                        same_row = i if same_row is None else same_row
            else:
                scalar = self.map.scalars.get(obj.name)
                if scalar is None:
                    continue
                if any(parts[-1] == scalar.path[-1] for parts in keys):
                    return i
                if any(set(scalar.path[:-1]) <= set(parts) for parts in keys):
                    same_row = i if same_row is None else same_row   # its section ("timing")
        if same_row is not None:
            return same_row
        # A key that names a row by its place in the table, not its index (duplicates
        # found across the whole table): the var-bind that set that column.
        for i, (obj, _instance, _value) in enumerate(decoded):
            table = self._row_table(obj)
            if table is not None and any(table.key in parts and parts[-1] == table.columns.get(obj.name)
                                         for parts in keys):
                return i
        return 0


def _status_text(value: int) -> str:
    """RowStatus in the MIB's words: createAndGo, notInService, ..."""
    return RowStatus(value).label
