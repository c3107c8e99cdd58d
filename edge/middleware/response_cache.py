r"""The response cache: answers of persisted operations, served without running GraphQL.

Only hash-only persisted requests are cached (APQ's ``sha256Hash`` or a
``documentId``, no query text), keyed by the document's id, the operation name
and the variables (normalized: sorted keys), and anonymous only for now (a
partner's key is checked by running its admission, which a hit would skip).
Subscriptions never are (a request accepting a multipart stream has no key): their
events are no answer to keep.

A response is stored only when it has no error and used at least one booking
source; it is fresh no longer than the shortest remaining freshness of the
sources behind it (``sources.pool.cache.answer_ttl_s`` less the age of the answers
it used). A hit rebuilds the bytes from the stored ``data`` (as serialized
then) and an ``extensions.sources`` that says ``fromCache`` and how old.

Past its freshness a response is still served, *stale*, for as long as the source
cache would itself serve the answers behind it stale (the shortest ``cache_stale_s``
of its sources; :data:`OWN_COPY_GRACE_S` for a source answering from its own copy,
a bulk feed), while one re-execution per key (:meth:`ResponseCache.revalidate`, and
one per key across instances sharing Redis) replaces it in the background. So an
expiry under load costs one execution, not one per request in flight (each of which
the source cache would have answered from the same stale answers anyway), and no
request waits for it. ``Cache-Control`` then says ``max-age=0``.
With Redis, an instance answers a fresh entry from its own copy for up to
:data:`NEAR_COPY_S` after reading or storing it, without a round trip.
GET responses carry ``Cache-Control`` and a weak ``ETag`` (304 on
``If-None-Match``), so browsers and CDNs can help; ``X-Cache`` says ``HIT``,
``MISS`` (executed and stored) or ``BYPASS`` (executed, not cacheable).

:class:`ResponseCacheLookup` is the middleware, on the GraphQL route after the rate
limits: a hit goes out as a :class:`~edge.middleware.cached_hits.HitResponse`, a miss
carries its key on the request's :class:`~edge.exchange.Exchange`, under which the
view :func:`remember`\ s the executed answer. (Anonymous GETs were looked up already,
in front of Starlette, by :class:`~edge.middleware.cached_hits.CachedHits`.)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from cross_web import HTTPException  # what strawberry 0.341 raises for a 400 (its HTTP layer)
from starlette.requests import Request

from edge.exchange import exchange_of
from edge.middleware.cached_hits import HitResponse, replay_request
from edge.operation import VARY, Operation
from sources.kv import CacheBackend, CacheUnavailable, Entry, MemoryBackend
from sources.pool import answer_ttl_s

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send
    from strawberry.http import GraphQLHTTPResponse
    from strawberry.types.execution import ExecutionResult

    from edge.exchange import Exchange
    from resolvers.context import RequestContext

__all__ = [
    "OWN_COPY_GRACE_S",
    "REVALIDATE_BACKOFF_S",
    "REVALIDATE_HOLD_S",
    "Hit",
    "Replay",
    "ResponseCache",
    "ResponseCacheLookup",
    "etag_of",
    "remember",
]

logger = logging.getLogger("passerelle.response_cache")

# (data as JSON bytes, the other extensions as JSON bytes, extensions.sources, TTL,
# seconds it may be served stale after its TTL, ETag)
Stored = tuple[bytes, bytes, list[dict[str, Any]], float, float, str]
# How long past its TTL a response whose sources answer from their own copy (a bulk
# feed: no stale window of their own) is served while it is re-executed: one
# execution's time, well within the operation timeout.
OWN_COPY_GRACE_S = 10.0
# After a re-execution that could not store a fresh response (its sources' answers
# were still being refreshed), how long before a stale hit may start another.
REVALIDATE_BACKOFF_S = 0.2
# How long one instance holds a key it re-executes (Redis), before another may.
REVALIDATE_HOLD_S = 2.0
# Runs the request again, bypassing the lookup; True when a fresh response was stored.
Replay = Callable[[], Awaitable[bool]]


# Hit bodies remembered (one per key, the oldest forgotten first).
BODIES_KEPT = 1024
# With a shared store (Redis), how long this instance answers a fresh entry from its own
# copy before asking the store again: a hit without a round trip (a third of the CPU).
# Another instance's newer response shows here within this time; a stale entry is
# always read again, so it is never re-executed for an old copy.
NEAR_COPY_S = 1.0


def hit_body(
    data: bytes, other: bytes, sources: list[dict[str, Any]], ages: tuple[float, ...]
) -> bytes:
    """A hit's bytes: the stored ``data``, its other extensions, and each source's
    entry saying ``fromCache`` with its age now."""
    shown = [
        {"id": s["id"], "status": s["status"], "fromCache": True, "ageSeconds": shown_age}
        for s, shown_age in zip(sources, ages, strict=True)
    ]
    extensions = orjson.loads(other) if other else {}
    extensions["sources"] = shown
    return b'{"data":' + data + b',"extensions":' + orjson.dumps(extensions) + b"}"


@dataclass(frozen=True, slots=True)
class Hit:
    body: bytes
    etag: str
    max_age_s: int
    stale: bool = False  # past its TTL: served while one re-execution replaces it


class ResponseCache:
    def __init__(self, backend: CacheBackend, namespace: str = "passerelle:v2:response") -> None:
        self.backend = backend
        self.namespace = namespace
        # One re-execution per key at a time (and held through its back-off).
        self._revalidating: dict[str, asyncio.Task[None]] = {}
        # The last body built per key: (stored at, the ages shown, body). A hit's body
        # changes only when its ages do (a tenth of a second), so most hits reuse it.
        self._bodies: dict[str, tuple[float, tuple[float, ...], bytes]] = {}
        # With a shared store: entries read (or written) here, by key, with when.
        self.near_s = 0.0 if isinstance(backend, MemoryBackend) else NEAR_COPY_S
        self._near: dict[str, tuple[float, Entry]] = {}

    def key(self, operation: Operation, scope: str) -> str | None:
        """The cache key of an operation, or None when it may not be answered from the
        cache. ``scope`` names the sources answering (``SourcePool.fingerprint``): two
        deployments sharing a Redis never serve each other's responses."""
        if operation.authorization is not None:
            return None  # even empty: admission answers it (401)
        if operation.streamed:
            return None  # a subscription: never one answer to keep
        document_id = operation.cache_id
        if document_id is None:
            return None
        try:
            normalized = orjson.dumps(
                [scope, document_id, operation.operation_name, operation.variables],
                option=orjson.OPT_SORT_KEYS,
            )
        except TypeError:
            return None
        return f"{self.namespace}:{hashlib.sha256(normalized).hexdigest()}"

    async def get(self, key: str) -> Hit | None:
        entry = self._near_copy(key)
        if entry is None:
            try:
                entry = await self.backend.get(key, Stored)
            except CacheUnavailable as exc:
                logger.debug("response cache unavailable (%s)", exc)
                return None
            if entry is None:
                return None
            self._keep_near(key, entry)
        data, other, sources, ttl, stale_s, etag = entry.value
        age = max(0.0, time.time() - entry.stored_at)
        if age >= ttl + stale_s:
            return None
        ages = tuple(round(s["ageSeconds"] + age, 1) for s in sources)
        built = self._bodies.get(key)
        if built is not None and built[0] == entry.stored_at and built[1] == ages:
            body = built[2]
        else:
            body = hit_body(data, other, sources, ages)
            if len(self._bodies) >= BODIES_KEPT:
                self._bodies.pop(next(iter(self._bodies)))
            self._bodies[key] = (entry.stored_at, ages, body)
        return Hit(body, etag, max(0, int(ttl - age)), stale=age >= ttl)

    def _near_copy(self, key: str) -> Entry | None:
        """This instance's copy of a shared entry, read less than ``near_s`` ago and
        still fresh; else None (ask the store)."""
        near = self._near.get(key) if self.near_s else None
        if near is None:
            return None
        read_at, entry = near
        ttl = entry.value[3]
        if time.monotonic() - read_at >= self.near_s or time.time() - entry.stored_at >= ttl:
            del self._near[key]
            return None
        return entry

    def _keep_near(self, key: str, entry: Entry) -> None:
        if not self.near_s:
            return
        if len(self._near) >= BODIES_KEPT and key not in self._near:
            self._near.pop(next(iter(self._near)))
        self._near[key] = (time.monotonic(), entry)

    def revalidate(self, key: str, replay: Replay) -> None:
        """Replace a stale entry in the background: ``replay`` runs the request again,
        once per key at a time in this process, and only where this instance claims
        the key (Redis: one instance of many)."""
        if key in self._revalidating:
            return

        async def run() -> None:
            if not await self._claim(key):
                await asyncio.sleep(REVALIDATE_BACKOFF_S)  # another instance has it
                return
            if not await replay():
                await asyncio.sleep(REVALIDATE_BACKOFF_S)

        task = asyncio.create_task(run())
        self._revalidating[key] = task
        task.add_done_callback(lambda done: self._done(key, done))

    @property
    def revalidating(self) -> int:
        """Re-executions in progress (or backing off)."""
        return len(self._revalidating)

    async def _claim(self, key: str) -> bool:
        try:
            return await self.backend.claim(f"{key}:revalidate", REVALIDATE_HOLD_S)
        except CacheUnavailable:
            return True  # no one to share the work with

    def _done(self, key: str, task: asyncio.Task[None]) -> None:
        if self._revalidating.get(key) is task:
            del self._revalidating[key]
        if not task.cancelled() and task.exception() is not None:
            logger.error("response revalidation failed", exc_info=task.exception())

    async def store(
        self, key: str, context: RequestContext, response: GraphQLHTTPResponse
    ) -> float:
        """Store an executed response, for as long as the freshest answer of the
        sources behind it allows; returns its TTL (0: not stored)."""
        sources = {s.id: s for s in context.federation.sources}
        asked = {sid: use for sid, use in context.federation.asked.items() if sid in sources}
        ttls = {
            sid: answer_ttl_s(sources[sid]) - (use.age_s if use.from_cache else 0.0)
            for sid, use in asked.items()
        }
        stales = {
            sid: sources[sid].config.cache_stale_s
            if sources[sid].cache_answers
            else OWN_COPY_GRACE_S
            for sid in asked
        }
        extensions = dict(response.get("extensions") or {})
        return await self.put(key, response.get("data"), extensions, ttls, stales)

    async def put(
        self,
        key: str,
        data: Any,
        extensions: dict[str, Any],
        ttls: dict[str, float],
        stales: dict[str, float] | None = None,
    ) -> float:
        """Store a response; returns its TTL (0: not stored). ``stales``: how long
        past it each source's answers may be served stale (none: not at all)."""
        sources = extensions.get("sources") or []
        if not sources or any(s["id"] not in ttls for s in sources):
            return 0.0
        ttl = min(ttls[s["id"]] for s in sources)
        if ttl <= 0:
            return 0.0
        stale_s = max(0.0, min((stales or {}).get(s["id"], 0.0) for s in sources))
        other = {k: v for k, v in extensions.items() if k != "sources"}
        # Copied: orjson.dumps hands back bytes holding at least a 4 KiB buffer, which
        # every entry kept in this process would pin.
        encoded = bytes(memoryview(orjson.dumps(data)))
        rest = bytes(memoryview(orjson.dumps(other))) if other else b""
        stored: Stored = (encoded, rest, sources, ttl, stale_s, _etag(encoded))
        try:
            weight = 1 + len(encoded) // 1024  # in KB, as the store is bounded
            entry = Entry(stored, time.time())
            await self.backend.put(key, entry, ttl + stale_s, weight)
        except CacheUnavailable as exc:
            logger.debug("response cache unavailable (%s)", exc)
            return 0.0
        self._keep_near(key, entry)
        return ttl


class ResponseCacheLookup:
    """ASGI middleware: a cached answer when there is one, else the key carried on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = exchange_of(scope)
        cache = exchange.services.response_cache
        # Already looked up (and missed) by the fast path in front (cached_hits.py)?
        if cache is not None and exchange.cache_key is None:
            request = Request(scope, receive)
            try:
                operation = await exchange.operations(request)
            except HTTPException:
                operation = None  # the view answers it (a 400)
            if isinstance(operation, Operation):
                key = cache.key(operation, exchange.services.pool.fingerprint)
                if key is not None:
                    hit = await cache.get(key)
                    if (metrics := exchange.services.metrics) is not None:
                        metrics.response_cache.labels("miss" if hit is None else "hit").inc()
                    if hit is not None:
                        if hit.stale:
                            body = await request.body() if request.method == "POST" else b""
                            replay = replay_request(self.app, scope, key, exchange.services, body)
                            cache.revalidate(key, replay)
                        response = HitResponse(
                            hit,
                            method=request.method,
                            accept=request.headers.get("accept", ""),
                            if_none_match=request.headers.get("if-none-match", ""),
                        )
                        await response(scope, receive, send)
                        return
                    exchange.cache_key = key
        await self.app(scope, receive, send)


async def remember(
    exchange: Exchange, method: str, result: ExecutionResult, data: GraphQLHTTPResponse
) -> None:
    """Store a cacheable response under the exchange's key, and say how caches may keep
    a GET one (headers on the exchange's sub-response)."""
    key = exchange.cache_key
    cache = exchange.services.response_cache
    ttl = 0.0
    if key is not None and cache is not None and not result.errors:
        ttl = await cache.store(key, exchange.context, data)
    headers = exchange.sub_response.headers
    if key is not None:
        headers["x-cache"] = "MISS" if ttl > 0 else "BYPASS"
    if method == "GET":
        if ttl > 0:
            headers["cache-control"] = f"public, max-age={int(ttl)}"
            headers["etag"] = etag_of(data.get("data"))
            headers["vary"] = VARY
        else:
            headers["cache-control"] = "no-store"


def etag_of(data: Any) -> str:
    return _etag(orjson.dumps(data))


def _etag(encoded: bytes) -> str:
    """Weak: the data is the same, the extensions (the age) are not."""
    return 'W/"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'
