"""RestJsonSource against the real demo API (examples/demo_rest/server.py) and hostile upstreams."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from examples.demo_rest import (
    REGION_CODES as DEMO_REGION_CODES,
)
from examples.demo_rest import (
    TYPE_CODES as DEMO_TYPE_CODES,
)
from examples.demo_rest import (
    build_app,
    clinic_api_id,
    physician_api_id,
    slot_api_id,
)
from examples.world import (
    CLINIC_PERMIT_SYSTEM,
    PHYSICIAN_LICENCE_SYSTEM,
    World,
    WorldClinic,
    WorldSlot,
)
from sources.base import SourceConfig, SourceContext
from sources.errors import SourceBadResponse, SourceError, SourceTimeout, SourceUnavailable
from sources.geo import distance_km
from sources.records import (
    AppointmentType,
    ClinicQuery,
    GeoPoint,
    Identifier,
    PhysicianQuery,
    Region,
    SlotQuery,
    SlotResult,
    SourceProtocol,
)
from sources.rest_json.adapter import (
    CODES_BY_TYPE,
    MAX_PAGES,
    REGION_CODES,
    RestJsonSource,
    local_bounds,
)
from sources.rest_json.options import (
    DEFAULT_CLINIC_PERMIT_SYSTEM,
    DEFAULT_PHYSICIAN_LICENCE_SYSTEM,
    RestJsonOptions,
)
from sources.timeutil import MONTREAL
from tests.conftest import GatewayFactory
from tests.ports import free_port

KEY = "cle-de-test"
# The 14 days from here include 1 November 2026, when Montreal goes from -04:00 to -05:00.
FIRST_DAY = date(2026, 10, 26)
MONTREAL_CENTER = GeoPoint(45.5017, -73.5673)
EDT, EST = timedelta(hours=-4), timedelta(hours=-5)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MONTREAL)


WEEK = (local(2026, 10, 27), local(2026, 11, 3))
WEEK_OF_THE_CLOCK = (local(2026, 11, 16), local(2026, 11, 23))  # tests.conftest.TEST_NOW's


@pytest.fixture(scope="module")
def world() -> World:
    return World(scale=0.02, first_day=FIRST_DAY)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def serve(app: web.Application) -> TestServer:
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.fixture
async def demo(world: World) -> AsyncIterator[TestServer]:
    server = await serve(build_app(world, api_key=KEY, rate_limit_rps=None))
    yield server
    await server.close()


def make_source(
    session: aiohttp.ClientSession,
    server: TestServer | str,
    *,
    key: str | None = KEY,
    timeout_s: float = 2.0,
    **options: object,
) -> RestJsonSource:
    url = server if isinstance(server, str) else str(server.make_url("/api/v1"))
    # Small pages, so that a small world still spans many of them.
    options.setdefault("page_size", 100)
    config = SourceConfig(
        id="rdvq",
        name="RDV Québec",
        protocol=SourceProtocol.REST_JSON,
        url=url,
        timeout_s=timeout_s,
        credentials=key,
        options=RestJsonOptions(**options),
    )
    return RestJsonSource(config, SourceContext(session, logging.getLogger("test.rdvq")))


async def request_count(session: aiohttp.ClientSession, server: TestServer) -> int:
    async with session.get(server.make_url("/_stats")) as response:
        body = await response.json()
    return int(body["requests"])


def world_slots(
    world: World,
    after: datetime,
    before: datetime,
    *,
    clinics: set[str] | None = None,
    physicians: set[str] | None = None,
    types: frozenset[AppointmentType] | None = None,
    near: GeoPoint | None = None,
    radius_km: float | None = None,
    region: Region | None = None,
) -> list[WorldSlot]:
    """The free slots the demo API should give, in its order, by the world's own data."""
    found = []
    for clinic in world.clinics_for("rest"):
        if clinics is not None and str(clinic_api_id(clinic.id)) not in clinics:
            continue
        if region is not None and clinic.region is not region:
            continue
        if near is not None and radius_km is not None:
            if distance_km(near, GeoPoint(clinic.latitude, clinic.longitude)) > radius_km:
                continue
        for slot in world.slots_for_clinic(clinic.id):
            if not slot.free or not after <= slot.start <= before:
                continue
            if (
                physicians is not None
                and str(physician_api_id(slot.physician_id)) not in physicians
            ):
                continue
            if types is not None and slot.appointment_type not in types:
                continue
            found.append(slot)
    found.sort(key=lambda s: (s.start, s.id))
    return found


def assert_cut_at(result: SlotResult, limit: int) -> None:
    """A partial answer holds ``limit`` slots, or more when they all start with the
    limit's last one and the answer says that tie group is whole."""
    slots = result.slots
    assert len(slots) >= limit
    if len(slots) > limit:
        assert result.ties_complete
        assert {s.start for s in slots[limit - 1 :]} == {slots[limit - 1].start}


def world_count_asked(world: World, after: datetime, before: datetime) -> int:
    """The free slots the demo API counts for the naive bounds the adapter sends: those
    whose local wall time, in their clinic's zone, is within them."""
    low, high = local_bounds(after, before)
    count = 0
    for clinic in world.clinics_for("rest"):
        zone = ZoneInfo(clinic.time_zone)
        for slot in world.slots_for_clinic(clinic.id):
            wall = slot.start.astimezone(zone).replace(tzinfo=None)
            count += slot.free and low <= wall <= high
    return count


# -- the real demo API -----------------------------------------------------------------


def test_codes_and_identifier_systems_agree_with_the_demo() -> None:
    assert REGION_CODES == DEMO_REGION_CODES
    assert CODES_BY_TYPE == DEMO_TYPE_CODES
    assert DEFAULT_CLINIC_PERMIT_SYSTEM == CLINIC_PERMIT_SYSTEM
    assert DEFAULT_PHYSICIAN_LICENCE_SYSTEM == PHYSICIAN_LICENCE_SYSTEM


async def test_slots_are_free_sorted_in_window_and_equal_to_the_world(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    source = make_source(session, demo)
    after, before = local(2026, 10, 28, 9), local(2026, 10, 30, 17)
    result = await source.search_slots(SlotQuery(after, before, limit=40))

    expected = world_slots(world, after, before)
    assert_cut_at(result, 40)
    assert result.complete is False
    # The upstream's own count, of the naive bounds widened to every zone's wall time.
    assert result.total == world_count_asked(world, after, before) >= len(expected)
    assert [s.local_id for s in result.slots] == [
        slot_api_id(s.id) for s in expected[: len(result.slots)]
    ]
    by_id = {slot_api_id(s.id): s for s in expected}
    starts = [s.start for s in result.slots]
    assert starts == sorted(starts)
    for slot in result.slots:
        truth = by_id[slot.local_id]
        assert truth.free
        assert after <= slot.start <= before
        assert (slot.start, slot.end) == (truth.start, truth.end)
        assert slot.start.utcoffset() == truth.start.utcoffset() == EDT
        assert slot.appointment_type is truth.appointment_type
        assert slot.clinic_local_id == str(clinic_api_id(truth.clinic_id))
        assert slot.physician_local_id == str(physician_api_id(truth.physician_id))
        assert slot.source_id == "rdvq"
        assert slot.booking_url is not None and slot.booking_url.endswith(slot.local_id)
        assert slot.booking_phone == world.clinics_by_id[truth.clinic_id].phone

    assert set(result.clinics) == {s.clinic_local_id for s in result.slots}
    for local_id, record in result.clinics.items():
        assert_clinic_matches(record, world.clinics_by_id[f"C{int(local_id) - 1000:05d}"])
    assert set(result.physicians) == {s.physician_local_id for s in result.slots}
    for local_id, physician in result.physicians.items():
        truth_p = world.physicians_by_id[f"P{int(local_id) - 50000:05d}"]
        assert physician.display_name == truth_p.display_name
        assert physician.languages == truth_p.languages
        assert physician.identifiers == (Identifier(PHYSICIAN_LICENCE_SYSTEM, truth_p.licence),)
        assert physician.accepting_new_patients is truth_p.accepting_new_patients
        assert set(physician.clinic_local_ids) <= {
            str(clinic_api_id(c)) for c in truth_p.clinic_ids
        }
        assert local_id in {s.physician_local_id for s in result.slots}


def assert_clinic_matches(record: Any, truth: WorldClinic) -> None:
    assert record.local_id == str(clinic_api_id(truth.id))
    assert record.name == truth.name
    assert record.address.city == truth.city
    assert record.address.line == truth.line
    assert record.address.postal_code == truth.postal_code
    assert record.address.region is truth.region
    assert record.location == GeoPoint(truth.latitude, truth.longitude)
    assert record.phone == truth.phone
    assert record.languages == truth.languages
    assert record.identifiers == (Identifier(CLINIC_PERMIT_SYSTEM, truth.permit),)


async def test_offsets_follow_the_autumn_clock_change(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    after, before = local(2026, 10, 30), local(2026, 11, 4)
    result = await make_source(session, demo).search_slots(SlotQuery(after, before, limit=5000))
    expected = world_slots(world, after, before)
    assert result.complete is True
    assert [s.local_id for s in result.slots] == [slot_api_id(s.id) for s in expected]
    offsets = {s.start.date() < date(2026, 11, 1): s.start.utcoffset() for s in result.slots}
    assert offsets == {True: EDT, False: EST}
    for slot, truth in zip(result.slots, expected, strict=True):
        assert slot.start.astimezone(UTC) == truth.start.astimezone(UTC)


async def test_paging_has_no_duplicates_nor_gaps(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    after, before = WEEK
    expected = [slot_api_id(s.id) for s in world_slots(world, after, before)]
    assert len(expected) > 1200
    before_calls = await request_count(session, demo)
    result = await make_source(session, demo).search_slots(SlotQuery(after, before, limit=1200))
    assert [s.local_id for s in result.slots] == expected[:1200]
    assert result.complete is False
    assert result.total == len(expected)
    # 12 slot pages of 100, then one clinic batch and one physician batch (paged by 100)
    physician_pages = -(-len(result.physicians) // 100)
    assert await request_count(session, demo) - before_calls == 12 + 1 + physician_pages

    everything = await make_source(session, demo).search_slots(
        SlotQuery(after, before, limit=100_000)
    )
    assert [s.local_id for s in everything.slots] == expected
    assert everything.complete is True


async def test_reads_full_pages_of_500_slots(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    expected = [slot_api_id(s.id) for s in world_slots(world, *WEEK)]
    source = make_source(session, demo, page_size=500)
    result = await source.search_slots(SlotQuery(*WEEK, limit=1000))
    assert [s.local_id for s in result.slots] == expected[:1000]


async def test_window_bounds_are_inclusive(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    free = world_slots(world, *WEEK)
    first, last = free[10].start, free[60].start
    result = await make_source(session, demo).search_slots(SlotQuery(first, last, limit=5000))
    assert [s.local_id for s in result.slots] == [
        slot_api_id(s.id) for s in world_slots(world, first, last)
    ]
    assert result.slots[0].start == first and result.slots[-1].start == last


@pytest.mark.parametrize(
    "case", ["clinics", "physicians", "types", "near", "region", "everything", "unknown_ids"]
)
async def test_slot_filters_are_honoured(
    case: str, world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    rest = world.clinics_for("rest")
    after, before = WEEK
    query: dict[str, Any] = {}
    if case == "clinics":
        query["clinics"] = {str(clinic_api_id(c.id)) for c in rest[:3]}
    elif case == "physicians":
        ids = {s.physician_id for s in world.slots_for_clinic(rest[1].id)}
        query["physicians"] = {str(physician_api_id(p)) for p in sorted(ids)[:2]}
    elif case == "types":
        query["types"] = frozenset({AppointmentType.ROUTINE, AppointmentType.WALK_IN})
    elif case == "near":
        query["near"], query["radius_km"] = MONTREAL_CENTER, 12.0
    elif case == "region":
        query["region"] = Region.LAVAL
    elif case == "everything":
        query = {
            "clinics": {str(clinic_api_id(c.id)) for c in rest},
            "types": frozenset({AppointmentType.FOLLOW_UP}),
            "near": MONTREAL_CENTER,
            "radius_km": 30.0,
            "region": Region.MONTREAL,
        }
    expected = world_slots(world, after, before, **query)
    slot_query = SlotQuery(
        after,
        before,
        limit=5000,
        clinic_local_ids=tuple(query["clinics"]) if "clinics" in query else None,
        physician_local_ids=tuple(query["physicians"]) if "physicians" in query else None,
        appointment_types=query.get("types"),
        near=query.get("near"),
        radius_km=query.get("radius_km"),
        region=query.get("region"),
    )
    if case == "unknown_ids":
        slot_query = SlotQuery(after, before, limit=50, clinic_local_ids=("C00001", "abc"))
        expected = []
    result = await make_source(session, demo).search_slots(slot_query)
    assert [s.local_id for s in result.slots] == [slot_api_id(s.id) for s in expected]
    assert result.complete is True
    if case != "unknown_ids":
        assert expected, "the case must select something to be meaningful"
        assert len(expected) < len(world_slots(world, after, before))


async def test_clinic_search_pushes_filters_down_and_matches_the_world(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    source = make_source(session, demo)
    rest = world.clinics_for("rest")
    every = await source.search_clinics(ClinicQuery())
    assert len(every) == len(rest)
    for record, truth in zip(every, sorted(rest, key=lambda c: c.id), strict=True):
        assert_clinic_matches(record, truth)

    def ids(records: list[Any]) -> set[str]:
        return {r.local_id for r in records}

    def api_ids(clinics: list[WorldClinic]) -> set[str]:
        return {str(clinic_api_id(c.id)) for c in clinics}

    near = await source.search_clinics(ClinicQuery(near=MONTREAL_CENTER, radius_km=10))
    assert ids(near) == api_ids(
        [c for c in rest if distance_km(MONTREAL_CENTER, GeoPoint(c.latitude, c.longitude)) <= 10]
    )
    assert near and len(near) < len(rest)
    laval = await source.search_clinics(ClinicQuery(region=Region.LAVAL))
    assert ids(laval) == api_ids([c for c in rest if c.region is Region.LAVAL])
    by_postal = await source.search_clinics(ClinicQuery(postal_codes=("h7",)))
    assert ids(by_postal) == ids(laval)
    by_name = await source.search_clinics(ClinicQuery(name_contains="MONTREAL"))
    assert ids(by_name) == api_ids([c for c in rest if "Montréal" in c.name])
    assert by_name
    two = rest[:2]
    by_ids = await source.search_clinics(
        ClinicQuery(local_ids=(*sorted(api_ids(two)), "not-an-id"))
    )
    assert ids(by_ids) == api_ids(two)
    by_permit = await source.search_clinics(
        ClinicQuery(
            identifiers=(
                Identifier(CLINIC_PERMIT_SYSTEM, rest[3].permit),
                Identifier("urn:other", rest[4].permit),
            )
        )
    )
    assert ids(by_permit) == api_ids([rest[3]])


async def test_clinic_search_that_cannot_match_asks_nothing(
    session: aiohttp.ClientSession, demo: TestServer
) -> None:
    source = make_source(session, demo)
    before = await request_count(session, demo)
    assert await source.search_clinics(ClinicQuery(local_ids=())) == []
    assert await source.search_clinics(ClinicQuery(identifiers=(Identifier("urn:x", "1"),))) == []
    assert await source.get_physicians(PhysicianQuery()) == []
    assert await request_count(session, demo) == before


async def test_long_id_lists_are_batched_or_checked_locally(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    source = make_source(session, demo)
    real = [str(clinic_api_id(c.id)) for c in world.clinics_for("rest")]
    # About 8,300 characters of ids: two calls of at most 5,000 characters each.
    many = (*real, *(str(n) for n in range(900_000, 901_200 - len(real))))
    before = await request_count(session, demo)
    found = await source.search_clinics(ClinicQuery(local_ids=many))
    assert {c.local_id for c in found} == set(real)
    assert await request_count(session, demo) - before == 2

    # Over the API's 1,000 values, the clinic filter is applied here instead.
    too_many = (*real[:2], *(str(n) for n in range(900_000, 901_500)))
    result = await source.search_slots(SlotQuery(*WEEK, limit=30, clinic_local_ids=too_many))
    expected = world_slots(world, *WEEK, clinics=set(real[:2]))
    assert_cut_at(result, 30)
    assert [s.local_id for s in result.slots] == [
        slot_api_id(s.id) for s in expected[: len(result.slots)]
    ]


async def test_listings_follow_pages(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    one_page = await make_source(session, demo).search_clinics(ClinicQuery())
    before = await request_count(session, demo)
    paged = await make_source(session, demo, page_size=5).search_clinics(ClinicQuery())
    assert paged == one_page
    assert await request_count(session, demo) - before == -(-len(one_page) // 5)


async def test_physicians_by_id_identifier_or_clinic(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    source = make_source(session, demo, page_size=7)
    rest = world.clinics_for("rest")
    clinic = rest[0]
    at_clinic = {str(physician_api_id(p.id)) for p in world.physicians_by_clinic[clinic.id]}
    assert len(at_clinic) > 7  # more than one page
    found = await source.get_physicians(
        PhysicianQuery(clinic_local_ids=(str(clinic_api_id(clinic.id)),))
    )
    assert {p.local_id for p in found} == at_clinic
    assert all(str(clinic_api_id(clinic.id)) in p.clinic_local_ids for p in found)

    other = world.physicians_by_clinic[rest[1].id][0]
    third = world.physicians_by_clinic[rest[2].id][0]
    union = await source.get_physicians(
        PhysicianQuery(
            local_ids=(str(physician_api_id(other.id)), "999999999"),
            identifiers=(
                Identifier(PHYSICIAN_LICENCE_SYSTEM, third.licence),
                Identifier("urn:other", other.licence),
            ),
            clinic_local_ids=(str(clinic_api_id(clinic.id)),),
        )
    )
    assert {p.local_id for p in union} == at_clinic | {
        str(physician_api_id(other.id)),
        str(physician_api_id(third.id)),
    }
    assert len(union) == len({p.local_id for p in union})
    record = next(p for p in union if p.local_id == str(physician_api_id(third.id)))
    assert record.display_name == third.display_name
    assert record.identifiers == (Identifier(PHYSICIAN_LICENCE_SYSTEM, third.licence),)


# -- authentication and rate limit -------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_missing_or_wrong_key_is_unavailable(
    key: str | None, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    source = make_source(session, demo, key=key)
    with pytest.raises(SourceUnavailable, match="401"):
        await source.search_slots(SlotQuery(*WEEK, limit=10))
    with pytest.raises(SourceUnavailable, match="401"):
        await source.search_clinics(ClinicQuery())


async def test_hammering_gets_429_and_unavailable(
    world: World, session: aiohttp.ClientSession
) -> None:
    server = await serve(build_app(world, api_key=KEY, rate_limit_rps=0.01, rate_limit_burst=2))
    try:
        source = make_source(session, server)
        await source.search_clinics(ClinicQuery())
        await source.search_clinics(ClinicQuery())
        with pytest.raises(SourceUnavailable, match="429"):
            await source.search_clinics(ClinicQuery())
    finally:
        await server.close()


async def test_unreachable_upstream_is_unavailable(session: aiohttp.ClientSession) -> None:
    source = make_source(session, f"http://127.0.0.1:{free_port()}/api/v1")
    with pytest.raises(SourceUnavailable):
        await source.search_slots(SlotQuery(*WEEK, limit=10))


# -- hostile upstreams -------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLINIC = {
    "id": 1001,
    "nom": "Clinique Test",
    "adresse": {"rue": "1 rue Principale", "ville": "Montréal", "code_postal": "H2X 1Y4"},
    "lat": 45.51,
    "lng": -73.57,
    "telephone": "+1-514-555-0000",
    "langues": ["fr"],
    "no_permis": "12345-0001",
}
PHYSICIAN = {"id": 50001, "titre": "Dr", "prenom": "Marie", "nom": "Roy", "cliniques": [1001]}


def slot(ident: str, debut: str, fin: str, **changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "id": ident,
        "debut": debut,
        "fin": fin,
        "clinique_id": 1001,
        "medecin_id": 50001,
        "type_rdv": "regulier",
        "statut": "libre",
        "lien_reservation": f"https://rdv.example.org/{ident}",
        "telephone_reservation": "+1-514-555-0000",
    }
    item.update(changes)
    return item


def envelope(items: list[Any], page: int = 1, pages: int = 1, total: int | None = None) -> Any:
    return {
        "resultats": items,
        "page": page,
        "pages": pages,
        "limite": 100,
        "total": len(items) if total is None else total,
    }


def upstream(
    slots: Handler, clinics: list[Any] | None = None, physicians: list[Any] | None = None
) -> web.Application:
    async def clinics_view(request: web.Request) -> web.Response:
        return web.json_response(envelope([CLINIC] if clinics is None else clinics))

    async def physicians_view(request: web.Request) -> web.Response:
        return web.json_response(envelope([PHYSICIAN] if physicians is None else physicians))

    app = web.Application()
    app.router.add_get("/api/v1/disponibilites", slots)
    app.router.add_get("/api/v1/cliniques", clinics_view)
    app.router.add_get("/api/v1/medecins", physicians_view)
    return app


def fixed(body: bytes, status: int = 200, content_type: str = "application/json") -> Handler:
    async def view(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, content_type=content_type)

    return view


def as_json(payload: Any) -> Handler:
    async def view(request: web.Request) -> web.Response:
        return web.json_response(payload)

    return view


async def truncated(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 10_000
    await response.prepare(request)
    await response.write(b'{"resultats": [')
    assert request.transport is not None
    request.transport.close()
    return response


async def hang_up(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.json_response(envelope([]))


HOSTILE: dict[str, tuple[Handler, type[SourceError]]] = {
    "garbage JSON": (fixed(b'{"resultats": [{"id": '), SourceBadResponse),
    "not JSON": (fixed(b"rendez-vous: aucun", content_type="text/plain"), SourceBadResponse),
    "HTML page": (
        fixed(b"<html><body>Maintenance</body></html>", 200, "text/html"),
        SourceBadResponse,
    ),
    "JSON list": (as_json([]), SourceBadResponse),
    "JSON string": (as_json("resultats"), SourceBadResponse),
    "wrong envelope": (as_json({"data": [], "page": 1}), SourceBadResponse),
    "resultats null": (as_json({"resultats": None}), SourceBadResponse),
    "resultats dict": (as_json({"resultats": {"0": {}}}), SourceBadResponse),
    "HTTP 500": (fixed(b"<h1>Internal Server Error</h1>", 500, "text/html"), SourceUnavailable),
    "HTTP 503": (fixed(b"", 503), SourceUnavailable),
    "HTTP 404": (fixed(b'{"erreur": "introuvable"}', 404), SourceBadResponse),
    "HTTP 400": (fixed(b'{"erreur": "parametre"}', 400), SourceBadResponse),
    "truncated body": (truncated, SourceBadResponse),
    "hang-up": (hang_up, SourceUnavailable),
    "slow": (slow, SourceTimeout),
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_answer_raises_the_right_source_error(
    name: str, session: aiohttp.ClientSession
) -> None:
    handler, error = HOSTILE[name]
    server = await serve(upstream(handler))
    try:
        source = make_source(session, server, timeout_s=0.3)
        with pytest.raises(error) as caught:
            await source.search_slots(SlotQuery(*WEEK, limit=10))
        assert type(caught.value) is error
        assert caught.value.source_id == "rdvq"
    finally:
        await server.close()


async def test_same_time_slots_are_distinct_records_and_one_slot_with_every_seat_in_the_api(
    session: aiohttp.ClientSession, gateway_for: GatewayFactory
) -> None:
    # Two free slots of one clinic, physician and type at one time are two seats: the
    # adapter returns both, by id; the API cannot tell them apart and serves one slot
    # with both seats, the first one's booking link, and says so in a warning.
    same = ("2026-11-17T09:00:00", "2026-11-17T09:15:00")  # the day after the pinned clock
    server = await serve(upstream(as_json(envelope([slot("7001", *same), slot("7002", *same)]))))
    try:
        source = make_source(session, server)
        result = await source.search_slots(SlotQuery(*WEEK_OF_THE_CLOCK, limit=10))
        assert [(s.local_id, s.start) for s in result.slots] == [
            ("7001", local(2026, 11, 17, 9)),
            ("7002", local(2026, 11, 17, 9)),
        ]
        definition = SourceConfig(
            id="rdvq",
            name="RDV Québec",
            protocol=SourceProtocol.REST_JSON,
            url=str(server.make_url("/api/v1")),
        )
        async with gateway_for(definition) as gateway:
            answer = await gateway.query(
                "{ slots(filter: {}, first: 10) { totalCount edges { node { capacity"
                " bookingUrl } } } }"
            )
            # Asked after: the source's status and problems as that search left them.
            after = await gateway.query(
                "{ sources { id status problems { code severity count } } }"
            )
    finally:
        await server.close()
    assert "errors" not in answer, answer
    assert answer["data"]["slots"]["totalCount"] == 1
    assert [e["node"] for e in answer["data"]["slots"]["edges"]] == [
        {"capacity": 2, "bookingUrl": "https://rdv.example.org/7001"}
    ]
    (view,) = after["data"]["sources"]
    assert view["status"] == "UP"
    assert {"code": "SAME_TIME_SLOTS", "severity": "WARNING", "count": 1} in view["problems"]


@pytest.mark.parametrize("name", ["garbage JSON", "wrong envelope", "HTTP 500", "slow"])
async def test_hostile_clinic_listing_raises_the_right_source_error(
    name: str, session: aiohttp.ClientSession
) -> None:
    handler, error = HOSTILE[name]
    app = web.Application()
    app.router.add_get("/api/v1/cliniques", handler)
    app.router.add_get("/api/v1/medecins", handler)
    server = await serve(app)
    try:
        source = make_source(session, server, timeout_s=0.3)
        with pytest.raises(error):
            await source.search_clinics(ClinicQuery())
        with pytest.raises(error):
            await source.get_physicians(PhysicianQuery(local_ids=("1",)))
    finally:
        await server.close()


async def test_bad_items_are_skipped_and_counted_never_logged(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    day = "2026-10-28T"
    items: list[Any] = [
        slot("ok-1", day + "08:00:00", day + "08:20:00"),
        slot("busy", day + "08:00:00", day + "08:20:00", statut="reserve"),
        slot("no-status", day + "08:00:00", day + "08:20:00", statut=None),
        42,
        None,
        ["a", "list"],
        {**slot("no-start", day + "08:00:00", day + "08:20:00"), "debut": None},
        slot("bad-start", "le 28 octobre", day + "08:20:00"),
        {**slot("numeric-start", day + "08:00:00", day + "08:20:00"), "debut": 1_700_000_000},
        slot("backwards", day + "09:00:00", day + "08:40:00"),
        slot("empty", day + "09:00:00", day + "09:00:00"),
        slot("type", day + "09:00:00", day + "09:20:00", type_rdv="chirurgie"),
        slot("type-null", day + "09:00:00", day + "09:20:00", type_rdv=None),
        slot("clinic-null", day + "09:00:00", day + "09:20:00", clinique_id=None),
        slot("clinic-dict", day + "09:00:00", day + "09:20:00", clinique_id={"id": 1}),
        slot("ok-2", day + "10:00:00", day + "10:20:00", clinique_id="1001", medecin_id=None),
        slot(
            "ok-3",
            day + "11:00:00",
            day + "11:20:00",
            lien_reservation="javascript:alert(1)",
            medecin_id="50099",
            telephone_reservation=5145550000,
        ),
        slot("out-of-window", "2026-12-25T10:00:00", "2026-12-25T10:20:00"),
        {**slot("ok-4", day + "12:00:00", day + "12:20:00"), "id": 7, "extra": [1, 2]},
    ]
    server = await serve(upstream(as_json(envelope(items, total="19"))))  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.WARNING, logger="test.rdvq"):
            result = await make_source(session, server).search_slots(SlotQuery(*WEEK, limit=50))
    finally:
        await server.close()
    assert [s.local_id for s in result.slots] == ["ok-1", "ok-2", "ok-3", "7"]
    assert result.complete is True
    assert result.total == 19
    ok2, ok3 = result.slots[1], result.slots[2]
    assert ok2.clinic_local_id == "1001" and ok2.physician_local_id is None
    assert ok3.booking_url is None and ok3.booking_phone is None
    # physician 50099 is unknown to the upstream: the slot stays, without physician
    assert ok3.physician_local_id is None
    assert set(result.physicians) == {"50001"}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "skipped 12 item(s)" in warnings[0]
    assert "3 not an object" in warnings[0] and "2 unknown appointment type" in warnings[0]
    assert "+1-514" not in warnings[0] and "ok-1" not in warnings[0]


async def test_tolerates_strings_nulls_and_lists_in_clinics(
    session: aiohttp.ClientSession,
) -> None:
    clinics: list[Any] = [
        {"id": "1001", "nom": "Clinique A", "adresse": [], "lat": "45.5", "lng": "-73.6"},
        {"id": 1002, "nom": "Clinique B", "adresse": None, "lat": None, "lng": None},
        {"id": 1003, "nom": "Clinique C", "adresse": {"code_postal": "h7n2b3"}, "langues": "fr,en"},
        {"id": 1004, "nom": None, "adresse": {"code_postal": "H2X 1Y4"}},
        {"id": True, "nom": "Booléenne", "adresse": {"code_postal": "H2X 1Y4"}},
    ]
    day = "2026-10-28T"
    items = [
        slot("a", day + "08:00:00", day + "08:20:00", clinique_id=1001),
        slot("b", day + "08:00:00", day + "08:20:00", clinique_id=1002),
        slot("c", day + "08:30:00", day + "08:50:00", clinique_id=1003),
    ]
    server = await serve(upstream(as_json(envelope(items)), clinics=clinics))
    try:
        source = make_source(session, server)
        result = await source.search_slots(SlotQuery(*WEEK, limit=50))
        listed = await source.search_clinics(ClinicQuery())
    finally:
        await server.close()
    # clinic 1002 has neither postal code nor position: no region, so it and its slot go
    assert [s.local_id for s in result.slots] == ["a", "c"]
    assert set(result.clinics) == {"1001", "1003"}
    a, c = result.clinics["1001"], result.clinics["1003"]
    assert a.address.region is Region.MONTREAL and a.location == GeoPoint(45.5, -73.6)
    assert a.address.city == "" and a.address.postal_code is None
    assert c.address.region is Region.LAVAL and c.address.postal_code == "H7N 2B3"
    assert c.languages == ("fr", "en")
    assert [r.local_id for r in listed] == ["1001", "1003"]


async def test_naive_time_in_the_repeated_hour_is_its_first_occurrence(
    session: aiohttp.ClientSession,
) -> None:
    items = [
        slot("first", "2026-11-01T01:30:00", "2026-11-01T01:45:00"),
        # ends "01:05" after starting "01:50": only the second 01:05 makes sense
        slot("across", "2026-11-01T01:50:00", "2026-11-01T01:05:00"),
        slot("after", "2026-11-01T09:00:00", "2026-11-01T09:20:00"),
    ]
    server = await serve(upstream(as_json(envelope(items))))
    try:
        result = await make_source(session, server).search_slots(
            SlotQuery(local(2026, 11, 1), local(2026, 11, 2), limit=10)
        )
    finally:
        await server.close()
    first, across, after = result.slots
    # Compared in UTC: Python never finds a time of the repeated hour equal to one in
    # another zone (PEP 495), even the same instant.
    assert first.start.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert first.start.utcoffset() == EDT and first.end.utcoffset() == EDT
    assert across.start.astimezone(UTC) == datetime(2026, 11, 1, 5, 50, tzinfo=UTC)
    assert across.end.astimezone(UTC) == datetime(2026, 11, 1, 6, 5, tzinfo=UTC)
    assert after.start.utcoffset() == EST


async def test_huge_page_count_is_capped(session: aiohttp.ClientSession) -> None:
    calls = 0

    async def endless(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        page = int(request.query["page"])
        item = slot(f"s{page:04d}", "2026-10-28T08:00:00", "2026-10-28T08:20:00")
        return web.json_response(envelope([item], page=page, pages=10**12, total=10**12))

    server = await serve(upstream(endless))
    try:
        result = await make_source(session, server).search_slots(SlotQuery(*WEEK, limit=1000))
    finally:
        await server.close()
    assert calls == MAX_PAGES
    assert len(result.slots) == MAX_PAGES
    assert result.complete is False
    assert result.total == 2**31 - 1  # an upstream's count past GraphQL's Int, capped


@pytest.mark.parametrize("reports_page", [True, False])
async def test_page_that_does_not_advance_stops_paging(
    reports_page: bool, session: aiohttp.ClientSession
) -> None:
    calls = 0

    async def stuck(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        items = [
            slot("s1", "2026-10-28T08:00:00", "2026-10-28T08:20:00"),
            slot("s2", "2026-10-28T09:00:00", "2026-10-28T09:20:00"),
        ]
        body = envelope(items, page=1, pages=40, total=80)
        if not reports_page:
            del body["page"]
        return web.json_response(body)

    server = await serve(upstream(stuck))
    try:
        result = await make_source(session, server).search_slots(SlotQuery(*WEEK, limit=10))
    finally:
        await server.close()
    assert calls == 2
    assert [s.local_id for s in result.slots] == ["s1", "s2"]
    assert result.complete is False


async def test_empty_page_before_the_announced_last_stops_paging(
    session: aiohttp.ClientSession,
) -> None:
    async def hollow(request: web.Request) -> web.Response:
        return web.json_response(envelope([], page=int(request.query["page"]), pages=9))

    server = await serve(upstream(hollow))
    try:
        result = await make_source(session, server).search_slots(SlotQuery(*WEEK, limit=10))
    finally:
        await server.close()
    assert result.slots == () and result.complete is False


async def test_page_without_count_fields_ends_on_a_short_page(
    session: aiohttp.ClientSession,
) -> None:
    async def bare(request: web.Request) -> web.Response:
        return web.json_response(
            {"resultats": [slot("only", "2026-10-28T08:00:00", "2026-10-28T08:20:00")]}
        )

    server = await serve(upstream(bare))
    try:
        result = await make_source(session, server).search_slots(SlotQuery(*WEEK, limit=10))
    finally:
        await server.close()
    assert [s.local_id for s in result.slots] == ["only"]
    assert result.complete is True and result.total is None


async def test_slots_of_clinics_the_upstream_cannot_find_are_replaced_by_later_pages(
    session: aiohttp.ClientSession,
) -> None:
    """Dropping slots must not leave fewer than asked while pages remain."""

    async def pages(request: web.Request) -> web.Response:
        page = int(request.query["page"])
        clinic = 1999 if page == 1 else 1001  # 1999 is unknown to /cliniques
        items = [
            slot(
                f"p{page}-{i}",
                f"2026-10-28T{8 + page}:{10 * i:02d}:00",
                f"2026-10-28T{8 + page}:{10 * i + 5:02d}:00",
                clinique_id=clinic,
            )
            for i in range(int(request.query["limite"]))
        ]
        return web.json_response(envelope(items, page=page, pages=3, total=15))

    server = await serve(upstream(pages))
    try:
        result = await make_source(session, server).search_slots(SlotQuery(*WEEK, limit=5))
    finally:
        await server.close()
    assert [s.local_id for s in result.slots] == [f"p2-{i}" for i in range(5)]
    assert result.complete is False
    assert set(result.clinics) == {"1001"}


# -- bounds pushed down ------------------------------------------------------------------


def bounds(after: datetime, before: datetime) -> tuple[str, str]:
    low, high = local_bounds(after, before)
    return low.isoformat(timespec="seconds"), high.isoformat(timespec="seconds")


def test_bounds_are_sent_as_local_wall_time_of_every_zone_never_narrower() -> None:
    # 13:00 UTC in November: 08:00 in Montreal, 09:00 in the Îles and in Blanc-Sablon.
    winter = datetime(2026, 11, 26, 13, tzinfo=UTC)
    assert bounds(winter, winter) == ("2026-11-26T08:00:00", "2026-11-26T09:00:00")
    # 12:00 UTC in July: 08:00 in Montreal and Blanc-Sablon (AST all year), 09:00 in the Îles.
    summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert bounds(summer, summer) == ("2026-07-01T08:00:00", "2026-07-01T09:00:00")
    # 06:30 UTC on 1 November is the second 01:30 in Montreal; read naive it would be the
    # first (05:30 UTC), so Montreal's upper bound moves an hour later: 02:30, which is
    # also 06:30 UTC's wall time in the Îles (back on AST since 05:00 UTC) and Blanc-Sablon.
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert bounds(second, second) == ("2026-11-01T01:30:00", "2026-11-01T02:30:00")
    # An upper bound within a second rounds up, in the easternmost zone.
    after = local(2026, 11, 2, 8, 0)
    assert bounds(after, local(2026, 11, 2, 9, 0) + timedelta(microseconds=5)) == (
        "2026-11-02T08:00:00",
        "2026-11-02T10:00:01",
    )
