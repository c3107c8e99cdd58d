"""Places on a FHIR server: Locations outside Quebec are not served but counted with the
free slots searches met; Quebec Locations without a position are placed at their city's
centre when the table knows it, else served by every search but ``near``.

The server is a small loopback one (:class:`PlacesServer`): one page per search, with
``_id``, ``status``, ``start``, ``schedule``, ``actor``, ``_count`` and ``_offset``
honoured and everything else ignored, as lenient servers do.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sources.base import SourceConfig, SourceContext
from sources.fhir.adapter import FhirSource
from sources.records import ClinicQuery, GeoPoint, ProblemSeverity, Region, SlotQuery
from sources.records import SourceProtocol as Protocol
from sources.timeutil import MONTREAL
from tests.conftest import TEST_FIRST_DAY, serve

DAY = datetime.combine(TEST_FIRST_DAY + timedelta(days=1), time(0), MONTREAL)
WEEK = SlotQuery(starts_after=DAY, starts_before=DAY + timedelta(days=6), limit=100)
RIMOUSKI = GeoPoint(48.45, -68.53)


def _location(lid: str, address: dict[str, Any], position: tuple[float, float] | None) -> Any:
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": lid,
        "name": f"Clinique {lid}",
        "address": address,
    }
    if position is not None:
        resource["position"] = {"latitude": position[0], "longitude": position[1]}
    return resource


LOCATIONS = [
    # A pharmacy in New Jersey, with a position: not served.
    _location("nj", {"city": "Newark", "state": "NJ", "postalCode": "07102"}, (40.73, -74.17)),
    # Quebec, no position, a city the table knows: at Rimouski's centre.
    _location("rim", {"city": "RIMOUSKI", "state": "QC", "postalCode": "G5L 1A1"}, None),
    # Quebec, no position, a city the table does not know: no position at all.
    _location("lost", {"city": "Lac-Perdu", "state": "QC", "postalCode": "H2X 1Y4"}, None),
    # Quebec, with its own position.
    _location("mtl", {"city": "Montréal", "state": "QC", "postalCode": "H2X 1Y4"}, (45.50, -73.57)),
]
SLOTS_PER_LOCATION = {"nj": 3, "rim": 2, "lost": 1, "mtl": 2}


def resources() -> dict[str, list[dict[str, Any]]]:
    """Every resource of the server, by type: one Schedule and physician per Location."""
    schedules, practitioners, slots = [], [], []
    for location in LOCATIONS:
        lid = location["id"]
        practitioners.append(
            {"resourceType": "Practitioner", "id": f"dr-{lid}", "name": [{"family": lid}]}
        )
        schedules.append(
            {
                "resourceType": "Schedule",
                "id": f"sch-{lid}",
                "actor": [
                    {"reference": f"Location/{lid}"},
                    {"reference": f"Practitioner/dr-{lid}"},
                ],
            }
        )
        for n in range(SLOTS_PER_LOCATION[lid]):
            start = DAY + timedelta(hours=9, minutes=30 * n)
            slots.append(
                {
                    "resourceType": "Slot",
                    "id": f"{lid}-{n}",
                    "schedule": {"reference": f"Schedule/sch-{lid}"},
                    "status": "free",
                    "start": start.isoformat(),
                    "end": (start + timedelta(minutes=20)).isoformat(),
                }
            )
    return {
        "Location": LOCATIONS,
        "Schedule": schedules,
        "Practitioner": practitioners,
        "Slot": slots,
        "PractitionerRole": [],
    }


class PlacesServer:
    """A lenient FHIR server over :func:`resources`; see the module docstring."""

    def __init__(self) -> None:
        self.resources = resources()

    async def search(self, request: web.Request) -> web.Response:
        kind = request.match_info["type"]
        params = list((await request.post()).items()) + list(request.query.items())
        found = list(self.resources.get(kind, []))
        for key, value in params:
            found = [r for r in found if _matches(r, str(key), str(value))]
        found.sort(key=lambda r: (r.get("start", ""), r["id"]))
        asked = dict((str(k), str(v)) for k, v in params)
        offset = int(asked.get("_offset", 0))
        page = found[offset : offset + int(asked.get("_count", 1000))]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        if kind == "Slot":  # every Schedule, Location and Practitioner, as includes
            for other in ("Schedule", "Location", "Practitioner"):
                entries += [
                    {"resource": r, "search": {"mode": "include"}} for r in self.resources[other]
                ]
        body = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": entries,
        }
        return web.Response(body=orjson.dumps(body), content_type="application/fhir+json")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/fhir/{type}/_search", self.search)
        app.router.add_route("GET", "/fhir/{type}", self.search)
        return app


def _matches(resource: dict[str, Any], key: str, value: str) -> bool:
    if key == "_id":
        return resource["id"] in value.split(",")
    if key == "status":
        return resource.get("status") == value
    if key == "start":
        start = datetime.fromisoformat(resource["start"])
        bound = datetime.fromisoformat(value[2:])
        return start >= bound if value.startswith("ge") else start < bound
    if key in ("schedule", "actor"):
        refs = resource.get("actor", []) if key == "actor" else [resource.get("schedule", {})]
        return any(r.get("reference") in value.split(",") for r in refs)
    return True  # ignored, as lenient servers do


@pytest.fixture
async def places_server() -> AsyncIterator[TestServer]:
    async with serve(PlacesServer().app()) as server:
        yield server


@pytest.fixture
async def source(places_server: TestServer) -> AsyncIterator[FhirSource]:
    async with aiohttp.ClientSession() as session:
        yield FhirSource(
            SourceConfig(
                id="fhir-places",
                name="FHIR places",
                protocol=Protocol.FHIR_R4,
                url=str(places_server.make_url("/fhir")),
            ),
            SourceContext(session=session, logger=logging.getLogger("passerelle.source.places")),
        )


async def test_places_are_decided_once_for_the_directory_and_every_search(
    source: FhirSource,
) -> None:
    await source.learn()  # probes, then the clinics kept whole
    assert source.directory.locations is not None

    clinics = {c.local_id: c for c in await source.search_clinics(ClinicQuery())}
    assert set(clinics) == {"rim", "lost", "mtl"}
    rim = clinics["rim"]
    assert rim.location is not None and rim.location.approximate
    assert (round(rim.location.latitude, 2), round(rim.location.longitude, 2)) == (48.45, -68.52)
    assert rim.address.region is Region.BAS_SAINT_LAURENT
    assert clinics["lost"].location is None and clinics["lost"].address.region is Region.MONTREAL
    assert clinics["mtl"].location == GeoPoint(45.50, -73.57)

    # `near` finds the clinic placed at its city; every other search the one without.
    near = await source.search_slots(replace(WEEK, near=RIMOUSKI, radius_km=10.0))
    assert {s.clinic_local_id for s in near.slots} == {"rim"}
    assert near.clinics["rim"].location == rim.location
    montreal = await source.search_slots(replace(WEEK, region=Region.MONTREAL))
    assert {s.clinic_local_id for s in montreal.slots} == {"lost", "mtl"}
    # New Jersey's slots are met by a search of every clinic: counted, not served.
    everything = await source.search_slots(WEEK)
    assert {s.clinic_local_id for s in everything.slots} == {"rim", "lost", "mtl"}

    problems = {p.code: p for p in source.problems}
    outside = problems["OUTSIDE_QUEBEC"]
    assert outside.severity is ProblemSeverity.WARNING and outside.count == 1
    assert "at least 3 free slots" in outside.message
    assert outside.samples == ("Location/nj",)
    assert problems["NO_POSITION"].count == 1
    assert problems["APPROXIMATE_POSITION"].count == 1
    assert problems["APPROXIMATE_POSITION"].severity is ProblemSeverity.WARNING


async def test_without_the_directory_searches_count_the_places_they_meet(
    source: FhirSource, caplog: pytest.LogCaptureFixture
) -> None:
    # Never started: no probe, no directory; the searches alone see the places.
    with caplog.at_level(logging.WARNING, logger="passerelle.source.places"):
        result = await source.search_slots(WEEK)
    assert {s.clinic_local_id for s in result.slots} == {"rim", "lost", "mtl"}
    assert result.clinics["rim"].location is not None
    assert result.clinics["rim"].location.approximate
    assert "skipped malformed" not in caplog.text  # outside Quebec is no malformed record
    problems = {p.code: p for p in source.problems}
    assert problems["OUTSIDE_QUEBEC"].count == 1
    assert "at least 3 free slots" in problems["OUTSIDE_QUEBEC"].message
    assert problems["NO_POSITION"].count == 1
    assert problems["APPROXIMATE_POSITION"].count == 1
