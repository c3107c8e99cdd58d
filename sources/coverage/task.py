"""The background count of clinics and free slots by region: one task, at most once a
minute (``RegionCoverage.INTERVAL_S``), whatever the status page's traffic.

Each enabled source is counted from what the gateway already holds, never by a call:

- a source serving its own copy (a bulk feed: ``cache_answers`` False) from that copy,
  which it searches in memory (the SMART adapter's slot index): exact counts;
- a live source (FHIR, REST) from its answers in the pool's cache
  (``sources.coverage.sightings``): a lower bound, so every region's count is then
  "at least N".

A clinic listed by two sources counts once per source. The task also notes the changes
of the registry it sees between two counts (sources added, removed, enabled, disabled):
for operators.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from sources.coverage.sightings import CacheSightings
from sources.errors import SourceError
from sources.records import ClinicQuery, Region, SlotQuery, SourceStatus

if TYPE_CHECKING:
    from sources.base import Source
    from sources.pool.fanout import SourcePool

__all__ = ["CoverageReport", "RegionCount", "RegionCoverage", "RegistryChange"]

logger = logging.getLogger("passerelle.coverage")

WINDOW = timedelta(days=7)
MAX_CHANGES = 50


@dataclass(frozen=True, slots=True)
class RegionCount:
    """One region's clinics and free slots; ``at_least``: a lower bound."""

    region: Region
    clinics: int
    free_slots: int
    at_least: bool


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """One count: when it ran, its window, every region (in the official order, 01 to
    17) and how each source was counted: ``index`` (its own copy, exact), ``cache``
    (what the cache holds, a lower bound) or ``unavailable`` (its copy not loaded)."""

    computed_at: datetime
    starts_after: datetime
    starts_before: datetime
    regions: tuple[RegionCount, ...]
    counted_by: dict[str, str]
    duration_ms: float


@dataclass(frozen=True, slots=True)
class RegistryChange:
    """A change of the registry seen between two counts: ``added``, ``removed``,
    ``enabled`` or ``disabled``."""

    at: datetime
    source_id: str
    change: str


class RegionCoverage:
    """The count, kept up to date by :meth:`run`; :attr:`report` is the latest."""

    INTERVAL_S: ClassVar[float] = 60.0

    def __init__(self, pool: SourcePool, clock: Callable[[], datetime]) -> None:
        self.pool = pool
        self.clock = clock
        self.sightings = CacheSightings()
        self.report: CoverageReport | None = None
        self.runs = 0
        self.changes: deque[RegistryChange] = deque(maxlen=MAX_CHANGES)
        self._known: dict[str, bool] | None = None
        pool.cache.stored_listeners.append(self.sightings.note)

    async def run(self) -> None:
        """Count now, then every ``INTERVAL_S`` until cancelled."""
        try:
            while True:
                try:
                    await self.refresh()
                except Exception:  # the count must outlive a bug in one source's copy
                    logger.exception("coverage count failed; next try in %.0f s", self.INTERVAL_S)
                await asyncio.sleep(self.INTERVAL_S)
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening to the cache."""
        if self.sightings.note in self.pool.cache.stored_listeners:
            self.pool.cache.stored_listeners.remove(self.sightings.note)

    async def refresh(self) -> CoverageReport:
        started = time.perf_counter()
        self._note_registry()
        after = self.clock()
        before = after + WINDOW
        clinics = dict.fromkeys(Region, 0)
        slots = dict.fromkeys(Region, 0)
        counted_by: dict[str, str] = {}
        for source in self.pool.enabled:
            if source.cache_answers:
                found = self.sightings.counts(source.id, after.timestamp(), before.timestamp())
                counted_by[source.id] = "cache"
            else:
                copy = await _count_copy(source, after, before)
                counted_by[source.id] = "unavailable" if copy is None else "index"
                found = copy or {}
            for region, (n_clinics, n_slots) in found.items():
                clinics[region] += n_clinics
                slots[region] += n_slots
        self.sightings.forget({s.id for s in self.pool.enabled if s.cache_answers})
        at_least = any(how != "index" for how in counted_by.values())
        report = CoverageReport(
            computed_at=datetime.now(UTC),
            starts_after=after,
            starts_before=before,
            regions=tuple(RegionCount(r, clinics[r], slots[r], at_least) for r in Region),
            counted_by=counted_by,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        self.report = report
        self.runs += 1
        return report

    def _note_registry(self) -> None:
        now = datetime.now(UTC)
        seen = {v.id: v.status is not SourceStatus.DISABLED for v in self.pool.views()}
        known, self._known = self._known, seen
        if known is None:
            return
        for source_id in sorted(seen.keys() - known.keys()):
            self.changes.append(RegistryChange(now, source_id, "added"))
        for source_id in sorted(known.keys() - seen.keys()):
            self.changes.append(RegistryChange(now, source_id, "removed"))
        for source_id in sorted(seen.keys() & known.keys()):
            if seen[source_id] != known[source_id]:
                change = "enabled" if seen[source_id] else "disabled"
                self.changes.append(RegistryChange(now, source_id, change))


async def _count_copy(
    source: Source, after: datetime, before: datetime
) -> dict[Region, tuple[int, int]] | None:
    """A bulk source's clinics and free slots by region, from its own in-memory copy
    (``limit=0``: counted, no record built); None while it has no copy."""
    found: dict[Region, tuple[int, int]] = {}
    try:
        for region in Region:
            query = SlotQuery(starts_after=after, starts_before=before, limit=0, region=region)
            result = await source.search_slots(query)
            listed = await source.search_clinics(ClinicQuery(region=region))
            found[region] = (len(listed), result.total or 0)
    except SourceError:
        return None
    return found
