"""The cross-request cache: freshness, stale-while-revalidate, single-flight, backends.

The source here is a fake at the ``Source`` seam (it counts its calls and can be
slowed or broken); Redis is the real server on 127.0.0.1:6379, and a private
``redis-server`` started by the test where one must die.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from sources.base import Source, SourceConfig, SourceContext
from sources.errors import SourceError, SourceTimeout, SourceUnavailable
from sources.kv import CacheUnavailable, Entry, MemoryBackend, RedisBackend
from sources.kv import link as kv_link
from sources.pool import reads
from sources.pool.cache import CachePolicy, Served, SourceCache
from sources.pool.fanout import SourcePool
from sources.pool.reads import slots_read
from sources.records import (
    Address,
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    PhysicianQuery,
    PhysicianRecord,
    Region,
    SlotQuery,
    SlotRecord,
    SlotResult,
    SourceProtocol,
)
from sources.timeutil import MONTREAL
from tests.ports import REDIS_URL, free_port

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
QUERY = SlotQuery(T0, T0 + timedelta(days=7), 20)
CLINIC = ClinicRecord(
    "fake", "c1", "Clinique du Parc", Address("Laval", Region.LAVAL), GeoPoint(45.5, -73.7)
)


def answer(n: int) -> SlotResult:
    """The n-th answer of the fake source: one slot whose local id says which call made it."""
    slot = SlotRecord(
        "fake", f"call-{n}", T0, T0 + timedelta(minutes=15), AppointmentType.ROUTINE, "c1"
    )
    return SlotResult((slot,), True, 1, {"c1": CLINIC}, {})


class Fake(Source):
    protocol = SourceProtocol.REST_JSON

    def __init__(self, config: SourceConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.calls = 0
        self.delay_s = 0.0
        self.failing = False

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        self.calls += 1
        n = self.calls
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.failing:
            raise SourceUnavailable(self.id, "upstream answered HTTP 503")
        return answer(n)

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        return [CLINIC]

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        return []


def config(**settings: Any) -> SourceConfig:
    return SourceConfig(
        id="fake",
        name="Fake",
        protocol=SourceProtocol.REST_JSON,
        url="http://fake.test",
        timeout_s=1.0,
        **settings,
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def make_pool(session: aiohttp.ClientSession, cache: SourceCache) -> SourcePool:
    return SourcePool(session, factory=Fake, cache=cache)


async def read(pool: SourcePool, source: Source) -> Served[SlotResult]:
    outcome = await pool.read(source, slots_read(QUERY), 2.0)
    assert not isinstance(outcome, SourceError), outcome
    return outcome


def ids(served: Served[SlotResult]) -> list[str]:
    return [s.local_id for s in served.value.slots]


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    """A key prefix of this test's own in the shared Redis, emptied afterwards."""
    name = f"passerelle-test:{uuid.uuid4().hex}"
    yield name
    client = aioredis.Redis.from_url(REDIS_URL)
    async for key in client.scan_iter(match=f"{name}:*"):
        await client.delete(key)
    await client.aclose()


# -- freshness -------------------------------------------------------------------------


async def test_a_fresh_entry_is_served_without_calling_the_source(
    session: aiohttp.ClientSession,
) -> None:
    pool = make_pool(session, SourceCache(MemoryBackend()))
    await pool.sync([config(cache_ttl_s=60.0)])
    (source,) = pool.enabled
    first = await read(pool, source)
    second = await read(pool, source)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert ids(second) == ids(first) == ["call-1"]
    assert 0 <= second.age_s < 5
    assert source.calls == 1  # type: ignore[attr-defined]
    await pool.aclose()


async def test_stale_is_served_at_once_then_refreshed_once_in_the_background(
    session: aiohttp.ClientSession,
) -> None:
    pool = make_pool(session, SourceCache(MemoryBackend()))
    await pool.sync([config(cache_ttl_s=0.5, cache_stale_s=30.0)])
    (source,) = pool.enabled
    assert ids(await read(pool, source)) == ["call-1"]
    await asyncio.sleep(0.55)
    source.delay_s = 0.2  # type: ignore[attr-defined]
    started = time.monotonic()
    stale = await asyncio.gather(*(read(pool, source) for _ in range(10)))
    assert time.monotonic() - started < 0.15  # nobody waited for the refresh
    assert {tuple(ids(s)) for s in stale} == {("call-1",)}
    assert all(s.from_cache and s.age_s >= 0.5 for s in stale)
    await asyncio.sleep(0.3)  # the one background refresh lands
    assert source.calls == 2  # type: ignore[attr-defined]
    fresh = await read(pool, source)
    assert ids(fresh) == ["call-2"]
    assert fresh.from_cache and fresh.age_s < 0.5
    await pool.aclose()


async def test_past_the_stale_window_the_source_is_called_again(
    session: aiohttp.ClientSession,
) -> None:
    pool = make_pool(session, SourceCache(MemoryBackend()))
    await pool.sync([config(cache_ttl_s=0.1, cache_stale_s=0.1)])
    (source,) = pool.enabled
    await read(pool, source)
    await asyncio.sleep(0.25)
    again = await read(pool, source)
    assert ids(again) == ["call-2"] and not again.from_cache
    await pool.aclose()


async def test_errors_are_never_cached(session: aiohttp.ClientSession) -> None:
    pool = make_pool(session, SourceCache(MemoryBackend()))
    await pool.sync([config(cache_ttl_s=60.0)])
    (source,) = pool.enabled
    source.failing = True  # type: ignore[attr-defined]
    failed = await pool.read(source, slots_read(QUERY), 2.0)
    assert isinstance(failed, SourceUnavailable)
    source.failing = False  # type: ignore[attr-defined]
    served = await read(pool, source)
    assert not served.from_cache and served.value.slots
    await pool.aclose()


async def test_a_zero_ttl_turns_the_cache_off_for_that_source(
    session: aiohttp.ClientSession,
) -> None:
    pool = make_pool(session, SourceCache(MemoryBackend()))
    await pool.sync([config(cache_ttl_s=0.0)])
    (source,) = pool.enabled
    await read(pool, source)
    await read(pool, source)
    assert source.calls == 2  # type: ignore[attr-defined]
    await pool.aclose()


def test_bulk_feed_sources_are_never_cached() -> None:
    from sources.smart_scheduling.adapter import SmartSchedulingSource

    assert not SmartSchedulingSource.cache_answers
    assert CachePolicy(0.0, 0.0).ttl_s == 0


# -- single-flight -----------------------------------------------------------------------


async def test_fifty_concurrent_identical_reads_make_one_call(
    session: aiohttp.ClientSession,
) -> None:
    pool = make_pool(session, SourceCache(None))  # no backend: single-flight alone
    await pool.sync([config()])
    (source,) = pool.enabled
    source.delay_s = 0.1  # type: ignore[attr-defined]
    served = await asyncio.gather(*(read(pool, source) for _ in range(50)))
    assert source.calls == 1  # type: ignore[attr-defined]
    assert {tuple(ids(s)) for s in served} == {("call-1",)}
    await pool.aclose()


async def test_a_caller_past_its_deadline_stops_waiting_but_the_call_lands(
    session: aiohttp.ClientSession,
) -> None:
    pool = make_pool(session, SourceCache(MemoryBackend()))
    await pool.sync([config(cache_ttl_s=60.0)])
    (source,) = pool.enabled
    source.delay_s = 0.3  # type: ignore[attr-defined]
    late = await pool.read(source, slots_read(QUERY), 0.05)
    assert isinstance(late, SourceTimeout)
    await asyncio.sleep(0.4)
    served = await read(pool, source)
    assert served.from_cache and ids(served) == ["call-1"]
    assert source.calls == 1  # type: ignore[attr-defined]
    await pool.aclose()


# -- the memory backend ----------------------------------------------------------------------


async def test_memory_backend_evicts_least_recently_used_by_weight() -> None:
    backend = MemoryBackend(max_weight=10)

    await backend.put("a", Entry("A", time.time()), 60, 4)
    await backend.put("b", Entry("B", time.time()), 60, 4)
    assert await backend.get("a", str) is not None  # a is now the most recent
    await backend.put("c", Entry("C", time.time()), 60, 4)  # 12 > 10: b goes
    assert await backend.get("b", str) is None
    assert await backend.get("a", str) is not None and await backend.get("c", str) is not None
    assert backend.weight == 8
    await backend.put("huge", Entry("H", time.time()), 60, 11)  # bigger than the cache
    assert await backend.get("huge", str) is None and len(backend) == 2


async def test_memory_backend_drops_expired_entries() -> None:
    backend = MemoryBackend()
    await backend.put("a", Entry("A", time.time()), 0.05, 1)
    await asyncio.sleep(0.1)
    assert await backend.get("a", str) is None and backend.weight == 0


def test_cache_keys_do_not_depend_on_set_order_or_process() -> None:
    types_a = frozenset([AppointmentType.ROUTINE, AppointmentType.URGENT, AppointmentType.WALK_IN])
    types_b = frozenset(reversed(list(types_a)))
    a = slots_read(SlotQuery(T0, T0 + timedelta(days=1), 5, appointment_types=types_a))
    b = slots_read(SlotQuery(T0, T0 + timedelta(days=1), 5, appointment_types=types_b))
    assert a.digest() == b.digest()
    later = slots_read(SlotQuery(T0, T0 + timedelta(days=2), 5, appointment_types=types_a))
    assert later.digest() != a.digest()
    # The same instant in another zone is the same query.
    shifted = SlotQuery(
        T0.astimezone(MONTREAL), T0 + timedelta(days=1), 5, appointment_types=types_a
    )
    assert slots_read(shifted).digest() == a.digest()


# -- Redis -------------------------------------------------------------------------------------


async def test_redis_shares_entries_between_instances(
    session: aiohttp.ClientSession, namespace: str
) -> None:
    one = make_pool(session, SourceCache(RedisBackend.from_url(REDIS_URL), namespace))
    two = make_pool(session, SourceCache(RedisBackend.from_url(REDIS_URL), namespace))
    await one.sync([config(cache_ttl_s=60.0, cache_stale_s=30.0)])
    await two.sync([config(cache_ttl_s=60.0, cache_stale_s=30.0)])
    first = await read(one, one.enabled[0])
    second = await read(two, two.enabled[0])
    assert not first.from_cache and second.from_cache
    assert second.value == first.value  # decoded back into the same records
    assert second.value.slots[0].start == T0 and second.value.clinics["c1"] == CLINIC
    assert two.enabled[0].calls == 0  # type: ignore[attr-defined]
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
    assert len(keys) == 1
    assert 85_000 < await client.pttl(keys[0]) <= 90_000  # ttl + stale, then Redis drops it
    await client.aclose()
    await one.aclose()
    await two.aclose()


async def test_a_corrupt_redis_entry_is_a_miss(
    session: aiohttp.ClientSession, namespace: str
) -> None:
    cache = SourceCache(RedisBackend.from_url(REDIS_URL), namespace)
    pool = make_pool(session, cache)
    await pool.sync([config(cache_ttl_s=60.0)])
    (source,) = pool.enabled
    client = aioredis.Redis.from_url(REDIS_URL)
    await client.set(cache.key(source, slots_read(QUERY)), b"\x93not msgpack of ours")
    await client.aclose()
    served = await read(pool, source)
    assert not served.from_cache and source.calls == 1  # type: ignore[attr-defined]
    await pool.aclose()


async def test_only_one_instance_refreshes_a_stale_redis_entry(
    session: aiohttp.ClientSession, namespace: str
) -> None:
    pools = [
        make_pool(session, SourceCache(RedisBackend.from_url(REDIS_URL), namespace))
        for _ in range(3)
    ]
    for pool in pools:
        await pool.sync([config(cache_ttl_s=0.2, cache_stale_s=30.0)])
    await read(pools[0], pools[0].enabled[0])
    await asyncio.sleep(0.3)
    for pool in pools:
        pool.enabled[0].delay_s = 0.1  # type: ignore[attr-defined]
    stale = await asyncio.gather(*(read(p, p.enabled[0]) for p in pools))
    assert all(s.from_cache for s in stale)
    await asyncio.sleep(0.3)
    refreshes = sum(p.enabled[0].calls for p in pools) - 1  # type: ignore[attr-defined]
    assert refreshes == 1
    for pool in pools:
        await pool.aclose()


async def test_redis_unreachable_means_direct_calls_never_errors(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    cache = SourceCache(RedisBackend.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    pool = make_pool(session, cache)
    await pool.sync([config(cache_ttl_s=60.0)])
    (source,) = pool.enabled
    for n in range(1, 4):
        served = await read(pool, source)
        assert ids(served) == [f"call-{n}"] and not served.from_cache
    assert not cache.available  # paused after the first failure: no more waiting on it
    assert sum("cache unavailable" in r.getMessage() for r in caplog.records) == 1
    await pool.aclose()


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required (Debian package redis-server)"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", process
    process.kill()
    process.wait()


async def test_redis_dying_mid_way_degrades_to_direct_calls_then_recovers(
    session: aiohttp.ClientSession,
    private_redis: tuple[str, subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kv_link, "OUTAGE_PAUSE_S", 0.2)
    url, process = private_redis
    cache = SourceCache(RedisBackend.from_url(url))
    pool = make_pool(session, cache)
    await pool.sync([config(cache_ttl_s=60.0)])
    (source,) = pool.enabled
    await read(pool, source)
    assert (await read(pool, source)).from_cache
    process.kill()
    process.wait()
    outage = [await read(pool, source) for _ in range(3)]
    assert [s.from_cache for s in outage] == [False] * 3
    assert source.calls == 4  # type: ignore[attr-defined]
    # Back after the pause: a new server on the same port, the cache is used again.
    port = url.rsplit(":", 1)[1].split("/")[0]
    restarted = await asyncio.create_subprocess_exec(
        "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.sleep(0.5)
        await read(pool, source)
        assert (await read(pool, source)).from_cache
    finally:
        restarted.kill()
        await restarted.wait()
        await pool.aclose()


async def test_a_redis_that_never_answers_costs_one_timeout_then_is_skipped() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        backend = RedisBackend.from_url(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        started = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await backend.get("k", str)
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(10):
            with pytest.raises(CacheUnavailable):
                await backend.get("k", str)
        rest = time.monotonic() - started
        await backend.aclose()
    assert 0.2 <= first < 1.0 and rest < 0.05


def test_a_reads_digest_is_the_same_written_out_or_remembered() -> None:
    """Digests are remembered by query value: the remembered one is the one written
    out, equal queries share it, and different ones never do."""
    start = datetime(2026, 12, 7, 13, tzinfo=UTC)
    query = SlotQuery(start, start + timedelta(days=7), 20, near=GeoPoint(45.5, -73.5))
    first = reads.slots_read(query).digest()
    assert reads.slots_read(replace(query)).digest() == first == reads.slots_read(query)._written()
    assert reads.slots_read(replace(query, limit=21)).digest() != first
    assert reads.clinics_read(ClinicQuery(near=GeoPoint(45.5, -73.5))).digest() != first
