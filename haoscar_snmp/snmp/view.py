"""The OID-ordered view of HAOSCAR-MIB over the live state.

GET looks an instance up; GETNEXT finds the first instance after an OID by bisecting
the sorted list of object nodes and then the table's sorted row keys, so a walk over a
table of thousands of rows costs O(log n) per step. Values are read from the state at
request time: there is no snapshot and no refresh timer.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from pysnmp.proto import rfc1905

from .mib import OID, MibModel, MibObject
from .values import encoder

NO_SUCH_OBJECT = rfc1905.noSuchObject
NO_SUCH_INSTANCE = rfc1905.noSuchInstance

Getter = Callable[[], Any]          # scalar: reads the state
RowGetter = Callable[[Any], Any]    # column: reads one row
RowsGetter = Callable[[], Any]      # table: returns a state Table (keys() sorted, get())
MISSING = object()                  # no such instance (raw_get)
_PAST = 1 << 32                     # an arc after any real one: oid + (_PAST,) follows its subtree


@dataclass
class _Node:
    """One scalar instance or one table column, in OID order."""

    oid: OID
    obj: MibObject
    encode: Callable[[Any], Any]
    scalar: Getter | None = None
    rows: RowsGetter | None = None
    column: RowGetter | None = None

    def first_after(self, oid: OID) -> tuple[OID, Any] | None:
        """The first instance of this node strictly after `oid`, with its value."""
        found = self.raw_after(oid)
        return None if found is None else (found[0], self.encode(found[1]))

    def get(self, oid: OID) -> Any:
        raw = self.raw_get(oid)
        return NO_SUCH_INSTANCE if raw is MISSING else self.encode(raw)

    def raw_after(self, oid: OID) -> tuple[OID, Any] | None:
        """`first_after` with the state's value as the getter returned it (the fast path
        converts it to BER itself)."""
        if self.scalar is not None:
            inst = self.oid + (0,)
            return (inst, self.scalar()) if inst > oid else None
        table = self.rows()
        keys = table.keys()
        n = len(self.oid)
        if oid[:n] == self.oid:
            pos = bisect.bisect_right(keys, oid[n:])
        elif oid < self.oid:
            pos = 0
        else:
            return None
        while pos < len(keys):
            key = keys[pos]
            value = self.column(table.get(key))
            if value is not None:  # a column may be absent in some rows
                return self.oid + key, value
            pos += 1
        return None

    def raw_get(self, oid: OID) -> Any:
        """The state's value of the instance `oid` of this node, or MISSING."""
        n = len(self.oid)
        if self.scalar is not None:
            return self.scalar() if oid[n:] == (0,) else MISSING
        row = self.rows().get(oid[n:])
        if row is None:
            return MISSING
        value = self.column(row)
        return MISSING if value is None else value


class MibView:
    """Readable instances of the MIB, bound to getters over the live state."""

    def __init__(self, mib: MibModel) -> None:
        self.mib = mib
        self.root = mib.root
        self._nodes: list[_Node] = []
        self._oids: list[OID] = []

    def bind_scalar(self, name: str, getter: Getter) -> None:
        obj = self.mib[name]
        assert obj.node == "scalar", name
        self._add(_Node(obj.oid, obj, encoder(obj), scalar=getter))

    def bind_table(self, row_name: str, rows: RowsGetter, columns: dict[str, RowGetter]) -> None:
        row = self.mib[row_name]
        assert row.node == "row", row_name
        for col in self.mib.columns(row_name):
            if not col.readable:
                continue  # index columns and notify-only objects are not served
            if col.name not in columns:
                raise KeyError(f"{row_name}: no getter for readable column {col.name}")
            self._add(_Node(col.oid, col, encoder(col), rows=rows, column=columns[col.name]))

    def _add(self, node: _Node) -> None:
        pos = bisect.bisect_left(self._oids, node.oid)
        if pos < len(self._oids) and self._oids[pos] == node.oid:
            raise ValueError(f"{node.obj.name} bound twice")
        self._oids.insert(pos, node.oid)
        self._nodes.insert(pos, node)

    def unbound(self) -> list[str]:
        """Readable objects of the MIB that no getter serves (must be empty)."""
        bound = {n.obj.name for n in self._nodes}
        return sorted(o.name for o in self.mib.objects.values()
                      if o.node in ("scalar", "column") and o.readable and o.name not in bound)

    def contains(self, oid: OID) -> bool:
        return oid[: len(self.root)] == self.root

    def node_for(self, oid: OID) -> _Node | None:
        pos = bisect.bisect_right(self._oids, oid) - 1
        if pos >= 0:
            node = self._nodes[pos]
            if oid[: len(node.oid)] == node.oid:
                return node
        return None

    def get(self, oid: OID) -> Any:
        node = self.node_for(oid)
        if node is None:
            return NO_SUCH_OBJECT
        return node.get(oid)

    def next(self, oid: OID) -> tuple[OID, Any] | None:
        """First readable instance after `oid` within the MIB, or None past its end."""
        pos = max(bisect.bisect_right(self._oids, oid) - 1, 0)
        for node in self._nodes[pos:]:
            found = node.first_after(oid)
            if found is not None:
                return found
        return None

    def raw_next(self, oid: OID) -> tuple[OID, _Node, Any] | None:
        """`next` with the node and the state's value as the getter returned it."""
        pos = max(bisect.bisect_right(self._oids, oid) - 1, 0)
        for node in self._nodes[pos:]:
            found = node.raw_after(oid)
            if found is not None:
                return found[0], node, found[1]
        return None

    def walk_raw(self, oid: OID) -> Iterator[tuple[OID, _Node, Any]]:
        """Every instance after `oid` in OID order, as `raw_next` would return them one
        by one, but reading a table column's rows in turn instead of searching for each.
        For use within one synchronous step (the state must not change between items)."""
        while True:
            found = self.raw_next(oid)
            if found is None:
                return
            oid, node, raw = found
            yield found
            if node.scalar is not None:
                continue
            table = node.rows()
            keys = table.keys()
            column, get, prefix = node.column, table.get, node.oid
            for pos in range(bisect.bisect_right(keys, oid[len(prefix):]), len(keys)):
                key = keys[pos]
                value = column(get(key))
                if value is not None:   # a column may be absent in some rows
                    yield prefix + key, node, value
            oid = prefix + (_PAST,)

    def nodes(self) -> list[_Node]:
        return list(self._nodes)
