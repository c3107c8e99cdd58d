"""Settings: light to import, and the defaults it copies from heavier layers agree."""

from __future__ import annotations

import pytest

import edge.settings
from resolvers.context import DEFAULT_FANOUT_DEADLINE_S
from schema.cost import DEFAULT_MAX_COST
from sources.errors import ConfigError
from sources.kv import MemoryBackend, RedisBackend, RedisLink
from sources.registry.store import DEFAULT_DATABASE_URL


def test_copied_defaults_equal_their_originals() -> None:
    assert edge.settings.DEFAULT_DATABASE_URL == DEFAULT_DATABASE_URL
    assert edge.settings.DEFAULT_FANOUT_DEADLINE_S == DEFAULT_FANOUT_DEADLINE_S
    assert edge.settings.DEFAULT_MAX_COST == DEFAULT_MAX_COST


async def test_backends_are_built_when_asked_for_over_one_redis_link() -> None:
    memory = edge.settings.Settings()
    assert memory.redis_link() is None
    assert isinstance(memory.cache_backend(None), MemoryBackend)
    assert isinstance(memory.edge_backend(1024, None), MemoryBackend)
    assert edge.settings.Settings(cache="off").cache_backend(None) is None
    shared = edge.settings.Settings(cache="redis", redis_url="redis://127.0.0.1:1/0")
    link = shared.redis_link()
    assert isinstance(link, RedisLink)
    backends = [shared.cache_backend(link), shared.edge_backend(1024, link)]
    # Every user of Redis goes through the one link: one client, one outage pause.
    assert all(isinstance(b, RedisBackend) and b.link is link for b in backends)
    await link.aclose()
    with pytest.raises(ConfigError, match="needs a URL"):
        edge.settings.Settings(cache="redis").redis_link()


def test_production_limits_anonymous_clients_by_default() -> None:
    budget = edge.settings.Settings(env="production").anonymous_budget()
    assert budget is not None and (budget.rate, budget.burst) == (20.0, 40.0)
    assert edge.settings.Settings().anonymous_budget() is None
    assert edge.settings.Settings(env="production", anonymous_rate=0).anonymous_budget() is None
