"""Where cached source answers live: in this process, or in Redis for every instance.

Both backends store *entries*: a value and when it was fetched. They know
nothing of freshness rules (``sources.pool.cache`` decides what is fresh or stale);
they only drop an entry once it can no longer be served (``keep_s``).

``MemoryBackend`` keeps Python objects as they are (no copy, no encoding) in a
bounded LRU, bounded by *weight* (the number of records an entry holds), since
one slot search answer may hold a thousand slots and another none.

``RedisBackend`` shares entries between instances. Values are encoded with
msgspec's MessagePack and decoded into the expected record type: nothing is
unpickled from the network, and a corrupt or foreign entry is a miss.
Any Redis failure raises ``CacheUnavailable``; the caller then calls the
source directly.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger("passerelle.cache")

# A cache that answers slower than this is treated as down: it is there to save time.
REDIS_TIMEOUT_S = 0.25
DEFAULT_MAX_WEIGHT = 200_000
# After a Redis failure, it is left alone this long before it is tried again.
OUTAGE_PAUSE_S = 5.0


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

    async def aclose(self) -> None:  # noqa: B027 - nothing to release in memory
        """Release connections."""


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


class RedisBackend(CacheBackend):
    """Entries shared by every instance, in Redis (``PASSERELLE_REDIS_URL``)."""

    name = "redis"

    def __init__(self, url: str, timeout_s: float = REDIS_TIMEOUT_S) -> None:
        # No retries inside the client: a failing cache must cost one short timeout,
        # then the gateway calls the source directly.
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._encoder = msgspec.msgpack.Encoder()
        self._decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}
        self._paused_until = 0.0

    def _check(self) -> None:
        """Refuse at once while paused after a failure: a dead Redis costs one timeout
        per ``OUTAGE_PAUSE_S``, not one per request."""
        if time.monotonic() < self._paused_until:
            raise CacheUnavailable("redis: paused after a failure")

    def _failed(self, exc: BaseException) -> CacheUnavailable:
        if time.monotonic() >= self._paused_until:
            logger.warning(
                "redis unavailable (%s): not used for %.0f s", type(exc).__name__, OUTAGE_PAUSE_S
            )
        self._paused_until = time.monotonic() + OUTAGE_PAUSE_S
        return CacheUnavailable(f"redis: {type(exc).__name__}")

    def _decoder(self, kind: Any) -> msgspec.msgpack.Decoder[Any]:
        decoder = self._decoders.get(kind)
        if decoder is None:
            decoder = self._decoders[kind] = msgspec.msgpack.Decoder(tuple[float, kind])
        return decoder

    async def get(self, key: str, kind: Any) -> Entry | None:
        self._check()
        try:
            raw = await self._redis.get(key)
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        if not isinstance(raw, bytes):
            return None
        try:
            stored_at, value = self._decoder(kind).decode(raw)
        except msgspec.DecodeError:
            return None  # written by another version, or corrupt: a miss
        return Entry(value, stored_at)

    async def put(self, key: str, entry: Entry, keep_s: float, weight: int) -> None:
        self._check()
        data = self._encoder.encode((entry.stored_at, entry.value))
        try:
            await self._redis.set(key, data, px=max(1, int(keep_s * 1000)))
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc

    async def claim(self, key: str, hold_s: float) -> bool:
        self._check()
        try:
            won = await self._redis.set(
                f"{key}:refresh", b"1", px=max(1, int(hold_s * 1000)), nx=True
            )
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        return bool(won)

    async def aclose(self) -> None:
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass
