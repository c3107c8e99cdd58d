"""The demo FHIR server speaks the FHIR R4 search contract its module docstring promises."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from examples.world import CLINIC_PERMIT_SYSTEM, PHYSICIAN_LICENCE_SYSTEM, World
from sources.fhir.resources import APPOINTMENT_TYPE_SYSTEM, V2_APPOINTMENT_REASON_SYSTEM
from sources.geo import distance_km
from sources.records import AppointmentType, GeoPoint
from sources.timeutil import MONTREAL
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
Params = list[tuple[str, str]]


@pytest.fixture
async def fhir(fhir_server: TestServer) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, str(fhir_server.make_url("/fhir")))


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def get(self, path: str, params: Params | None = None, status: int = 200) -> Any:
        async with self.session.get(f"{self.base}/{path}", params=params) as response:
            assert response.status == status, await response.text()
            assert response.content_type == "application/fhir+json"
            return await response.json(content_type=None)

    async def post(self, rtype: str, form: Params) -> Any:
        async with self.session.post(f"{self.base}/{rtype}/_search", data=form) as response:
            assert response.status == 200, await response.text()
            return await response.json(content_type=None)

    async def every_page(self, rtype: str, params: Params) -> list[dict[str, Any]]:
        pages = [await self.get(rtype, params)]
        while nxt := [link["url"] for link in pages[-1]["link"] if link["relation"] == "next"]:
            async with self.session.get(nxt[0]) as response:
                pages.append(await response.json(content_type=None))
        return pages


def matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def included(bundle: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    }


def day(world: World, offset: int = 0) -> datetime:
    return datetime.combine(world.first_day + timedelta(days=offset), time(0), MONTREAL)


async def test_slot_search_without_status_returns_busy_slots_too(fhir: Client) -> None:
    everything = matches(await fhir.get("Slot", [("_count", "1000")]))
    free = matches(await fhir.get("Slot", [("_count", "1000"), ("status", "free")]))

    assert {s["status"] for s in everything} == {"free", "busy"}
    assert {s["status"] for s in free} == {"free"}


async def test_pages_follow_each_other_without_gaps_and_total_counts_the_world(
    fhir: Client, world: World
) -> None:
    clinic = world.clinics_for("fhir")[0]
    start, end = day(world, 1), day(world, 8)
    params = [
        ("status", "free"),
        ("start", f"ge{start.isoformat()}"),
        ("start", f"lt{end.isoformat()}"),
        ("schedule.actor", f"Location/{clinic.id}"),
        ("_sort", "start"),
        ("_count", "7"),
        ("_total", "accurate"),
    ]
    pages = await fhir.every_page("Slot", params)

    expected = [s.id for s in world.slots_between(clinic.id, start, end) if s.free]
    assert [s["id"] for page in pages for s in matches(page)] == expected
    assert len(pages) == -(-len(expected) // 7) > 2
    assert {page["total"] for page in pages} == {len(expected)}


async def test_typed_schedule_actor_takes_bare_ids_and_count_zero_only_counts(
    fhir: Client, world: World
) -> None:
    clinic = world.clinics_for("fhir")[0]
    typed = await fhir.get("Slot", [("schedule.actor:Location", clinic.id), ("_count", "1000")])
    assert {s["schedule"]["reference"].split("/")[1].split("-")[0] for s in matches(typed)} == {
        clinic.id
    }
    assert typed["total"] == len(world.slots_for_clinic(clinic.id))

    counted = await fhir.get("Slot", [("status", "free"), ("_count", "0")])
    assert counted["entry"] == []
    assert [link["relation"] for link in counted["link"]] == ["self"]
    assert counted["total"] == sum(
        s.free for c in world.clinics_for("fhir") for s in world.slots_for_clinic(c.id)
    )


async def test_post_search_answers_like_get(fhir: Client, world: World) -> None:
    params = [("status", "free"), ("appointment-type", "CHECKUP"), ("_count", "20")]
    by_get = await fhir.get("Slot", params)
    by_post = await fhir.post("Slot", params)

    assert matches(by_get) == matches(by_post)
    assert by_get["total"] == by_post["total"]


async def test_includes_bring_schedules_their_actors_and_practitioners(fhir: Client) -> None:
    slot_only = [("status", "free"), ("_count", "10"), ("_include", "Slot:schedule")]
    bundle = await fhir.get("Slot", slot_only)
    schedules = {s["schedule"]["reference"] for s in matches(bundle)}
    assert included(bundle) == schedules  # Schedule:actor without :iterate adds nothing

    iterate = [
        *slot_only,
        ("_include:iterate", "Schedule:actor"),
        ("_include:iterate", "PractitionerRole:practitioner"),
    ]
    bundle = await fhir.get("Slot", iterate)
    resources = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
        for e in bundle["entry"]
    }
    for reference in schedules:
        for actor in resources[reference]["actor"]:
            assert actor["reference"] in resources
            if actor["reference"].startswith("PractitionerRole/"):
                role = resources[actor["reference"]]
                assert role["practitioner"]["reference"] in resources


async def test_slots_carry_both_codings_and_booking_extensions(fhir: Client) -> None:
    slots = matches(await fhir.get("Slot", [("status", "free"), ("_count", "200")]))
    for slot in slots:
        codings = {c["system"]: c["code"] for c in slot["appointmentType"]["coding"]}
        kind = AppointmentType(codings[APPOINTMENT_TYPE_SYSTEM])
        assert (V2_APPOINTMENT_REASON_SYSTEM in codings) == (
            kind
            in {
                AppointmentType.WALK_IN,
                AppointmentType.ROUTINE,
                AppointmentType.FOLLOW_UP,
                AppointmentType.CHECKUP,
                AppointmentType.URGENT,
            }
        )
        assert datetime.fromisoformat(slot["start"]).utcoffset() is not None
        assert {e["url"].rsplit("/", 1)[1] for e in slot["extension"]} == {
            "booking-deep-link",
            "booking-phone",
        }


@pytest.mark.parametrize(
    ("token", "kinds"),
    [
        (f"{V2_APPOINTMENT_REASON_SYSTEM}|EMERGENCY", {AppointmentType.URGENT}),
        (f"{APPOINTMENT_TYPE_SYSTEM}|NEW_PATIENT", {AppointmentType.NEW_PATIENT}),
        ("WALKIN,PRIORITY", {AppointmentType.WALK_IN, AppointmentType.PRIORITY}),
        ("|ROUTINE", set()),
        ("NOT-A-TYPE", set()),
    ],
)
async def test_appointment_type_tokens_select_their_types(
    fhir: Client, token: str, kinds: set[AppointmentType]
) -> None:
    bundle = await fhir.get("Slot", [("appointment-type", token), ("_count", "300")])
    found = {
        AppointmentType(c["code"])
        for s in matches(bundle)
        for c in s["appointmentType"]["coding"]
        if c["system"] == APPOINTMENT_TYPE_SYSTEM
    }
    assert found == kinds


async def test_start_prefixes_bound_the_window(fhir: Client, world: World) -> None:
    await check_start_prefixes(fhir, world)


async def check_start_prefixes(fhir: Client, world: World) -> None:
    """``start=gt<instant>&start=le<date>``: the day named by the date is whole."""
    # The last day of the window is a working day (Sundays have no slots), the third
    # day or later, so that the window spans at least one night.
    last = next(n for n in range(3, 10) if day(world, n).weekday() < 5)
    first = day(world, last - 1)
    params = [("start", f"gt{first.isoformat()}"), ("start", f"le{day(world, last).date()}")]
    slots = matches(await fhir.get("Slot", [*params, ("_count", "1000")]))
    starts = [datetime.fromisoformat(s["start"]) for s in slots]

    assert starts == sorted(starts)
    assert all(first < s < day(world, last + 1) for s in starts)
    assert any(s >= day(world, last) for s in starts)


async def test_location_search_by_place_identifier_postal_code_and_name(
    fhir: Client, world: World
) -> None:
    target = world.clinics_for("fhir")[0]
    here = GeoPoint(target.latitude, target.longitude)
    near = matches(
        await fhir.get("Location", [("near", f"{here.latitude}|{here.longitude}|20|km")])
    )
    assert near[0]["id"] == target.id
    for location in near:
        position = location["position"]
        assert distance_km(here, GeoPoint(position["latitude"], position["longitude"])) <= 20

    searches: list[Params] = [
        [("identifier", f"{CLINIC_PERMIT_SYSTEM}|{target.permit}")],
        [("address-postalcode", target.postal_code[:3].lower())],
        [("name", target.name.upper().replace("É", "E"))],
        [("name:contains", target.name.split()[-1])],
        [("_id", f"{target.id},nope")],
    ]
    for params in searches:
        assert target.id in {r["id"] for r in matches(await fhir.get("Location", params))}
    assert matches(await fhir.get("Location", [("identifier", f"other|{target.permit}")])) == []


async def test_practitioner_roles_by_location_include_their_practitioners(
    fhir: Client, world: World
) -> None:
    clinic = world.clinics_for("fhir")[0]
    bundle = await fhir.get(
        "PractitionerRole",
        [("location", f"Location/{clinic.id}"), ("_include", "PractitionerRole:practitioner")],
    )
    physicians = {p.id for p in world.physicians_by_clinic[clinic.id]}

    assert {r["practitioner"]["reference"] for r in matches(bundle)} == {
        f"Practitioner/{pid}" for pid in physicians
    }
    assert included(bundle) == {f"Practitioner/{pid}" for pid in physicians}
    one = world.physicians_by_id[sorted(physicians)[0]]
    [practitioner] = matches(
        await fhir.get(
            "Practitioner", [("identifier", f"{PHYSICIAN_LICENCE_SYSTEM}|{one.licence}")]
        )
    )
    assert [c["coding"][0]["code"] for c in practitioner["communication"]] == list(one.languages)


@pytest.mark.parametrize(
    "params",
    [
        [("foo", "1")],
        [("status", "bogus")],
        [("start", "ge-not-a-date")],
        [("start", "sa2026-01-01")],
        [("_count", "-1")],
        [("_count", "ten")],
        [("_sort", "-start")],
        [("_include", "Slot:patient")],
        [("_total", "maybe")],
        [("schedule.actor", "C00001")],
        [("_page_token", "garbage")],
        [("_page_token", "eyJ0Ijo"), ("status", "free")],
    ],
)
async def test_bad_slot_searches_are_400_operation_outcomes(fhir: Client, params: Params) -> None:
    outcome = await fhir.get("Slot", params, status=400)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"


async def test_bad_location_searches_are_400_too(fhir: Client) -> None:
    for params in ([("near", "north|west")], [("name:exact", "x")], [("status", "free")]):
        outcome = await fhir.get("Location", params, status=400)
        assert outcome["resourceType"] == "OperationOutcome"


async def test_reads_metadata_and_unknown_resources(fhir: Client, world: World) -> None:
    clinic = world.clinics_for("fhir")[0]
    location = await fhir.get(f"Location/{clinic.id}")
    assert location["address"] == {
        "use": "work",
        "line": [clinic.line],
        "city": clinic.city,
        "state": "QC",
        "postalCode": clinic.postal_code,
        "country": "CA",
    }
    slot = world.slots_for_clinic(clinic.id)[0]
    assert (await fhir.get(f"Slot/{slot.id}"))["start"] == slot.start.isoformat()
    assert (await fhir.get("Location/nope", status=404))["resourceType"] == "OperationOutcome"
    assert (await fhir.get("Patient", status=404))["resourceType"] == "OperationOutcome"
    statement = await fhir.get("metadata")
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"


async def test_slot_reads_only_find_slots_of_clinics_this_system_lists(
    fhir: Client, world: World
) -> None:
    rest_only = next(c for c in world.clinics if c.systems == ("rest",))
    slot = world.slots_for_clinic(rest_only.id)[0]
    assert (await fhir.get(f"Slot/{slot.id}", status=404))["resourceType"] == "OperationOutcome"
    listed = world.clinics_for("fhir")[0]
    assert (await fhir.get(f"Slot/{listed.id}-nope", status=404))["resourceType"] == (
        "OperationOutcome"
    )


async def test_stats_count_every_request_but_their_own(
    fhir: Client, fhir_server: TestServer
) -> None:
    await fhir.get("metadata")
    await fhir.get("Location", [("_count", "1")])
    await fhir.get("Patient", status=404)
    for _ in range(2):
        async with fhir.session.get(fhir_server.make_url("/_stats")) as response:
            assert await response.json() == {"requests": 3}


async def test_main_serves_and_exits_cleanly_on_sigterm() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.demo_fhir", "--port", str(port), "--scale", "0.01",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/fhir/metadata") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the demo server never answered")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
