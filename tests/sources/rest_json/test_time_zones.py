"""The REST API's times are its clinics' local wall times: each slot read in its clinic's
zone once the clinic is known, and the bounds sent wide enough for every zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from examples.demo_rest import clinic_api_id, slot_api_id
from examples.world import World
from sources.records import SlotQuery
from sources.timeutil import MONTREAL
from tests.sources.rest_json import test_adapter as base
from tests.sources.rest_json.test_adapter import (
    CLINIC,
    envelope,
    make_source,
    serve,
    slot,
    upstream,
)

# The adapter tests' fixtures: a session, and the demo API over their world.
session, demo, world = base.session, base.demo, base.world

WINTER, SUMMER = "2026-11-16", "2027-06-07"
ILES = {"ville": "Cap-aux-Meules", "code_postal": "G4T 1B2"}
BLANC_SABLON = {"ville": "Blanc-Sablon", "code_postal": "G0G 1W0"}
CLINICS: list[dict[str, Any]] = [
    # The Îles-de-la-Madeleine by position: America/Halifax.
    {**CLINIC, "id": 1001, "adresse": ILES, "lat": 47.38, "lng": -61.86},
    # Blanc-Sablon by postal code and town, no position: America/Blanc-Sablon.
    {**CLINIC, "id": 1002, "adresse": BLANC_SABLON, "lat": None, "lng": None},
    # Montréal.
    {**CLINIC, "id": 1003},
]


async def test_naive_times_are_each_clinics_local_time(session: aiohttp.ClientSession) -> None:
    items = [
        slot(f"{cid}-{day}", f"{day}T09:00:00", f"{day}T09:20:00", clinique_id=cid)
        for cid in (1001, 1002, 1003)
        for day in (WINTER, SUMMER)
    ]
    # 09:30 AST to 08:20 EST: ends before it starts once read in Blanc-Sablon's zone.
    items.append(
        slot("backwards", f"{WINTER}T09:30:00", f"{WINTER}T08:20:00-05:00", clinique_id=1002)
    )
    asked: list[dict[str, str]] = []

    async def slots_view(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        return web.json_response(envelope(items))

    server = await serve(upstream(slots_view, clinics=CLINICS))
    try:
        after = datetime(2026, 11, 1, tzinfo=UTC)
        query = SlotQuery(after, after + timedelta(days=300), limit=50)
        result = await make_source(session, server).search_slots(query)
    finally:
        await server.close()

    in_montreal = {s.local_id: s.start.astimezone(MONTREAL).isoformat() for s in result.slots}
    assert in_montreal == {
        f"1001-{WINTER}": "2026-11-16T08:00:00-05:00",  # Îles: UTC-4 in winter
        f"1002-{WINTER}": "2026-11-16T08:00:00-05:00",  # Blanc-Sablon: UTC-4 all year
        f"1003-{WINTER}": "2026-11-16T09:00:00-05:00",
        f"1001-{SUMMER}": "2027-06-07T08:00:00-04:00",  # Îles: UTC-3 in summer
        f"1002-{SUMMER}": "2027-06-07T09:00:00-04:00",
        f"1003-{SUMMER}": "2027-06-07T09:00:00-04:00",
    }
    zones = {c.local_id: c.time_zone for c in result.clinics.values()}
    assert zones == {
        "1001": "America/Halifax",
        "1002": "America/Blanc-Sablon",
        "1003": "America/Montreal",
    }
    # 00:00 UTC is 20:00 the day before in Montreal (EDT) and 21:00 in the Îles (ADT).
    assert asked[0]["debut_min"] == "2026-10-31T20:00:00"


async def test_a_blanc_sablon_nine_oclock_is_found_by_a_montreal_morning_window(
    world: World, session: aiohttp.ClientSession, demo: TestServer
) -> None:
    """07:30 to 08:30 in Montreal, in winter, holds 09:00 in Blanc-Sablon: the bounds
    sent must reach 09:30 there, not stop at Montreal's 08:30."""
    clinic = next(c for c in world.clinics_for("rest") if c.city == "Blanc-Sablon")
    nine = next(
        s
        for s in world.slots_for_clinic(clinic.id)
        if s.free and (s.start.hour, s.start.minute) == (9, 0) and s.start.month == 11
    )
    after = nine.start.astimezone(MONTREAL) - timedelta(minutes=30)
    assert after.hour == 7  # 09:00 AST is 08:00 EST
    result = await make_source(session, demo).search_slots(
        SlotQuery(after, after + timedelta(hours=1), limit=500)
    )

    expected = sorted(
        (
            s
            for c in world.clinics_for("rest")
            for s in world.slots_for_clinic(c.id)
            if s.free and after <= s.start <= after + timedelta(hours=1)
        ),
        key=lambda s: (s.start, s.id),
    )
    assert [s.local_id for s in result.slots] == [slot_api_id(s.id) for s in expected]
    found = next(s for s in result.slots if s.local_id == slot_api_id(nine.id))
    assert found.start == nine.start
    assert found.start.astimezone(MONTREAL).isoformat().endswith("T08:00:00-05:00")
    clinic_id = str(clinic_api_id(clinic.id))
    assert result.clinics[clinic_id].time_zone == "America/Blanc-Sablon"
