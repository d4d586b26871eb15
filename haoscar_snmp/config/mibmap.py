"""The shape of the contract between the SET path and the configuration it changes.

The SNMP layer is plumbing: it decodes a SET, checks types, lengths, ranges, enums and
the RowStatus rules, and answers with the right error. *Which* MIB object is *which*
configuration key, how a row of a creatable table is laid out, how a value is written in
the configuration (an enum number as a policy name, a TruthValue as a boolean) is the
configuration domain's knowledge: it lives in `fcaps/configuration/mibmap.py`, as a
`ConfigMap` built from the types here, and is handed to the SET path and to the read
bindings by the daemon. The SET path produces a `SetPlan`; the configuration store
commits it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable

from pydantic import TypeAdapter, ValidationError

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import OperatorRequest

OID = tuple[int, ...]


def identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class ScalarMap:
    """A writable scalar backed by one configuration value.

    `path` is where a SET puts it in the overrides ("timing", "heartbeat_interval_ms"), or
    a single key ("notify_email",). `read` gives the effective value as the MIB carries it;
    `to_config` turns a MIB value into what the overrides store."""

    path: tuple[str, ...]
    read: Callable[[Config], Any]
    to_config: Callable[[Any], Any] = identity
    # Why no configuration could take a value (as `to_config` gives it), or None: such a
    # value is wrongValue, not inconsistentValue (which is for conflicts with others).
    value_problem: Callable[[Any], str | None] = lambda value: None


@dataclass(frozen=True)
class RowLayout:
    """A creatable table backed by a configuration table (services, aliases).

    `columns` maps each writable MIB column to the row field the overrides store;
    `to_config` / `to_mib` convert a column's value where the two differ; `row` gives a
    configured row as the overrides store it; `inherited` supplies a column's value when
    the row leaves it unset (shown as the MIB shows it)."""

    key: str                                     # "services" | "aliases": the overrides key
    row_status: str                              # the RowStatus column
    columns: dict[str, str]
    mandatory: tuple[str, ...]
    defaults: dict[str, Any]
    row: Callable[[Any], dict[str, Any]]
    to_config: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    to_mib: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    inherited: dict[str, Callable[[Config], Any]] = field(default_factory=dict)
    # The configuration model of one row: a column's value is checked against its field
    # alone (`field_problem`), so that a value no row could take is told from one that
    # conflicts with the rest of the configuration.
    model: type | None = None

    def value_problem(self, column: str, value: Any) -> str | None:
        """Why no row could take `value` (already converted with `to_config`) in `column`."""
        if self.model is None or column not in self.columns:
            return None
        return field_problem(self.model, self.columns[column], value)


@dataclass(frozen=True)
class ConfigMap:
    """Every writable HAOSCAR-MIB object, as the configuration domain defines it."""

    scalars: dict[str, ScalarMap]
    tables: dict[str, RowLayout]                 # by the MIB entry's name
    actions: dict[str, Callable[[int], OperatorRequest]]   # write-only trigger scalars

    def writable_names(self) -> set[str]:
        names = set(self.scalars) | set(self.actions)
        for layout in self.tables.values():
            names |= set(layout.columns) | {layout.row_status}
        return names


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
    actions: list[OperatorRequest] = field(default_factory=list)
    config_changed: bool = False


@functools.lru_cache(maxsize=None)
def _field_adapter(model: type, name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]  # type: ignore[attr-defined]
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)


def field_problem(model: type, name: str, value: Any) -> str | None:
    """Why `value` is not valid for the field `name` of the pydantic `model`, checked on
    its own (the model's cross-field rules are not run), or None."""
    return adapter_problem(_field_adapter(model, name), value)


def adapter_problem(adapter: TypeAdapter[Any], value: Any) -> str | None:
    """Why `adapter` refuses `value`, in its validators' words, or None."""
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
    return None
