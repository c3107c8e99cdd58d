"""The response cache's fast path, outside Starlette.

An anonymous GET of a persisted operation whose response is cached is answered
here, after its rate limit, without Starlette's routing and middleware stack
or strawberry's view: about half of what a hit costs otherwise. Anything else
(a miss, a POST, a key, CORS to apply) goes on to the app unchanged; a miss
carries its cache key along, so the view does not look it up twice.
"""

from __future__ import annotations

from collections import OrderedDict
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from edge.graphql_view import VARY, response_media_type
from edge.response_cache import Hit

# Query strings whose cache key is remembered (clients repeat the same GETs).
KEYS_KEPT = 10_000


class CachedHits:
    def __init__(self, app: Starlette, path: str = "/graphql") -> None:
        self.app = app
        self.path = path
        self._keys: OrderedDict[tuple[bytes, str], str | None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] != self.path
            or not scope["query_string"]
        ):
            await self.app(scope, receive, send)
            return
        state = self.app.state
        cache = getattr(state, "response_cache", None)
        settings = getattr(state, "settings", None)
        headers = dict(scope["headers"])
        if (
            cache is None
            or settings is None
            or settings.cors_origins  # CORS headers are the middleware's to add
            or b"authorization" in headers
        ):
            await self.app(scope, receive, send)
            return
        memo = (scope["query_string"], state.pool.fingerprint)
        if memo in self._keys:
            key = self._keys[memo]
        else:
            payload = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            key = self._keys[memo] = cache.key(payload, None, state.pool.fingerprint)
            if len(self._keys) > KEYS_KEPT:
                self._keys.popitem(last=False)
        hit = await cache.get(key) if key is not None else None
        if hit is None:
            if key is not None:
                scope.setdefault("state", {})["response_cache_key"] = key
            await self.app(scope, receive, send)
            return
        refusal = await state.rate_guard.check(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await _send_hit(send, hit, headers)


async def _send_hit(send: Send, hit: Hit, headers: dict[bytes, bytes]) -> None:
    """The hit as ``hit_response`` (edge/graphql_view.py) makes it, written directly."""
    media_type = response_media_type(headers.get(b"accept", b"").decode("latin-1"))
    etag = hit.etag.encode()
    status, body = (304, b"") if etag in headers.get(b"if-none-match", b"") else (200, hit.body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", f"{media_type}; charset=utf-8".encode()),
                (b"x-cache", b"HIT"),
                (b"cache-control", f"public, max-age={hit.max_age_s}".encode()),
                (b"etag", etag),
                (b"vary", VARY.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
