"""Source answers shared across requests: fresh, stale-while-revalidate, single-flight.

``SourceCache.read`` answers one ``Read`` of one source:

- a *fresh* entry (younger than the source's ``cache_ttl_s``) is served as is;
- a *stale* one (within ``cache_stale_s`` more) is served too, and refreshed in
  the background, one refresh per key at a time (across instances with Redis);
- otherwise the source is called, and concurrent identical reads wait for that
  one call (single-flight). The call runs with the source's own timeout, not the
  first caller's deadline: each caller stops waiting at its own deadline, and
  the answer still lands in the cache for the next request.

Errors are never cached. A cache backend that fails is skipped for a few
seconds (direct calls, logged once), never turned into an error for a client.
Sources that answer from their own in-memory copy (bulk feeds) are not cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson

from sources.errors import SourceError, SourceTimeout
from sources.kv import CacheBackend, CacheUnavailable, Entry
from sources.kv.link import OUTAGE_PAUSE_S

if TYPE_CHECKING:
    from sources.base import Source, SourceConfig
    from sources.pool.reads import Read

T = TypeVar("T")
logger = logging.getLogger("passerelle.cache")

# v2: clinics carry their time zone, and naive upstream times are read in it; answers
# cached under the Montreal-only rule are not served.
NAMESPACE = "passerelle:v2"
# For a source serving its own copy that does not say how often it refreshes it.
DEFAULT_POLL_S = 60.0

# A call of one source: given a budget in seconds (None: the source's own timeout).
Call = Callable[[float | None], Awaitable["T | SourceError"]]


@dataclass(frozen=True, slots=True)
class CachePolicy:
    ttl_s: float
    stale_s: float

    @classmethod
    def of(cls, source: Source) -> CachePolicy:
        if not source.cache_answers:
            return cls(0.0, 0.0)
        return cls(source.config.cache_ttl_s, source.config.cache_stale_s)


def answer_ttl_s(source: Source) -> float:
    """How long an answer of this source may be reused: its cache TTL, or for a source
    serving its own copy (a bulk feed), until its next poll at the latest."""
    if source.cache_answers:
        return CachePolicy.of(source).ttl_s
    return source.refresh_interval_s or DEFAULT_POLL_S


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """A source's answer and how old it is (0 and not from cache when just fetched)."""

    value: T
    from_cache: bool = False
    age_s: float = 0.0


class SourceCache:
    """The cache in front of every source call. ``backend=None`` caches nothing,
    but identical concurrent reads are still collapsed into one call."""

    def __init__(self, backend: CacheBackend | None, namespace: str = NAMESPACE) -> None:
        self.backend = backend
        self.namespace = namespace
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        # Whether the last use of the backend worked: an outage is logged once.
        self._was_available = True
        # Lookups by (source id, fresh | stale | miss), read by the metrics at scrape time.
        self.lookups: Counter[tuple[str, str]] = Counter()
        # Told of each answer stored: (source id, cache key, value, seconds it is kept).
        self.stored_listeners: list[Callable[[str, str, Any, float], None]] = []

    @property
    def available(self) -> bool:
        """False without a backend, or while it is down (Redis: the link's pause)."""
        return self.backend is not None and self.backend.available

    def key(self, source: Source, read: Read[Any]) -> str:
        generation = source.cache_generation
        return (
            f"{self.namespace}:{source.id}:{_fingerprint(source.config)}:"
            f"{generation}:{read.digest()}"
        )

    async def read(
        self, source: Source, read: Read[T], call: Call[T], budget_s: float | None
    ) -> Served[T] | SourceError:
        """``read`` of ``source``: from the cache when it can, else through ``call``."""
        if budget_s is not None and budget_s <= 0:
            return SourceTimeout(source.id, "the request's fan-out deadline had passed")
        policy = CachePolicy.of(source)
        if policy.ttl_s <= 0:
            outcome = await call(budget_s)
            return outcome if isinstance(outcome, SourceError) else Served(outcome)
        key = self.key(source, read)
        entry = await self._get(key, read.value_type)
        if entry is not None:
            age = max(0.0, time.time() - entry.stored_at)
            if age < policy.ttl_s:
                self.lookups[source.id, "fresh"] += 1
                return Served(entry.value, True, age)
            if age < policy.ttl_s + policy.stale_s:
                self.lookups[source.id, "stale"] += 1
                self._refresh(key, source, read, call, policy)
                return Served(entry.value, True, age)
        self.lookups[source.id, "miss"] += 1
        return await self._fetch_once(key, source, read, call, policy, budget_s)

    async def _fetch_once(
        self,
        key: str,
        source: Source,
        read: Read[T],
        call: Call[T],
        policy: CachePolicy,
        budget_s: float | None,
    ) -> Served[T] | SourceError:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch_and_store(key, source, read, call, policy))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(self._inflight, key, done))
        wait_s = source.config.timeout_s if budget_s is None else budget_s
        try:
            # The shared call goes on if this caller gives up (deadline, cancellation).
            async with asyncio.timeout(wait_s):
                outcome: T | SourceError = await asyncio.shield(task)
        except TimeoutError:
            return SourceTimeout(source.id, f"no answer within {wait_s:.3g} s")
        return outcome if isinstance(outcome, SourceError) else Served(outcome)

    async def _fetch_and_store(
        self, key: str, source: Source, read: Read[T], call: Call[T], policy: CachePolicy
    ) -> T | SourceError:
        outcome = await call(None)
        if not isinstance(outcome, SourceError):
            await self._put(key, source, read, outcome, policy)
        return outcome

    def _refresh(
        self, key: str, source: Source, read: Read[T], call: Call[T], policy: CachePolicy
    ) -> None:
        if key in self._refreshing or key in self._inflight:
            return

        async def refresh() -> None:
            if not await self._claim(key, source.config.timeout_s * 2):
                return  # another instance is refreshing it
            outcome = await call(None)
            if not isinstance(outcome, SourceError):
                await self._put(key, source, read, outcome, policy)

        task = asyncio.create_task(refresh())
        self._refreshing[key] = task
        task.add_done_callback(lambda done: self._forget(self._refreshing, key, done))

    @staticmethod
    def _forget(table: dict[str, Any], key: str, task: asyncio.Task[Any]) -> None:
        if table.get(key) is task:
            del table[key]
        if not task.cancelled() and task.exception() is not None:
            logger.error("cache task failed", exc_info=task.exception())

    # -- the backend, whose failures never reach the caller ----------------------------

    async def _get(self, key: str, kind: Any) -> Entry | None:
        if not self.available or self.backend is None:
            return None
        try:
            entry = await self.backend.get(key, kind)
        except CacheUnavailable as exc:
            self._pause(exc)
            return None
        self._was_available = True
        return entry

    async def _put(
        self, key: str, source: Source, read: Read[T], value: T, policy: CachePolicy
    ) -> None:
        if not self.available or self.backend is None:
            return
        keep_s = policy.ttl_s + policy.stale_s
        try:
            await self.backend.put(key, Entry(value, time.time()), keep_s, read.weight(value))
        except CacheUnavailable as exc:
            self._pause(exc)
            return
        except Exception:  # a value the backend cannot store: served, just not cached
            logger.exception("cache: could not store an answer of %s", read.kind)
            return
        for listener in self.stored_listeners:
            try:
                listener(source.id, key, value, keep_s)
            except Exception:  # a listener's bug must not cost the answer
                logger.exception("cache: a listener of stored answers failed")

    async def _claim(self, key: str, hold_s: float) -> bool:
        if not self.available or self.backend is None:
            return True
        try:
            return await self.backend.claim(key, hold_s)
        except CacheUnavailable as exc:
            self._pause(exc)
            return True

    def _pause(self, exc: CacheUnavailable) -> None:
        # The backend pauses itself (one pause for every user of Redis); the source
        # cache says once what that means for it.
        if self._was_available:
            name = self.backend.name if self.backend is not None else "cache"
            logger.warning(
                "%s cache unavailable (%s): calling sources directly for %.0f s",
                name,
                exc,
                OUTAGE_PAUSE_S,
            )
        self._was_available = False

    async def aclose(self) -> None:
        tasks = [*self._inflight.values(), *self._refreshing.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.backend is not None:
            await self.backend.aclose()


def _fingerprint(config: SourceConfig) -> str:
    """Changes when the source is re-pointed or reconfigured, so old answers are not served.

    Worked out once per config (a frozen value, kept by its adapter for its lifetime)."""
    known = _FINGERPRINTS.get(id(config))
    if known is not None and known[0] is config:
        return known[1]
    fingerprint = _config_fingerprint(config)
    if len(_FINGERPRINTS) >= _MAX_FINGERPRINTS:
        _FINGERPRINTS.clear()
    _FINGERPRINTS[id(config)] = (config, fingerprint)
    return fingerprint


# By the config's id(), with the config itself, which keeps that id from being reused.
_FINGERPRINTS: dict[int, tuple[SourceConfig, str]] = {}
_MAX_FINGERPRINTS = 1024


def _config_fingerprint(config: SourceConfig) -> str:
    data = orjson.dumps(
        [config.protocol.value, config.url, config.options.as_table()],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(data).hexdigest()[:12]
