"""The FHIR adapter's language filter, pushed to the server as the Schedule actors that
can speak it, against the demo server and against one that will not list its staff.

The slots expected are read from the demo world itself: a slot matches unless the
languages of its clinic and physician (both known in the demo) leave the wanted out.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, time, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from examples import demo_fhir
from examples.world import World, WorldSlot
from sources.base import SourceConfig, SourceContext
from sources.fhir.adapter import FhirSource
from sources.geo import distance_km
from sources.records import GeoPoint, SlotQuery, SourceProtocol
from sources.timeutil import MONTREAL
from tests.conftest import serve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Params = list[tuple[str, str]]


class Recorded:
    """The demo FHIR server, with every search's type and parameters noted; ``refuse``:
    resource types it will not list whole (a search with no criteria: 400, an
    OperationOutcome), as servers that cap or forbid listing do."""

    def __init__(self, world: World, refuse: frozenset[str] = frozenset()) -> None:
        self.searches: list[tuple[str, Params]] = []
        self.app = demo_fhir.build_app(world)
        self.refuse = refuse
        self.app.middlewares.append(self._middleware)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        parts = request.path.split("/")  # /fhir/Slot or /fhir/Slot/_search
        kind = parts[2] if len(parts) > 2 else ""
        params: Params = list(request.query.items())
        if request.method == "POST":
            params += [(k, str(v)) for k, v in (await request.post()).items()]
        self.searches.append((kind, params))
        if kind in self.refuse and {k for k, _ in params} <= {"_count"}:
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "no"}],
            }
            return web.json_response(outcome, status=400)
        return await handler(request)

    def slot_searches(self) -> list[Params]:
        return [p for kind, p in self.searches if kind == "Slot" and ("status", "free") in p]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def started(session: aiohttp.ClientSession, server: TestServer) -> FhirSource:
    source = FhirSource(
        SourceConfig(
            id="fhir-test",
            name="FHIR test",
            protocol=SourceProtocol.FHIR_R4,
            url=str(server.make_url("/fhir")),
        ),
        SourceContext(session=session, logger=logging.getLogger("passerelle.source.fhir-test")),
    )
    await source.learn()  # what the server does, its clinics and its staff
    return source


def window(world: World, **fields: object) -> SlotQuery:
    start = datetime.combine(world.first_day, time(0), MONTREAL)
    return SlotQuery(starts_after=start, starts_before=start + timedelta(days=14), **fields)  # type: ignore[arg-type]


def speaking(world: World, query: SlotQuery, language: str) -> list[WorldSlot]:
    """The free FHIR slots of the window whose clinic or physician speaks ``language``,
    within ``query``'s radius, by (start, id): straight from the world."""
    out = []
    for clinic in world.clinics_for("fhir"):
        if query.near is not None and query.radius_km is not None:
            here = GeoPoint(clinic.latitude, clinic.longitude)
            if distance_km(query.near, here) > query.radius_km:
                continue
        for slot in world.slots_between(clinic.id, query.starts_after, query.starts_before):
            physician = world.physicians_by_id[slot.physician_id]
            if slot.free and language in clinic.languages + physician.languages:
                out.append(slot)
    return sorted(out, key=lambda s: (s.start, s.id))


def rarest_language(world: World) -> str:
    """A language some FHIR physicians speak and no FHIR clinic does."""
    clinics = {code for c in world.clinics_for("fhir") for code in c.languages}
    fhir = {c.id for c in world.clinics_for("fhir")}
    spoken = [
        code
        for p in world.physicians
        if set(p.clinic_ids) & fhir
        for code in p.languages
        if code not in clinics
    ]
    assert spoken, "the demo world has physicians speaking a language no clinic does"
    return min(set(spoken), key=spoken.count)


async def test_a_rare_language_is_sent_as_its_speakers_and_every_match_comes_back(
    session: aiohttp.ClientSession, world: World
) -> None:
    server = Recorded(world)
    language = rarest_language(world)
    async with serve(server.app) as http:
        source = await started(session, http)
        server.searches.clear()
        query = window(world, limit=1000, languages=frozenset({language}))
        result = await source.search_slots(query)

    expected = speaking(world, query, language)
    assert expected
    assert [s.local_id for s in result.slots] == [s.id for s in expected]
    assert result.complete
    (asked,) = server.slot_searches()
    actors = [v for k, v in asked if k == "schedule.actor"]
    assert len(actors) == 1
    # Only the roles of the physicians who speak it (no clinic speaks it).
    refs = actors[0].split(",")
    assert refs and all(r.startswith(("PractitionerRole/", "Practitioner/")) for r in refs)
    speakers = {p.id for p in world.physicians if language in p.languages}
    assert {r.split("/")[1] for r in refs if r.startswith("Practitioner/")} <= speakers


async def test_a_language_within_a_radius_is_sent_within_its_clinics(
    session: aiohttp.ClientSession, world: World
) -> None:
    server = Recorded(world)
    language = rarest_language(world)
    fhir = {c.id: c for c in world.clinics_for("fhir")}
    home = next(
        fhir[cid]
        for p in world.physicians
        if language in p.languages
        for cid in p.clinic_ids
        if cid in fhir
    )
    near = GeoPoint(home.latitude, home.longitude)
    async with serve(server.app) as http:
        source = await started(session, http)
        query = window(world, limit=1000, languages=frozenset({language}), near=near, radius_km=5)
        result = await source.search_slots(query)

    expected = speaking(world, query, language)
    assert expected
    assert [s.local_id for s in result.slots] == [s.id for s in expected]


async def test_a_common_language_is_read_in_small_pages_up_to_the_limit(
    session: aiohttp.ClientSession, world: World
) -> None:
    server = Recorded(world)
    async with serve(server.app) as http:
        source = await started(session, http)
        query = window(world, limit=20, languages=frozenset({"fr"}))
        result = await source.search_slots(query)

    expected = speaking(world, query, "fr")
    ids = [s.local_id for s in result.slots]
    assert len(ids) >= 20
    assert ids == [s.id for s in expected[: len(ids)]]
    for asked in server.slot_searches():
        assert int(dict(asked)["_count"]) <= 100  # not the server's largest page


async def test_a_server_that_will_not_list_its_staff_is_filtered_here_as_before(
    session: aiohttp.ClientSession, world: World
) -> None:
    server = Recorded(world, refuse=frozenset({"Practitioner", "PractitionerRole"}))
    language = rarest_language(world)
    async with serve(server.app) as http:
        source = await started(session, http)
        assert source.directory.staff is None
        server.searches.clear()
        query = window(world, limit=1000, languages=frozenset({language}))
        result = await source.search_slots(query)

    # No actor scope was sent; the slots were read and filtered here, and none is lost.
    assert all("schedule.actor" not in dict(p) for p in server.slot_searches())
    expected = speaking(world, query, language)
    assert [s.local_id for s in result.slots] == [s.id for s in expected]
