"""The FHIR R4 adapter against the demo server, and against hostile servers written inline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, time, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import sources.fhir.adapter
from examples.world import CLINIC_PERMIT_SYSTEM, PHYSICIAN_LICENCE_SYSTEM, World, WorldSlot
from sources.base import SourceConfig, SourceContext
from sources.errors import SourceBadResponse, SourceTimeout, SourceUnavailable
from sources.fhir.adapter import FhirSource
from sources.fhir.resources import (
    APPOINTMENT_TYPE_SYSTEM,
    BOOKING_DEEP_LINK_URL,
    BOOKING_PHONE_URL,
    V2_APPOINTMENT_REASON_SYSTEM,
)
from sources.geo import distance_km
from sources.records import (
    AppointmentType,
    ClinicQuery,
    GeoPoint,
    Identifier,
    PhysicianQuery,
    Region,
    SlotQuery,
    SourceProtocol,
)
from sources.timeutil import MONTREAL
from tests.ports import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def make_source(
    session: aiohttp.ClientSession, url: str, *, timeout_s: float = 2.0, **config: Any
) -> FhirSource:
    return FhirSource(
        SourceConfig(
            id="fhir-test",
            name="FHIR test",
            protocol=SourceProtocol.FHIR_R4,
            url=url,
            timeout_s=timeout_s,
            **config,
        ),
        SourceContext(session=session, logger=logging.getLogger("passerelle.source.fhir-test")),
    )


@pytest.fixture
def demo(session: aiohttp.ClientSession, fhir_server: TestServer) -> FhirSource:
    return make_source(session, str(fhir_server.make_url("/fhir")))


def window(world: World, days: int = 14, **fields: Any) -> SlotQuery:
    start = datetime.combine(world.first_day, time(0), MONTREAL)
    fields.setdefault("limit", 30)
    return SlotQuery(starts_after=start, starts_before=start + timedelta(days=days), **fields)


def expected_slots(
    world: World, query: SlotQuery, clinic_ok: Callable[[str], bool] = lambda _: True
) -> list[WorldSlot]:
    """What a perfect FHIR adapter returns for ``query``, straight from the world."""
    out = [
        s
        for c in world.clinics_for("fhir")
        if clinic_ok(c.id)
        for s in world.slots_between(c.id, query.starts_after, query.starts_before)
        if s.free
        and (query.appointment_types is None or s.appointment_type in query.appointment_types)
        and (query.physician_local_ids is None or s.physician_id in query.physician_local_ids)
    ]
    return sorted(out, key=lambda s: (s.start, s.id))


# -- against the demo server ------------------------------------------------------


async def test_slots_are_free_sorted_in_the_window_and_match_the_world(
    demo: FhirSource, world: World
) -> None:
    query = window(world)
    result = await demo.search_slots(query)

    assert len(result.slots) >= query.limit
    assert [s.local_id for s in result.slots] == [
        s.id for s in expected_slots(world, query)[: len(result.slots)]
    ]
    assert not result.complete
    assert result.total == len(expected_slots(world, query))
    for slot in result.slots:
        truth = next(
            s for s in world.slots_for_clinic(slot.clinic_local_id) if s.id == slot.local_id
        )
        assert truth.free
        assert (slot.start, slot.end) == (truth.start, truth.end)
        assert slot.start.utcoffset() is not None
        assert slot.appointment_type is truth.appointment_type
        assert slot.physician_local_id == truth.physician_id
        assert slot.booking_url and slot.booking_url.endswith(slot.local_id)
        assert slot.booking_phone == world.clinics_by_id[slot.clinic_local_id].phone
        assert slot.clinic_local_id in result.clinics
        assert slot.physician_local_id in result.physicians


async def test_paging_across_many_pages_has_no_gaps_or_duplicates(
    demo: FhirSource, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources.fhir.adapter, "PAGE_SIZE", 7)
    query = window(world, limit=40)
    result = await demo.search_slots(query)

    ids = [s.local_id for s in result.slots]
    # Six pages of seven read; the answer cut at the limit, or past it to the end of
    # the last slot's tie group when the page read showed where it ends.
    assert len(ids) == 40 or (result.ties_complete and len(ids) > 40)
    assert ids == [s.id for s in expected_slots(world, query)[: len(ids)]]


async def test_a_narrow_search_is_complete_and_counts_every_match(
    demo: FhirSource, world: World
) -> None:
    clinic = world.clinics_for("fhir")[0]
    query = window(world, days=3, limit=500, clinic_local_ids=(clinic.id,))
    result = await demo.search_slots(query)

    assert result.complete
    expected = expected_slots(world, query, lambda cid: cid == clinic.id)
    assert [s.local_id for s in result.slots] == [s.id for s in expected]
    assert result.total == len(expected)


async def test_near_search_keeps_only_clinics_within_the_radius(
    demo: FhirSource, world: World
) -> None:
    here = GeoPoint(45.5017, -73.5673)
    query = window(world, limit=25, near=here, radius_km=12.0)
    result = await demo.search_slots(query)

    def within(cid: str) -> bool:
        clinic = world.clinics_by_id[cid]
        return distance_km(here, GeoPoint(clinic.latitude, clinic.longitude)) <= 12.0

    assert result.slots
    assert [s.local_id for s in result.slots] == [
        s.id for s in expected_slots(world, query, within)[: len(result.slots)]
    ]


async def test_region_search_keeps_only_that_region(demo: FhirSource, world: World) -> None:
    query = window(world, limit=25, region=Region.MONTREAL)
    result = await demo.search_slots(query)

    def in_region(cid: str) -> bool:
        return world.clinics_by_id[cid].region is Region.MONTREAL

    assert result.slots
    assert {c.address.region for c in result.clinics.values()} == {Region.MONTREAL}
    assert [s.local_id for s in result.slots] == [
        s.id for s in expected_slots(world, query, in_region)[: len(result.slots)]
    ]


async def test_appointment_type_filter_round_trips_every_type(
    demo: FhirSource, world: World
) -> None:
    for kinds in ({AppointmentType.NEW_PATIENT, AppointmentType.URGENT}, set(AppointmentType)):
        query = window(world, limit=20, appointment_types=frozenset(kinds))
        result = await demo.search_slots(query)
        assert [s.local_id for s in result.slots] == [
            s.id for s in expected_slots(world, query)[: len(result.slots)]
        ]
        assert {s.appointment_type for s in result.slots} <= kinds


async def test_physician_filter_returns_only_that_physicians_slots(
    demo: FhirSource, world: World
) -> None:
    fhir_clinics = {c.id for c in world.clinics_for("fhir")}
    physician = next(p for p in world.physicians if fhir_clinics & set(p.clinic_ids))
    query = window(world, limit=500, physician_local_ids=(physician.id,))
    result = await demo.search_slots(query)

    assert result.slots
    assert [s.local_id for s in result.slots] == [
        s.id for s in expected_slots(world, query, fhir_clinics.__contains__)
    ]
    assert result.complete


async def test_unknown_clinic_or_physician_gives_an_empty_complete_answer(
    demo: FhirSource, world: World
) -> None:
    for query in (
        window(world, clinic_local_ids=("no-such-clinic",)),
        window(world, clinic_local_ids=()),
        window(world, physician_local_ids=("no-such-physician",)),
    ):
        result = await demo.search_slots(query)
        assert (result.slots, result.complete, result.total) == ((), True, 0)


async def test_language_filter_keeps_slots_where_clinic_or_physician_speaks_it(
    demo: FhirSource, world: World
) -> None:
    result = await demo.search_slots(window(world, limit=20, languages=frozenset({"en"})))

    assert result.slots
    for slot in result.slots:
        clinic = result.clinics[slot.clinic_local_id]
        physician = result.physicians[slot.physician_local_id or ""]
        assert "en" in clinic.languages + physician.languages


async def test_clinic_records_carry_everything_the_world_knows(
    demo: FhirSource, world: World
) -> None:
    clinics = await demo.search_clinics(ClinicQuery())

    assert sorted(c.local_id for c in clinics) == sorted(c.id for c in world.clinics_for("fhir"))
    for record in clinics:
        truth = world.clinics_by_id[record.local_id]
        assert record.name == truth.name
        assert record.address.city == truth.city
        assert record.address.line == truth.line
        assert record.address.postal_code == truth.postal_code
        assert record.address.region is truth.region
        assert record.location == GeoPoint(truth.latitude, truth.longitude)
        assert record.phone == truth.phone
        assert record.languages == truth.languages
        assert record.identifiers == (Identifier(CLINIC_PERMIT_SYSTEM, truth.permit),)


async def test_clinic_search_filters_by_name_postal_code_identifier_and_id(
    demo: FhirSource, world: World
) -> None:
    target = world.clinics_for("fhir")[1]
    queries = [
        ClinicQuery(name_contains=target.name.split()[-1].upper()),
        ClinicQuery(postal_codes=(target.postal_code.lower().replace(" ", ""),)),
        ClinicQuery(identifiers=(Identifier(CLINIC_PERMIT_SYSTEM, target.permit),)),
        ClinicQuery(local_ids=(target.id, "unknown")),
        ClinicQuery(region=target.region, near=GeoPoint(target.latitude, target.longitude)),
    ]
    for query in queries:
        found = await demo.search_clinics(query)
        assert target.id in {c.local_id for c in found}, query
    assert [c.local_id for c in await demo.search_clinics(queries[3])] == [target.id]


async def test_physicians_by_clinic_id_and_identifier_match_the_world(
    demo: FhirSource, world: World
) -> None:
    fhir_clinics = {c.id for c in world.clinics_for("fhir")}
    clinic = world.clinics_for("fhir")[0]
    by_clinic = await demo.get_physicians(PhysicianQuery(clinic_local_ids=(clinic.id,)))

    assert {p.local_id for p in by_clinic} == {p.id for p in world.physicians_by_clinic[clinic.id]}
    for record in by_clinic:
        truth = world.physicians_by_id[record.local_id]
        assert record.display_name == truth.display_name
        assert record.languages == truth.languages
        assert record.identifiers == (Identifier(PHYSICIAN_LICENCE_SYSTEM, truth.licence),)
        assert set(record.clinic_local_ids) == set(truth.clinic_ids) & fhir_clinics
        assert record.accepting_new_patients is truth.accepting_new_patients

    one = world.physicians_by_clinic[clinic.id][0]
    by_id = await demo.get_physicians(PhysicianQuery(local_ids=(one.id, "unknown")))
    by_licence = await demo.get_physicians(
        PhysicianQuery(identifiers=(Identifier(PHYSICIAN_LICENCE_SYSTEM, one.licence),))
    )
    assert [p.local_id for p in by_id] == [p.local_id for p in by_licence] == [one.id]
    assert await demo.get_physicians(PhysicianQuery()) == []


# -- against hostile servers ------------------------------------------------------

START = datetime(2027, 1, 4, tzinfo=MONTREAL)
HOSTILE_QUERY = SlotQuery(starts_after=START, starts_before=START + timedelta(days=7), limit=50)


def slot(sid: str, hour: int = 9, **fields: Any) -> dict[str, Any]:
    begin = START + timedelta(hours=hour)
    resource = {
        "resourceType": "Slot",
        "id": sid,
        "schedule": {"reference": "Schedule/S1"},
        "status": "free",
        "start": begin.isoformat(),
        "end": (begin + timedelta(minutes=15)).isoformat(),
        "appointmentType": {"coding": [{"system": APPOINTMENT_TYPE_SYSTEM, "code": "WALK_IN"}]},
        "extension": [
            {"url": BOOKING_DEEP_LINK_URL, "valueUrl": f"https://book.example/{sid}"},
            {"url": BOOKING_PHONE_URL, "valueString": "+1-514-555-0100"},
        ],
    }
    resource.update(fields)
    return resource


LOCATION = {
    "resourceType": "Location",
    "id": "L1",
    "name": "Clinique Test",
    "address": {"city": "Montréal", "postalCode": "H2X 1Y4", "line": ["1 rue Test"]},
    "position": {"latitude": "45.51", "longitude": -73.56},  # a number sent as a string
}
SUPPORT = [
    {
        "resourceType": "Schedule",
        "id": "S1",
        "actor": [{"reference": "Location/L1"}, {"reference": "PractitionerRole/R1"}],
    },
    LOCATION,
    {
        "resourceType": "PractitionerRole",
        "id": "R1",
        "practitioner": {"reference": "Practitioner/P1"},
        "location": [{"reference": "Location/L1"}],
    },
    {"resourceType": "Practitioner", "id": "P1", "name": [{"family": "Roy", "given": ["Ana"]}]},
]


def bundle(
    *matches: dict[str, Any],
    raw_entries: tuple[object, ...] = (),
    next_url: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A searchset of ``matches``, the Schedule/Location/role/practitioner they need, and
    ``raw_entries`` as they are."""
    body: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", **fields}
    body["entry"] = [
        *({"resource": r, "search": {"mode": "match"}} for r in matches),
        *({"resource": r, "search": {"mode": "include"}} for r in SUPPORT),
        *raw_entries,
    ]
    if next_url:
        body["link"] = [{"relation": "next", "url": next_url}]
    return body


def fhir_json(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/fhir+json"
    )


async def serve_routes(*routes: tuple[str, str, Handler]) -> TestServer:
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def hostile(
    session: aiohttp.ClientSession,
) -> AsyncIterator[Callable[..., Awaitable[FhirSource]]]:
    """``await hostile(handler)``: an adapter whose Slot search gets ``handler``'s answers."""
    servers: list[TestServer] = []

    async def make(handler: Handler, **config: Any) -> FhirSource:
        server = await serve_routes(("*", "/fhir/{tail:.*}", handler))
        servers.append(server)
        return make_source(session, str(server.make_url("/fhir")), **config)

    yield make
    for server in servers:
        await server.close()


def answer(body: object, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return fhir_json(body, status)

    return handler


async def test_busy_and_malformed_slots_are_dropped_and_the_rest_kept(
    hostile: Callable[..., Awaitable[FhirSource]], caplog: pytest.LogCaptureFixture
) -> None:
    page = bundle(
        slot("good"),
        slot("busy", status="busy"),
        slot("tentative", status="busy-tentative"),
        slot("no-status", status=None),
        slot("backwards", end=START.isoformat()),
        slot("numeric-start", start=1_700_000_000),
        slot("huge-start", start="99999-01-01T00:00:00"),
        slot("unknown-type", appointmentType={"coding": [{"system": "x", "code": "VACCINE"}]}),
        slot(
            "v2-type",
            appointmentType={
                "coding": [{"system": V2_APPOINTMENT_REASON_SYSTEM, "code": "EMERGENCY"}]
            },
        ),
        slot("untyped", appointmentType=None),
        slot("list-type", appointmentType=["ROUTINE"]),
        slot("lost-schedule", schedule={"reference": "Schedule/nowhere"}),
        slot("schedule-is-a-string", schedule="Schedule/S1"),
        slot("outside-window", hour=24 * 30),
        slot("naive-time", start="2027-01-04T11:00:00", end="2027-01-04T11:20:00"),
        slot(
            "hostile-link", extension=[{"url": BOOKING_DEEP_LINK_URL, "valueUrl": "javascript:x"}]
        ),
        raw_entries=(
            {"resource": None},
            ["not", "an", "entry"],
            {"resource": {"resourceType": "Slot", "status": "free"}},
            {"resource": {"resourceType": "Slot", "id": 7, "status": "free"}},
        ),
        total="12",
    )
    source = await hostile(answer(page))
    with caplog.at_level(logging.INFO, logger="passerelle.source.fhir-test"):
        result = await source.search_slots(HOSTILE_QUERY)

    kept = {s.local_id: s for s in result.slots}
    assert set(kept) == {"good", "v2-type", "untyped", "naive-time", "hostile-link"}
    assert kept["v2-type"].appointment_type is AppointmentType.URGENT
    assert kept["untyped"].appointment_type is AppointmentType.ROUTINE
    assert kept["naive-time"].start == datetime(2027, 1, 4, 11, tzinfo=MONTREAL)
    assert kept["hostile-link"].booking_url is None
    assert kept["good"].booking_url == "https://book.example/good"
    assert [s.start for s in result.slots] == sorted(s.start for s in result.slots)
    clinic = result.clinics["L1"]
    assert clinic.location == GeoPoint(45.51, -73.56)
    assert clinic.address.region is Region.MONTREAL
    assert result.physicians["P1"].display_name == "Ana Roy"
    assert result.physicians["P1"].clinic_local_ids == ("L1",)
    assert result.complete and result.total == 5
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "skipped malformed entries" in logged
    assert "book.example" not in logged and "Roy" not in logged


async def test_same_time_slots_of_one_schedule_are_distinct_records(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    # Two free Slots of one Schedule at one time are two seats: the adapter returns both,
    # by id; the federation serves them as one slot with both seats (tests/sources/search).
    source = await hostile(answer(bundle(slot("a"), slot("b"), total=2)))
    result = await source.search_slots(HOSTILE_QUERY)
    assert [(s.local_id, s.start, s.physician_local_id) for s in result.slots] == [
        ("a", START + timedelta(hours=9), "P1"),
        ("b", START + timedelta(hours=9), "P1"),
    ]
    assert result.complete and result.total == 2


async def test_a_location_whose_region_cannot_be_inferred_is_dropped_with_its_slots(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    lost = {**LOCATION, "address": {"postalCode": "K1A 0B1"}, "position": None}
    page = bundle(slot("a"))
    page["entry"] = [e for e in page["entry"] if e["resource"]["resourceType"] != "Location"]
    page["entry"].append({"resource": lost, "search": {"mode": "include"}})

    source = await hostile(answer(page))
    assert (await source.search_slots(HOSTILE_QUERY)).slots == ()
    assert await source.search_clinics(ClinicQuery()) == []


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b"{not json", SourceBadResponse),
        (200, b"<html><body>Maintenance</body></html>", SourceBadResponse),
        (200, b"[1, 2, 3]", SourceBadResponse),
        (200, b'"Bundle"', SourceBadResponse),
        (200, b'{"resourceType": "OperationOutcome", "issue": []}', SourceBadResponse),
        (200, b'{"resourceType": "Bundle", "entry": {"resource": {}}}', SourceBadResponse),
        (200, b'{"resourceType": "Bundle", "link": "next"}', SourceBadResponse),
        (200, b'{"resourceType": "Bundle", "total": 1e400}', SourceBadResponse),
        (400, b'{"resourceType": "OperationOutcome"}', SourceBadResponse),
        (404, b"", SourceBadResponse),
        (401, b"", SourceUnavailable),
        (429, b"", SourceUnavailable),
        (500, b"oops", SourceUnavailable),
        (503, b"", SourceUnavailable),
    ],
)
async def test_a_broken_answer_is_the_right_source_error(
    hostile: Callable[..., Awaitable[FhirSource]], status: int, body: bytes, error: type
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, content_type="application/fhir+json")

    source = await hostile(handler)
    for call in (
        source.search_slots(HOSTILE_QUERY),
        source.search_clinics(ClinicQuery()),
        source.get_physicians(PhysicianQuery(local_ids=("P1",))),
    ):
        with pytest.raises(error):
            await call


async def test_huge_and_mistyped_numbers_are_ignored_not_fatal(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    page = bundle(slot("a"), total=1e300)
    [location] = [e for e in page["entry"] if e["resource"]["resourceType"] == "Location"]
    location["resource"] = {
        **LOCATION,
        "position": {"latitude": 1e300, "longitude": None},
        "telecom": {"system": "phone", "value": 5145550100},
    }
    result = await (await hostile(answer(page))).search_slots(HOSTILE_QUERY)

    assert [s.local_id for s in result.slots] == ["a"]
    # The position is ignored: the clinic is placed at its city's centre (sources.places).
    location = result.clinics["L1"].location
    assert location is not None and location.approximate and result.clinics["L1"].phone is None


async def test_a_truncated_body_is_a_bad_response() -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n")
        writer.write(b'Content-Length: 5000\r\n\r\n{"resourceType": "Bundle", "ent')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(truncated, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, aiohttp.ClientSession() as client:
        source = make_source(client, f"http://127.0.0.1:{port}/fhir")
        with pytest.raises(SourceBadResponse):
            await source.search_slots(HOSTILE_QUERY)


async def test_a_server_slower_than_the_timeout_times_out(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return fhir_json(bundle())

    source = await hostile(slow, timeout_s=0.2)
    try:
        with pytest.raises(SourceTimeout):
            await source.search_slots(HOSTILE_QUERY)
    finally:
        release.set()


async def test_an_unreachable_server_is_unavailable(session: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port()}/fhir"  # nothing listens there
    with pytest.raises(SourceUnavailable):
        await make_source(session, url).search_slots(HOSTILE_QUERY)


async def test_a_next_link_to_another_host_is_refused_unvisited(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    visits: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        visits.append(str(request.url))
        return fhir_json(bundle(slot("stolen")))

    other = await serve_routes(("*", "/{tail:.*}", elsewhere))
    try:
        page = bundle(slot("a"), next_url=str(other.make_url("/fhir/Slot?page=2")))
        source = await hostile(answer(page), credentials="secret-token")
        with pytest.raises(SourceBadResponse, match="origin"):
            await source.search_slots(HOSTILE_QUERY)
        assert visits == []
    finally:
        await other.close()


async def test_an_off_origin_next_link_is_not_followed_when_enough_slots_came(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    page = bundle(slot("a"), slot("b", hour=10), next_url="http://169.254.169.254/latest")
    result = await (await hostile(answer(page))).search_slots(
        SlotQuery(starts_after=START, starts_before=START + timedelta(days=1), limit=2)
    )
    assert [s.local_id for s in result.slots] == ["a", "b"]
    assert not result.complete


async def test_a_next_link_loop_is_detected(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    async def loop(request: web.Request) -> web.Response:
        return fhir_json(bundle(slot("a"), next_url="/fhir/Slot?page=again"))

    with pytest.raises(SourceBadResponse, match="loop"):
        await (await hostile(loop)).search_slots(HOSTILE_QUERY)


async def test_endless_fresh_next_links_stop_at_the_page_cap(
    hostile: Callable[..., Awaitable[FhirSource]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources.fhir.adapter, "MAX_PAGES", 4)
    calls: list[str] = []

    async def endless(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        return fhir_json(bundle(next_url=f"/fhir/Slot?page={len(calls)}"))

    result = await (await hostile(endless)).search_slots(HOSTILE_QUERY)
    assert len(calls) == 4
    assert (result.slots, result.complete) == ((), False)


async def test_what_the_server_did_not_include_is_fetched_by_id(
    session: aiohttp.ClientSession,
) -> None:
    by_type = {r["resourceType"]: r for r in SUPPORT}
    searched: list[tuple[str, str]] = []

    async def search(request: web.Request) -> web.Response:
        rtype = request.match_info["type"]
        form = await request.post()
        searched.append((rtype, str(form.get("_id", ""))))
        if rtype == "Slot":
            return fhir_json({"resourceType": "Bundle", "entry": [{"resource": slot("a")}]})
        return fhir_json({"resourceType": "Bundle", "entry": [{"resource": by_type[rtype]}]})

    server = await serve_routes(("POST", "/fhir/{type}/_search", search))
    try:
        result = await make_source(session, str(server.make_url("/fhir"))).search_slots(
            HOSTILE_QUERY
        )
    finally:
        await server.close()
    assert [s.local_id for s in result.slots] == ["a"]
    assert set(result.clinics) == {"L1"} and set(result.physicians) == {"P1"}
    assert searched == [
        ("Slot", ""),
        ("Schedule", "S1"),
        ("Location", "L1"),
        ("PractitionerRole", "R1"),
        ("Practitioner", "P1"),
    ]


async def test_the_search_asks_for_free_slots_with_credentials_as_bearer(
    session: aiohttp.ClientSession,
) -> None:
    seen: list[tuple[str | None, list[tuple[str, str]]]] = []

    async def search(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append((request.headers.get("Authorization"), [(k, str(v)) for k, v in form.items()]))
        return fhir_json({"resourceType": "Bundle", "entry": []})

    server = await serve_routes(("POST", "/fhir/{type}/_search", search))
    try:
        source = make_source(session, str(server.make_url("/fhir")), credentials="s3cret")
        query = SlotQuery(
            starts_after=START,
            starts_before=START + timedelta(days=1),
            limit=5000,
            appointment_types=frozenset({AppointmentType.URGENT}),
        )
        await source.search_slots(query)
    finally:
        await server.close()
    [(authorization, params)] = seen
    assert authorization == "Bearer s3cret"
    assert ("status", "free") in params
    assert ("start", "ge2027-01-04T00:00:00-05:00") in params
    assert ("start", "lt2027-01-05T00:00:00-05:00") in params
    assert ("_count", "1000") in params
    assert (
        "appointment-type",
        f"{APPOINTMENT_TYPE_SYSTEM}|URGENT,{V2_APPOINTMENT_REASON_SYSTEM}|EMERGENCY",
    ) in params


async def test_an_answer_arriving_in_several_chunks_is_read_whole(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    body = orjson.dumps(bundle(*(slot(f"s{i}", hour=8 + i % 10) for i in range(40))))

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/fhir+json"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[:1000])
        await asyncio.sleep(0.05)
        await response.write(body[1000:])
        return response

    result = await (await hostile(chunked)).search_slots(HOSTILE_QUERY)
    assert len(result.slots) == 40
