"""Places in the REST API: a clinic outside Quebec is not served but counted; a Quebec
clinic without ``lat``/``lng`` is placed at its ``ville`` when the table knows it."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from sources.records import ClinicQuery, ProblemSeverity, Region, SlotQuery
from tests.sources.rest_json.test_adapter import (
    CLINIC,
    WEEK,
    as_json,
    envelope,
    make_source,
    serve,
    slot,
    upstream,
)

CLINICS: list[dict[str, Any]] = [
    CLINIC,  # 1001, Montréal, with lat/lng
    # Ottawa, with a position: once given OUTAOUAIS from its position, now not served.
    {
        "id": 2001,
        "nom": "Clinique d'Ottawa",
        "adresse": {"ville": "Ottawa", "code_postal": "K1P 1J1"},
        "lat": 45.42,
        "lng": -75.69,
    },
    # Quebec, no position, a ville the table knows.
    {
        "id": 2002,
        "nom": "Clinique du Bic",
        "adresse": {"ville": "RIMOUSKI", "code_postal": "G5L 1A1"},
    },
    # Quebec, no position, a ville it does not know.
    {
        "id": 2003,
        "nom": "Clinique perdue",
        "adresse": {"ville": "Lac-Perdu", "code_postal": "H2X 1Y4"},
    },
]
SLOTS_PER_CLINIC = {1001: 1, 2001: 3, 2002: 2, 2003: 1}
DAY = "2026-10-28T"


async def test_clinics_outside_quebec_are_counted_and_quebecs_placed_at_their_city(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [
        slot(f"{cid}-{n}", f"{DAY}{8 + n:02d}:00:00", f"{DAY}{8 + n:02d}:20:00", clinique_id=cid)
        for cid, count in SLOTS_PER_CLINIC.items()
        for n in range(count)
    ]
    server = await serve(upstream(as_json(envelope(items)), clinics=CLINICS))
    try:
        async with aiohttp.ClientSession() as session:
            source = make_source(session, server)
            with caplog.at_level(logging.WARNING):
                result = await source.search_slots(SlotQuery(*WEEK, limit=50))
            clinics = {c.local_id: c for c in await source.search_clinics(ClinicQuery())}
    finally:
        await server.close()

    assert {s.clinic_local_id for s in result.slots} == {"1001", "2002", "2003"}
    assert set(clinics) == {"1001", "2002", "2003"}
    placed = clinics["2002"]
    assert placed.location is not None and placed.location.approximate
    assert placed.address.region is Region.BAS_SAINT_LAURENT
    assert clinics["2003"].location is None
    assert clinics["1001"].location is not None and not clinics["1001"].location.approximate
    assert "unknown clinic" not in caplog.text  # outside Quebec is not malformed

    problems = {p.code: p for p in source.problems}
    assert problems["OUTSIDE_QUEBEC"].severity is ProblemSeverity.WARNING
    assert problems["OUTSIDE_QUEBEC"].count == 1
    assert "at least 3 free slots" in problems["OUTSIDE_QUEBEC"].message
    assert problems["OUTSIDE_QUEBEC"].samples == ("cliniques/2001",)
    assert problems["NO_POSITION"].count == 1
    assert problems["APPROXIMATE_POSITION"].count == 1
    assert "(lat, lng)" in problems["APPROXIMATE_POSITION"].message
