"""Automatic persisted queries (Apollo's APQ protocol).

A client sends ``extensions.persistedQuery = {"version": 1, "sha256Hash": H}``
instead of the query, over POST or GET. Unknown ``H``: the answer is the error
``PersistedQueryNotFound`` (``PERSISTED_QUERY_NOT_FOUND``, HTTP 200, so that
Apollo Client sends the query with its hash next time); a query whose SHA-256
is not ``H``: ``PERSISTED_QUERY_HASH_MISMATCH``. Registered queries live in
the cache backend, so with Redis every instance knows them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from strawberry.types.execution import ExecutionResult

from edge.documents.trusted import check_document
from edge.operation import Operation
from schema.cost import DEFAULT_MAX_COST
from schema.error_codes import ErrorCode, error_result
from sources.kv import CacheBackend, CacheUnavailable, Entry

logger = logging.getLogger("passerelle.apq")

# A registered query is kept this long after it was last registered.
KEEP_S = 7 * 24 * 3600.0
MAX_QUERY_BYTES = 100 * 1024
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
NOT_SUPPORTED = ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED


def is_sha256_digest(text: str) -> bool:
    """Whether ``text`` is a SHA-256 digest in hexadecimal (either case): the form of a
    persisted query's id, whether APQ registered it or a partner did."""
    return _SHA256.fullmatch(text) is not None


class PersistedQueries:
    """Resolves APQ requests into plain ones, registering queries as they come.

    ``max_cost``: the schema's own cost limit (``GatewaySchema.max_cost``; ``None``
    when it only measures), so that a query is kept only if the gateway runs it.
    """

    def __init__(
        self,
        backend: CacheBackend,
        namespace: str = "passerelle:v1:apq",
        *,
        max_cost: int | None = DEFAULT_MAX_COST,
    ) -> None:
        self.backend = backend
        self.namespace = namespace
        self.max_cost = max_cost
        # Lookups by hash alone, by result (hit, miss), read by /metrics.
        self.lookups: Counter[str] = Counter()

    async def resolve(self, request: Operation) -> Operation | ExecutionResult:
        """The operation with its query filled in, or the error to answer with."""
        extensions = request.extensions or {}
        persisted: Any = extensions.get("persistedQuery")
        if persisted is None:
            return request
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            return error_result(NOT_SUPPORTED, "persistedQuery must be {version: 1, sha256Hash}")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or not is_sha256_digest(digest):
            return error_result(
                NOT_SUPPORTED, "persistedQuery.sha256Hash must be 64 hexadecimal digits"
            )
        digest = digest.lower()
        key = f"{self.namespace}:{digest}"
        if request.query is None:
            query = await self._get(key)
            self.lookups["miss" if query is None else "hit"] += 1
            if query is None:
                return error_result(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
            return replace(request, query=query)
        encoded = request.query.encode("utf-8", "surrogatepass")
        if hashlib.sha256(encoded).hexdigest() != digest:
            return error_result(
                ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                "provided sha256Hash does not match the query",
            )
        # Only a document the gateway would run is kept (parsed, valid, within the
        # limits and the cost): junk sent to fill the store is refused by execution.
        if len(encoded) <= MAX_QUERY_BYTES:
            if check_document(request.query, max_cost=self.max_cost) is None:
                await self._put(key, request.query)
        return request

    async def _get(self, key: str) -> str | None:
        try:
            entry = await self.backend.get(key, str)
        except CacheUnavailable as exc:
            logger.debug("persisted queries unavailable (%s)", exc)
            return None
        return entry.value if entry is not None and isinstance(entry.value, str) else None

    async def _put(self, key: str, query: str) -> None:
        try:
            weight = 1 + len(query) // 1024  # in KB, as the store is bounded
            await self.backend.put(key, Entry(query, time.time()), KEEP_S, weight)
        except CacheUnavailable as exc:
            logger.debug("persisted queries unavailable (%s)", exc)
