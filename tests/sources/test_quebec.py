"""The "in Quebec" rule: postal code, then country, then province, then position."""

from __future__ import annotations

import pytest

from sources.fhir.resources import clinic_record, location_in_quebec
from sources.quebec import in_quebec, inside_outline
from sources.records import GeoPoint


@pytest.mark.parametrize(
    ("name", "latitude", "longitude", "inside"),
    [
        ("Montréal", 45.50, -73.57, True),
        ("Gatineau", 45.48, -75.70, True),
        ("Fermont", 52.79, -67.09, True),
        ("Îles-de-la-Madeleine", 47.38, -61.86, True),
        ("Blanc-Sablon", 51.43, -57.13, True),
        ("Ivujivik", 62.42, -77.90, True),
        ("Ottawa", 45.42, -75.69, False),
        ("Labrador City", 52.94, -66.91, False),
        ("Edmundston", 47.37, -68.33, False),
        ("Burlington, Vermont", 44.48, -73.21, False),
        ("New Jersey", 40.58, -74.27, False),
        ("Anchorage", 61.22, -149.90, False),
        ("Sanikiluaq, Nunavut", 56.54, -79.22, False),
    ],
)
def test_the_outline_holds_quebec_towns_and_not_their_neighbours(
    name: str, latitude: float, longitude: float, inside: bool
) -> None:
    assert inside_outline(latitude, longitude) is inside, name


def test_the_first_decisive_step_wins() -> None:
    montreal, newark = GeoPoint(45.50, -73.57), GeoPoint(40.73, -74.17)
    assert in_quebec("h2x1y4", "NJ", "US", newark) is True  # the postal code decides
    assert in_quebec("K1A 0B1", "QC", None, montreal) is False  # Ontario's K
    assert in_quebec("07102", "QC", "USA", montreal) is False  # a ZIP: the country decides
    assert in_quebec(None, " Québec ", "Canada", newark) is True  # then the province
    assert in_quebec(None, "P.Q.", None, None) is True
    assert in_quebec(None, "ON", "CA", montreal) is False
    assert in_quebec(None, None, None, montreal) is True  # then the position
    assert in_quebec(None, None, None, newark) is False
    assert in_quebec(None, None, None, None) is None  # nothing says


def test_a_location_outside_quebec_with_a_position_gets_no_quebec_region() -> None:
    new_jersey = {
        "resourceType": "Location",
        "id": "nj",
        "name": "Pharmacy",
        "address": {"city": "Newark", "state": "NJ", "postalCode": "07102"},
        "position": {"latitude": 40.73, "longitude": -74.17},
    }
    assert location_in_quebec(new_jersey) is False
    assert clinic_record("s", new_jersey) is None
    anchorage = {**new_jersey, "address": {}, "position": {"latitude": 61.2, "longitude": -149.9}}
    assert clinic_record("s", anchorage) is None


def test_a_quebec_location_without_a_position_is_kept() -> None:
    record = clinic_record(
        "s",
        {
            "resourceType": "Location",
            "id": "q",
            "name": "Clinique",
            "address": {"city": "Québec", "state": "QC", "postalCode": "G1R 4P5"},
        },
    )
    assert record is not None
    assert record.location is not None and record.location.approximate  # its city's centre
    assert record.address.region.name == "CAPITALE_NATIONALE"
    unknown_city = {"city": "Lac-Perdu", "state": "QC", "postalCode": "G1R 4P5"}
    record = clinic_record(
        "s", {"resourceType": "Location", "id": "q", "name": "C", "address": unknown_city}
    )
    assert record is not None and record.location is None
