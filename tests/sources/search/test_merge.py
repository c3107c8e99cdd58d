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
