"""Entries shared by every instance, in Redis, through the gateway's ``RedisLink``.

Values are encoded with msgspec's MessagePack and decoded into the expected
record type: nothing is unpickled from the network, and a corrupt or foreign
entry is a miss. Any Redis failure raises ``CacheUnavailable`` (and pauses the
link for every user of it).
"""

from __future__ import annotations

from typing import Any

import msgspec

from sources.kv.backends import CacheBackend, Entry
from sources.kv.link import RedisLink

__all__ = ["RedisBackend"]


class RedisBackend(CacheBackend):
    """Entries shared by every instance, in Redis (``PASSERELLE_REDIS_URL``).

    It uses the link it is given and leaves it open (the assembly closes it); one
    built by :meth:`from_url` owns its link and closes it.
    """

    name = "redis"

    def __init__(self, link: RedisLink, *, owns_link: bool = False) -> None:
        self.link = link
        self._owns_link = owns_link
        self._encoder = msgspec.msgpack.Encoder()
        self._decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}

    @classmethod
    def from_url(cls, url: str) -> RedisBackend:
        """A backend with a link of its own (tools and tests; the gateway shares one)."""
        return cls(RedisLink.from_url(url), owns_link=True)

    @property
    def available(self) -> bool:
        return self.link.available

    def _decoder(self, kind: Any) -> msgspec.msgpack.Decoder[Any]:
        decoder = self._decoders.get(kind)
        if decoder is None:
            decoder = self._decoders[kind] = msgspec.msgpack.Decoder(tuple[float, kind])
        return decoder

    async def get(self, key: str, kind: Any) -> Entry | None:
        raw = await self.link.call(lambda redis: redis.get(key))
        if not isinstance(raw, bytes):
            return None
        try:
            stored_at, value = self._decoder(kind).decode(raw)
        except msgspec.DecodeError:
            return None  # written by another version, or corrupt: a miss
        return Entry(value, stored_at)

    async def put(self, key: str, entry: Entry, keep_s: float, weight: int) -> None:
        data = self._encoder.encode((entry.stored_at, entry.value))
        await self.link.call(lambda redis: redis.set(key, data, px=max(1, int(keep_s * 1000))))

    async def claim(self, key: str, hold_s: float) -> bool:
        won = await self.link.call(
            lambda redis: redis.set(f"{key}:refresh", b"1", px=max(1, int(hold_s * 1000)), nx=True)
        )
        return bool(won)

    async def aclose(self) -> None:
        if self._owns_link:
            await self.link.aclose()
