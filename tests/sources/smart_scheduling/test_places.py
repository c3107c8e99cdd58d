"""Places in a bulk feed: outside Quebec not served but counted; Quebec without a position
kept, at its municipality's centre when the table knows its city."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sources.records import ClinicQuery, GeoPoint, ProblemSeverity, Region, SourceStatus
from sources.smart_scheduling.adapter import SmartSchedulingSource
from tests.sources.smart_scheduling import test_adapter as base
from tests.sources.smart_scheduling.test_adapter import (
    WINDOW,
    Publisher,
    at,
    loaded,
    location,
    schedule,
    slot,
    slots,
)

# The adapter tests' fixtures: a loopback publisher, a session, the source, fast polling.
publisher, session, source, fast = base.publisher, base.session, base.source, base.fast


def _located(lid: str, address: dict[str, Any], position: tuple[float, float] | None) -> Any:
    resource = {**location(lid), "address": address}
    resource.pop("position")
    if position is not None:
        resource["position"] = {"latitude": position[0], "longitude": position[1]}
    return resource


LOCATIONS = [
    # A US pharmacy with a position: once given MONTEREGIE, now not served.
    _located("us", {"city": "Newark", "state": "NJ", "postalCode": "07102"}, (40.73, -74.17)),
    # Anchorage by its position alone: once NORD_DU_QUEBEC.
    _located("ak", {}, (61.22, -149.90)),
    # Quebec, without a position: placed at the city's centre.
    _located("qc", {"city": "Québec", "state": "QC", "postalCode": "G1R 4P5"}, None),
    # Only a province and a city, spelt as people write it: once dropped (no region).
    _located("stj", {"city": "ST-JEROME", "state": "QC"}, None),
    # Only a postal code.
    _located("pc", {"postalCode": "h2x1y4"}, None),
    # A city the table does not know.
    _located("unk", {"city": "Lac-Perdu-des-Tests", "postalCode": "J0B 1A0"}, None),
    # Quebec, with a position.
    _located("mtl", {"city": "Montréal", "state": "QC"}, (45.50, -73.57)),
]
SLOTS_PER_LOCATION = {"us": 3, "ak": 2, "qc": 4, "stj": 2, "pc": 1, "unk": 1, "mtl": 2}
QUEBEC_CITY = GeoPoint(46.8123, -71.2145, approximate=True)  # GeoNames' Québec, 4 decimals


def _feed(publisher: Publisher) -> None:
    publisher.put("/files/locations.ndjson", *LOCATIONS)
    publisher.put(
        "/files/schedules.ndjson",
        *(schedule(f"sch-{lid}", f"Location/{lid}") for lid in SLOTS_PER_LOCATION),
    )
    publisher.put(
        "/files/slots.ndjson",
        *(
            slot(f"{lid}-{n}", f"sch-{lid}", at(10, 8 + n))
            for lid, count in SLOTS_PER_LOCATION.items()
            for n in range(count)
        ),
    )
    publisher.publish(
        ("Location", "/files/locations.ndjson"),
        ("Schedule", "/files/schedules.ndjson"),
        ("Slot", "/files/slots.ndjson"),
    )


async def test_outside_quebec_is_counted_not_served_and_quebec_without_position_is_placed(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    _feed(publisher)
    await loaded(source)

    outside = {"us", "ak"}
    served = {lid: n for lid, n in SLOTS_PER_LOCATION.items() if lid not in outside}
    found = await slots(source)
    assert len(found) == sum(served.values())
    assert {s.clinic_local_id for s in found} == set(served)
    clinics = {c.local_id: c for c in await source.search_clinics(ClinicQuery())}
    assert set(clinics) == set(served)
    assert clinics["qc"].address.region is Region.CAPITALE_NATIONALE
    assert clinics["pc"].address.region is Region.MONTREAL
    assert clinics["stj"].address.region is Region.LAURENTIDES  # from its approximate position
    assert clinics["qc"].location == QUEBEC_CITY
    assert clinics["stj"].location is not None and clinics["stj"].location.approximate
    assert clinics["mtl"].location == GeoPoint(45.50, -73.57)  # the publisher's: exact
    assert clinics["pc"].location is None and clinics["unk"].location is None
    # Every search serves the clinics placed at their city, `near` too...
    by_region = await slots(source, replace(WINDOW, region=Region.CAPITALE_NATIONALE))
    assert len(by_region) == served["qc"]
    near_quebec = replace(WINDOW, near=GeoPoint(46.81, -71.21), radius_km=5.0)
    assert {s.clinic_local_id for s in await slots(source, near_quebec)} == {"qc"}
    # ... and every search but `near` those without a position.
    near = await slots(source, replace(WINDOW, near=GeoPoint(45.50, -73.57), radius_km=50.0))
    assert {s.clinic_local_id for s in near} == {"mtl", "stj"}

    problems = {p.code: p for p in source.problems}
    assert problems["OUTSIDE_QUEBEC"].severity is ProblemSeverity.WARNING
    assert problems["OUTSIDE_QUEBEC"].count == len(outside)
    outside_slots = sum(SLOTS_PER_LOCATION[lid] for lid in outside)
    assert f"with {outside_slots} free slots" in problems["OUTSIDE_QUEBEC"].message
    assert problems["NO_POSITION"].severity is ProblemSeverity.WARNING
    assert problems["NO_POSITION"].count == 2  # pc, unk
    assert problems["APPROXIMATE_POSITION"].severity is ProblemSeverity.WARNING
    assert problems["APPROXIMATE_POSITION"].count == 2  # qc, stj
    assert "MALFORMED_RECORDS" not in problems  # nothing lost unreported, nothing miscounted
    assert source.skipped_records == 0
    assert source.status_hint() is SourceStatus.UP
