"""``GET /_stats`` for a demo system: every request but its own, counted and timed.

Tests and benchmarks read it to count the upstream calls the gateway makes, and
to measure how long the upstream itself took to serve each of them:

    GET /_stats                 {"requests": N}
    GET /_stats?since=T         {"requests": N, "recent": [
                                    {"path": "/fhir/Slot", "query": "status=free&...",
                                     "start": 1764096000.123, "ms": 50.8, "status": 200}, ...]}

``requests`` counts every request received since start. ``recent`` lists the
most recent completed requests (a bounded ring, by default the last 2,000)
that started at ``T`` or later (``time.time()`` seconds, so another process on
the same machine can line them up with its own clock), in order of completion.
``ms`` is the service time measured around everything the app does, injected
faults included: the middleware runs first, before any fault or check. A
request still in progress (a ``hang`` fault) is counted but not yet listed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

RECENT_MAX = 2000
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ServedRequest:
    """One request as the demo system served it."""

    path: str
    query: str
    start: float  # time.time() when it arrived
    ms: float  # service time, injected faults included
    status: int

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "query": self.query,
            "start": self.start,
            "ms": round(self.ms, 3),
            "status": self.status,
        }


@dataclass(slots=True)
class RequestStats:
    """The count since start and a ring of the most recent completed requests."""

    recent_max: int = RECENT_MAX
    requests: int = 0
    recent: deque[ServedRequest] = field(init=False)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.recent_max)

    def since(self, start: float) -> list[ServedRequest]:
        return [served for served in self.recent if served.start >= start]


_STATS = web.AppKey("request_stats", RequestStats)


def install(app: web.Application, *, recent_max: int = RECENT_MAX) -> None:
    """Count and time the app's requests (first, before any fault or check); serve them."""
    app[_STATS] = RequestStats(recent_max)

    @web.middleware
    async def count(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path == "/_stats":
            return await handler(request)
        stats = request.app[_STATS]
        stats.requests += 1
        start, began = time.time(), time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away first (nginx's code for it)
            raise
        finally:
            ms = (time.perf_counter() - began) * 1000
            served = ServedRequest(request.path, request.query_string, start, ms, status)
            stats.recent.append(served)

    async def serve_stats(request: web.Request) -> web.Response:
        stats = request.app[_STATS]
        body: dict[str, object] = {"requests": stats.requests}
        if "since" in request.query:
            try:
                since = float(request.query["since"])
            except ValueError:
                raise web.HTTPBadRequest(text="since must be a time.time() value") from None
            body["recent"] = [served.as_json() for served in stats.since(since)]
        return web.json_response(body)

    app.middlewares.insert(0, count)
    app.router.add_get("/_stats", serve_stats)
