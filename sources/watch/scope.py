"""What a watch group's read covers: ``Coverage`` (the window and the circle read), and
``Scope``, the part of a bulk feed's copy that a load changed, which is all a group
reads again after that load (``sources.watch.group``).

A copy tells what its load changed (``sources.base.CopyChanges``): by clinic, the
starts of the slots that differ, or any of its slots. A group reads again a second at
each changed start (at most ``MAX_INSTANTS`` of them; more, and it reads those
clinics' whole window), and compares only the slots it held there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sources.geo import distance_km
from sources.records import GeoPoint  # at run time: a Coverage travels (sources.watch.held)

if TYPE_CHECKING:
    from sources.base import CopyChanges
    from sources.search import FoundSlot, MergedClinic
    from sources.watch.compact import HeldKey

__all__ = ["MAX_INSTANTS", "Coverage", "Scope", "merged_ids", "merged_with", "union_changes"]

# A copy's load changing slots at more starts than this is read again clinic by clinic
# (all their slots), rather than one second at each start.
MAX_INSTANTS = 16
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Coverage:
    """What a read covered: slots starting in ``[lower, upper)``, within ``radius_km``
    of ``centre`` (anywhere without one)."""

    lower: datetime
    upper: datetime
    centre: GeoPoint | None
    radius_km: float | None

    def covers(self, start: datetime, location: GeoPoint | None) -> bool:
        if not self.lower <= start < self.upper:
            return False
        if self.centre is None or self.radius_km is None:
            return True
        return location is not None and distance_km(self.centre, location) <= self.radius_km

    def within(self, other: Coverage) -> bool:
        """Whether this coverage is part of ``other`` (same centre)."""
        if self.upper > other.upper or self.lower < other.lower:
            return False
        if other.radius_km is None:
            return True
        return self.radius_km is not None and self.radius_km <= other.radius_km


@dataclass(frozen=True, slots=True)
class Scope:
    """What a read of a copy covers again: slots of these clinics (the source's own
    ids), starting at one of ``starts`` only (None: at any time)."""

    clinics: frozenset[str]
    starts: frozenset[datetime] | None

    @classmethod
    def of(cls, changes: CopyChanges) -> Scope:
        instants: set[int] = set()
        for starts in changes.values():
            if starts is None:
                return cls(frozenset(changes), None)
            instants |= starts
        if len(instants) > MAX_INSTANTS:
            return cls(frozenset(changes), None)
        return cls(frozenset(changes), frozenset(datetime.fromtimestamp(i, UTC) for i in instants))

    def windows(self, coverage: Coverage) -> list[tuple[datetime, datetime]]:
        """The windows to read: the coverage's, or a second at each start within it."""
        if self.starts is None:
            return [(coverage.lower, coverage.upper)]
        return [
            (start, start + _SECOND)
            for start in sorted(self.starts)
            if coverage.lower <= start < coverage.upper
        ]


def union_changes(a: CopyChanges | None, b: CopyChanges | None) -> CopyChanges | None:
    """What two loads changed together (None: anything)."""
    if a is None or b is None:
        return None
    both = dict(a)
    for local_id, starts in b.items():
        if local_id not in both:
            both[local_id] = starts
        else:
            was = both[local_id]
            both[local_id] = None if was is None or starts is None else was | starts
    return both


def merged_ids(slots: Iterable[FoundSlot], source_id: str) -> frozenset[str]:
    """The local ids at ``source_id`` of the (merged) clinics of ``slots``."""
    clinics = {id(s.clinic): s.clinic for s in slots}
    return frozenset(
        record.local_id
        for clinic in clinics.values()
        for record in clinic.records
        if record.source_id == source_id
    )


def merged_with(
    clinics: frozenset[str],
    source_id: str,
    held: Mapping[HeldKey, MergedClinic] | None,
    by_clinic: Mapping[str, list[HeldKey]],
) -> frozenset[str]:
    """``clinics`` and the source's other clinics merged with one of them at the last
    read (``held``, listed ``by_clinic``): slots of one merged clinic are compared
    together."""
    if held is None:
        return clinics
    merged = []
    for local_id in clinics:
        for identity in by_clinic.get(local_id, ()):
            if (clinic := held.get(identity)) is not None:
                merged.append(clinic)
                break
    more = {
        record.local_id
        for clinic in merged
        if len(clinic.records) > 1
        for record in clinic.records
        if record.source_id == source_id
    }
    return clinics | more if more else clinics
