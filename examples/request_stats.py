"""``GET /_stats`` for a demo system: ``{"requests": N}``, every request but its own.

Tests and benchmarks read it to count the upstream calls the gateway makes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

_COUNT = web.AppKey("request_count", list)


def install(app: web.Application) -> None:
    """Count the app's requests (first, before any fault or check) and serve the count."""
    app[_COUNT] = [0]

    @web.middleware
    async def count(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != "/_stats":
            request.app[_COUNT][0] += 1
        return await handler(request)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": request.app[_COUNT][0]})

    app.middlewares.insert(0, count)
    app.router.add_get("/_stats", stats)
