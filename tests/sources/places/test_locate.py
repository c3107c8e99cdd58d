"""The place rule: outside Quebec, at its own position, at its city's centre, or without one."""

from __future__ import annotations

import pytest

from sources.fhir.resources import clinic_record, location_place
from sources.places import PlaceKind, locate
from sources.records import GeoPoint, Region

MONTREAL = GeoPoint(45.50, -73.57)
NEWARK = GeoPoint(40.73, -74.17)


@pytest.mark.parametrize(
    ("postal_code", "state", "country", "city", "position", "kind"),
    [
        # Outside Quebec, whatever the city: the postal code, country or state decides.
        ("07102", "NJ", "US", "Newark", NEWARK, PlaceKind.OUTSIDE_QUEBEC),
        ("07102", "NJ", "US", "Newark", None, PlaceKind.OUTSIDE_QUEBEC),
        (None, None, "France", "Laval", None, PlaceKind.OUTSIDE_QUEBEC),
        (None, "Nova Scotia", None, "Sherbrooke", None, PlaceKind.OUTSIDE_QUEBEC),
        ("K1A 0B1", None, None, "Gatineau", None, PlaceKind.OUTSIDE_QUEBEC),
        (None, None, None, "Montréal", NEWARK, PlaceKind.OUTSIDE_QUEBEC),
        # Its own position wins over its city's.
        ("H2X 1Y4", "QC", "CA", "Québec", MONTREAL, PlaceKind.POSITIONED),
        (None, None, None, None, MONTREAL, PlaceKind.POSITIONED),
        # A city name alone never makes a place Quebec's.
        (None, None, None, "Laval", None, PlaceKind.UNKNOWN),
        (None, None, "Canada", "Laval", None, PlaceKind.UNKNOWN),
        # In Quebec by postal code or province: at its city's centre when the table has it.
        ("H7N 1A1", None, None, "Laval", None, PlaceKind.APPROXIMATE),
        (None, "Québec", "Canada", "ST-JEROME", None, PlaceKind.APPROXIMATE),
        (None, "QC", None, "Nowhere-sur-Mer", None, PlaceKind.NO_POSITION),
        ("J0B 1A0", None, None, None, None, PlaceKind.NO_POSITION),
        (None, "QC", None, "Ville-Marie", None, PlaceKind.NO_POSITION),  # ambiguous
        ("J9V 1A1", None, None, "Ville-Marie", None, PlaceKind.APPROXIMATE),  # J9: Abitibi
    ],
)
def test_the_first_decisive_step_wins(
    postal_code: str | None,
    state: str | None,
    country: str | None,
    city: str | None,
    position: GeoPoint | None,
    kind: PlaceKind,
) -> None:
    place = locate(postal_code, state, country, city, position)
    assert place.kind is kind
    assert place.served is (kind not in (PlaceKind.OUTSIDE_QUEBEC, PlaceKind.UNKNOWN))
    if kind is PlaceKind.POSITIONED:
        assert place.position == position and not place.position.approximate
    elif kind is PlaceKind.APPROXIMATE:
        assert place.position is not None and place.position.approximate
    else:
        assert place.position is None


def location(address: dict[str, str], position: dict[str, float] | None = None) -> dict:
    resource = {"resourceType": "Location", "id": "L1", "name": "Clinique", "address": address}
    if position is not None:
        resource["position"] = position
    return resource


def test_a_fhir_location_is_placed_from_its_address_city() -> None:
    resource = location({"city": "Rimouski", "state": "QC"})
    place = location_place(resource)
    clinic = clinic_record("s", resource)
    assert place.kind is PlaceKind.APPROXIMATE
    assert clinic is not None and clinic.location == place.position
    # No postal code: the region comes from the approximate position.
    assert clinic.address.region is Region.BAS_SAINT_LAURENT
    assert clinic.address.city == "Rimouski"


def test_a_fhir_location_outside_quebec_is_no_clinic_whatever_its_city() -> None:
    resource = location(
        {"city": "Montréal", "state": "NJ", "postalCode": "07102"},
        {"latitude": 40.73, "longitude": -74.17},
    )
    assert location_place(resource).kind is PlaceKind.OUTSIDE_QUEBEC
    assert clinic_record("s", resource) is None
