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
from typing import Any

import orjson

from sources.kv import CacheBackend, CacheUnavailable, Entry

logger = logging.getLogger("passerelle.response_cache")

# (data as JSON bytes, the other extensions as JSON bytes, extensions.sources, TTL, ETag)
Stored = tuple[bytes, bytes, list[dict[str, Any]], float, str]


@dataclass(frozen=True, slots=True)
class Hit:
    body: bytes
    etag: str
    max_age_s: int


def _document_id(payload: dict[str, Any]) -> str | None:
    """The id of the document the request runs, or None when it is not only an id.

    A request naming two different documents (``documentId`` and an APQ hash) is
    not cached: which one runs is admission's business, and a key taken from the
    other would let one document's answer be stored under another's id.
    """
    if payload.get("query"):
        return None  # a document sent in full is run (and its hash checked), not looked up
    extensions = payload.get("extensions")
    if isinstance(extensions, str):
        try:
            extensions = orjson.loads(extensions)
        except orjson.JSONDecodeError:
            return None
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    digest = digest.lower() if isinstance(digest, str) and digest else None
    document_id = payload.get("documentId")
    named = document_id.removeprefix("sha256:") if isinstance(document_id, str) else None
    if named and digest and named.lower() != digest:
        return None
    return digest or named or None


def _variables(payload: dict[str, Any]) -> Any:
    variables = payload.get("variables")
    if isinstance(variables, str):
        try:
            return orjson.loads(variables) if variables else None
        except orjson.JSONDecodeError:
            return False  # unreadable: let the view refuse it
    return variables


class ResponseCache:
    def __init__(self, backend: CacheBackend, namespace: str = "passerelle:v1:response") -> None:
        self.backend = backend
        self.namespace = namespace

    def key(self, payload: dict[str, Any], authorization: str | None, scope: str) -> str | None:
        """The cache key of a request's payload (GET params or POST body), or None.
        ``scope`` names the sources answering (``SourcePool.fingerprint``): two
        deployments sharing a Redis never serve each other's responses."""
        if authorization is not None:
            return None  # even empty: admission answers it (401)
        document_id = _document_id(payload)
        variables = _variables(payload)
        if document_id is None or variables is False:
            return None
        try:
            normalized = orjson.dumps(
                [scope, document_id, payload.get("operationName"), variables],
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
