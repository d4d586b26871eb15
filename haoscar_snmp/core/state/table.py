"""Table: a slice's rows kept by their MIB index tuple, in index order."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

K = TypeVar("K", bound=tuple)
R = TypeVar("R")


class Table(Generic[K, R]):
    """Rows keyed by their MIB index (a tuple of ints), with the sorted key order cached.

    The cache is invalidated only when rows are added or removed, so a walk over a large
    table costs one sort per change, not one per request.
    """

    def __init__(self) -> None:
        self._rows: dict[K, R] = {}
        self._sorted: list[K] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def get(self, key: K) -> R | None:
        return self._rows.get(key)

    def __getitem__(self, key: K) -> R:
        return self._rows[key]

    def put(self, key: K, row: R) -> None:
        if key not in self._rows:
            self._sorted = None
        self._rows[key] = row

    def remove(self, key: K) -> R | None:
        row = self._rows.pop(key, None)
        if row is not None:
            self._sorted = None
        return row

    def clear(self) -> None:
        self._rows.clear()
        self._sorted = None

    def keys(self) -> list[K]:
        if self._sorted is None:
            self._sorted = sorted(self._rows)
        return self._sorted

    def items(self) -> list[tuple[K, R]]:
        return [(k, self._rows[k]) for k in self.keys()]

    def values(self) -> list[R]:
        return [self._rows[k] for k in self.keys()]
