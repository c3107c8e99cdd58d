"""What the merged searches take and give: the clinic search, found clinics and
slots, pages and the positions they end at. A slot search is a ``SlotQuery``
(``sources.records``), a slot's identity a ``SlotIdentity`` (``identity``)."""

from __future__ import annotations

import enum
import math
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from sources.geo import distance_km
from sources.names import normalize_name
from sources.records import GeoPoint, SlotRecord, SlotResult, quick_init
from sources.search.identity import SlotIdentity
from sources.search.merge import MergedClinic, MergedPhysician

if TYPE_CHECKING:
    from sources.errors import SourceError

T = TypeVar("T")

# Slots are ordered by start, then distance (nulls last), then identity.
SlotSortKey = tuple[datetime, float, tuple[str, str, int, int, str]]
_LOWEST = ("", "", 0, 0, "")


class CountKind(enum.Enum):
    """How far a slot count can be trusted: ``EXACT`` when every source answered
    completely, ``AT_LEAST`` (a lower bound) otherwise."""

    EXACT = "EXACT"
    AT_LEAST = "AT_LEAST"


@dataclass(frozen=True, slots=True)
class SlotCount:
    """The matches of a whole slot search, as its first page counted them (the cursors
    carry it, so every page of one search shows the same). ``value`` None: no source
    answered, so none could count."""

    value: int | None
    kind: CountKind | None


@dataclass(frozen=True, slots=True)
class SlotPosition:
    """Where a page ended: the sort key of its last slot and how many came before.

    Without ``identity``, the position comes before every slot of its start and
    distance (where a page that settled no slot resumes).
    """

    start: datetime
    distance_km: float | None
    identity: SlotIdentity | None
    offset: int

    def sort_key(self) -> SlotSortKey:
        identity = self.identity.sort_key() if self.identity is not None else _LOWEST
        return (self.start, distance_rank(self.distance_km), identity)


@quick_init
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
        return self.identity.encode()

    def sort_key(self) -> SlotSortKey:
        return (self.record.start, distance_rank(self.distance_km), self.identity.sort_key())

    def position(self, offset: int) -> SlotPosition:
        return SlotPosition(self.record.start, self.distance_km, self.identity, offset)

    def with_seats_of(self, other: SlotRecord) -> FoundSlot:
        """This slot and ``other``, another slot of its source with the same identity,
        served as one: this one's booking details, both their seats."""
        seats = (self.record.capacity or 1) + (other.capacity or 1)
        return replace(self, record=replace(self.record, capacity=seats))


@dataclass(slots=True)
class SlotPage:
    """One page. ``resume`` is where the next page starts when ``slots`` is empty
    but more may follow (the sources' answers settled no slot in this round);
    ``count`` the matches of the whole search as this page's answers count them."""

    slots: list[FoundSlot]
    has_next: bool
    count: SlotCount
    offset: int
    errors: list[SourceError] = field(default_factory=list)
    resume: SlotPosition | None = None

    @property
    def total(self) -> int | None:
        return self.count.value

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


# The ``FoundSlot`` made of each slot of an answer, kept as long as the answer: a source's
# cached answer hands every request the same records, whose identity (two instants put in
# UTC) and ``FoundSlot`` would otherwise be made again for each request. By the answer's
# identity, with a weak reference: the entry goes when the answer does.
_FOUND: dict[int, tuple[weakref.ref[SlotResult], list[FoundSlot | None]]] = {}


def found_of(result: SlotResult) -> list[FoundSlot | None]:
    """A list beside ``result.slots``: at each index, the ``FoundSlot`` last made of that
    slot (with the merged clinic, physician and distance of that search), or None. The
    caller checks those are still its own before taking one, and puts the one it makes."""
    key = id(result)
    kept = _FOUND.get(key)
    if kept is not None and kept[0]() is result:
        return kept[1]
    made: list[FoundSlot | None] = [None] * len(result.slots)

    def forget(ref: weakref.ref[SlotResult], key: int = key) -> None:
        entry = _FOUND.get(key)
        if entry is not None and entry[0] is ref:
            _FOUND.pop(key, None)

    _FOUND[key] = (weakref.ref(result, forget), made)
    return made
