"""The CPU that request logs and metrics add to each request, in µs.

    python benchmarks/request_log.py

Drives ``RequestLog`` (``edge/middleware/request_log.py``) in process around an app
that answers at once, in production (one JSON line written to memory): a cached hit
(no operation, no source), and an executed query (a trusted document's name, two
sources asked). The difference with the bare app is what the log adds to each
request. Then what the metrics (``edge/metrics/``) do per request: a cached hit
counts one response-cache lookup, an executed query its operation and outcome and
its duration; and what one scrape costs with 20 sources (paid per scrape, not per
request).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from edge.metrics import GatewayMetrics
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
    metrics = GatewayMetrics()
    hit = _cpu_us(lambda: metrics.response_cache.labels("hit").inc())
    executed = _cpu_us(lambda: metrics.observe_request("NearMe", "ok", 0.004))
    print(f"cached hit: {hit:.1f} µs of CPU per request for its metrics")
    print(f"executed query: {executed:.1f} µs of CPU per request for its metrics")
    print(f"one scrape, 20 sources: {await _scrape_ms(20):.2f} ms of CPU")


def _cpu_us(work: Callable[[], object]) -> float:
    started = time.process_time()
    for _ in range(N):
        work()
    return (time.process_time() - started) / N * 1e6


async def _scrape_ms(sources: int) -> float:
    """One exposition of a pool of ``sources`` idle sources, and the edge's metrics."""
    from sources.base import SourceConfig
    from sources.pool.fanout import SourcePool
    from sources.records import SourceProtocol

    pool = SourcePool(session=None, factory=_idle_source)  # type: ignore[arg-type]  # never calls out
    configs = [
        SourceConfig(
            id=f"source-{i:02d}", protocol=SourceProtocol.REST_JSON, url=f"http://127.0.0.1/{i}"
        )
        for i in range(sources)
    ]
    await pool.sync(configs)
    metrics = GatewayMetrics(pool=pool)
    for outcome in ("ok", "SOURCE_TIMEOUT", "RATE_LIMITED"):
        metrics.observe_request("NearMe", outcome, 0.004)
    rounds = 200
    started = time.process_time()
    for _ in range(rounds):
        metrics.exposition()
    return (time.process_time() - started) / rounds * 1e3


def _idle_source(config: Any, context: Any) -> Any:
    """A source that is never called: what a scrape reads of it is the pool's own state."""
    from sources.base import Source
    from sources.records import SourceProtocol

    class Idle(Source):
        protocol = SourceProtocol.REST_JSON

        async def search_slots(self, query: Any) -> Any:
            raise NotImplementedError

        async def search_clinics(self, query: Any) -> Any:
            raise NotImplementedError

        async def get_physicians(self, query: Any) -> Any:
            raise NotImplementedError

    return Idle(config, context)


if __name__ == "__main__":
    asyncio.run(main())
