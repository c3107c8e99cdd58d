"""Entries kept in this process: a bounded LRU with per-entry expiry.

Values are kept as they are (no copy, no encoding), bounded by *weight* (the
number of records an entry holds), since one slot search answer may hold a
thousand slots and another none.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sources.kv.backends import CacheBackend, Entry

__all__ = ["DEFAULT_MAX_WEIGHT", "MemoryBackend"]

DEFAULT_MAX_WEIGHT = 200_000


@dataclass(slots=True)
class _Stored:
    entry: Entry
    expires_at: float
    weight: int


class MemoryBackend(CacheBackend):
    """A bounded LRU with per-entry expiry, in this process."""

    name = "memory"

    def __init__(self, max_weight: int = DEFAULT_MAX_WEIGHT) -> None:
        self.max_weight = max_weight
        self.weight = 0
        self._items: OrderedDict[str, _Stored] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str, kind: Any) -> Entry | None:
        stored = self._items.get(key)
        if stored is None:
            return None
        if stored.expires_at <= time.monotonic():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return stored.entry

    async def put(self, key: str, entry: Entry, keep_s: float, weight: int) -> None:
        weight = max(1, weight)
        if key in self._items:
            self._drop(key)
        if weight > self.max_weight:
            return  # larger than the whole cache: not worth evicting everything for
        self._items[key] = _Stored(entry, time.monotonic() + keep_s, weight)
        self.weight += weight
        while self.weight > self.max_weight:
            self._drop(next(iter(self._items)))

    async def claim(self, key: str, hold_s: float) -> bool:
        # One process: the caller's own in-flight table already allows one refresh per key.
        return True

    def _drop(self, key: str) -> None:
        stored = self._items.pop(key)
        self.weight -= stored.weight
