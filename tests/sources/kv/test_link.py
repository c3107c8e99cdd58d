"""The Redis link: an outage pauses every user, a command error only fails its call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from sources.kv import CacheUnavailable, RedisLink
from tests.ports import REDIS_URL


@pytest.fixture
async def link() -> AsyncIterator[RedisLink]:
    link = RedisLink.from_url(REDIS_URL)
    yield link
    await link.aclose()


async def test_a_command_error_fails_its_call_only_and_is_logged_once(
    link: RedisLink, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"test:link:{uuid.uuid4()}"
    await link.call(lambda r: r.rpush(key, "45.50|-73.56"))
    try:
        for _ in range(3):
            # WRONGTYPE: a string command on a list.
            with pytest.raises(CacheUnavailable, match="WRONGTYPE"):
                await link.call(lambda r: r.get(key))
        assert link.available  # Redis is fine: the other users go on using it
        assert await link.call(lambda r: r.llen(key)) == 1
    finally:
        await link.call(lambda r: r.delete(key))
    [line] = [r.getMessage() for r in caplog.records if r.name == "passerelle.kv"]
    assert "WRONGTYPE" in line and key not in line


async def test_a_connection_error_pauses_every_user(link: RedisLink) -> None:
    async def refused(_: aioredis.Redis) -> None:
        raise redis_errors.ConnectionError("Connection refused")

    with pytest.raises(CacheUnavailable):
        await link.call(refused)
    assert not link.available
    with pytest.raises(CacheUnavailable, match="paused"):
        await link.call(lambda r: r.ping())
