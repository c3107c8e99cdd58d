"""One Redis client for the whole gateway, and one outage pause for all its users.

``RedisLink`` is the only place a Redis client is made: the source cache,
persisted queries, the response cache and the rate limits all go through the
link the assembly builds once (``RedisLink.from_url``), so they share one
connection pool and one view of Redis' health. After an outage (no connection, a
timeout, a Redis still loading or read-only) the link refuses at once for
``OUTAGE_PAUSE_S`` (a dead or hung Redis costs one short timeout per pause, not
one per request), and says so once in the log. A command error (OOM under
``noeviction``, WRONGTYPE, a failing script) is no outage: that call alone does
without Redis, and each kind is logged once per ``COMMAND_ERROR_LOG_S``. What is
built on it later (pub/sub for live alerts, leases) uses the same client and the
same pause.

    link = RedisLink.from_url("redis://127.0.0.1:6379/0")
    value = await link.call(lambda redis: redis.get("key"))  # CacheUnavailable if down
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import RedisError

from sources.kv.backends import CacheUnavailable

__all__ = ["COMMAND_ERROR_LOG_S", "OUTAGE_PAUSE_S", "REDIS_TIMEOUT_S", "RedisLink"]

logger = logging.getLogger("passerelle.kv")

T = TypeVar("T")

# Redis is there to save time: one that answers slower than this is treated as down.
REDIS_TIMEOUT_S = 0.25
# After a failure, Redis is left alone this long before it is tried again.
OUTAGE_PAUSE_S = 5.0
# A command error of one kind is logged at most this often.
COMMAND_ERROR_LOG_S = 600.0
# Redis is not serving: every user would fail alike. Anything else (a ResponseError
# but these) is about one command, and Redis goes on serving the others.
# ConnectionError covers BusyLoadingError and AuthenticationError.
_OUTAGES = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.ClusterDownError,
    OSError,
)


class RedisLink:
    """The gateway's one Redis client, with the outage pause its users share."""

    name = "redis"

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._paused_until = 0.0
        self._command_errors_logged: dict[str, float] = {}

    @classmethod
    def from_url(cls, url: str, timeout_s: float = REDIS_TIMEOUT_S) -> RedisLink:
        # No retries inside the client: a failing Redis must cost one short timeout,
        # then every user does without it (sources called directly, local buckets).
        return cls(
            aioredis.Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
        )

    @staticmethod
    def url_problem(url: str) -> str | None:
        """What is wrong with a Redis URL, or None (checked without connecting)."""
        try:
            parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        except ValueError as exc:
            return str(exc)
        return None

    @property
    def available(self) -> bool:
        """False while paused after a failure."""
        return time.monotonic() >= self._paused_until

    async def call(self, operation: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """``operation`` on the client; ``CacheUnavailable`` at once while paused, when
        Redis is out (which starts a pause), or when the command fails (which does not)."""
        if not self.available:
            raise CacheUnavailable("redis: paused after a failure")
        try:
            return await operation(self.client)
        except _OUTAGES as exc:
            raise self._failed(exc) from exc
        except RedisError as exc:
            raise self._command_failed(exc) from exc

    def script(self, source: str) -> Callable[..., Awaitable[Any]]:
        """A Lua script registered once, run through :meth:`call`."""
        script = self.client.register_script(source)

        async def run(*, keys: list[str], args: list[Any]) -> Any:
            return await self.call(lambda _: script(keys=keys, args=args))

        return run

    def _failed(self, exc: BaseException) -> CacheUnavailable:
        if self.available:
            logger.warning(
                "redis unavailable (%s): done without for %.0f s",
                type(exc).__name__,
                OUTAGE_PAUSE_S,
            )
        self._paused_until = time.monotonic() + OUTAGE_PAUSE_S
        return CacheUnavailable(f"redis: {type(exc).__name__}")

    def _command_failed(self, exc: RedisError) -> CacheUnavailable:
        # Redis' own error code (OOM, WRONGTYPE, ERR...) names the kind; the rest of
        # its message may quote a key or a script's values, so it is not logged.
        words = str(exc).split(maxsplit=1)
        code = words[0] if words and words[0].isupper() else "?"
        kind = f"{type(exc).__name__} {code}"
        now = time.monotonic()
        logged = self._command_errors_logged.get(kind)
        if logged is None or now - logged > COMMAND_ERROR_LOG_S:
            self._command_errors_logged[kind] = now
            logger.warning(
                "redis refused a command (%s): that call did without it; not logged "
                "again for %.0f min",
                kind,
                COMMAND_ERROR_LOG_S / 60,
            )
        return CacheUnavailable(f"redis: {kind}")

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        except (RedisError, OSError):
            pass
