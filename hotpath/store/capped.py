"""A table of items made on first use, up to a cap: what the cap turns away is counted."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from hotpath import stdlib


class Locked(Protocol):
    @property
    def lock(self) -> AbstractContextManager[Any]: ...


class CappedTable[K: Hashable, V]:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._items: dict[K, V] = {}
        self._lock = stdlib.new_rlock()

    def get(self, key: K, make: Callable[[int], V]) -> V | None:
        """The item for ``key``, made with ``make(id)`` the first time; None past the cap."""
        found = self._items.get(key)  # no lock once it exists: a dict read is atomic
        if found is not None:
            return found
        with self._lock:
            found = self._items.get(key)
            if found is None:
                if len(self._items) >= self.limit:
                    self.dropped += 1
                    return None
                found = self._items[key] = make(len(self._items) + 1)
            return found

    def all(self) -> list[V]:
        with self._lock:
            return list(self._items.values())

    def by_id(self, item_id: int) -> V:
        """The item made with ``item_id``: ids count from 1 in the order items were made,
        and none is ever removed."""
        with self._lock:
            return list(self._items.values())[item_id - 1]


def copies[V: Locked, R](items: list[V], copy: Callable[[V], R]) -> list[R]:
    """``copy(item)`` of each item, taken under the item's own lock: a consistent reading of
    each, and no lock held longer than one copy."""
    result = []
    for item in items:
        with item.lock:
            result.append(copy(item))
    return result
