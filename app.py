"""Passerelle: the gateway assembled, and its command line's entry point.

    python app.py                      # demo booking systems + gateway on :8000
    python app.py --no-demo --config sources.toml
    python app.py sources add --id clinique-a --protocol FHIR_R4 --url https://...
    python app.py sources list | disable ID | enable ID | remove ID
    python app.py clients create NAME [--persisted-only] [--rate-limit RPS] ...
    python app.py documents push MANIFEST --client NAME

The gateway serves GraphQL (and GraphiQL to browsers) at ``/graphql``. Its
sources come from the registry (``PASSERELLE_DATABASE_URL``, SQLite by
default), optionally fed by a TOML file; both are watched, so a change reaches
the running gateway within about a second, without a restart.

This module only assembles: :func:`create_app` builds the ASGI app from
:class:`~edge.settings.Settings`, and :func:`main` hands it to the command line
(``edge/cli/``). Its load-time imports are light on purpose: the command line must
answer ``--help`` in 0.3 s, so the app's parts are imported in :func:`create_app`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import edge.cli
from edge.settings import Settings

if TYPE_CHECKING:
    from starlette.middleware import Middleware

    from edge.health import CloseWhenStopping

__all__ = ["Settings", "create_app", "main"]

# In-process stores of the edge, in kilobytes.
APQ_MAX_KB = 20 * 1024
RESPONSES_MAX_KB = 100 * 1024


def create_app(settings: Settings) -> CloseWhenStopping:
    """The ASGI app: ``/graphql`` (HTTP and WebSocket), ``/health`` and ``/ready``, the
    hand-off ``/go/``, sources loaded in the lifespan.

    Its parts (strawberry, starlette, aiohttp, the stores) are imported here, not at
    the top of the module: the command line imports this module and must answer in
    0.3 s.
    """
    import asyncio
    import contextlib
    import gc
    import os
    from collections.abc import AsyncIterator, Awaitable, Callable

    import aiohttp
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route, WebSocketRoute

    from edge import access_log
    from edge.documents.apq import PersistedQueries
    from edge.documents.partners import Partners
    from edge.graphiql import graphiql_routes
    from edge.graphql_view import GatewayGraphQL
    from edge.handoff import hand_off
    from edge.health import CloseWhenStopping, Readiness, health, ready
    from edge.metrics import GatewayMetrics, MetricsListener, metrics_endpoint
    from edge.middleware import request_log
    from edge.middleware.cached_hits import CachedHits
    from edge.middleware.rate_limit import RateGuard, RateLimiter, RateLimits
    from edge.middleware.request_log import RequestLog
    from edge.middleware.response_cache import ResponseCache, ResponseCacheLookup
    from edge.services import EdgeServices
    from edge.status import status_json, status_page
    from edge.subscriptions import Subscriptions
    from edge.tracing import tracing_from
    from edge.webhooks import WebhookService
    from schema import make_schema
    from sources.coverage import RegionCoverage
    from sources.pool.cache import SourceCache
    from sources.pool.fanout import SourcePool
    from sources.registry.partners import KEY_PEPPER_ENV
    from sources.registry.store import SourceStore
    from sources.registry.watcher import RegistryWatcher
    from sources.watch import SlotWatch

    # Whoever serves the app: no query string (variables: whereabouts) in its logs.
    access_log.install()
    request_log.install(settings.production)
    # OpenTelemetry traces when the OTEL_* variables ask (edge/tracing/), else None.
    tracing = tracing_from(os.environ)
    gateway_schema = make_schema(
        batching=settings.batching,
        max_cost=settings.max_cost,
        measure_cost=settings.measure_cost,
        tracer=tracing.phases if tracing is not None else None,
        compiled_plan=settings.compiled_plan,
    )
    batching = gateway_schema.config.batching_config

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = SourceStore(settings.database_url)
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=50, ttl_dns_cache=300)
        session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": "Passerelle/0.1"},
            middlewares=tracing.client_middlewares() if tracing is not None else (),
        )
        # One Redis client (and one outage pause) for every user of Redis, if any.
        link = settings.redis_link()
        pool = SourcePool(session, cache=SourceCache(settings.cache_backend(link)))
        if tracing is not None:
            tracing.start()
            pool.tracer = tracing.sources
        # What subscriptions watch: the changes of free slots at the sources (with Redis,
        # each group read by one instance under a lease, its changes told to all).
        watch = SlotWatch(pool, clock=settings.clock, link=link, lease_s=settings.watch_lease_s)
        watcher = RegistryWatcher(
            store, pool, config_path=settings.config_path, poll_s=settings.registry_poll_s
        )
        await watcher.refresh()
        # Bulk feeds load in the background; give their first load a moment so the
        # first answers are whole, without holding the start-up for long.
        await pool.wait_ready(settings.startup_wait_s)
        # What start-up built (a bulk feed's index, the schema) lives as long as the
        # process: out of the collector's way, full collections stay short.
        gc.collect()
        gc.freeze()
        # APQ hashes live in the cache backend (Redis: shared by every instance), and
        # are kept only when the schema would run them, within its own cost limit.
        persisted = PersistedQueries(
            settings.edge_backend(APQ_MAX_KB, link), max_cost=gateway_schema.max_cost
        )
        # Responses of persisted operations: a store of their own, bounded by size.
        response_backend = settings.edge_backend(RESPONSES_MAX_KB, link)
        partners = Partners(
            settings.database_url,
            production=settings.production,
            pepper=os.environ.get(KEY_PEPPER_ENV) or None,
        )
        # Partners' webhook alerts: each watched, its deliveries sent by a worker.
        webhooks = await WebhookService.start(settings, watch, link=link)
        # The status page's coverage by region, counted once a minute (sources/coverage/).
        coverage = RegionCoverage(pool, clock=settings.clock)
        # Open subscriptions, their caps, and their goodbye when the server stops.
        subscriptions = Subscriptions(settings, identify=partners.identify)
        # Rate limits: in Redis when the cache is there, so every instance shares them.
        rate_guard = RateGuard(
            RateLimiter(link), partners, settings.anonymous_budget(), settings.trusted_proxies
        )
        # What the edge works with, put once where the fast path and the view read it.
        app.state.services = EdgeServices(
            settings=settings,
            pool=pool,
            partners=partners,
            persisted=persisted,
            rate_guard=rate_guard,
            response_cache=ResponseCache(response_backend) if settings.response_cache else None,
            subscriptions=subscriptions,
            max_batch=batching["max_operations"] if batching is not None else None,
            watch=watch,
            webhooks=webhooks.access,
            metrics=GatewayMetrics(
                pool=pool,
                subscriptions=subscriptions,
                watch=watch,
                rate_guard=rate_guard,
                persisted=persisted,
                webhooks=webhooks.worker,
            ),
            coverage=coverage,
        )
        # Prometheus on a port of its own, when the operator chose one (edge/metrics/).
        metrics_listener = None
        if settings.metrics_port is not None and app.state.services.metrics is not None:
            metrics_listener = await MetricsListener.start(
                app.state.services.metrics, settings.metrics_host, settings.metrics_port
            )
        # What /ready asks: the registry database, and Redis when configured.
        checks: dict[str, Callable[[], Awaitable[object]]] = {
            "registry": lambda: asyncio.to_thread(store.revision)
        }
        if link is not None:
            checks["redis"] = lambda: link.client.ping()
        app.state.readiness = Readiness(checks)
        task = asyncio.create_task(watcher.run())
        counting = asyncio.create_task(coverage.run())
        try:
            yield
        finally:
            # Told by the server already (edge/cli/serve.py); again for any other server.
            await subscriptions.going_away()
            for background in (task, counting):
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
            if metrics_listener is not None:
                await metrics_listener.aclose()
            await webhooks.aclose()
            await watch.aclose()
            await pool.aclose()
            await persisted.backend.aclose()
            await response_backend.aclose()
            await partners.aclose()
            if link is not None:
                await link.aclose()
            await session.close()
            store.close()
            if tracing is not None:
                await tracing.aclose()  # the spans still batched are sent

    graphql = GatewayGraphQL(
        gateway_schema, production=settings.production, cors_origins=settings.cors_origins
    )
    # On the GraphQL route, before the view: the rate limits (a 429 before the body is
    # read), then the response cache (a hit, or its key carried on to the view).
    graphql_middleware = [Middleware(RateLimits), Middleware(ResponseCacheLookup)]
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"], middleware=graphql_middleware),
            # Subscriptions over graphql-transport-ws (edge/subscriptions/websocket.py).
            WebSocketRoute("/graphql", graphql),
            # Liveness (/healthz: its old name) and readiness (edge/health.py).
            Route("/health", health),
            Route("/healthz", health),
            Route("/ready", ready),
            # The public status page and its JSON twin (edge/status/).
            Route("/status", status_page),
            Route("/status.json", status_json),
            # Prometheus; in production to operator keys only (edge/metrics/).
            Route("/metrics", metrics_endpoint),
            # A slot's link, checked at its source first (edge/handoff.py).
            Route("/go/{slot_id:path}", hand_off),
            *graphiql_routes(),
        ],
        lifespan=lifespan,
        middleware=_middleware(settings),
    )
    # Cached answers to anonymous GETs go out before Starlette's stack
    # (edge/middleware/cached_hits.py); every request is logged, with its id, around it,
    # and traced around that when tracing is on; once stopping, every answer closes its
    # connection (edge/health.py).
    logged = RequestLog(CachedHits(app), settings)
    traced = tracing.wrap(logged, settings.trusted_proxies) if tracing is not None else logged
    return CloseWhenStopping(traced)


def _middleware(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins (outermost: a refused request still gets its
    headers), then the body size limit (413), then CSRF prevention on ``/graphql``."""
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware

    from edge.middleware.body_limit import BodyLimit
    from edge.middleware.csrf import CSRFPrevention

    stack = []
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=[
                    "authorization",
                    "content-type",
                    "apollo-require-preflight",
                    "x-apollo-operation-name",
                ],
                max_age=600,
            )
        )
    stack.append(Middleware(BodyLimit))
    stack.append(Middleware(CSRFPrevention))
    return stack


def main(argv: Sequence[str] | None = None) -> int:
    """``python app.py ARGV``: the command line (``edge/cli/``), serving this app."""
    return edge.cli.main(argv, create_app=create_app)


if __name__ == "__main__":
    sys.exit(main())
