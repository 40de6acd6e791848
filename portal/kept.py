"""What a portal process keeps between requests: values by key, each with the stamp it was read
under, for at most a given age, the least recently used dropped first past a given number."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class _Entry(Generic[V]):
    stamp: Hashable
    built_at: float
    value: V


class Kept(Generic[K, V]):
    """A value is found again only under the same stamp and while younger than ``max_age``
    seconds; values are shared between requests, so they are read only."""

    def __init__(self, max_age: float, max_size: int) -> None:
        self.max_age, self.max_size = max_age, max_size
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()

    def get(self, key: K, stamp: Hashable = None) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.stamp != stamp or time.monotonic() - entry.built_at >= self.max_age:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: K, value: V, stamp: Hashable = None) -> None:
        self._entries[key] = _Entry(stamp, time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)
