"""A Quebec place's time zone: declared, else by position, postal code, city; else Eastern."""

from __future__ import annotations

from typing import Any

import pytest

from sources.fhir.resources import clinic_record, declared_time_zone
from sources.records import GeoPoint
from sources.time_zones import (
    ATLANTIC,
    ATLANTIC_STANDARD,
    EASTERN,
    TIMEZONE_EXTENSION_URL,
    known_zone,
    time_zone_of,
)


@pytest.mark.parametrize(
    ("place", "latitude", "longitude", "zone"),
    [
        ("Cap-aux-Meules", 47.38, -61.86, ATLANTIC),
        ("Havre-Aubert", 47.24, -61.84, ATLANTIC),
        ("Grande-Entrée", 47.56, -61.55, ATLANTIC),
        ("Blanc-Sablon", 51.43, -57.13, ATLANTIC_STANDARD),
        ("Saint-Augustin (Basse-Côte-Nord)", 51.23, -58.65, ATLANTIC_STANDARD),
        ("Harrington Harbour", 50.50, -59.48, ATLANTIC_STANDARD),
        ("Kegaska", 50.19, -61.27, ATLANTIC_STANDARD),
        # East of 63° W but in the Minganie, which keeps Eastern time.
        ("Natashquan", 50.19, -61.82, EASTERN),
        ("Port-Menier, Anticosti", 49.82, -64.35, EASTERN),
        ("Havre-Saint-Pierre", 50.24, -63.60, EASTERN),
        ("Gaspé", 48.83, -64.49, EASTERN),
        ("Montréal", 45.50, -73.57, EASTERN),
        ("Sept-Îles", 50.22, -66.38, EASTERN),
    ],
)
def test_a_position_decides_the_zone(
    place: str, latitude: float, longitude: float, zone: str
) -> None:
    assert time_zone_of(position=GeoPoint(latitude, longitude)) == zone, place


def test_a_position_decides_before_the_postal_code_and_the_city() -> None:
    # G0G covers the whole rural Côte-Nord; the position knows better.
    sept_iles = GeoPoint(50.22, -66.38)
    assert time_zone_of(position=sept_iles, postal_code="G0G 1W0", city="Blanc-Sablon") == EASTERN


@pytest.mark.parametrize(
    ("postal_code", "city", "zone"),
    [
        ("G4T 1B2", None, ATLANTIC),  # the Îles' forward sortation area
        ("g4t1b2", "Montréal", ATLANTIC),
        ("G0G 1W0", "Blanc-Sablon", ATLANTIC_STANDARD),
        ("G0G 2T0", "Saint-Augustin", ATLANTIC_STANDARD),
        (None, "Lourdes-de-Blanc-Sablon", ATLANTIC_STANDARD),
        (None, "  BLANC SABLON ", ATLANTIC_STANDARD),
        (None, "Cap-aux-Meules", ATLANTIC),
        (None, "L'Étang-du-Nord", ATLANTIC),
        # A Saint-Augustin lies in the Lac-Saint-Jean too, in G0W: Eastern.
        ("G0W 1K0", "Saint-Augustin", EASTERN),
        # G0G alone does not tell the Basse-Côte-Nord from the rest of the Côte-Nord.
        ("G0G 1W0", None, EASTERN),
        ("H2X 1Y4", "Cap-aux-Meules", EASTERN),
        (None, "Natashquan", EASTERN),
        (None, None, EASTERN),
    ],
)
def test_without_a_position_the_postal_code_then_the_city_decide(
    postal_code: str | None, city: str | None, zone: str
) -> None:
    assert time_zone_of(postal_code=postal_code, city=city) == zone


def test_a_declared_zone_wins_when_it_is_an_iana_name() -> None:
    montreal = GeoPoint(45.50, -73.57)
    assert time_zone_of(declared="America/Halifax", position=montreal) == ATLANTIC
    assert time_zone_of(declared="America/Toronto", city="Blanc-Sablon") == "America/Toronto"
    # Not a zone: ignored, the place decides.
    for name in ("Atlantic", "America/Nowhere", "../../etc/passwd", "EST+5", "a" * 300):
        assert not known_zone(name)
        assert time_zone_of(declared=name, city="Blanc-Sablon") == ATLANTIC_STANDARD
        assert time_zone_of(declared=name, position=montreal) == EASTERN


def location(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": "L1",
        "name": "Clinique",
        "address": {"city": "Blanc-Sablon", "postalCode": "G0G 1W0"},
        **fields,
    }


def zone_extension(value: object) -> list[dict[str, Any]]:
    return [{"url": TIMEZONE_EXTENSION_URL, "valueCode": value}]


def test_a_fhir_location_gives_its_zone_by_the_extension_else_by_its_place() -> None:
    declared = location(extension=zone_extension("America/Halifax"))
    assert declared_time_zone(declared) == "America/Halifax"
    assert known_zone("America/Halifax")
    assert clinic_record("s", declared).time_zone == ATLANTIC  # type: ignore[union-attr]

    invalid = location(extension=zone_extension("Heure de l'Atlantique"))
    assert declared_time_zone(invalid) == "Heure de l'Atlantique"
    assert clinic_record("s", invalid).time_zone == ATLANTIC_STANDARD  # type: ignore[union-attr]

    for odd in (None, 42, {"code": "America/Halifax"}, ""):
        record = clinic_record("s", location(extension=zone_extension(odd)))
        assert record is not None and record.time_zone == ATLANTIC_STANDARD
    islands = location(
        address={"postalCode": "G4T 1B2"}, position={"latitude": 47.38, "longitude": -61.86}
    )
    assert clinic_record("s", islands).time_zone == ATLANTIC  # type: ignore[union-attr]
    plain = location(address={"city": "Laval", "postalCode": "H7N 1A1"})
    assert clinic_record("s", plain).time_zone == EASTERN  # type: ignore[union-attr]
