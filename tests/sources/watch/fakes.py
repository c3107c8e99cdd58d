"""In-process booking sources for the watch's tests: a live one and a bulk feed's copy,
both answering from lists the test changes, and a pool over them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import aiohttp

from sources.base import CopyChanges, Source, SourceConfig, SourceContext
from sources.errors import SourceNotReady, SourceUnavailable
from sources.pool import SourcePool
from sources.records import (
    Address,
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    Identifier,
    PhysicianQuery,
    PhysicianRecord,
    Region,
    SlotQuery,
    SlotRecord,
    SlotResult,
    SourceProtocol,
)
from sources.rest_json.options import RestJsonOptions
from sources.smart_scheduling.options import SmartSchedulingOptions
from sources.timeutil import MONTREAL

NOW = datetime(2026, 11, 16, 7, 30, tzinfo=MONTREAL)  # a Monday
# Two places 150 km apart: a subscriber near one hears nothing of the other.
PLATEAU = GeoPoint(45.5230, -73.5800)
LIMOILOU = GeoPoint(46.8290, -71.2250)
PERMIT = "urn:test:permit"


def clinic(source_id: str, local_id: str, at: GeoPoint, name: str = "Clinique") -> ClinicRecord:
    return ClinicRecord(
        source_id=source_id,
        local_id=local_id,
        name=f"{name} {local_id}",
        address=Address(city="Montréal", region=Region.MONTREAL, postal_code="H2X 1Y4"),
        location=at,
        languages=("fr",),
        identifiers=(Identifier(PERMIT, local_id),),
    )


def slot(
    source_id: str,
    local_id: str,
    clinic_id: str,
    hours: float,
    kind: AppointmentType = AppointmentType.ROUTINE,
) -> SlotRecord:
    """A 15-minute slot starting ``hours`` after ``NOW``."""
    start = NOW + timedelta(hours=hours)
    return SlotRecord(source_id, local_id, start, start + timedelta(minutes=15), kind, clinic_id)


class Shop(Source):
    """A source answering from ``clinics`` and ``slots``, as an upstream asked live;
    ``fail`` makes it refuse (``status`` 503 or 429), ``delay_s`` makes it slow."""

    protocol: ClassVar[SourceProtocol] = SourceProtocol.REST_JSON
    clinics: list[ClinicRecord]
    slots: list[SlotRecord]
    calls: list[float]
    asked: list[tuple[str, ...] | None]  # the clinics each search was restricted to
    windows: list[tuple[datetime, datetime]]  # and its window
    fail: int | None = None
    delay_s: float = 0.0

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        self.calls.append(time.monotonic())
        self.asked.append(query.clinic_local_ids)
        self.windows.append((query.starts_after, query.starts_before))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise SourceUnavailable(
                self.id, f"upstream answered HTTP {self.fail}", retryable=True, status=self.fail
            )
        ids = set(query.clinic_local_ids) if query.clinic_local_ids is not None else None
        matching = sorted(
            (
                s
                for s in self.slots
                if query.starts_after <= s.start < query.starts_before
                and (ids is None or s.clinic_local_id in ids)
            ),
            key=lambda s: (s.start, s.local_id),
        )
        page = matching[: query.limit]
        return SlotResult(
            tuple(page),
            complete=len(page) == len(matching),
            total=len(matching),
            clinics={c.local_id: c for c in self.clinics},
        )

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        return list(self.clinics)

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        return []


class Copy(Shop):
    """A bulk feed's copy: answers at once, ``republish`` tells the pool it loaded."""

    protocol: ClassVar[SourceProtocol] = SourceProtocol.SMART_SCHEDULING_LINKS
    cache_answers: ClassVar[bool] = False
    loaded: bool = True

    @property
    def refresh_interval_s(self) -> float:
        return 60.0

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        if not self.loaded:
            raise SourceNotReady(self.id, "first load of the bulk feed in progress")
        return await super().search_slots(query)

    def republish(self, slots: list[SlotRecord], changed: CopyChanges | None = None) -> None:
        """New slots, and the load told as a real copy tells it: ``changed`` by clinic, the
        starts of the slots that differ (None: any of its slots); None: anything."""
        self.slots = slots
        self.loaded = True
        self.copy_loaded(changed)


@dataclass
class Spec:
    source_id: str
    clinics: list[ClinicRecord]
    slots: list[SlotRecord]
    kind: type[Shop] = Shop
    calls_per_minute: float = 600.0
    max_concurrency: int = 10
    options: dict[str, Any] = field(default_factory=dict)


async def install(pool: SourcePool, *specs: Spec) -> dict[str, Shop]:
    """Put sources built from ``specs`` in ``pool``; returns them by id."""
    built: dict[str, Shop] = {}
    by_id = {spec.source_id: spec for spec in specs}

    def factory(config: SourceConfig, context: SourceContext) -> Source:
        spec = by_id[config.id]
        source = spec.kind(config, context)
        source.clinics, source.slots, source.calls = spec.clinics, list(spec.slots), []
        source.asked, source.windows = [], []
        built[config.id] = source
        return source

    pool._factory = factory
    configs = []
    for spec in specs:
        live = not issubclass(spec.kind, Copy)
        configs.append(
            SourceConfig(
                id=spec.source_id,
                protocol=spec.kind.protocol,
                url=f"http://{spec.source_id}.test/$bulk-publish",
                max_concurrency=spec.max_concurrency,
                options=RestJsonOptions(watch_calls_per_minute=spec.calls_per_minute)
                if live
                else SmartSchedulingOptions(),
            )
        )
    await pool.sync(configs)
    return built


@dataclass
class Clock:
    """A clock the test moves."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


async def until(check: Callable[[], object], within_s: float = 3.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def a_pool() -> AsyncIterator[SourcePool]:
    """A pool with its own session, closed after."""
    async with aiohttp.ClientSession() as session:
        pool = SourcePool(session)
        try:
            yield pool
        finally:
            await pool.aclose()
