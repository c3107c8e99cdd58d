"""What the pool's cache holds of the live sources (FHIR, REST), by region.

A live source cannot be counted without calling it, and the status page never calls
one. ``CacheSightings`` listens to the pool's cache (``SourceCache.stored_listeners``)
and keeps, for each answer stored, only what a count needs: its clinics' ids and
regions, and its free slots' ids, starts and clinics; each is forgotten when the cache
would drop that answer. What it counts is thus what the cache of this instance holds:
a lower bound of what the source lists ("at least N").
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sources.records import ClinicRecord, SlotResult

if TYPE_CHECKING:
    from sources.records import Region

__all__ = ["MAX_RECORDS", "CacheSightings"]

# Clinics and slots remembered per source (a few MB at most), the oldest answers dropped
# first, as the cache's own LRU would: past it, counts stay lower bounds.
MAX_RECORDS = 50_000


@dataclass(frozen=True, slots=True)
class _Answer:
    """One cached answer, reduced to its counts' inputs."""

    clinics: tuple[tuple[str, Region], ...]
    slots: tuple[tuple[str, float, str], ...]  # (slot id, start epoch, clinic id)
    expires_at: float  # monotonic

    @property
    def weight(self) -> int:
        return len(self.clinics) + len(self.slots)


class CacheSightings:
    """Clinics and free slots of the live sources, as their cached answers hold them.

    sightings = CacheSightings()
    pool.cache.stored_listeners.append(sightings.note)
    sightings.counts("demo-fhir", after, before)  # {Region: (clinics, slots)}
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._answers: dict[str, dict[str, _Answer]] = {}
        self._held: dict[str, int] = {}  # records held, by source

    def note(self, source_id: str, key: str, value: object, keep_s: float) -> None:
        """An answer the cache stored under ``key`` for ``keep_s`` seconds."""
        if isinstance(value, SlotResult):
            clinics = tuple((c.local_id, c.address.region) for c in value.clinics.values())
            slots = tuple((s.local_id, s.start.timestamp(), s.clinic_local_id) for s in value.slots)
        elif isinstance(value, list) and all(isinstance(c, ClinicRecord) for c in value):
            clinics = tuple((c.local_id, c.address.region) for c in value)
            slots = ()
        else:  # physicians: nothing to count
            return
        answers = self._answers.setdefault(source_id, {})
        held = self._held.get(source_id, 0)
        old = answers.pop(key, None)
        if old is not None:
            held -= old.weight
        answer = _Answer(clinics, slots, self._clock() + keep_s)
        answers[key] = answer
        held += answer.weight
        while held > MAX_RECORDS and answers:
            held -= answers.pop(next(iter(answers))).weight
        self._held[source_id] = held

    def sources(self) -> set[str]:
        return set(self._answers)

    def counts(self, source_id: str, after: float, before: float) -> dict[Region, tuple[int, int]]:
        """Per region, the clinics and the free slots starting in ``[after, before)``
        (epoch seconds) that the source's cached answers hold, each counted once."""
        answers = self._answers.get(source_id, {})
        now = self._clock()
        for key in [k for k, a in answers.items() if a.expires_at <= now]:
            self._held[source_id] -= answers.pop(key).weight
        regions: dict[str, Region] = {}
        slots: dict[str, str] = {}
        for answer in answers.values():
            regions.update(answer.clinics)
            for slot_id, start, clinic_id in answer.slots:
                if after <= start < before:
                    slots[slot_id] = clinic_id
        clinics_in = Counter(regions.values())
        slots_in = Counter(regions[c] for c in slots.values() if c in regions)
        return {r: (clinics_in.get(r, 0), slots_in.get(r, 0)) for r in {*clinics_in, *slots_in}}

    def forget(self, keep: set[str]) -> None:
        """Drop what is held of sources no longer registered."""
        for source_id in set(self._answers) - keep:
            del self._answers[source_id]
            self._held.pop(source_id, None)
