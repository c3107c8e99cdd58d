"""The response cache: answers of persisted operations, served without running GraphQL.

Only hash-only persisted requests are cached (APQ's ``sha256Hash`` or a
``documentId``, no query text), keyed by the document's id, the operation name
and the variables (normalized: sorted keys), and anonymous only for now (a
partner's key is checked by running its admission, which a hit would skip).

A response is stored only when it has no error and used at least one booking
source; it lives no longer than the shortest remaining freshness of the
sources behind it (``sources.pool.cache.answer_ttl_s`` less the age of the answers
it used). A hit rebuilds the bytes from the stored ``data`` (as serialized
then) and an ``extensions.sources`` that says ``fromCache`` and how old.
GET responses carry ``Cache-Control`` and a weak ``ETag`` (304 on
``If-None-Match``), so browsers and CDNs can help; ``X-Cache`` says ``HIT``,
``MISS`` (executed and stored) or ``BYPASS`` (executed, not cacheable).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sources.kv import CacheBackend, CacheUnavailable, Entry
from sources.pool import answer_ttl_s

if TYPE_CHECKING:
    from strawberry.http import GraphQLHTTPResponse

    from edge.operation import Operation
    from resolvers.context import RequestContext

logger = logging.getLogger("passerelle.response_cache")

# (data as JSON bytes, the other extensions as JSON bytes, extensions.sources, TTL, ETag)
Stored = tuple[bytes, bytes, list[dict[str, Any]], float, str]


@dataclass(frozen=True, slots=True)
class Hit:
    body: bytes
    etag: str
    max_age_s: int


class ResponseCache:
    def __init__(self, backend: CacheBackend, namespace: str = "passerelle:v1:response") -> None:
        self.backend = backend
        self.namespace = namespace

    def key(self, operation: Operation, scope: str) -> str | None:
        """The cache key of an operation, or None when it may not be answered from the
        cache. ``scope`` names the sources answering (``SourcePool.fingerprint``): two
        deployments sharing a Redis never serve each other's responses."""
        if operation.authorization is not None:
            return None  # even empty: admission answers it (401)
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
        try:
            entry = await self.backend.get(key, Stored)
        except CacheUnavailable as exc:
            logger.debug("response cache unavailable (%s)", exc)
            return None
        if entry is None:
            return None
        data, other, sources, ttl, etag = entry.value
        age = max(0.0, time.time() - entry.stored_at)
        if age >= ttl:
            return None
        shown = [
            {
                "id": s["id"],
                "status": s["status"],
                "fromCache": True,
                "ageSeconds": round(s["ageSeconds"] + age, 1),
            }
            for s in sources
        ]
        extensions = orjson.loads(other) if other else {}
        extensions["sources"] = shown
        body = b'{"data":' + data + b',"extensions":' + orjson.dumps(extensions) + b"}"
        return Hit(body, etag, max(0, int(ttl - age)))

    async def store(
        self, key: str, context: RequestContext, response: GraphQLHTTPResponse
    ) -> float:
        """Store an executed response, for as long as the freshest answer of the
        sources behind it allows; returns its TTL (0: not stored)."""
        sources = {s.id: s for s in context.federation.sources}
        ttls = {
            sid: answer_ttl_s(sources[sid]) - (use.age_s if use.from_cache else 0.0)
            for sid, use in context.federation.asked.items()
            if sid in sources
        }
        extensions = dict(response.get("extensions") or {})
        return await self.put(key, response.get("data"), extensions, ttls)

    async def put(
        self, key: str, data: Any, extensions: dict[str, Any], ttls: dict[str, float]
    ) -> float:
        """Store a response; returns its TTL (0: not stored)."""
        sources = extensions.get("sources") or []
        if not sources or any(s["id"] not in ttls for s in sources):
            return 0.0
        ttl = min(ttls[s["id"]] for s in sources)
        if ttl <= 0:
            return 0.0
        other = {k: v for k, v in extensions.items() if k != "sources"}
        encoded = orjson.dumps(data)
        stored: Stored = (encoded, orjson.dumps(other) if other else b"", sources, ttl,
                          _etag(encoded))  # fmt: skip
        try:
            weight = 1 + len(encoded) // 1024  # in KB, as the store is bounded
            await self.backend.put(key, Entry(stored, time.time()), ttl, weight)
        except CacheUnavailable as exc:
            logger.debug("response cache unavailable (%s)", exc)
            return 0.0
        return ttl


def etag_of(data: Any) -> str:
    return _etag(orjson.dumps(data))


def _etag(encoded: bytes) -> str:
    """Weak: the data is the same, the extensions (the age) are not."""
    return 'W/"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'
