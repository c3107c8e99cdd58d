"""``python app.py [--no-demo] [--config FILE] ...``: serve the gateway, and the demo.

The server, the stores and the demo are imported inside :func:`serve`, once the
command line has been read: ``--help`` and a mistyped flag must not pay for them.
The app itself comes from the caller (``app.create_app``), so that this package
never imports ``app``: imports point down the house.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from edge.cli.parser import UsageError
from edge.settings import CACHE_CHOICES, ENVIRONMENTS, Settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["DEMO_LOG_DIR", "DEMO_ORIGIN", "AppFactory", "banner", "gateway_server", "serve"]

AppFactory = Callable[[Settings], "ASGIApp"]
DEMO_ORIGIN = "demo"
DEMO_LOG_DIR = Path("data") / "demo-logs"

logger = logging.getLogger("passerelle")


def serve(args: argparse.Namespace, database_url: str, create_app: AppFactory) -> int:
    """Start the demo booking systems (unless ``--no-demo``), then serve the app that
    ``create_app`` builds until SIGTERM, SIGINT or SIGHUP; stop the demo, and return 0."""
    from examples.faults import parse_demo_faults
    from examples.launcher import PROVIDERS, DemoProviders

    try:
        demo_faults = parse_demo_faults(args.demo_faults, (p.id for p in PROVIDERS))
    except ValueError as exc:
        raise UsageError(f"--demo-faults: {exc}") from None
    problem = _settle_cache_args(args) or _settle_edge_args(args) or _metrics_port_problem(args)
    if problem:
        raise UsageError(problem)

    from sources.registry.config_file import load_config
    from sources.registry.definition import parse_definition
    from sources.registry.partners import KEY_PEPPER_ENV, PartnerStore
    from sources.registry.store import SourceStore

    if args.config is not None:
        load_config(args.config)  # refuse a bad file before anything starts
    # Refuse a bad registry URL now, with one line, rather than in the lifespan.
    SourceStore(database_url).close()
    # ...and a bad key pepper (too short) now, not as a traceback in the lifespan.
    PartnerStore(database_url, pepper=os.environ.get(KEY_PEPPER_ENV) or None).close()
    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was installed before it ran: make that one a no-op so we get to stop
    # the demo processes and exit 0. Installed first, so that a signal during
    # the demo's start-up also ends in the finally below.
    stopping: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _frame: stopping.append(signum))
    # The demo processes run in sessions of their own (a Ctrl-C must not stop them
    # before the gateway has drained): a closed terminal (SIGHUP) reaches this
    # process only, which must then stop as on SIGTERM rather than orphan them.
    signal.signal(signal.SIGHUP, lambda _signum, _frame: os.kill(os.getpid(), signal.SIGTERM))
    demo = None
    try:
        if not args.no_demo:
            # The demo systems' own output goes to data/demo-logs/ unless debugging: the
            # console is the gateway's.
            demo = DemoProviders(
                scale=args.scale,
                base_port=args.demo_base_port,
                faults=demo_faults,
                churn=args.demo_churn,
                log_dir=None if args.log_level == "debug" else DEMO_LOG_DIR,
            )
            logger.info("starting the demo booking systems (scale %g)...", args.scale)
            demo.start()
            with SourceStore(database_url) as store:
                definitions = [parse_definition(d, where="demo") for d in demo.definitions()]
                store.apply_config(definitions, DEMO_ORIGIN)
        if stopping:
            return 0
        settings = _settings(args, database_url)
        config = uvicorn_config(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            timeout_graceful_shutdown=10,
            # Browsers offer permessage-deflate on every WebSocket; compressing each
            # alert (and inflating each pong) took about a quarter of the profile of changes
            # reaching 10,000 subscribers (benchmarks/README.md), for a few hundred
            # bytes each. Off unless asked, as the ws library's servers have it.
            ws_per_message_deflate=args.ws_compression,
        )
        gateway_server(config, settings, before_exit=demo.stop if demo else None).run()
    finally:
        if demo is not None:
            demo.stop()
    return 0


def uvicorn_config(app: Any, **options: Any) -> Any:
    """uvicorn's configuration of the gateway's ``app`` (``options``: uvicorn's own).

    - No access log: every request is logged once, by the app
      (``edge/middleware/request_log.py``), with its id and without the client's
      address; uvicorn's own line would repeat it with the address.
    - No proxy headers: only ``--trusted-proxy`` decides whose ``X-Forwarded-For`` is
      believed (``edge/middleware/rate_limit.py``). uvicorn's, on by default for
      127.0.0.1, replaced the peer by the client before the app saw it, so nginx on
      loopback looked like its client and its ``X-Request-Id`` was not believed.
    """
    import uvicorn  # here: the command line's other commands never load the server

    return uvicorn.Config(app, access_log=False, proxy_headers=False, **options)


def gateway_server(
    config: Any, settings: Settings, before_exit: Callable[[], object] | None = None
) -> Any:
    """uvicorn's server for ``config`` (a ``uvicorn.Config`` of the gateway's app), whose
    start-up ends with one line saying where to go, and whose graceful shutdown first
    tells open subscriptions that the server goes away (WebSockets closed with 1001,
    multipart streams ended): uvicorn itself would close WebSockets with 1012 before
    the app's lifespan hears of the shutdown.

    A shutdown is bounded: past ``drain_s + stop_limit_s`` it is given up, said in one
    line, ``before_exit`` runs (the demo's processes stopped) and the process exits 1,
    so that a part stuck in its shutdown never leaves a stopped instance running."""
    import asyncio
    import threading
    import time

    import uvicorn

    from edge.health import draining, stopping
    from edge.subscriptions import going_away

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and not self.should_exit:
                logger.info("ready: %s", banner(config.host, config.port, settings))

        watchdog: threading.Timer | None = None

        async def serve(self, sockets: Any = None) -> None:
            try:
                await super().serve(sockets)
            finally:  # stopped in time (a server in a test leaves its process running)
                if self.watchdog is not None:
                    self.watchdog.cancel()

        async def shutdown(self, sockets: Any = None) -> None:
            limit = settings.drain_s + settings.stop_limit_s
            self.watchdog = threading.Timer(limit, _give_up, (limit, before_exit))
            self.watchdog.daemon = True
            self.watchdog.start()
            # Not ready from now on; the listener stays open for drain_s (edge/health.py).
            await draining(config.app, settings.drain_s)
            # Then no new connection (a proxy tries another instance), each answer closes
            # its connection, subscriptions go away. Behind a balancer (a drain asked
            # for), the connections left are given until uvicorn's keep-alive timeout to
            # close: a proxy's idle ones close at its own timeout (below uvicorn's),
            # rather than as it sends a request on one.
            for server in self.servers:
                server.close()
            stopping(config.app)
            await going_away(config.app)
            deadline = time.monotonic() + (config.timeout_keep_alive + 0.5) * (settings.drain_s > 0)
            # uvicorn's set of connections has no event to wait for: uvicorn polls it too.
            while self.server_state.connections and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await super().shutdown(sockets)

    return Server(config)


def _give_up(limit_s: float, before_exit: Callable[[], object] | None) -> None:
    """The shutdown took longer than ``limit_s``: say so, stop what must be, exit 1."""
    logger.error("shutdown did not finish within %g s; exiting now", limit_s)
    try:
        if before_exit is not None:
            before_exit()
    finally:
        logging.shutdown()
        os._exit(1)


def banner(host: str, port: int, settings: Settings) -> str:
    """The last start-up line: the URL to open (GraphiQL, or the API in production)."""
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/graphql"
    if settings.production:
        return f"GraphQL API at {url} (production: no GraphiQL)"
    return f"GraphiQL at {url} (open it in a browser)"


def _settings(args: argparse.Namespace, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        config_path=args.config,
        cache=args.cache,
        redis_url=args.redis_url,
        env=args.env,
        cors_origins=tuple(args.cors_origin),
        response_cache=not args.no_response_cache,
        share_operations=not args.no_shared_operations,
        compiled_plan=not args.no_compiled_plan,
        batching=args.batching,
        max_cost=args.max_cost,
        measure_cost=args.measure_cost,
        anonymous_rate=args.anonymous_rate,
        trusted_proxies=tuple(args.trusted_proxy),
        drain_s=args.drain_s,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        watch_lease_s=args.watch_lease_s,
        subscriptions_per_connection=args.subscriptions_per_connection,
        subscriptions_per_ip=args.subscriptions_per_ip,
        subscriptions_per_key=args.subscriptions_per_key,
        webhook_allow_hosts=tuple(args.webhook_allow_host),
        webhook_ca_file=args.webhook_ca_file,
    )


def _settle_cache_args(args: argparse.Namespace) -> str | None:
    """Fill ``--cache``/``--redis-url`` from the environment; a problem as one line."""
    args.redis_url = args.redis_url or os.environ.get("PASSERELLE_REDIS_URL") or None
    if args.cache is None:
        env = os.environ.get("PASSERELLE_CACHE")
        if env is not None and env not in CACHE_CHOICES:
            return f"PASSERELLE_CACHE must be one of {', '.join(CACHE_CHOICES)}, got {env!r}"
        args.cache = env or ("redis" if args.redis_url else "memory")
    if args.cache == "redis":
        if not args.redis_url:
            return "--cache redis needs --redis-url or $PASSERELLE_REDIS_URL"
        from sources.kv import RedisLink

        problem = RedisLink.url_problem(args.redis_url)
        if problem is not None:
            return f"--redis-url: {problem}"
    return None


def _metrics_port_problem(args: argparse.Namespace) -> str | None:
    """``--metrics-port`` must differ from ``--port`` and be free to bind, said in one
    line now rather than as a traceback from the app's start-up."""
    if args.metrics_port is None:
        return None
    if args.metrics_port == args.port:
        return f"--metrics-port {args.metrics_port} is --port's: give it a port of its own"
    import socket

    try:
        family = socket.AF_INET6 if ":" in args.metrics_host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((args.metrics_host, args.metrics_port))
    except OSError as exc:
        return f"--metrics-port {args.metrics_port} on {args.metrics_host}: {exc.strerror or exc}"
    return None


def _settle_edge_args(args: argparse.Namespace) -> str | None:
    """Fill ``--env``/``--cors-origin`` from the environment; a problem as one line."""
    if args.env is None:
        env = os.environ.get("PASSERELLE_ENV") or "development"
        if env not in ENVIRONMENTS:
            return f"PASSERELLE_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}"
        args.env = env
    origins = args.cors_origin
    if origins is None:
        origins = [o for o in os.environ.get("PASSERELLE_CORS_ORIGINS", "").split(",") if o.strip()]
    args.cors_origin = []
    for origin in (o.strip() for o in origins):
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            return f"--cors-origin: expected an origin such as https://example.org, got {origin!r}"
        args.cors_origin.append(origin)
    return None
