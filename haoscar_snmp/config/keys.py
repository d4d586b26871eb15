"""How each configuration key is classified: its scope and its reload kind.

Every leaf field of the schema carries one `Key` in its annotation, next to its type and
range, so adding a key means deciding both at the place it is defined:

    heartbeat_interval_ms: Annotated[int, Field(ge=10, le=60000), CLUSTER_LIVE] = 5000

Scope: cluster-wide keys must be equal on both heads (they are exchanged, digested and
adopted, `cluster.py`); per-head keys are each head's own and never leave it.
Reload: live keys are applied by a reload (SIGHUP) or a SET; a reload that changes a
restart key is refused as a whole (`diff.py`).

Rules of the walk (`classification(Config)`):

* A field with a `Key` is one key, whatever its type: a value model such as `Endpoint`
  is classified as a whole (`snmp.targets.address` covers `.host` and `.port`).
* A field without one must hold a section or a table (a model, or a tuple of models):
  its own fields are walked. A table's columns are keys under the table's name
  (`services.check`), rows carry no brackets.
* A key read from a file that has no field of its own (the heartbeat key, read from
  `key_file`) is declared in the model's `FILE_KEYS`.
* Anything else is unclassified; a unit test walks the schema and fails on it.

A key above several keys (a section, a table, a table row) has the scope its keys share
(None when they differ) and needs a restart when any of them does.

Nothing here imports the schema: the schema imports this module.
"""

from __future__ import annotations

import enum
import functools
import typing
from dataclasses import dataclass

from pydantic import BaseModel


class Scope(enum.StrEnum):
    CLUSTER_WIDE = "cluster-wide"   # must be equal on both heads; exchanged, digested, adopted
    PER_HEAD = "per-head"           # this head's own; never leaves it


class Reload(enum.StrEnum):
    LIVE = "live"                   # applied by a reload or a SET, at once
    RESTART = "restart"             # a reload changing it is refused: restart the daemon


@dataclass(frozen=True)
class Key:
    """A field's classification, given as metadata in its `Annotated` type."""

    scope: Scope
    reload: Reload


CLUSTER_LIVE = Key(Scope.CLUSTER_WIDE, Reload.LIVE)
CLUSTER_RESTART = Key(Scope.CLUSTER_WIDE, Reload.RESTART)
PER_HEAD_LIVE = Key(Scope.PER_HEAD, Reload.LIVE)
PER_HEAD_RESTART = Key(Scope.PER_HEAD, Reload.RESTART)


class Classification:
    """Every key of a model, dotted (tables without row brackets), with its `Key`;
    None for a key that is not classified."""

    def __init__(self, entries: dict[str, Key | None]) -> None:
        self.entries = entries
        self._found: dict[str, list[Key | None]] = {}

    def unclassified(self) -> list[str]:
        return [key for key, mark in self.entries.items() if mark is None]

    def keys(self, scope: Scope | None = None, reload: Reload | None = None) -> list[str]:
        """The classified keys, in schema order, of the given scope and reload kind."""
        return [key for key, mark in self.entries.items() if mark is not None
                and (scope is None or mark.scope is scope) and (reload is None or mark.reload is reload)]

    def scope(self, key: str) -> Scope | None:
        """The scope of a dotted key ("timing.garp_count", "services[pbs].check",
        "services"); None for an unknown key, an unclassified one or a mixed group."""
        marks = self._marks(strip_rows(key))
        scopes = {mark.scope if mark else None for mark in marks}
        return scopes.pop() if len(scopes) == 1 else None

    def reload(self, key: str) -> Reload | None:
        """The reload kind of a dotted key: RESTART when it, or any key under it, needs a
        restart; None for an unknown key or one with an unclassified key under it."""
        marks = self._marks(strip_rows(key))
        if not marks or None in marks:
            return None
        return Reload.RESTART if any(mark.reload is Reload.RESTART for mark in marks) else Reload.LIVE

    def _marks(self, bare: str) -> list[Key | None]:
        """The marks that decide `bare`: its own or its nearest classified parent's (a
        part of a value model, "snmp.listen.port"), else those of every key under it."""
        if bare not in self._found:
            self._found[bare] = self._lookup(bare)
        return self._found[bare]

    def _lookup(self, bare: str) -> list[Key | None]:
        parts = bare.split(".")
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in self.entries:
                return [self.entries[prefix]]
        return [mark for key, mark in self.entries.items() if key.startswith(bare + ".")]


@functools.cache
def classification(model: type[BaseModel]) -> Classification:
    """Walk `model` (the whole configuration) and classify every key under it."""
    entries: dict[str, Key | None] = {}
    _walk(model, "", entries)
    return Classification(entries)


def strip_rows(key: str) -> str:
    """"services[pbs].check" -> "services.check"."""
    while "[" in key:
        start, end = key.index("["), key.index("]")
        key = key[:start] + key[end + 1:]
    return key


def _walk(model: type[BaseModel], prefix: str, entries: dict[str, Key | None]) -> None:
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        marks = [item for item in info.metadata if isinstance(item, Key)]
        nested = model_in(info.annotation)
        if len(marks) > 1:
            raise TypeError(f"{key}: classified {len(marks)} times")
        if marks and nested is not None and _has_marks(nested):
            raise TypeError(f"{key}: classified as a whole and field by field; keep the fields'")
        if marks or nested is None:
            entries[key] = marks[0] if marks else None
        else:
            _walk(nested, key + ".", entries)
    for name, mark in getattr(model, "FILE_KEYS", {}).items():
        entries[prefix + name] = mark


def model_in(annotation: object) -> type[BaseModel] | None:
    """The model a field holds (itself, optional, or as the rows of a tuple), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def _has_marks(model: type[BaseModel]) -> bool:
    return any(isinstance(item, Key) for info in model.model_fields.values() for item in info.metadata)
