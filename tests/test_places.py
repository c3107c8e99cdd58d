"""Places end to end: a clinic placed at its city through GraphQL, found by ``near``.

The gateway runs on a loopback port over the small FHIR server of
``tests/sources/fhir/test_places.py``: a Location in New Jersey, one in Rimouski without
a position, one in a city the table does not know, one in Montreal with its position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sources.base import SourceConfig
from sources.records import SourceProtocol
from tests.conftest import serve
from tests.sources.fhir.test_places import PlacesServer

if TYPE_CHECKING:
    from tests.conftest import GatewayFactory

QUERY = """
query Places($near: GeoPointInput!) {
  near: slots(filter: {near: $near, radiusKm: 10}, first: 10) {
    totalCount
    edges { node { distanceKm clinic {
      name address { city region } location { latitude longitude approximate }
    } } }
  }
  montreal: slots(filter: {region: MONTREAL}, first: 10) {
    edges { node { clinic { name location { approximate } } } }
  }
  clinics(first: 10) { edges { node { name location { approximate } } } }
  sources { id problems { code severity count } }
}
"""


async def test_a_clinic_placed_at_its_city_is_found_near_it_and_says_so(
    gateway_for: GatewayFactory,
) -> None:
    async with serve(PlacesServer().app()) as server:
        definition = SourceConfig(
            id="fhir-places",
            name="FHIR places",
            protocol=SourceProtocol.FHIR_R4,
            url=str(server.make_url("/fhir")),
        )
        async with gateway_for(definition) as gateway:
            near = {"latitude": 48.45, "longitude": -68.53}
            answer = await gateway.query(QUERY, {"near": near})

    assert "errors" not in answer, answer
    data = answer["data"]
    near = data["near"]
    assert near["totalCount"] == 2  # Rimouski's two slots
    for edge in near["edges"]:
        node = edge["node"]
        clinic = node["clinic"]
        assert clinic["name"] == "Clinique rim"
        assert clinic["address"] == {"city": "RIMOUSKI", "region": "BAS_SAINT_LAURENT"}
        assert clinic["location"]["approximate"] is True
        assert round(clinic["location"]["latitude"], 2) == 48.45
        assert 0 <= node["distanceKm"] < 2
    montreal = {e["node"]["clinic"]["name"]: e["node"]["clinic"] for e in data["montreal"]["edges"]}
    assert montreal["Clinique mtl"]["location"] == {"approximate": False}
    assert montreal["Clinique lost"]["location"] is None  # served, but never by `near`
    names = {e["node"]["name"] for e in data["clinics"]["edges"]}
    assert names == {"Clinique rim", "Clinique lost", "Clinique mtl"}  # New Jersey's is not
    [source] = data["sources"]
    problems = {p["code"]: p for p in source["problems"]}
    assert problems["OUTSIDE_QUEBEC"]["count"] == 1
    assert problems["NO_POSITION"]["count"] == 1
    assert problems["APPROXIMATE_POSITION"] == {
        "code": "APPROXIMATE_POSITION",
        "severity": "WARNING",
        "count": 1,
    }
