"""The background count: live sources counted from the cache without a call, a bulk feed
from its own copy (or said unavailable while it has none), the registry's changes noted,
and one count per interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from sources.base import Source, SourceConfig, SourceContext
from sources.coverage import RegionCoverage
from sources.errors import SourceError, SourceNotReady
from sources.kv import MemoryBackend
from sources.pool.cache import SourceCache
from sources.pool.fanout import SourcePool
from sources.pool.reads import slots_read
from sources.records import (
    Address,
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    PhysicianQuery,
    PhysicianRecord,
    Region,
    SlotQuery,
    SlotRecord,
    SlotResult,
    SourceProtocol,
)

T0 = datetime(2026, 11, 16, 12, 30, tzinfo=UTC)
CLINIC = ClinicRecord("live", "c1", "Clinique A", Address("Laval", Region.LAVAL))


class Live(Source):
    """A live source that counts its calls."""

    protocol = SourceProtocol.REST_JSON

    def __init__(self, config: SourceConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.calls = 0

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        self.calls += 1
        slots = tuple(
            SlotRecord(
                self.id,
                f"s{n}",
                T0 + timedelta(hours=n),
                T0 + timedelta(hours=n, minutes=15),
                AppointmentType.ROUTINE,
                "c1",
            )
            for n in range(3)
        )
        return SlotResult(slots, True, 3, {"c1": CLINIC})

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        self.calls += 1
        return [CLINIC]

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        self.calls += 1
        return []


class Loading(Live):
    """A bulk feed whose first load has not finished."""

    protocol = SourceProtocol.SMART_SCHEDULING_LINKS
    cache_answers = False

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        raise SourceNotReady(self.id, "first load of the bulk feed in progress")


def definition(source_id: str, **more: object) -> SourceConfig:
    return SourceConfig(
        id=source_id,
        name=source_id.title(),
        protocol=SourceProtocol.REST_JSON,
        url=f"http://{source_id}.test",
        **more,  # type: ignore[arg-type]
    )


@pytest.fixture
async def pool() -> AsyncIterator[SourcePool]:
    async with aiohttp.ClientSession() as session:

        def build(config: SourceConfig, context: SourceContext) -> Source:
            return (Loading if config.id == "bulk" else Live)(config, context)

        pool = SourcePool(session, build, cache=SourceCache(MemoryBackend()))
        await pool.sync([definition("live"), definition("bulk")])
        yield pool
        await pool.aclose()


async def test_a_live_source_is_counted_from_the_cache_and_never_called(pool: SourcePool) -> None:
    coverage = RegionCoverage(pool, clock=lambda: T0)
    live = pool.enabled[0]
    assert isinstance(live, Live)
    empty = await coverage.refresh()
    assert {r.region: (r.clinics, r.free_slots) for r in empty.regions}[Region.LAVAL] == (0, 0)
    outcome = await pool.read(live, slots_read(SlotQuery(T0, T0 + timedelta(days=7), 10)))
    assert not isinstance(outcome, SourceError)
    calls = live.calls
    report = await coverage.refresh()
    assert live.calls == calls == 1
    counts = {r.region: (r.clinics, r.free_slots) for r in report.regions}
    assert counts[Region.LAVAL] == (1, 3)
    assert sum(c + s for c, s in counts.values()) == 4
    assert all(r.at_least for r in report.regions)
    assert report.counted_by == {"live": "cache", "bulk": "unavailable"}
    coverage.close()
    assert pool.cache.stored_listeners == []


async def test_the_registrys_changes_are_noted_between_counts(pool: SourcePool) -> None:
    coverage = RegionCoverage(pool, clock=lambda: T0)
    await coverage.refresh()
    assert not coverage.changes
    await pool.sync([definition("live", enabled=False), definition("new")])
    await coverage.refresh()
    await pool.sync([replace(definition("live"), enabled=True), definition("new")])
    await coverage.refresh()
    seen = [(c.source_id, c.change) for c in coverage.changes]
    assert seen == [
        ("new", "added"),
        ("bulk", "removed"),
        ("live", "disabled"),
        ("live", "enabled"),
    ]


async def test_the_count_runs_once_per_interval(
    pool: SourcePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RegionCoverage, "INTERVAL_S", 0.1)
    coverage = RegionCoverage(pool, clock=lambda: T0)
    task = asyncio.create_task(coverage.run())
    await asyncio.sleep(0.55)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 4 <= coverage.runs <= 7
    assert pool.cache.stored_listeners == []
