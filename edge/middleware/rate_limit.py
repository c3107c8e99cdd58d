"""Rate limits: a token bucket per client key, or per IP for anonymous clients.

:class:`RateLimits` is the middleware, first on the GraphQL route: a request over
its budget gets a 429 before its body is read.

``RateLimiter.take(key, rate, burst)`` answers 0 when a request may pass, else
the seconds until one may (for ``Retry-After``). Buckets live in this process,
or in Redis so that every instance shares them (an atomic Lua script, timed by
Redis' own clock). When Redis fails, the buckets of this process take over
(the gateway's one ``RedisLink`` logs it once and pauses): limits loosen to one
bucket per instance, they never vanish.

``client_ip`` reads ``X-Forwarded-For`` only when the peer is a trusted proxy:
otherwise any client could pick the address it is limited by.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from edge.services import services_of
from schema.error_codes import ErrorCode, envelope
from sources.kv import CacheUnavailable

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from edge.documents.partners import Partners
    from sources.kv import RedisLink

__all__ = [
    "Budget",
    "RateGuard",
    "RateLimiter",
    "RateLimits",
    "Refusal",
    "client_ip",
    "peer_trusted",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

logger = logging.getLogger("passerelle.rate_limit")

MAX_BUCKETS = 100_000  # in-process buckets kept (least recently used dropped first)

_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3]) or 1
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


@dataclass(frozen=True, slots=True)
class Budget:
    rate: float  # requests per second, sustained
    burst: float  # bucket size


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, link: RedisLink | None = None, namespace: str = "passerelle:v1:rl") -> None:
        self.namespace = namespace
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._script = link.script(_SCRIPT) if link is not None else None

    async def take(self, key: str, budget: Budget, cost: float = 1.0) -> float:
        """0 when a request of ``key`` costing ``cost`` tokens (at most the burst) may
        pass now, else the seconds to wait."""
        cost = min(cost, budget.burst)
        if self._script is not None:
            try:
                wait = await self._script(
                    keys=[f"{self.namespace}:{key}"], args=[budget.rate, budget.burst, cost]
                )
                return float(wait)
            except CacheUnavailable:
                pass  # Redis is down (the link said so once, and pauses): this bucket
        return self._take_here(key, budget, cost)

    def _take_here(self, key: str, budget: Budget, cost: float = 1.0) -> float:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(budget.burst, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        bucket.tokens = min(budget.burst, bucket.tokens + (now - bucket.at) * budget.rate)
        bucket.at = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / budget.rate


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: from ``X-Forwarded-For`` (right to left, past the trusted
    proxies) when the peer is a trusted proxy, else the peer itself."""
    if not peer:
        return "unknown"
    if not forwarded_for or not peer_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not peer_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def peer_trusted(address: str, trusted: Sequence[Network]) -> bool:
    """Whether ``address`` is in one of the ``trusted`` proxies' networks."""
    if not trusted:
        return False
    return _in_networks(address, tuple(trusted))


@functools.lru_cache(maxsize=4096)
def _in_networks(address: str, trusted: tuple[Network, ...]) -> bool:
    # Remembered: clients come back, and parsing an address costs more than a cached
    # hit's whole rate check.
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request must wait: ``retry_after_s`` whole seconds, and the message."""

    retry_after_s: int
    message: str

    def response(self) -> Response:
        """The HTTP answer: a 429 with ``Retry-After`` and ``RATE_LIMITED``."""
        seconds = self.retry_after_s
        return Response(
            envelope(ErrorCode.RATE_LIMITED, self.message, retryAfter=seconds),
            status_code=ErrorCode.RATE_LIMITED.http_status,
            headers={"retry-after": str(seconds), "content-type": "application/json"},
        )


class RateGuard:
    """Decides, first thing for every GraphQL request, whether it may go on.

    A valid partner key is limited by its client's ``--rate-limit`` (burst twice
    that; none when the client has none); anything else by its IP, with the
    ``anonymous`` budget (production: 20 requests/s, burst 40; development: none).
    A WebSocket's ``connection_init`` and each of its operations count as requests
    (``edge/subscriptions/websocket.py`` asks :meth:`refusal` with its key).
    """

    def __init__(
        self,
        limiter: RateLimiter,
        partners: Partners,
        anonymous: Budget | None,
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.limiter = limiter
        self.partners = partners
        self.anonymous = anonymous
        self.trusted_proxies = tuple(trusted_proxies)
        # Refusals by kind of client (partner, anonymous), read by /metrics.
        self.refusals: Counter[str] = Counter()

    async def check(self, request: HTTPConnection, cost: float = 1.0) -> Response | None:
        """None when the request (costing ``cost`` requests) may go on, else the 429."""
        authorization = request.headers.get("authorization")
        refusal = await self.refusal(authorization, self.address(request), cost)
        return refusal.response() if refusal is not None else None

    def address(self, connection: HTTPConnection) -> str:
        """The client's IP, through the trusted proxies (``X-Forwarded-For``)."""
        peer = connection.client.host if connection.client else None
        return client_ip(peer, connection.headers.get("x-forwarded-for"), self.trusted_proxies)

    async def refusal(
        self, authorization: str | None, address: str, cost: float = 1.0
    ) -> Refusal | None:
        """None when a request with this ``Authorization`` from ``address``, costing
        ``cost`` requests, may go on, else how long it must wait."""
        client = await self.partners.client_of(authorization)
        if client is not None:
            if client.rate_limit_rps is None:
                return None
            key = f"client:{client.name}"
            budget = Budget(client.rate_limit_rps, max(1.0, 2 * client.rate_limit_rps))
        else:
            if self.anonymous is None:
                return None
            key, budget = f"ip:{address}", self.anonymous
        wait = await self.limiter.take(key, budget, cost)
        if wait <= 0:
            return None
        self.refusals["partner" if client is not None else "anonymous"] += 1
        seconds = max(1, math.ceil(min(wait, 3600.0)))
        message = (
            f"Too many requests: at most {budget.rate:g} per second for this "
            f"{'client' if client is not None else 'address'}; retry in {seconds} s"
        )
        return Refusal(seconds, message)


class RateLimits:
    """ASGI middleware: the app's :class:`RateGuard` asked first, a 429 when it refuses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = await services_of(scope["app"]).rate_guard.check(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
