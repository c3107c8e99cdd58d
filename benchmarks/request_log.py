"""The CPU one request log line costs (``edge/middleware/request_log.py``), in µs.

    python benchmarks/request_log.py

Drives ``RequestLog`` in process around an app that answers at once, in production
(one JSON line written to memory): a cached hit (no operation, no source), and an
executed query (a trusted document's name, two sources asked). The difference with
the bare app is what the log adds to each request.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from types import SimpleNamespace
from typing import Any

from edge.middleware.request_log import LOGGER, RequestLog, install
from edge.operation import Operation
from edge.settings import Settings
from sources.search.results import SourceUse

N = 20_000


async def _hit(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-cache", b"HIT")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _executed(scope: Any, receive: Any, send: Any) -> None:
    federation = SimpleNamespace(asked={"fhir-a": SourceUse(True), "rest-b": SourceUse()})
    scope["state"]["passerelle.exchange"] = SimpleNamespace(
        ran=[Operation("POST", "query NearMe { x }", trusted=("NearMe", "query"))],
        error_codes=[],
        cache_key="k",
        context=SimpleNamespace(reported=[], federation=federation),
    )
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: Any) -> None:
    pass


async def _per_request_us(app: Any) -> float:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/graphql",
        "query_string": b"extensions=...",
        "headers": [(b"accept", b"application/json")],
        "client": ("127.0.0.1", 40000),
    }
    started = time.process_time()
    for _ in range(N):
        await app({**scope, "state": {}}, None, _send)
    return (time.process_time() - started) / N * 1e6


async def main() -> None:
    install(production=True)
    handler = logging.getLogger(LOGGER).handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(io.StringIO())
    settings = Settings(env="production")
    for name, app in (("cached hit", _hit), ("executed query", _executed)):
        bare = await _per_request_us(app)
        logged = await _per_request_us(RequestLog(app, settings))  # type: ignore[arg-type]
        print(f"{name}: {logged - bare:.1f} µs of CPU per request for its log line")


if __name__ == "__main__":
    asyncio.run(main())
