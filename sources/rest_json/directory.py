"""The source's clinics and physicians as last read by id, kept ``directory_ttl_s``.

A slot search needs the clinics and physicians its slots name; they change rarely and
are public directory data, so each source keeps those it read (``Shelf``, one per kind,
bounded) and asks the API only for the ids it does not hold fresh: in steady state a
search is one call (the slots). A clinic id it does not hold is asked at once, so a new
clinic is seen by the first search that meets it. What the API did not serve is kept
too, for ``min(ttl, UNKNOWN_TTL_S)``: a clinic outside Quebec, one it did not list, an
item skipped as malformed. Concurrent searches missing the same id ask for it once:
the others wait for that answer and read it as held.

Each entry keeps how its reading counted, and a search using it counts it again the
same way: the place noted in the source's recent places (``OUTSIDE_QUEBEC``,
``NO_POSITION``, ``APPROXIMATE_POSITION`` problems), the reason it was skipped. The
adapter's accounting of slots of unknown or outside clinics then reads the same.

    directory = Directory(ttl_s=300)
    found = await directory.clinics.by_ids(ids, ask, skipped, places)

This is the adapter's own copy of reference data (as the FHIR adapter's directory),
not the answer cache: ``cache_ttl_s`` and ``--cache off`` do not touch it. Nothing of
slots or bookings is kept here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeAlias, TypeVar

from sources.places import Place
from sources.records import ClinicRecord, PhysicianRecord
from sources.rest_json.payload import ItemReader, MalformedItem

if TYPE_CHECKING:
    from collections import Counter

    from sources.places import RecentPlaces

__all__ = ["MAX_HELD", "UNKNOWN_TTL_S", "Directory", "Held", "Shelf"]

# Entries per kind and source; past it the oldest read are dropped (and asked again).
MAX_HELD: Final = 20_000
# What the API did not serve is asked again after at most this.
UNKNOWN_TTL_S: Final = 60.0

_K = TypeVar("_K", ClinicRecord, PhysicianRecord)
Read: TypeAlias = Callable[[object], tuple[str, Place | None, _K | None]]


@dataclass(frozen=True, slots=True)
class Held(Generic[_K]):
    """One id as read: its record (None: not served), the place its reading noted and
    the reason it was skipped, counted again whenever it is used, until ``until``."""

    local_id: str
    record: _K | None
    place: Place | None = None
    skip: str | None = None
    until: float = 0.0


Ask: TypeAlias = Callable[
    [list[str], Callable[[object], Held[_K]]], Awaitable[tuple[dict[str, Held[_K]], bool]]
]
"""Asks the API for ids, each item read by the reader given; answers what was read
by id, and whether every page of the answer was read."""


class _Reading(Generic[_K]):
    """Reads one lookup's items as the adapter does, each with how it counted."""

    def __init__(self, read: Read[_K], skipped: Counter[str]) -> None:
        self._read: Read[_K] = read
        self._skipped = skipped
        self.clean = True  # every item read was told apart by its id

    def __call__(self, item: object) -> Held[_K]:
        try:
            local_id, place, record = self._read(item)
        except MalformedItem as exc:
            if exc.local_id is None:
                self.clean = False
                raise
            self._skipped[exc.reason] += 1  # as read_item counts it
            return Held(exc.local_id, None, exc.place, exc.reason)
        except BaseException:
            self.clean = False
            raise
        return Held(local_id, record, place)


class Shelf(Generic[_K]):
    """One kind of record by id, at most ``size``, fresh ``ttl_s`` (not served: less)."""

    def __init__(self, read: Read[_K], ttl_s: float, size: int, clock: Callable[[], float]) -> None:
        self._read: Read[_K] = read
        self.ttl_s = ttl_s
        self.unknown_ttl_s = min(ttl_s, UNKNOWN_TTL_S)
        self.size = size
        self.clock = clock
        self._held: dict[str, Held[_K]] = {}
        # The ids being asked now, each with the flight its search awaits.
        self._flying: dict[str, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return len(self._held)

    async def by_ids(
        self, ids: Collection[str], ask: Ask[_K], skipped: Counter[str], places: RecentPlaces
    ) -> dict[str, _K]:
        """The records of ``ids`` the API serves: those held fresh, counted again as when
        read (their skip reason in ``skipped``, their place noted in ``places``), the
        others asked with ``ask`` and kept."""
        found: dict[str, _K] = {}
        asked, waited = self._take_held(ids, found, skipped, places, wait=True)
        flights = {self._flying[local_id] for local_id in waited}
        if asked:
            await self._ask(asked, ask, found, skipped)
        if flights:
            # Another search is asking for these: its answer, once kept, is read as
            # held; what it did not settle (it failed, or was cut short) is asked here.
            await asyncio.wait(flights)
            again, _ = self._take_held(waited, found, skipped, places, wait=False)
            if again:
                await self._ask(again, ask, found, skipped)
        return found

    def _take_held(
        self,
        ids: Collection[str],
        found: dict[str, _K],
        skipped: Counter[str],
        places: RecentPlaces,
        *,
        wait: bool,
    ) -> tuple[list[str], list[str]]:
        """Counts and adds to ``found`` the ids held fresh; answers those to ask and
        (``wait``) those another search is asking for now."""
        now = self.clock()
        asked: list[str] = []
        waited: list[str] = []
        tally = None
        for local_id in ids:
            held = self._held.get(local_id)
            if held is None or held.until <= now:
                if wait and local_id in self._flying:
                    waited.append(local_id)
                else:
                    asked.append(local_id)
                continue
            if held.place is not None:
                tally = tally or places.current
                tally.note(local_id, held.place)
            if held.skip is not None:
                skipped[held.skip] += 1
            if held.record is not None:
                found[local_id] = held.record
        return asked, waited

    async def _ask(
        self, asked: list[str], ask: Ask[_K], found: dict[str, _K], skipped: Counter[str]
    ) -> None:
        flight: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for local_id in asked:
            self._flying.setdefault(local_id, flight)
        try:
            reading = _Reading(self._read, skipped)
            got, whole = await ask(asked, reading)
            now = self.clock()
            for local_id, held in got.items():
                self._keep(held, now)
                if held.record is not None:
                    found[local_id] = held.record
            if whole and reading.clean:  # the ids not listed are not served: kept as such
                for local_id in asked:
                    if local_id not in got:
                        self._keep(Held(local_id, None), now)
        finally:
            for local_id in asked:
                if self._flying.get(local_id) is flight:
                    del self._flying[local_id]
            flight.set_result(None)

    def _keep(self, held: Held[_K], now: float) -> None:
        ttl = self.ttl_s if held.record is not None else self.unknown_ttl_s
        self._held.pop(held.local_id, None)  # to the end: the newest read
        self._held[held.local_id] = Held(
            held.local_id, held.record, held.place, held.skip, now + ttl
        )
        while len(self._held) > self.size:
            del self._held[next(iter(self._held))]


class Directory:
    """A source's clinics and physicians (see the module docstring)."""

    def __init__(
        self,
        reader: ItemReader,
        ttl_s: float,
        *,
        size: int = MAX_HELD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clinics: Shelf[ClinicRecord] = Shelf(reader.placed_clinic, ttl_s, size, clock)
        self.physicians: Shelf[PhysicianRecord] = Shelf(
            lambda item: _physician(reader, item), ttl_s, size, clock
        )

    def set_clock(self, clock: Callable[[], float]) -> None:
        self.clinics.clock = self.physicians.clock = clock


def _physician(reader: ItemReader, item: object) -> tuple[str, None, PhysicianRecord]:
    record = reader.physician(item)
    return record.local_id, None, record
