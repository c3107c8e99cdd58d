"""The circuit breaker: a failing source is left alone for a while, then probed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp
import pytest

from sources.base import SourceConfig, SourceContext
from sources.errors import SourceNotReady
from sources.pool.breaker import SourceBreakers
from sources.pool.fanout import SourcePool
from sources.pool.reads import slots_read
from sources.records import SlotQuery, SlotResult, SourceProtocol, SourceStatus
from tests.conftest import serve
from tests.sources.transport.test_retry import Probe, upstream

if TYPE_CHECKING:
    from sources.pool import SourceView


def views(pool: SourcePool) -> dict[str, SourceView]:
    return {v.id: v for v in pool.views()}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_the_circuit_opens_after_failures_then_half_opens_and_closes(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SourceBreakers, "THRESHOLD", 2)
    monkeypatch.setattr(SourceBreakers, "TTL_S", 1.0)  # long enough for a loaded machine
    # 401 is not retried: one upstream request per call. Four failures, then healthy.
    app, seen = upstream(*[(401, {})] * 4)
    async with serve(app) as server:
        pool = SourcePool(session, lambda config, context: Probe(config, context))
        config = SourceConfig(
            id="p", protocol=SourceProtocol.REST_JSON, url=str(server.make_url("/"))
        )
        await pool.sync([config])
        now = datetime.now(UTC)
        query = SlotQuery(now, now, limit=1)

        async def call() -> list[str]:
            fan = await pool.fan_out(pool.enabled, lambda s: slots_read(query))
            return [e.message for e in fan.errors]

        assert await call() and await call()  # two failures: the circuit opens
        assert views(pool)["p"].status is SourceStatus.DOWN
        refused = await call()
        assert "circuit open" in refused[0]
        assert len(seen) == 2  # refused without calling the upstream
        await asyncio.sleep(1.05)
        assert views(pool)["p"].status is SourceStatus.DEGRADED
        assert await call()  # the probe fails: open again
        assert "circuit open" in (await call())[0]
        assert len(seen) == 3
        await asyncio.sleep(1.05)
        assert await call()  # probe 2 fails (4th failure upstream)
        await asyncio.sleep(1.05)
        assert await call() == []  # probe 3 succeeds: closed
        assert pool.breakers.status("p") is None
        # Closed, yet recent calls failed: the source reads DEGRADED until they age out.
        assert views(pool)["p"].status is SourceStatus.DEGRADED
        assert len(seen) == 5


async def test_a_bulk_feed_asked_during_its_first_load_never_opens_its_circuit(
    session: aiohttp.ClientSession,
) -> None:
    class Loading(Probe):
        """A bulk feed whose first load has not finished: it refuses every search."""

        loaded = False

        async def search_slots(self, query: SlotQuery) -> SlotResult:
            if not self.loaded:
                raise SourceNotReady(self.id, "first load of the bulk feed in progress")
            return SlotResult((), True, 0)

    adapters: list[Loading] = []

    def build(config: SourceConfig, context: SourceContext) -> Loading:
        adapters.append(Loading(config, context))
        return adapters[-1]

    pool = SourcePool(session, build)
    url = "http://127.0.0.1:9/$bulk-publish"
    config = SourceConfig(id="feed", protocol=SourceProtocol.SMART_SCHEDULING_LINKS, url=url)
    await pool.sync([config])
    now = datetime.now(UTC)
    query = SlotQuery(now, now, limit=1)

    async def call() -> list[str]:
        fan = await pool.fan_out(pool.enabled, lambda s: slots_read(query))
        return [e.message for e in fan.errors]

    for _ in range(2 * SourceBreakers.THRESHOLD):
        assert await call() == ["first load of the bulk feed in progress"]
    assert pool.breakers.status("feed") is None  # never opened: our copy, not the upstream
    adapters[-1].loaded = True
    assert await call() == []  # answers as soon as it is loaded, not 30 s later
    await pool.aclose()
