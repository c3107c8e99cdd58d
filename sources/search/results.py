"""What the merged searches take and give: the searches, found clinics and slots,
pages and the positions they end at, and the identity that sorts slots."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

from sources.geo import distance_km
from sources.names import normalize_name
from sources.records import AppointmentType, GeoPoint, Region, SlotRecord
from sources.search.merge import MergedClinic, MergedPhysician, slot_key

if TYPE_CHECKING:
    from sources.errors import SourceError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SlotSearch:
    """A slot search as the API asks it; ids are merged keys, not source ids."""

    starts_after: datetime
    starts_before: datetime
    near: GeoPoint | None = None
    radius_km: float | None = None
    region: Region | None = None
    appointment_types: frozenset[AppointmentType] | None = None
    languages: frozenset[str] | None = None
    clinic_keys: tuple[str, ...] | None = None
    physician_keys: tuple[str, ...] | None = None


# What makes two slots the same slot whichever source lists it, in sortable form:
# (clinic key, physician key or "", start and end in UTC microseconds, type).
SlotIdentity = tuple[str, str, int, int, str]
LOWEST_IDENTITY: SlotIdentity = ("", "", 0, 0, "")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(value: datetime) -> int:
    return (value - EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True)
class SlotPosition:
    """Where a page ended: the sort key of its last slot and how many came before."""

    start: datetime
    distance_km: float | None
    identity: SlotIdentity
    offset: int

    def sort_key(self) -> tuple[datetime, float, SlotIdentity]:
        return (self.start, distance_rank(self.distance_km), self.identity)


@dataclass(frozen=True, slots=True)
class FoundSlot:
    identity: SlotIdentity
    record: SlotRecord
    clinic: MergedClinic
    physician: MergedPhysician | None
    distance_km: float | None

    @property
    def key(self) -> str:
        """The slot's global key (what its id encodes)."""
        return slot_key(
            self.record, self.clinic.key, self.physician.key if self.physician else None
        ).encode()

    def sort_key(self) -> tuple[datetime, float, SlotIdentity]:
        return (self.record.start, distance_rank(self.distance_km), self.identity)

    def position(self, offset: int) -> SlotPosition:
        return SlotPosition(self.record.start, self.distance_km, self.identity, offset)


@dataclass(slots=True)
class SlotPage:
    """One page. ``resume`` is where the next page starts when ``slots`` is empty
    but more may follow (the sources' answers settled no slot in this round)."""

    slots: list[FoundSlot]
    has_next: bool
    total: int | None
    offset: int
    errors: list[SourceError] = field(default_factory=list)
    resume: SlotPosition | None = None

    def end(self) -> SlotPosition | None:
        """Where the next page starts (None when there is none)."""
        if not self.has_next:
            return None
        if self.slots:
            return self.slots[-1].position(self.offset + len(self.slots))
        return self.resume


@dataclass(frozen=True, slots=True)
class FoundClinic:
    clinic: MergedClinic
    distance_km: float | None

    def sort_key(self) -> tuple[float, str, str]:
        return (distance_rank(self.distance_km), normalize_name(self.clinic.name), self.clinic.key)


@dataclass(frozen=True, slots=True)
class ClinicSearch:
    near: GeoPoint | None = None
    radius_km: float | None = None
    region: Region | None = None
    name_contains: str | None = None


@dataclass(slots=True)
class SourceUse:
    """How a source took part in one request: from the cache or not, and how old
    its oldest answer was."""

    from_cache: bool = False
    age_s: float = 0.0


@dataclass(slots=True)
class Found(Generic[T]):
    """A value, plus the errors of the sources that failed while computing it."""

    value: T
    errors: list[SourceError] = field(default_factory=list)


def distance_rank(distance: float | None) -> float:
    return math.inf if distance is None else distance


def within(location: GeoPoint | None, near: GeoPoint | None, radius: float | None) -> bool:
    if near is None:
        return True
    if location is None:
        return False
    return radius is None or distance_km(near, location) <= radius
