"""Passerelle: the HTTP edge and the command line.

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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.body_limit import BodyLimit
from edge.cached_hits import CachedHits
from edge.csrf import CSRFPrevention
from edge.graphiql import graphiql_routes
from edge.graphql_view import GatewayGraphQL
from edge.partners import Partners
from edge.partners_documents import read_manifest
from edge.persisted import PersistedQueries
from edge.rate_limit import Budget, RateGuard, RateLimiter
from edge.response_cache import ResponseCache
from resolvers.context import DEFAULT_FANOUT_DEADLINE_S
from schema import make_schema
from schema.cost import DEFAULT_MAX_COST
from sources.errors import ConfigError
from sources.kv.backends import CacheBackend, MemoryBackend, RedisBackend
from sources.pool.cache import SourceCache
from sources.pool.fanout import SourcePool
from sources.registry.config_file import config_fingerprint, load_config
from sources.registry.definition import parse_definition
from sources.registry.partners import KEY_PEPPER_ENV, Client, PartnerStore
from sources.registry.store import DEFAULT_DATABASE_URL, SourceStore, config_origin

logger = logging.getLogger("passerelle")

DEMO_DATABASE_URL = "sqlite:///data/demo.sqlite3"
DEMO_ORIGIN = "demo"
REGISTRY_POLL_S = 1.0
CACHE_CHOICES = ("memory", "redis", "off")
PRODUCTION_ANONYMOUS_RATE = 20.0
# In-process stores of the edge, in kilobytes.
APQ_MAX_KB = 20 * 1024
RESPONSES_MAX_KB = 100 * 1024
ENVIRONMENTS = ("development", "production")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    config_path: Path | None = None
    registry_poll_s: float = REGISTRY_POLL_S
    startup_wait_s: float = 10.0
    fanout_deadline_s: float = DEFAULT_FANOUT_DEADLINE_S
    # Where source answers are cached across requests: "memory" (this process),
    # "redis" (shared by every instance, at redis_url) or "off".
    cache: str = "memory"
    redis_url: str | None = None
    # "production": no GraphiQL, no introspection, no field suggestions.
    env: str = "development"
    # Whole responses of persisted operations, reused within their sources' TTLs.
    response_cache: bool = True
    # All the time one operation may take; past it, it is cancelled (OPERATION_TIMEOUT).
    operation_timeout_s: float = 10.0
    # Demand control: operations over this cost are refused (measure: only reported).
    max_cost: int = DEFAULT_MAX_COST
    measure_cost: bool = False
    # Requests per second (burst twice that) of each anonymous client IP: None means
    # the default, 20 in production and unlimited in development; 0 means unlimited.
    anonymous_rate: float | None = None
    # Proxies whose X-Forwarded-For is believed (CIDR networks); none by default.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Arrays of operations in one request (at most schema.MAX_BATCH); off by default.
    batching: bool = False
    # Browser origins allowed to call the API cross-site (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    # What "now" is for a request (a search window never starts before it); tests pin
    # it so that the demo world they search looks the same whatever the date.
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def production(self) -> bool:
        return self.env == "production"

    def anonymous_budget(self) -> Budget | None:
        rate = self.anonymous_rate
        if rate is None:
            rate = PRODUCTION_ANONYMOUS_RATE if self.production else 0.0
        # A bucket must hold at least one token, or a slow rate would refuse everyone.
        return Budget(rate, max(1.0, 2 * rate)) if rate > 0 else None

    def edge_backend(self, max_kb: int) -> CacheBackend:
        """Where the edge keeps APQ documents or whole responses: Redis with the Redis
        cache (shared), else this process, bounded to ``max_kb`` kilobytes."""
        if self.cache == "redis" and self.redis_url:
            return RedisBackend(self.redis_url)
        return MemoryBackend(max_weight=max_kb)

    def cache_backend(self) -> CacheBackend | None:
        if self.cache == "redis":
            if not self.redis_url:
                raise ConfigError("the redis cache needs a URL (PASSERELLE_REDIS_URL)")
            return RedisBackend(self.redis_url)
        if self.cache == "memory":
            return MemoryBackend()
        return None


class RegistryWatcher:
    """Keeps the pool in step with the registry and the config file."""

    def __init__(self, store: SourceStore, pool: SourcePool, settings: Settings) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self._revision: int | None = None
        self._fingerprint: object = None

    async def refresh(self) -> None:
        path = self.settings.config_path
        if path is not None:
            fingerprint = await asyncio.to_thread(config_fingerprint, path)
            if fingerprint != self._fingerprint:
                try:
                    definitions = await asyncio.to_thread(load_config, path)
                    summary = await asyncio.to_thread(
                        self.store.apply_config, definitions, config_origin(path)
                    )
                    if summary.changed:
                        logger.info("config %s applied: %s", path, summary)
                except ConfigError as exc:
                    logger.error("config not applied, keeping the current sources: %s", exc)
                # Only now: a database hiccup above leaves the file to apply next time.
                self._fingerprint = fingerprint
        revision = await asyncio.to_thread(self.store.revision)
        if revision != self._revision:
            configs = await asyncio.to_thread(self.store.configs, os.environ)
            await self.pool.sync(configs)
            self._revision = revision
            logger.info("sources: %s", ", ".join(c.id for c in configs if c.enabled) or "none")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.registry_poll_s)
            try:
                await self.refresh()
            except Exception:  # the watcher must outlive a database hiccup
                logger.exception("registry refresh failed; retrying")


def create_app(settings: Settings) -> CachedHits:
    """The ASGI app: ``/graphql`` and ``/healthz``, sources loaded in the lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = SourceStore(settings.database_url)
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=50, ttl_dns_cache=300)
        session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": "Passerelle/0.1"}
        )
        pool = SourcePool(session, cache=SourceCache(settings.cache_backend()))
        watcher = RegistryWatcher(store, pool, settings)
        await watcher.refresh()
        # Bulk feeds load in the background; give their first load a moment so the
        # first answers are whole, without holding the start-up for long.
        await pool.wait_ready(settings.startup_wait_s)
        # What start-up built (a bulk feed's index, the schema) lives as long as the
        # process: out of the collector's way, full collections stay short.
        gc.collect()
        gc.freeze()
        app.state.pool = pool
        # APQ hashes live in the cache backend (Redis: shared by every instance).
        persisted = PersistedQueries(settings.edge_backend(APQ_MAX_KB))
        app.state.persisted = persisted
        # Responses of persisted operations: a store of their own, bounded by size.
        response_backend = settings.edge_backend(RESPONSES_MAX_KB)
        app.state.response_cache = (
            ResponseCache(response_backend) if settings.response_cache else None
        )
        partners = Partners(
            settings.database_url,
            production=settings.production,
            pepper=os.environ.get(KEY_PEPPER_ENV) or None,
        )
        app.state.partners = partners
        # Rate limits: in Redis when the cache is there, so every instance shares them.
        limiter = RateLimiter(settings.redis_url if settings.cache == "redis" else None)
        app.state.rate_guard = RateGuard(
            limiter, partners, settings.anonymous_budget(), settings.trusted_proxies
        )
        app.state.settings = settings
        task = asyncio.create_task(watcher.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pool.aclose()
            await persisted.backend.aclose()
            await response_backend.aclose()
            await partners.aclose()
            await limiter.aclose()
            await session.close()
            store.close()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    graphql = GatewayGraphQL(
        make_schema(
            batching=settings.batching,
            max_cost=settings.max_cost,
            measure_cost=settings.measure_cost,
        ),
        production=settings.production,
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            *graphiql_routes(),
        ],
        lifespan=lifespan,
        middleware=_middleware(settings),
    )
    # Cached answers to anonymous GETs go out before Starlette's stack (edge/cached_hits.py).
    return CachedHits(app)


def _middleware(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins (outermost: a refused request still gets its
    headers), then the body size limit (413), then CSRF prevention on ``/graphql``."""
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


# -- command line -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="Passerelle: every free family-doctor slot, whichever booking system.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on (8000)")
    parser.add_argument("--config", type=Path, help="TOML file of [[sources]], watched for changes")
    parser.add_argument(
        "--no-demo", action="store_true", help="do not start the demo booking systems"
    )
    parser.add_argument(
        "--scale",
        type=_scale,
        default=1.0,
        help="size of the demo world as a fraction of Quebec (1.0; 0.01 gives ~13 clinics)",
    )
    parser.add_argument(
        "--demo-base-port",
        type=_port,
        default=8101,
        help="first port of the demo systems: demo-fhir, then demo-rest, demo-ssl (8101)",
    )
    parser.add_argument(
        "--demo-faults",
        action="append",
        default=[],
        metavar="SOURCE=SPEC",
        help="make a demo system misbehave, e.g. demo-rest=latency:50ms,errors:0.2 "
        "(repeatable; keys: latency:D jitter:D errors:P malformed:P ratelimit:R hang)",
    )
    parser.add_argument(
        "--cache",
        choices=CACHE_CHOICES,
        help="where source answers are cached across requests: memory (one process), "
        "redis (shared by every instance) or off (default: $PASSERELLE_CACHE, else redis "
        "when $PASSERELLE_REDIS_URL is set, else memory)",
    )
    parser.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        help="development (GraphiQL, introspection) or production (neither, and no field "
        "suggestions) (default: $PASSERELLE_ENV, else development)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="a browser origin allowed to call the API, e.g. https://rendezvous.example "
        "(repeatable; default: $PASSERELLE_CORS_ORIGINS, comma-separated; none)",
    )
    parser.add_argument(
        "--anonymous-rate",
        type=_rate,
        help="requests per second (burst twice that) of each client IP without a key "
        "(default: 20 in production, no limit in development; 0: no limit)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        type=_network,
        metavar="CIDR",
        help="a proxy whose X-Forwarded-For gives the client IP (repeatable; none by default)",
    )
    parser.add_argument(
        "--max-cost",
        type=_positive_int,
        default=DEFAULT_MAX_COST,
        help=f"refuse operations that would cost more (COST_LIMIT_EXCEEDED; {DEFAULT_MAX_COST})",
    )
    parser.add_argument(
        "--measure-cost",
        action="store_true",
        help="do not refuse costly operations: report extensions.cost = {requested, limit}",
    )
    parser.add_argument(
        "--batching",
        action="store_true",
        help="accept a JSON array of at most 10 operations in one request (off by default)",
    )
    parser.add_argument(
        "--no-response-cache",
        action="store_true",
        help="execute every persisted operation instead of reusing its cached response",
    )
    parser.add_argument(
        "--redis-url",
        help="Redis for the shared cache, e.g. redis://127.0.0.1:6379/0 "
        "(default: $PASSERELLE_REDIS_URL)",
    )
    parser.add_argument(
        "--database-url",
        help="registry database (default: $PASSERELLE_DATABASE_URL, else "
        f"{DEFAULT_DATABASE_URL}; the demo uses {DEMO_DATABASE_URL})",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    sources = commands.add_parser("sources", help="manage the registry of booking sources")
    actions = sources.add_subparsers(dest="action", metavar="ACTION", required=True)
    # Accept --database-url after the action too (argparse.SUPPRESS keeps the global one).
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--database-url", default=argparse.SUPPRESS, help="registry database")
    add = actions.add_parser("add", help="register a booking source", parents=[shared])
    add.add_argument("--id", required=True)
    add.add_argument(
        "--protocol", required=True, help="FHIR_R4, SMART_SCHEDULING_LINKS or REST_JSON"
    )
    add.add_argument("--url", required=True)
    add.add_argument("--name")
    add.add_argument("--timeout-s", default=2.0, help="per-call timeout in seconds (2)")
    add.add_argument("--credentials-env", help="environment variable holding the API key/token")
    add.add_argument("--disabled", action="store_true", help="register it switched off")
    actions.add_parser("list", help="list the registered sources", parents=[shared])
    for name, text in (
        ("disable", "switch a source off"),
        ("enable", "switch a source on"),
        ("remove", "delete a source"),
    ):
        actions.add_parser(name, help=text, parents=[shared]).add_argument("id")
    clients = commands.add_parser("clients", help="manage partner clients and their API keys")
    client_actions = clients.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = client_actions.add_parser(
        "create", help="create a client and print its API key (shown once)", parents=[shared]
    )
    update = client_actions.add_parser(
        "update", help="change a client's options (its key stays)", parents=[shared]
    )
    for command, flag in ((create, "store_true"), (update, argparse.BooleanOptionalAction)):
        command.add_argument("name")
        command.add_argument(
            "--persisted-only",
            action=flag,
            help="may run only the documents registered for it (documents push)",
        )
        command.add_argument(
            "--log-only",
            action=flag,
            help="persisted-only in report mode: serve other operations and log their hash "
            "(gradual rollout; implies --persisted-only)",
        )
        command.add_argument(
            "--allow-introspection",
            action=flag,
            help="may introspect the schema even in production",
        )
        command.add_argument(
            "--rate-limit",
            type=float,
            metavar="RPS",
            help="requests per second allowed to this client",
        )
    update.add_argument("--no-rate-limit", action="store_true", help="remove its rate limit")
    client_actions.add_parser("list", help="list the clients (never their keys)", parents=[shared])
    client_actions.add_parser(
        "revoke", help="revoke a client's key for good", parents=[shared]
    ).add_argument("name")
    documents = commands.add_parser("documents", help="manage partners' trusted documents")
    document_actions = documents.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = document_actions.add_parser(
        "push",
        help="register the operations of an Apollo persisted-query manifest or a Relay "
        "{id: text} map for a client (each checked against the schema)",
        parents=[shared],
    )
    push.add_argument("manifest", type=Path, metavar="MANIFEST")
    document_listing = document_actions.add_parser(
        "list", help="list a client's documents", parents=[shared]
    )
    for command in (push, document_listing):
        command.add_argument("--client", required=True, metavar="NAME")
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 or more requests per second, got {text}")
    return value


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an address or network such as 10.0.0.0/8, got {text!r}"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"scale must be in (0, 10], got {value:g}")
    return value


def run_sources_command(args: argparse.Namespace, database_url: str) -> int:
    with SourceStore(database_url) as store:
        if args.action == "add":
            raw: dict[str, object] = {
                "id": args.id,
                "protocol": args.protocol,
                "url": args.url,
                "timeout_s": _number(args.timeout_s),
                "enabled": not args.disabled,
            }
            if args.name:
                raw["name"] = args.name
            if args.credentials_env:
                raw["credentials_env"] = args.credentials_env
            definition = store.add(parse_definition(raw, where="command line"))
            print(f"added {definition.id} ({definition.protocol.value}) {definition.url}")
        elif args.action == "list":
            rows = store.list()
            if not rows:
                print("no sources registered")
            for d in rows:
                state = "enabled" if d.enabled else "disabled"
                print(f"{d.id}\t{d.protocol.value}\t{state}\t{d.timeout_s:g}s\t{d.url}\t{d.name}")
        elif args.action in ("disable", "enable"):
            store.set_enabled(args.id, args.action == "enable")
            print(f"{args.id} {args.action}d")
        elif args.action == "remove":
            store.remove(args.id)
            print(f"{args.id} removed")
    return 0


def run_clients_command(args: argparse.Namespace, database_url: str) -> int:
    with PartnerStore(database_url, pepper=os.environ.get(KEY_PEPPER_ENV) or None) as store:
        if args.action == "create":
            client, key = store.create_client(
                args.name,
                persisted_only=args.persisted_only,
                log_only=args.log_only,
                allow_introspection=args.allow_introspection,
                rate_limit_rps=args.rate_limit,
            )
            print(key)  # alone on stdout: KEY=$(python app.py clients create NAME)
            print(
                f"created client {client.name} ({_client_options(client)}); its key, above, "
                "is shown only this once: only a hash of it is kept",
                file=sys.stderr,
            )
        elif args.action == "update":
            changes = {
                option: getattr(args, option)
                for option in ("persisted_only", "log_only", "allow_introspection")
                if getattr(args, option) is not None
            }
            if args.rate_limit is not None or args.no_rate_limit:
                changes["rate_limit_rps"] = None if args.no_rate_limit else args.rate_limit
            client = store.update_client(args.name, **changes)
            print(f"{client.name}: {_client_options(client)}")
        elif args.action == "list":
            rows = store.clients()
            if not rows:
                print("no clients")
            for c in rows:
                state = f"revoked {c.revoked_at:%Y-%m-%d %H:%M}Z" if c.revoked_at else "active"
                other = "\tkey hashed with another pepper" if c.pepper_id != store.pepper_id else ""
                print(
                    f"{c.name}\t{_client_options(c)}\tcreated {c.created_at:%Y-%m-%d %H:%M}Z"
                    f"\t{state}{other}"
                )
        elif args.action == "revoke":
            revoked = store.revoke_client(args.name)
            print(f"{args.name} {'revoked' if revoked else 'was already revoked'}")
    return 0


def _client_options(client: Client) -> str:
    options = list(client.flags)
    if client.rate_limit_rps is not None:
        options.append(f"rate limit {client.rate_limit_rps:g}/s")
    return ", ".join(options) or "no options"


def run_documents_command(args: argparse.Namespace, database_url: str) -> int:
    with PartnerStore(database_url, pepper=os.environ.get(KEY_PEPPER_ENV) or None) as store:
        if args.action == "push":
            store.client(args.client)  # an unknown client before a long manifest's problems
            summary = store.push_documents(args.client, read_manifest(args.manifest))
            print(
                f"{args.client}: {len(summary.added)} new document(s) registered, "
                f"{len(summary.unchanged)} already there"
            )
        elif args.action == "list":
            rows = store.documents(args.client)
            if not rows:
                print(f"no documents registered for {args.client}")
            for d in rows:
                name = d.operation_name or "(anonymous)"
                print(f"{d.id}\t{d.operation_type}\t{name}\tadded {d.created_at:%Y-%m-%d %H:%M}Z")
    return 0


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
        try:
            RedisBackend(args.redis_url)  # parses the URL; connects only when used
        except ValueError as exc:
            return f"--redis-url: {exc}"
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


def _number(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text  # refused with a clear message by parse_definition


def serve(args: argparse.Namespace, database_url: str) -> int:
    from examples.launcher import DemoProviders

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
    demo = None
    try:
        if not args.no_demo:
            demo = DemoProviders(
                scale=args.scale, base_port=args.demo_base_port, faults=args.demo_faults
            )
            logger.info("starting the demo booking systems (scale %g)...", args.scale)
            demo.start()
            with SourceStore(database_url) as store:
                definitions = [parse_definition(d, where="demo") for d in demo.definitions()]
                store.apply_config(definitions, DEMO_ORIGIN)
        if stopping:
            return 0
        settings = Settings(
            database_url=database_url,
            config_path=args.config,
            cache=args.cache,
            redis_url=args.redis_url,
            env=args.env,
            cors_origins=tuple(args.cors_origin),
            response_cache=not args.no_response_cache,
            batching=args.batching,
            max_cost=args.max_cost,
            measure_cost=args.measure_cost,
            anonymous_rate=args.anonymous_rate,
            trusted_proxies=tuple(args.trusted_proxy),
        )
        config = uvicorn.Config(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            timeout_graceful_shutdown=10,
        )
        uvicorn.Server(config).run()
    finally:
        if demo is not None:
            demo.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from examples.faults import parse_demo_faults
    from examples.launcher import PROVIDERS

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.demo_faults = parse_demo_faults(args.demo_faults, (p.id for p in PROVIDERS))
    except ValueError as exc:
        parser.error(f"--demo-faults: {exc}")
    problem = _settle_cache_args(args) or _settle_edge_args(args)
    if problem:
        parser.error(problem)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command is None and not args.no_demo:
        database_url = (
            args.database_url or os.environ.get("PASSERELLE_DEMO_DATABASE_URL") or DEMO_DATABASE_URL
        )
    else:
        database_url = (
            args.database_url or os.environ.get("PASSERELLE_DATABASE_URL") or DEFAULT_DATABASE_URL
        )
    try:
        if args.command == "sources":
            return run_sources_command(args, database_url)
        if args.command == "clients":
            return run_clients_command(args, database_url)
        if args.command == "documents":
            return run_documents_command(args, database_url)
        if args.config is not None:
            load_config(args.config)  # refuse a bad file before anything starts
        return serve(args, database_url)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
