"""Counting places as adapters read them, and the problems the counts make.

Every adapter reports its places with the same codes and words (``place_problems``):

OUTSIDE_QUEBEC        WARNING   locations outside Quebec are not served; count: the
                                locations (message: their free slots, when known)
NO_POSITION           WARNING   Quebec locations without a position, whose city the
                                table does not place: served by every search except
                                ``near``; count: the locations
APPROXIMATE_POSITION  WARNING   Quebec locations without a position, placed at their
                                municipality's centre: ``near`` finds them, their
                                distances are approximate; count: the locations

A bulk feed counts per file (``Places``, in its load report); an adapter that reads
per request keeps a :class:`PlaceTally` of the locations it has met, by id (a
:class:`RecentPlaces` when nothing else tells it when to forget them).

    tally = PlaceTally()
    tally.note("L1", locate(...))
    place_problems(tally.places, ask="Location.position")
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from sources.places.locate import PlaceKind
from sources.problems import ProblemCode, problem

if TYPE_CHECKING:
    from sources.places.locate import Place
    from sources.records import SourceProblem

__all__ = ["NO_PLACES", "PlaceTally", "Places", "RecentPlaces", "place_problems"]


class Places(NamedTuple):
    """Locations outside Quebec (not served) and their free slots; Quebec locations
    served without a position, and served at an approximate one."""

    outside: int = 0
    outside_slots: int = 0
    no_position: int = 0
    approximate: int = 0


NO_PLACES = Places()


class PlaceTally:
    """The locations met, by id and place; ``outside_slots``: the most free slots of
    locations outside Quebec that one read met (a lower bound of their free slots)."""

    def __init__(self) -> None:
        self.kinds: dict[PlaceKind, set[str]] = {
            PlaceKind.OUTSIDE_QUEBEC: set(),
            PlaceKind.NO_POSITION: set(),
            PlaceKind.APPROXIMATE: set(),
        }
        self.outside_slots = 0

    def note(self, location_id: str, place: Place) -> None:
        ids = self.kinds.get(place.kind)
        if ids is not None:
            ids.add(location_id)

    def merge(self, other: PlaceTally) -> None:
        for kind, ids in other.kinds.items():
            self.kinds[kind] |= ids
        self.outside_slots = max(self.outside_slots, other.outside_slots)

    @property
    def places(self) -> Places:
        kinds = self.kinds
        return Places(
            len(kinds[PlaceKind.OUTSIDE_QUEBEC]),
            self.outside_slots,
            len(kinds[PlaceKind.NO_POSITION]),
            len(kinds[PlaceKind.APPROXIMATE]),
        )


class RecentPlaces:
    """The places met lately: those of the last ``ttl_s`` to twice that (two tallies,
    the older dropped as the newer comes of age), so a location fixed upstream or gone
    stops being counted."""

    def __init__(self, ttl_s: float = 600.0) -> None:
        self.ttl_s = ttl_s
        self._older = PlaceTally()
        self._newer = PlaceTally()
        self._since = time.monotonic()

    @property
    def current(self) -> PlaceTally:
        """The tally to note what is read now in."""
        if time.monotonic() - self._since > self.ttl_s:
            self._older, self._newer, self._since = self._newer, PlaceTally(), time.monotonic()
        return self._newer

    def tally(self) -> PlaceTally:
        """Both tallies, merged."""
        current = self.current  # first: it may drop the older tally
        merged = PlaceTally()
        merged.merge(self._older)
        merged.merge(current)
        return merged


def place_problems(
    places: Places,
    *,
    ask: str,
    outside_samples: tuple[str, ...] = (),
    slots_seen: bool = False,
) -> list[SourceProblem]:
    """The problems of the module docstring. ``ask``: what to ask the upstream for (its
    name for a position); ``slots_seen``: ``outside_slots`` counts only what reads met."""
    found = []
    if places.outside:
        slots = (
            f"at least {places.outside_slots} free slots (the most one search met)"
            if slots_seen
            else f"{places.outside_slots} free slots"
        )
        found.append(
            problem(
                ProblemCode.OUTSIDE_QUEBEC,
                f"{places.outside} locations outside Quebec, with {slots}, are not served "
                "(the gateway serves Quebec; see sources/quebec.py for the rule)",
                places.outside,
                outside_samples,
            )
        )
    if places.no_position:
        found.append(
            problem(
                ProblemCode.NO_POSITION,
                f"{places.no_position} Quebec locations have no position, nor a city the "
                "gateway can place: served by every search except `near`; ask the "
                f"publisher for {ask}",
                places.no_position,
            )
        )
    if places.approximate:
        found.append(
            problem(
                ProblemCode.APPROXIMATE_POSITION,
                f"{places.approximate} Quebec locations have no position and are placed at "
                "their municipality's centre (GeoNames; sources/places): `near` finds them, "
                f"but their distances are approximate; ask the publisher for {ask}",
                places.approximate,
            )
        )
    return found
