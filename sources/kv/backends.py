"""The key/value interface: entries kept by key, in this process or in Redis.

Backends store *entries*: a value and when it was fetched. They know nothing of
freshness rules (``sources.pool.cache`` decides what is fresh or stale; the edge
what a persisted query or a response is worth); they only drop an entry once it
can no longer be served (``keep_s``). ``MemoryBackend`` (``memory``) keeps one
process's; ``RedisBackend`` (``shared``) every instance's, through the gateway's
one ``RedisLink`` (``link``). A backend that cannot answer raises
``CacheUnavailable``; its caller then does without it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


class CacheUnavailable(Exception):
    """The cache backend could not be reached or answered an error."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached value and the wall-clock time (``time.time()``) it was fetched."""

    value: Any
    stored_at: float


class CacheBackend(ABC):
    """Get, put and claim entries by key. ``kind`` types the value for decoding."""

    name: str

    @abstractmethod
    async def get(self, key: str, kind: Any) -> Entry | None:
        """The entry, or None when absent, expired or unreadable."""

    @abstractmethod
    async def put(self, key: str, entry: Entry, keep_s: float, weight: int) -> None:
        """Store ``entry`` for ``keep_s`` seconds (its whole servable life)."""

    @abstractmethod
    async def claim(self, key: str, hold_s: float) -> bool:
        """Take the right to refresh ``key`` for ``hold_s`` seconds; False if another has it."""

    @property
    def available(self) -> bool:
        """False while the backend is known to be down (it would refuse at once)."""
        return True

    async def aclose(self) -> None:  # noqa: B027 - nothing to release in memory
        """Release what this backend owns."""


__all__ = ["CacheBackend", "CacheUnavailable", "Entry"]
