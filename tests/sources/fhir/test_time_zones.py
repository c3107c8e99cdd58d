"""Times without an offset from a FHIR server: the local time of the Slot's clinic (its
Schedule's Location), by the Location's timezone extension, else by where it is."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from examples.world import World
from sources.fhir.adapter import FhirSource
from sources.records import SlotQuery
from sources.time_zones import TIMEZONE_EXTENSION_URL
from sources.timeutil import MONTREAL
from tests.sources.fhir import test_adapter as base
from tests.sources.fhir.test_adapter import answer, window

# The adapter tests' fixtures: a session, the demo server's source, inline servers.
session, demo, hostile = base.session, base.demo, base.hostile

WINTER, SUMMER = "2026-11-16", "2027-06-07"
HALIFAX, BLANC_SABLON = "America/Halifax", "America/Blanc-Sablon"
QUERY = SlotQuery(
    starts_after=datetime(2026, 11, 1, tzinfo=UTC),
    starts_before=datetime(2027, 8, 1, tzinfo=UTC),
    limit=50,
)


def location(
    lid: str, address: dict[str, Any], position: tuple[float, float] | None = None, zone: str = ""
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": lid,
        "name": f"Clinique {lid}",
        "address": {"state": "QC", **address},
    }
    if position is not None:
        resource["position"] = {"latitude": position[0], "longitude": position[1]}
    if zone:
        resource["extension"] = [{"url": TIMEZONE_EXTENSION_URL, "valueCode": zone}]
    return resource


LOCATIONS = [
    # The Îles-de-la-Madeleine by position: America/Halifax.
    location("mad", {"city": "Cap-aux-Meules", "postalCode": "G4T 1B2"}, (47.38, -61.86)),
    # Declared (G0G alone would say Eastern): America/Blanc-Sablon.
    location("bls", {"postalCode": "G0G 1W0"}, zone="America/Blanc-Sablon"),
    # By postal code and city: America/Blanc-Sablon.
    location("bls2", {"city": "Blanc-Sablon", "postalCode": "G0G 1W0"}),
    # A declared zone that is no IANA name: ignored, Montréal by its position.
    location("mtl", {"city": "Montréal", "postalCode": "H2X 1Y4"}, (45.52, -73.58), "HNE"),
]


def schedule(lid: str) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": f"S-{lid}",
        "actor": [{"reference": f"Location/{lid}"}],
    }


def slot(lid: str, start: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "Slot",
        "id": f"{lid}-{start}",
        "schedule": {"reference": f"Schedule/S-{lid}"},
        "status": "free",
        "start": start,
        "end": end,
    }


def bundle(slots: list[dict[str, Any]]) -> dict[str, Any]:
    included = [*LOCATIONS, *(schedule(r["id"]) for r in LOCATIONS)]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(slots),
        "entry": [
            *({"resource": r, "search": {"mode": "match"}} for r in slots),
            *({"resource": r, "search": {"mode": "include"}} for r in included),
        ],
    }


def in_montreal(result: Any) -> dict[str, str]:
    return {s.local_id: s.start.astimezone(MONTREAL).isoformat() for s in result.slots}


async def test_naive_slot_times_are_read_in_their_clinics_zone(
    hostile: Callable[..., Awaitable[FhirSource]], caplog: pytest.LogCaptureFixture
) -> None:
    # Ordered by instant, as the server sorts: the Îles' 09:00 (08:00 in Montreal) comes
    # before Montreal's 08:30, though its text is later. Read as Montreal time, the page
    # would look out of order and the server be demoted to unsorted.
    page = [
        slot("mad", f"{WINTER}T09:00:00", f"{WINTER}T09:20:00"),
        slot("bls", f"{WINTER}T09:00:00", f"{WINTER}T09:20:00"),
        slot("bls2", f"{WINTER}T09:00:00", f"{WINTER}T09:20:00"),
        slot("mtl", f"{WINTER}T08:30:00", f"{WINTER}T08:50:00"),
        slot("mtl", f"{WINTER}T09:00:00", f"{WINTER}T09:20:00"),
        slot("mad", f"{SUMMER}T09:00:00", f"{SUMMER}T09:20:00"),
        slot("bls", f"{SUMMER}T09:00:00", f"{SUMMER}T09:20:00"),
        slot("mtl", f"{SUMMER}T09:00:00", f"{SUMMER}T09:20:00"),
    ]
    source = await hostile(answer(bundle(page)))
    with caplog.at_level(logging.WARNING, logger="passerelle.source.fhir-test"):
        result = await source.search_slots(QUERY)

    assert in_montreal(result) == {
        f"mad-{WINTER}T09:00:00": "2026-11-16T08:00:00-05:00",
        f"bls-{WINTER}T09:00:00": "2026-11-16T08:00:00-05:00",
        f"bls2-{WINTER}T09:00:00": "2026-11-16T08:00:00-05:00",
        f"mtl-{WINTER}T08:30:00": "2026-11-16T08:30:00-05:00",
        f"mtl-{WINTER}T09:00:00": "2026-11-16T09:00:00-05:00",
        f"mad-{SUMMER}T09:00:00": "2027-06-07T08:00:00-04:00",
        f"bls-{SUMMER}T09:00:00": "2027-06-07T09:00:00-04:00",
        f"mtl-{SUMMER}T09:00:00": "2027-06-07T09:00:00-04:00",
    }
    assert {c.local_id: c.time_zone for c in result.clinics.values()} == {
        "mad": "America/Halifax",
        "bls": "America/Blanc-Sablon",
        "bls2": "America/Blanc-Sablon",
        "mtl": "America/Montreal",
    }
    assert source.capabilities.sorted_by_instant is not False  # not demoted
    problems = {p.code: p for p in source.problems}
    assert problems["UNKNOWN_TIME_ZONE"].samples == ("Location/mtl",)
    assert problems["UNKNOWN_TIME_ZONE"].diagnostics == "HNE"
    assert any("Location/mtl" in r.getMessage() for r in caplog.records)


async def test_a_naive_slot_of_no_known_clinic_is_skipped_not_read_as_montreal(
    hostile: Callable[..., Awaitable[FhirSource]],
) -> None:
    lost = slot("mad", f"{WINTER}T09:00:00", f"{WINTER}T09:20:00")
    lost["schedule"] = {"reference": "Schedule/nowhere"}
    source = await hostile(answer(bundle([lost])))
    assert (await source.search_slots(QUERY)).slots == ()


async def test_the_demo_servers_atlantic_clinics_open_at_their_local_hours(
    demo: FhirSource, world: World
) -> None:
    for city, zone in [("Cap-aux-Meules", HALIFAX), ("Blanc-Sablon", BLANC_SABLON)]:
        clinic = next(c for c in world.clinics_for("fhir") if c.city == city)
        query = window(world, clinic_local_ids=(clinic.id,), limit=500)
        result = await demo.search_slots(query)
        assert result.clinics[clinic.id].time_zone == zone
        between = world.slots_between(clinic.id, query.starts_after, query.starts_before)
        truth = [s for s in between if s.free]
        assert [(s.local_id, s.start) for s in result.slots] == [(s.id, s.start) for s in truth]
        # November: a 09:00 opening there is 08:00 in Montreal.
        nine = [s.start for s in result.slots if s.start.astimezone(ZoneInfo(zone)).hour == 9]
        assert nine and {s.astimezone(MONTREAL).hour for s in nine} == {8}
