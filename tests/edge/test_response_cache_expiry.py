"""The response cache across expiries: stale answers while one execution refreshes them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from edge.middleware.response_cache import REVALIDATE_BACKOFF_S, ResponseCache
from edge.services import services_of
from examples import demo_fhir
from examples.world import World
from sources.kv import MemoryBackend, RedisBackend
from tests.conftest import GatewayFactory, fhir_definition, serve
from tests.edge.test_response_cache import get, register
from tests.ports import REDIS_URL

SOURCES = {"sources": [{"id": "s", "status": "UP", "fromCache": False, "ageSeconds": 0.0}]}


class Replays:
    """A replay that counts its runs, takes ``run_s`` and says whether it stored."""

    def __init__(self, run_s: float = 0.05, stores: bool = True) -> None:
        self.run_s = run_s
        self.stores = stores
        self.runs = 0

    async def __call__(self) -> bool:
        self.runs += 1
        await asyncio.sleep(self.run_s)
        return self.stores


async def settle(cache: ResponseCache, timeout_s: float = 5.0) -> None:
    """Until no revalidation runs or backs off."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / 0.01)):
        if not cache.revalidating or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    assert cache.revalidating == 0


async def test_a_response_past_its_ttl_is_served_stale_within_its_sources_stale_window() -> None:
    cache = ResponseCache(MemoryBackend())
    assert await cache.put("k", {"x": 1}, dict(SOURCES), {"s": 0.1}, {"s": 0.3}) == 0.1
    fresh = await cache.get("k")
    await asyncio.sleep(0.15)
    stale = await cache.get("k")
    await asyncio.sleep(0.3)
    gone = await cache.get("k")
    assert fresh is not None and not fresh.stale
    assert stale is not None and stale.stale and stale.max_age_s == 0
    assert stale.body.startswith(b'{"data":{"x":1}')
    assert gone is None


async def test_without_a_stale_window_a_response_is_gone_at_its_ttl() -> None:
    cache = ResponseCache(MemoryBackend())
    await cache.put("k", {"x": 1}, dict(SOURCES), {"s": 0.1})  # no stale window given
    await asyncio.sleep(0.15)
    assert await cache.get("k") is None


async def test_many_stale_hits_start_one_revalidation_per_key() -> None:
    cache = ResponseCache(MemoryBackend())
    one, other = Replays(), Replays()
    for _ in range(50):
        cache.revalidate("k", one)
        cache.revalidate("other", other)
    assert cache.revalidating == 2
    await settle(cache)
    assert (one.runs, other.runs) == (1, 1)
    cache.revalidate("k", one)  # done: the next stale hit may start another
    await settle(cache)
    assert one.runs == 2


async def test_a_revalidation_that_could_not_store_backs_off_before_the_next() -> None:
    cache = ResponseCache(MemoryBackend())
    unlucky = Replays(run_s=0.0, stores=False)
    cache.revalidate("k", unlucky)
    await asyncio.sleep(REVALIDATE_BACKOFF_S / 4)
    cache.revalidate("k", unlucky)  # still backing off: not run again
    assert unlucky.runs == 1
    await settle(cache)
    cache.revalidate("k", unlucky)
    await settle(cache)
    assert unlucky.runs == 2


async def test_instances_sharing_redis_revalidate_a_key_once() -> None:
    backends = [RedisBackend.from_url(REDIS_URL) for _ in range(2)]
    caches = [ResponseCache(backend) for backend in backends]
    key = f"passerelle:test:revalidate:{uuid.uuid4().hex}"  # Redis outlives test runs
    replays = [Replays(run_s=0.1), Replays(run_s=0.1)]
    try:
        for cache, replay in zip(caches, replays, strict=True):
            cache.revalidate(key, replay)
        for cache in caches:
            await settle(cache)
    finally:
        for backend in backends:
            await backend.aclose()
    assert sorted(r.runs for r in replays) == [0, 1]


class CountingRedis(RedisBackend):
    """Redis, counting this instance's reads."""

    reads = 0

    async def get(self, key: str, kind: Any) -> Any:
        self.reads += 1
        return await super().get(key, kind)


async def test_with_redis_an_instance_answers_from_its_near_copy_briefly_and_never_when_stale() -> (
    None
):
    a, b = RedisBackend.from_url(REDIS_URL), CountingRedis.from_url(REDIS_URL)
    here, there = ResponseCache(a), ResponseCache(b)
    there.near_s = 0.3  # as NEAR_COPY_S (1 s), shorter
    key = f"passerelle:test:near:{uuid.uuid4().hex}"
    assert isinstance(b, CountingRedis)
    try:
        assert await here.put(key, {"x": 1}, dict(SOURCES), {"s": 30}, {"s": 30}) == 30
        hits = [await there.get(key) for _ in range(5)]
        assert all(h is not None and b'"x":1' in h.body for h in hits)
        assert b.reads == 1  # four answered without a round trip
        await here.put(key, {"x": 2}, dict(SOURCES), {"s": 30}, {"s": 30})
        soon = await there.get(key)
        assert soon is not None and b'"x":1' in soon.body  # its copy, for at most near_s
        await asyncio.sleep(0.35)
        later = await there.get(key)
        assert later is not None and b'"x":2' in later.body and b.reads == 2
        # Past its TTL an entry is read from Redis every time (another instance may
        # have refreshed it): never re-executed for an old copy.
        await here.put(key, {"x": 3}, dict(SOURCES), {"s": 0.1}, {"s": 30})
        await asyncio.sleep(0.35)
        stale = [await there.get(key) for _ in range(3)]
        assert all(h is not None and h.stale and b'"x":3' in h.body for h in stale)
        assert b.reads == 2 + 3
        # What an instance stores itself is its near copy at once.
        await there.put(key, {"x": 4}, dict(SOURCES), {"s": 30}, {"s": 30})
        mine = await there.get(key)
        assert mine is not None and b'"x":4' in mine.body and b.reads == 5
    finally:
        await a.aclose()
        await b.aclose()
    # In-process, there is nothing to copy.
    assert ResponseCache(MemoryBackend()).near_s == 0


# -- through the gateway ---------------------------------------------------------------


@pytest.fixture
async def slow_fhir(world: World) -> AsyncIterator[tuple[TestServer, dict[str, float]]]:
    """The demo FHIR server, each answer delayed by ``delay["s"]`` (0 at first)."""
    delay = {"s": 0.0}
    app = demo_fhir.build_app(world)

    @web.middleware
    async def slowly(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != "/_stats" and delay["s"]:
            await asyncio.sleep(delay["s"])
        return await handler(request)

    app.middlewares.append(slowly)
    async with serve(app) as server:
        yield server, delay


async def test_at_expiry_concurrent_requests_get_the_stale_answer_while_one_execution_refreshes(
    gateway_for: GatewayFactory, slow_fhir: tuple[TestServer, dict[str, float]]
) -> None:
    server, delay = slow_fhir
    short = replace(fhir_definition(server), cache_ttl_s=2.0, cache_stale_s=30.0)
    async with gateway_for(short) as gw:
        cache = services_of(gw.app).response_cache
        assert cache is not None
        executions: list[float] = []
        store = cache.store

        async def counted(*args: Any) -> float:
            executions.append(time.monotonic())
            return await store(*args)

        cache.store = counted  # type: ignore[method-assign]  # a spy: it stores as before
        await register(gw)
        _, stored, first = await get(gw)
        await asyncio.sleep(2.1)  # the response and the answers behind it are stale now
        delay["s"] = 0.5  # and the source takes half a second to answer a refresh
        executions.clear()
        started = time.monotonic()
        burst = await asyncio.gather(*(get(gw) for _ in range(20)))
        burst_s = time.monotonic() - started
        await settle(cache)
        during_burst = len(executions)
        # Until the source has refreshed its answers, each re-execution (one at a time)
        # finds them stale and cannot store; then one stores a fresh response.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            _, headers, latest = await get(gw)
            if headers["Cache-Control"] != "public, max-age=0":
                break
            await asyncio.sleep(0.05)
    assert stored["X-Cache"] == "MISS"
    for status, headers, body in burst:
        assert (status, headers["X-Cache"]) == (200, "HIT")
        assert headers["Cache-Control"] == "public, max-age=0"  # stale: no one keeps it
        assert body["data"] == first["data"]
        assert body["extensions"]["sources"][0]["ageSeconds"] >= 2.0
    assert burst_s < 0.5  # none of them waited for the source's half second
    # Twenty requests at expiry, one execution (one more per back-off, should the
    # burst outlast it on a busy machine: the first could not store, its sources stale).
    assert during_burst <= 1 + int(burst_s / REVALIDATE_BACKOFF_S) < 20
    assert headers["X-Cache"] == "HIT" and headers["Cache-Control"].startswith("public, max-age=")
    assert latest["extensions"]["sources"][0]["ageSeconds"] < 2.0  # refreshed
    assert latest["data"] == first["data"]


async def test_a_small_response_kept_in_process_costs_its_size_not_a_4_kib_buffer() -> None:
    """orjson.dumps hands back bytes holding at least 4 KiB; kept as they are, 10,000
    small cached answers would pin 40 MB."""
    import tracemalloc

    cache = ResponseCache(MemoryBackend())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            await cache.put(f"k{i}", {"x": i}, dict(SOURCES), {"s": 30}, {"s": 30})
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / 1000
    finally:
        tracemalloc.stop()
    assert per_entry < 2048, per_entry
