"""The response cache's fast path, outside Starlette.

An anonymous GET of a persisted operation whose response is cached is answered
here, after its rate limit, without Starlette's routing and middleware stack
or strawberry's view: about half of what a hit costs otherwise. Anything else
(a miss, a POST, a key, CORS to apply) goes on to the app unchanged; a miss
carries its cache key along, so the view does not look it up twice.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from edge.graphql_view import hit_response


class CachedHits:
    def __init__(self, app: Starlette, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

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
        request = Request(scope)
        if (
            cache is None
            or settings is None
            or settings.cors_origins  # CORS headers are the middleware's to add
            or "authorization" in request.headers
        ):
            await self.app(scope, receive, send)
            return
        key = cache.key(dict(request.query_params), None, state.pool.fingerprint)
        hit = await cache.get(key) if key is not None else None
        if hit is None:
            if key is not None:
                scope.setdefault("state", {})["response_cache_key"] = key
            await self.app(scope, receive, send)
            return
        refusal = await state.rate_guard.check(request)
        response = refusal if refusal is not None else hit_response(request, hit)
        await response(scope, receive, send)
