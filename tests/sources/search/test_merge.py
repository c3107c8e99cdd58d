"""Clinics merged across sources: where the sources disagree on the position."""

from __future__ import annotations

from sources.records import Address, ClinicRecord, GeoPoint, Identifier, Region
from sources.search.merge import merge_clinics

PERMIT = Identifier("urn:test:permit", "P-1")


def clinic(source_id: str, location: GeoPoint | None) -> ClinicRecord:
    address = Address("Rimouski", Region.BAS_SAINT_LAURENT)
    return ClinicRecord(source_id, "c1", "Clinique", address, location, identifiers=(PERMIT,))


def test_an_upstreams_own_position_wins_over_one_placed_at_the_city() -> None:
    city = GeoPoint(48.4488, -68.524, approximate=True)
    door = GeoPoint(48.4501, -68.5300)
    order = {"first": 0, "second": 1, "third": 2}

    (merged,) = merge_clinics([clinic("first", city), clinic("second", door)], order)
    assert merged.location == door
    (merged,) = merge_clinics([clinic("first", None), clinic("second", city)], order)
    assert merged.location == city
    (merged,) = merge_clinics(
        [clinic("first", door), clinic("third", GeoPoint(48.0, -68.0))], order
    )
    assert merged.location == door  # otherwise the first source in registry order wins


def test_the_same_records_are_merged_once_and_equal_ones_alike() -> None:
    """A cached answer gives every request the same record objects: merged once."""
    door = GeoPoint(48.4501, -68.5300)
    order = {"first": 0, "second": 1}
    records = [clinic("first", door), clinic("second", None)]

    first = merge_clinics(records, order)
    again = merge_clinics(list(records), order)
    assert again == first and again[0] is first[0]  # remembered: the same merged clinic
    # Equal records that are other objects, or another order of sources: merged anew,
    # to the same answer where it must be the same.
    fresh = merge_clinics([clinic("first", door), clinic("second", None)], order)
    assert fresh == first and fresh[0] is not first[0]
    reordered = merge_clinics(records, {"second": 0, "first": 1})
    assert reordered[0] is not first[0]
    assert [r.source_id for r in reordered[0].records] == ["second", "first"]
    # The answer is the caller's own list.
    again.clear()
    assert merge_clinics(records, order) == first
