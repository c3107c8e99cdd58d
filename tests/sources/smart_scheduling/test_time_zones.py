"""Times without an offset in a bulk feed: each slot's clinic's local time, placed once the
load knows the clinic (files come in any order), in full loads and in deltas."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp

from examples import demo_ssl
from examples.demo_fhir.resources import render_location
from examples.demo_ssl.publisher import Publisher as DemoPublisher
from examples.world import World
from sources.base import SourceConfig, SourceContext
from sources.records import ClinicQuery, SourceProtocol
from sources.smart_scheduling.adapter import SmartSchedulingSource
from sources.smart_scheduling.feed import UNKNOWN_TIME_ZONES
from sources.time_zones import TIMEZONE_EXTENSION_URL
from sources.timeutil import MONTREAL
from tests.conftest import serve
from tests.sources.smart_scheduling import test_adapter as base
from tests.sources.smart_scheduling.test_adapter import (
    LOGGER,
    T1,
    T2,
    Publisher,
    delta_manifest,
    loaded,
    location,
    schedule,
    slot,
    slots,
    slots_in,
)

# The adapter tests' fixtures: a loopback publisher, a session, the source, fast polling.
publisher, session, source, fast = base.publisher, base.session, base.source, base.fast

WINTER, SUMMER = "2031-01-13", "2031-06-16"
BLANC_SABLON = "America/Blanc-Sablon"  # two Mondays, either side of daylight saving


def _place(
    lid: str, address: dict[str, Any], position: tuple[float, float] | None, zone: str = ""
) -> dict[str, Any]:
    resource = {**location(lid), "address": {"state": "QC", **address}}
    resource.pop("position")
    if position is not None:
        resource["position"] = {"latitude": position[0], "longitude": position[1]}
    if zone:
        resource["extension"] = [{"url": TIMEZONE_EXTENSION_URL, "valueCode": zone}]
    return resource


LOCATIONS = [
    # The Îles-de-la-Madeleine by position: America/Halifax.
    _place("mad", {"city": "Cap-aux-Meules", "postalCode": "G4T 1B2"}, (47.38, -61.86)),
    # Only G0G, which alone says Eastern; its declared zone decides: America/Blanc-Sablon.
    _place("bls", {"postalCode": "G0G 1W0"}, None, BLANC_SABLON),
    # Blanc-Sablon by postal code and city, no position: the same.
    _place("bls2", {"city": "Blanc-Sablon", "postalCode": "G0G 1W0"}, None),
    # Montréal, declaring a zone that is no IANA name: ignored, by position.
    _place("mtl", {"city": "Montréal", "postalCode": "H2X 1Y4"}, (45.52, -73.58), "HNE"),
]


def _at(day: str, clock: str) -> str:
    return f"{day}T{clock}:00"


def _feed(publisher: Publisher) -> None:
    # Slots first: their clinics are not known while the slot file is read.
    publisher.put(
        "/files/slots.ndjson",
        *(
            slot(f"{lid}-{day}", f"sch-{lid}", _at(day, "09:00"), _at(day, "09:20"))
            for lid in ("mad", "bls", "bls2", "mtl")
            for day in (WINTER, SUMMER)
        ),
        # A naive start and an end with its offset: 11:00 AST to 11:20 AST.
        slot("bls-mixed", "sch-bls", _at(WINTER, "11:00"), f"{WINTER}T10:20:00-05:00"),
        # A naive 09:30 AST (08:30 EST) ending at 08:20 EST: ends before it starts.
        slot("bls-backwards", "sch-bls", _at(WINTER, "09:30"), f"{WINTER}T08:20:00-05:00"),
    )
    publisher.put("/files/locations.ndjson", *LOCATIONS)
    publisher.put(
        "/files/schedules.ndjson",
        *(schedule(f"sch-{lid}", f"Location/{lid}") for lid in ("mad", "bls", "bls2", "mtl")),
    )
    publisher.publish(
        ("Slot", "/files/slots.ndjson"),
        ("Location", "/files/locations.ndjson"),
        ("Schedule", "/files/schedules.ndjson"),
    )


def _in_montreal(records: list[Any]) -> list[tuple[str, str]]:
    """(clinic, start in Montreal time) of each slot (a feed's slots are known by those)."""
    return sorted((r.clinic_local_id, r.start.astimezone(MONTREAL).isoformat()) for r in records)


async def test_naive_times_are_read_in_each_clinics_zone(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    _feed(publisher)
    await loaded(source)

    clinics = {c.local_id: c.time_zone for c in await source.search_clinics(ClinicQuery())}
    assert clinics == {
        "mad": "America/Halifax",
        "bls": "America/Blanc-Sablon",
        "bls2": "America/Blanc-Sablon",
        "mtl": "America/Montreal",
    }
    # 09:00 local. Winter: Montreal is UTC-5, the Îles and Blanc-Sablon UTC-4 (08:00 in
    # Montreal). Summer: Montreal UTC-4 as Blanc-Sablon (09:00), the Îles UTC-3 (08:00).
    assert _in_montreal(await slots(source)) == sorted(
        [
            ("mad", "2031-01-13T08:00:00-05:00"),
            ("bls", "2031-01-13T08:00:00-05:00"),
            ("bls2", "2031-01-13T08:00:00-05:00"),
            ("mtl", "2031-01-13T09:00:00-05:00"),
            ("mad", "2031-06-16T08:00:00-04:00"),
            ("bls", "2031-06-16T09:00:00-04:00"),
            ("bls2", "2031-06-16T09:00:00-04:00"),
            ("mtl", "2031-06-16T09:00:00-04:00"),
            ("bls", "2031-01-13T10:00:00-05:00"),  # the mixed one
        ]
    )
    mixed = next(r for r in await slots(source) if r.start.hour == 15)  # 15:00 UTC
    assert (mixed.end - mixed.start).total_seconds() == 20 * 60
    assert source.skipped_records == 1  # bls-backwards, once placed
    problems = {p.code: p for p in source.problems}
    deviations = problems["FEED_DEVIATIONS"].samples
    assert any(UNKNOWN_TIME_ZONES in sample for sample in deviations)


async def test_a_delta_places_its_naive_times_in_the_clinics_zone(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    _feed(publisher)
    publisher.put(
        "/files/delta.ndjson",
        slot("mad-2031-01-13", "sch-mad", _at(WINTER, "09:00"), status="busy"),  # booked
        slot("bls-new", "sch-bls", _at(WINTER, "10:00"), _at(WINTER, "10:20")),  # opened
    )
    publisher.on_manifest = lambda request: (
        delta_manifest(publisher, T1, T2, slots=["/files/delta.ndjson"])
        if request.query.get("_since") == T1
        else None
    )
    await loaded(source, 2)

    report = source.last_load
    assert report is not None and report.delta
    found = _in_montreal(await slots(source))
    assert ("mad", "2031-01-13T08:00:00-05:00") not in found  # booked
    assert ("bls", "2031-01-13T09:00:00-05:00") in found  # 10:00 AST, opened
    assert ("bls", "2031-01-13T08:00:00-05:00") in found
    assert ("mad", "2031-06-16T08:00:00-04:00") in found


async def test_the_demo_publishers_atlantic_clinics_open_at_their_local_hours(
    session: aiohttp.ClientSession, world: World, tmp_path: Path
) -> None:
    demo = DemoPublisher(world, tmp_path / "feed")
    async with serve(demo_ssl.build_app(demo, max_age_s=0)) as server:
        config = SourceConfig(
            id="demo-ssl",
            name="Demo SSL",
            protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
            url=str(server.make_url("/$bulk-publish")),
            timeout_s=2.0,
        )
        source = SmartSchedulingSource(
            config, SourceContext(session=session, logger=logging.getLogger(LOGGER))
        )
        try:
            await loaded(source)
            found = await slots_in(source, world)
            clinics = {c.local_id: c for c in await source.search_clinics(ClinicQuery())}
        finally:
            await source.aclose()
    for city, zone in [("Cap-aux-Meules", "America/Halifax"), ("Blanc-Sablon", BLANC_SABLON)]:
        clinic = next(c for c in world.clinics_for("ssl") if c.city == city)
        assert clinics[clinic.id].time_zone == zone
        served = sorted(s.start.timestamp() for s in found if s.clinic_local_id == clinic.id)
        truth = [s.start for s in world.slots_for_clinic(clinic.id) if s.free]
        assert served == [s.timestamp() for s in truth]
        # The world's first days are in November: a 09:00 opening there is 08:00 in Montreal.
        nine = [s for s in truth if (s.hour, s.minute) == (9, 0)]
        assert nine and all(s.astimezone(MONTREAL).hour == 8 for s in nine)


def test_the_demo_feed_declares_each_locations_zone(world: World) -> None:
    resources = [render_location(c) for c in world.clinics_for("ssl")]
    zones = {r["id"]: r["extension"][-1] for r in resources}
    assert {z["url"] for z in zones.values()} == {TIMEZONE_EXTENSION_URL}
    assert {z["valueCode"] for z in zones.values()} == {
        "America/Montreal",
        "America/Halifax",
        "America/Blanc-Sablon",
    }
