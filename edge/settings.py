"""What one gateway process is told at start: :class:`Settings`, and its defaults.

Light on purpose: the command line builds its parser from these defaults and must
answer ``--help`` in well under 0.3 s, so this module imports only the standard
library at load time. The backends that settings describe (Redis, the in-process
store, the rate-limit budget) are imported when they are built, at start-up.

Three defaults belong to lower layers that are heavy to import (the registry store,
the schema's cost rules, the resolvers' deadline); they are repeated here, and
``tests/edge/test_settings.py`` checks that each copy equals its original.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sources.errors import ConfigError

if TYPE_CHECKING:
    import ipaddress

    from edge.middleware.rate_limit import Budget
    from sources.kv import CacheBackend, RedisLink
    from sources.webhooks import DeliveryPolicy

__all__ = [
    "CACHE_CHOICES",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_FANOUT_DEADLINE_S",
    "DEFAULT_MAX_COST",
    "ENVIRONMENTS",
    "PRODUCTION_ANONYMOUS_RATE",
    "REGISTRY_POLL_S",
    "SUBSCRIPTIONS_PER_CONNECTION",
    "SUBSCRIPTIONS_PER_IP",
    "SUBSCRIPTIONS_PER_KEY",
    "Settings",
]

# Copies of sources.registry.store, resolvers.context and schema.cost (see above).
DEFAULT_DATABASE_URL = "sqlite:///data/passerelle.sqlite3"
DEFAULT_FANOUT_DEADLINE_S = 3.0
DEFAULT_MAX_COST = 5000

REGISTRY_POLL_S = 1.0
# Open subscriptions (edge/subscriptions/): on one WebSocket, of one IP without a key,
# of one partner key (unless the partner has its own limit).
SUBSCRIPTIONS_PER_CONNECTION = 10
SUBSCRIPTIONS_PER_IP = 50
SUBSCRIPTIONS_PER_KEY = 500
CACHE_CHOICES = ("memory", "redis", "off")
ENVIRONMENTS = ("development", "production")
PRODUCTION_ANONYMOUS_RATE = 20.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Settings:
    """The gateway's settings; every field has a working default.

    >>> Settings(env="production").anonymous_budget()
    Budget(rate=20.0, burst=40.0)
    """

    database_url: str = DEFAULT_DATABASE_URL
    config_path: Path | None = None
    registry_poll_s: float = REGISTRY_POLL_S
    startup_wait_s: float = 10.0
    # On SIGTERM, how long /ready answers 503 with the listener still open, so that a
    # load balancer stops sending traffic before it closes (edge/health.py).
    drain_s: float = 0.0
    # How long a stop may take after the drain before the process exits anyway (1): a
    # part stuck in its shutdown must not keep a stopped instance alive.
    stop_limit_s: float = 30.0
    # Prometheus' /metrics on a port of its own (open to whoever reaches metrics_host)
    # rather than on the public port behind an operator key; None: the public port.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    fanout_deadline_s: float = DEFAULT_FANOUT_DEADLINE_S
    # Where source answers are cached across requests: "memory" (this process),
    # "redis" (shared by every instance, at redis_url) or "off".
    cache: str = "memory"
    redis_url: str | None = None
    # "production": no GraphiQL, no introspection, no field suggestions.
    env: str = "development"
    # Whole responses of persisted operations, reused within their sources' TTLs.
    response_cache: bool = True
    # Identical concurrent queries share one execution (edge/shared_operations.py).
    share_operations: bool = True
    # Queries' root fields completed by compiled plans (schema/plan/), not field by field.
    compiled_plan: bool = True
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
    # Browser origins allowed to call the API cross-site (CORS, and WebSockets: a page of
    # another origin is refused at the handshake); none by default.
    cors_origins: tuple[str, ...] = ()
    # Most subscriptions open at once: on one WebSocket; of one IP without a key; of one
    # partner key (SUBSCRIPTION_LIMIT past them).
    subscriptions_per_connection: int = SUBSCRIPTIONS_PER_CONNECTION
    subscriptions_per_ip: int = SUBSCRIPTIONS_PER_IP
    subscriptions_per_key: int = SUBSCRIPTIONS_PER_KEY
    # Seconds between the graphql-transport-ws pings the server sends (0: none); the
    # multipart transport sends Apollo's heartbeat, {}, every 5 s.
    ws_keepalive_s: float = 30.0
    # How often the keys of open subscriptions are checked again: a revoked key's end
    # within this (edge/subscriptions/hub.py).
    subscription_key_check_s: float = 5.0
    # What "now" is for a request (a search window never starts before it); tests pin
    # it so that the demo world they search looks the same whatever the date.
    clock: Callable[[], datetime] = _now
    # Webhook alerts: hosts an operator allows on inside addresses (https still needed),
    # an extra CA file to trust for callbacks, the delivery policy (None: its defaults)
    # and how often the alerts watched are synced with the database.
    webhook_allow_hosts: tuple[str, ...] = ()
    webhook_ca_file: str | None = None
    webhook_policy: DeliveryPolicy | None = None
    webhook_sync_s: float = 1.0
    # With Redis, each group of slot alerts is read by one instance under a lease of
    # this many seconds (sources/watch/README.md, "Between instances").
    watch_lease_s: float = 10.0

    @property
    def production(self) -> bool:
        return self.env == "production"

    def anonymous_budget(self) -> Budget | None:
        from edge.middleware.rate_limit import Budget

        rate = self.anonymous_rate
        if rate is None:
            rate = PRODUCTION_ANONYMOUS_RATE if self.production else 0.0
        # A bucket must hold at least one token, or a slow rate would refuse everyone.
        return Budget(rate, max(1.0, 2 * rate)) if rate > 0 else None

    def redis_link(self) -> RedisLink | None:
        """The gateway's one Redis client, when Redis is used (``cache="redis"``): the
        source cache, persisted queries, responses and rate limits all share it."""
        from sources.kv import RedisLink

        if self.cache != "redis":
            return None
        if not self.redis_url:
            raise ConfigError("the redis cache needs a URL (PASSERELLE_REDIS_URL)")
        return RedisLink.from_url(self.redis_url)

    def edge_backend(self, max_kb: int, link: RedisLink | None) -> CacheBackend:
        """Where the edge keeps APQ documents or whole responses: Redis through
        ``link`` (shared by every instance), else this process, bounded to ``max_kb``
        kilobytes."""
        from sources.kv import MemoryBackend, RedisBackend

        return RedisBackend(link) if link is not None else MemoryBackend(max_weight=max_kb)

    def cache_backend(self, link: RedisLink | None) -> CacheBackend | None:
        """Where source answers are cached across requests (Redis through ``link``, or
        this process), or ``None`` when off."""
        from sources.kv import MemoryBackend, RedisBackend

        if link is not None:
            return RedisBackend(link)
        if self.cache == "memory":
            return MemoryBackend()
        return None
