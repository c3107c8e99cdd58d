"""Leases and channels in Redis, through the gateway's one ``RedisLink``: what lets one
instance do a job for all of them (a lease it renews) and tell the others (a channel).

- ``Leases``: ``first(key, ttl_s)`` claims a job once for all instances;
  ``hold(key, token, ttl_s)`` takes a lease that is free, or renews one
  this token holds (a Lua check-and-renew: only the holder renews); ``release``
  lets it go only if this token holds it; ``publish`` writes one field of a state
  hash and publishes a message *atomically, and only while the token holds the
  lease* (a holder that lost its lease, paused past its end, can neither publish
  nor overwrite its successor's state).
- ``Channels``: one pub/sub connection for the process, following the channels it
  is asked to follow, handing each message to the channel's callback; after a
  failure it connects again (``RETRY_S`` later) and subscribes again.

Every call raises ``CacheUnavailable`` when Redis is out (the link's pause).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from sources.kv.backends import CacheUnavailable
from sources.kv.link import RedisLink

__all__ = ["Channels", "Leases"]

logger = logging.getLogger("passerelle.kv")

# A lost pub/sub connection is made again after this long.
RETRY_S = 1.0

_HOLD = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
  return 1
end
if not held then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return -1 - redis.call('PTTL', KEYS[1])
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 1
"""


class Leases:
    """Leases over ``link`` (see the module docstring). A lease's state (a hash) is kept
    ``state_ttl_s`` after its last write or renewal."""

    def __init__(self, link: RedisLink, state_ttl_s: float) -> None:
        self.link = link
        self._state_ms = _ms(state_ttl_s)
        self._hold = link.script(_HOLD)
        self._release = link.script(_RELEASE)
        self._publish = link.script(_PUBLISH)

    async def hold(self, key: str, state: str, token: str, ttl_s: float) -> bool | float | None:
        """Take the lease ``key`` if free (True), renew it if ``token`` holds it (None),
        or, when another token holds it, the seconds it still has (a float; 0.0 without
        an end). ``state``: the hash kept as long as the lease."""
        answer = int(await self._hold(keys=[key, state], args=[token, _ms(ttl_s), self._state_ms]))
        if answer > 0:
            return None if answer == 1 else True
        return max(0, -1 - answer) / 1000

    async def release(self, key: str, token: str) -> None:
        await self._release(keys=[key], args=[token])

    async def publish(
        self,
        key: str,
        token: str,
        state: str,
        field: str,
        value: bytes,
        channel: str,
        message: bytes,
    ) -> bool:
        """Set ``state[field] = value`` (unless empty) and publish ``message`` on
        ``channel`` (unless empty), if ``token`` holds ``key``; False if it does not."""
        answer = await self._publish(
            keys=[key, state], args=[token, field, value, self._state_ms, channel, message]
        )
        return bool(answer)

    async def first(self, key: str, ttl_s: float) -> bool:
        """Whether this call is the first to claim ``key`` in ``ttl_s`` seconds (every
        instance may make the same claim: one wins). True when Redis is out: whoever
        asks then does the job (at least once rather than never)."""
        try:
            won = await self.link.call(lambda redis: redis.set(key, b"1", px=_ms(ttl_s), nx=True))
        except CacheUnavailable:
            return True
        return bool(won)

    async def state(self, state: str) -> dict[str, bytes]:
        """The fields of a lease's state hash."""
        raw = await self.link.call(lambda redis: redis.hgetall(state))
        return {_text(k): v for k, v in raw.items() if isinstance(v, bytes)}


class Channels:
    """The process's pub/sub connection (see the module docstring)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._callbacks: dict[str, Callable[[bytes], None]] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.subscribed: frozenset[str] = frozenset()  # as of the connection's last change

    def follow(self, channel: str, callback: Callable[[bytes], None]) -> None:
        self._callbacks[channel] = callback
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis channels")

    def leave(self, channel: str, callback: Callable[[bytes], None]) -> None:
        """Stop following ``channel``, unless another callback follows it now."""
        if self._callbacks.get(channel) == callback:
            del self._callbacks[channel]
            self._changed.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (CacheUnavailable, RedisError, OSError):
                pass  # the link says it once; the relay falls back meanwhile
            await asyncio.sleep(RETRY_S)

    async def _listen(self) -> None:
        if not self.link.available:
            return
        pubsub = self.link.client.pubsub()
        subscribed: set[str] = set()
        try:
            while True:
                if self._changed.is_set():
                    self._changed.clear()
                    wanted = set(self._callbacks)
                    if gone := subscribed - wanted:
                        await pubsub.unsubscribe(*gone)
                    if new := wanted - subscribed:
                        await pubsub.subscribe(*new)
                    subscribed = wanted
                    self.subscribed = frozenset(wanted)
                message: Any = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                if message is None or message.get("type") != "message":
                    continue
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                callback = self._callbacks.get(name)
                if callback is not None:
                    callback(message["data"])
        finally:
            self.subscribed = frozenset()
            self._changed.set()  # subscribe again on the next connection
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def aclose(self) -> None:
        self._callbacks.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
