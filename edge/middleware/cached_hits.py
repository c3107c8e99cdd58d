"""Cached hits: how one goes out (:class:`HitResponse`), and the fast path in front.

An anonymous GET of a persisted operation whose response is cached is answered
by :class:`CachedHits`, after its rate limit, without Starlette's routing and
middleware stack or strawberry's view: about half of what a hit costs otherwise.
Anything else (a miss, a POST, a key, CORS to apply) goes on to the app
unchanged; a miss carries its cache key along (and the operation, when it was
read here) on the request's :class:`~edge.exchange.Exchange`, so neither is read
or looked up twice. A hit found behind Starlette (a POST,
``response_cache.ResponseCacheLookup``) goes out as the same ``HitResponse``.

A stale hit (past its TTL, within its sources' stale window) goes out too, and
:func:`replay_request` runs the same request once more behind the lookup, in the
background, so that the view stores a fresh response (one at a time per key:
``ResponseCache.revalidate``). A GET's replay goes through the whole stack, rate
limits included: it takes one more token of the client whose request found the entry
stale (a POST's starts behind the limits).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from cross_web import HTTPException  # what strawberry 0.341 raises for a 400 (its HTTP layer)
from starlette.responses import Response

from edge.exchange import exchange_of
from edge.middleware.rate_limit import client_ip
from edge.operation import VARY, Operation, read_operations, response_media_type
from edge.services import services_of

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.datastructures import State
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from edge.middleware.response_cache import Hit, Replay
    from edge.services import EdgeServices

__all__ = ["KEYS_KEPT", "CachedHits", "HitResponse", "replay_request"]

# Query strings whose cache key is remembered (clients repeat the same GETs).
KEYS_KEPT = 10_000


class HitResponse(Response):
    """A cached response as it goes out: ``X-Cache: HIT``, the client's media type;
    for a GET, ``Cache-Control``, the ``ETag`` and a 304 on a matching
    ``If-None-Match``. The headers are written directly: this is the fast path's
    whole answer, so it skips ``Response``'s header building."""

    def __init__(self, hit: Hit, *, method: str, accept: str, if_none_match: str) -> None:
        media_type = response_media_type(accept)
        headers = [(b"content-type", f"{media_type}; charset=utf-8".encode()), (b"x-cache", b"HIT")]
        body = hit.body
        self.status_code = 200
        if method == "GET":
            headers += [
                (b"cache-control", f"public, max-age={hit.max_age_s}".encode()),
                (b"etag", hit.etag.encode()),
                (b"vary", VARY.encode()),
            ]
            if hit.etag in if_none_match:
                self.status_code, body = 304, b""
        if self.status_code != 304:  # a 304's length would be the 200's (RFC 9110)
            headers.append((b"content-length", str(len(body)).encode()))
        self.body = body
        self.raw_headers = headers
        self.background = None


class CachedHits:
    def __init__(self, app: Starlette, path: str = "/graphql") -> None:
        self.app = app
        self.path = path
        self._keys: OrderedDict[tuple[bytes, str], str | None] = OrderedDict()

    @property
    def state(self) -> State:
        """The app's state, where its lifespan keeps its services (``services_of``)."""
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] != self.path
            or not scope["query_string"]
        ):
            await self.app(scope, receive, send)
            return
        services = services_of(self.app)
        cache = services.response_cache
        headers = dict(scope["headers"])
        if (
            cache is None
            or services.settings.cors_origins  # CORS headers are the middleware's to add
            or b"authorization" in headers
            # A subscription asked over GET: never an answer from the cache (the view
            # refuses it).
            or b"subscriptionspec" in headers.get(b"accept", b"").lower()
        ):
            await self.app(scope, receive, send)
            return
        scope_name = services.pool.fingerprint
        memo = (scope["query_string"], scope_name)
        operation: Operation | None = None
        if memo in self._keys:
            key = self._keys[memo]
        else:
            # As Starlette reads a query string (request.query_params).
            params = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            try:
                read = read_operations("GET", dict(params), authorization=None)
            except HTTPException:
                read = None  # the view says what is wrong
            operation = read if isinstance(read, Operation) else None
            key = cache.key(operation, scope_name) if operation is not None else None
            self._keys[memo] = key
            if len(self._keys) > KEYS_KEPT:
                self._keys.popitem(last=False)
        hit = await cache.get(key) if key is not None else None
        if key is not None and services.metrics is not None:
            services.metrics.response_cache.labels("miss" if hit is None else "hit").inc()
        if hit is None:
            if key is not None:
                exchange = exchange_of(scope, services)
                exchange.cache_key = key
                if operation is not None:
                    exchange.read = operation
            await self.app(scope, receive, send)
            return
        guard = services.rate_guard
        peer = scope.get("client")
        # The first X-Forwarded-For, as Starlette's headers give it to the guard elsewhere.
        forwarded = next((v for k, v in scope["headers"] if k == b"x-forwarded-for"), None)
        address = client_ip(
            peer[0] if peer else None,
            forwarded.decode("latin-1") if forwarded is not None else None,
            guard.trusted_proxies,
        )
        refused = await guard.refusal(None, address)  # no Authorization here (above)
        if refused is not None:
            await refused.response()(scope, receive, send)
            return
        if hit.stale and key is not None:
            cache.revalidate(key, replay_request(self.app, scope, key, services))
        response = HitResponse(
            hit,
            method="GET",
            accept=headers.get(b"accept", b"").decode("latin-1"),
            if_none_match=headers.get(b"if-none-match", b"").decode("latin-1"),
        )
        await response(scope, receive, send)


def replay_request(
    app: ASGIApp, scope: Scope, key: str, services: EdgeServices, body: bytes = b""
) -> Replay:
    """The request of ``scope`` (its ``body``, for a POST) sent again to ``app``, the
    part of the stack behind the cache lookup, with its cache key already on its
    exchange: the lookup is skipped, the view executes it and stores the response
    under ``key``. The answer goes nowhere; the replay says whether it was stored
    (``X-Cache: MISS``, where ``BYPASS`` means it could not be)."""

    async def replay() -> bool:
        # Without If-None-Match: the replay's answer is the full one, whatever it is.
        headers = [(k, v) for k, v in scope["headers"] if k != b"if-none-match"]
        again: dict[str, Any] = {**scope, "headers": headers, "state": {}}
        exchange_of(again, services).cache_key = key
        answered = asyncio.Event()
        sent = {"body": False, "stored": False}

        async def receive() -> Message:
            if not sent["body"]:
                sent["body"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()  # a listener for the client leaving: it never does
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["stored"] = (b"x-cache", b"MISS") in list(message.get("headers", ()))
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        try:
            await app(again, receive, send)
        finally:
            answered.set()
        return sent["stored"]

    return replay
