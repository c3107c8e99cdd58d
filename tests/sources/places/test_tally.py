"""Places counted as adapters meet them, and forgotten once no longer met."""

from __future__ import annotations

import pytest

from sources.places import tally as module
from sources.places.locate import Place, PlaceKind
from sources.places.tally import Places, PlaceTally, RecentPlaces, place_problems
from sources.records import GeoPoint

OUTSIDE = Place(PlaceKind.OUTSIDE_QUEBEC)
APPROXIMATE = Place(PlaceKind.APPROXIMATE, GeoPoint(48.45, -68.52, approximate=True))


def test_a_location_met_twice_is_counted_once_and_slots_by_the_most_one_read_met() -> None:
    one, two = PlaceTally(), PlaceTally()
    one.note("a", OUTSIDE)
    one.note("b", APPROXIMATE)
    one.note("c", Place(PlaceKind.POSITIONED, GeoPoint(45.5, -73.6)))
    one.outside_slots = 4
    two.note("a", OUTSIDE)
    two.outside_slots = 3
    one.merge(two)
    assert one.places == Places(outside=1, outside_slots=4, no_position=0, approximate=1)


def test_recent_places_forget_what_was_not_met_for_two_periods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    recent = RecentPlaces(ttl_s=600.0)
    recent.current.note("a", OUTSIDE)
    now[0] += 601
    recent.current.note("b", APPROXIMATE)
    assert recent.tally().places == Places(outside=1, approximate=1)  # both periods
    now[0] += 601
    assert recent.tally().places == Places(approximate=1)  # "a" not met since
    now[0] += 601
    assert recent.tally().places == Places()


def test_no_problem_without_places_and_the_count_is_the_locations() -> None:
    assert place_problems(Places(), ask="Location.position") == []
    problems = place_problems(Places(2, 7, 1, 3), ask="Location.position")
    assert [(p.code, p.count) for p in problems] == [
        ("OUTSIDE_QUEBEC", 2),
        ("NO_POSITION", 1),
        ("APPROXIMATE_POSITION", 3),
    ]
    assert "with 7 free slots" in problems[0].message
