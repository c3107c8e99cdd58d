"""The demo REST/JSON booking API keeps the contract its module docstring states."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from examples.demo_rest import API_KEY_ENV, build_app, clinic_api_id, slot_api_id
from examples.world import World
from tests.ports import free_port

KEY = "cle-de-test"
ROOT = Path(__file__).resolve().parents[2]
HEADERS = {"X-Cle-Api": KEY}


@pytest.fixture(scope="module")
def world() -> World:
    return World(scale=0.02, first_day=date(2026, 10, 26))


@pytest.fixture
async def client(world: World) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(world, api_key=KEY))) as client:
        yield client


async def get(client: TestClient[Any, Any], path: str, **params: str) -> tuple[int, Any]:
    async with client.get(path, params=params, headers=HEADERS) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def test_slots_without_status_include_booked_ones_sorted_by_start_then_id(
    world: World, client: TestClient[Any, Any]
) -> None:
    window = {"debut_min": "2026-10-28T00:00:00", "debut_max": "2026-10-28T23:59:59"}
    status, body = await get(client, "/api/v1/disponibilites", limite="500", **window)
    assert status == 200
    items = body["resultats"]
    assert {i["statut"] for i in items} == {"libre", "reserve"}
    # Sorted by the moment they start, each local time read in its clinic's zone.
    keys = [(start_of(world, i), i["id"]) for i in items]
    assert keys == sorted(keys)
    expected = sorted(
        (s for c in world.clinics_for("rest") for s in world.slots_for_clinic(c.id)),
        key=lambda s: (s.start, s.id),
    )
    expected = [s for s in expected if s.start.date() == date(2026, 10, 28)]
    assert body["total"] == len(expected)
    assert [i["id"] for i in items] == [slot_api_id(s.id) for s in expected[:500]]
    booked = next(i for i in items if i["statut"] == "reserve")
    assert booked["lien_reservation"] is None and booked["telephone_reservation"] is None
    first = items[0]
    assert datetime.fromisoformat(first["debut"]).tzinfo is None  # local, no offset

    status, free = await get(client, "/api/v1/disponibilites", statut="libre", **window)
    assert {i["statut"] for i in free["resultats"]} == {"libre"}
    assert free["total"] == sum(s.free for s in expected)


async def test_paging_envelope(client: TestClient[Any, Any]) -> None:
    status, body = await get(client, "/api/v1/cliniques", limite="3", page="2")
    assert status == 200
    assert body["page"] == 2 and body["limite"] == 3
    assert body["pages"] == math.ceil(body["total"] / 3)
    assert len(body["resultats"]) == 3
    status, past = await get(client, "/api/v1/cliniques", limite="3", page="999")
    assert status == 200 and past["resultats"] == [] and past["total"] == body["total"]
    status, nothing = await get(client, "/api/v1/cliniques", ids="1")
    assert nothing == {"resultats": [], "page": 1, "pages": 0, "limite": 100, "total": 0}


def start_of(world: World, item: dict[str, Any]) -> datetime:
    """An item's start: its local time read in its clinic's zone."""
    clinic = next(c for c in world.clinics if clinic_api_id(c.id) == item["clinique_id"])
    return datetime.fromisoformat(item["debut"]).replace(tzinfo=ZoneInfo(clinic.time_zone))


@pytest.mark.parametrize(
    ("city", "offset"),
    [
        ("Montréal", None),
        ("Cap-aux-Meules", None),
        # Atlantic Standard Time all year: -04:00 across the 1 November change.
        ("Blanc-Sablon", timedelta(hours=-4)),
    ],
)
async def test_slots_times_are_each_clinics_local_wall_times(
    world: World, client: TestClient[Any, Any], city: str, offset: timedelta | None
) -> None:
    clinic = next(c for c in world.clinics_for("rest") if c.city == city)
    status, body = await get(
        client, "/api/v1/disponibilites", cliniques=str(clinic_api_id(clinic.id)), limite="500"
    )
    assert status == 200
    by_id = {slot_api_id(s.id): s for s in world.slots_for_clinic(clinic.id)}
    assert body["total"] == len(by_id)
    for item in body["resultats"]:
        truth = by_id[item["id"]]
        start = datetime.fromisoformat(item["debut"]).replace(tzinfo=ZoneInfo(clinic.time_zone))
        assert start.utcoffset() == truth.start.utcoffset()
        assert start.timestamp() == truth.start.timestamp()
        if offset is not None:
            assert start.utcoffset() == offset


async def test_local_bounds_are_read_in_each_clinics_zone(
    world: World, client: TestClient[Any, Any]
) -> None:
    """09:00 to 09:00 local: Blanc-Sablon's 09:00 slots (08:00 in Montreal in winter) and
    Montreal's, never Montreal's 09:00 instant in Blanc-Sablon (10:00 there)."""
    blanc_sablon = next(c for c in world.clinics_for("rest") if c.city == "Blanc-Sablon")
    nine = next(
        s.start.replace(tzinfo=None)
        for s in world.slots_for_clinic(blanc_sablon.id)
        if (s.start.hour, s.start.minute) == (9, 0) and s.start.month == 11
    )
    window = {"debut_min": nine.isoformat(), "debut_max": nine.isoformat()}
    status, body = await get(client, "/api/v1/disponibilites", limite="500", **window)
    assert status == 200
    expected = sorted(
        (
            s
            for c in world.clinics_for("rest")
            for s in world.slots_for_clinic(c.id)
            if s.start.replace(tzinfo=None) == nine
        ),
        key=lambda s: (s.start, s.id),
    )
    assert any(s.clinic_id == blanc_sablon.id for s in expected)
    assert [i["id"] for i in body["resultats"]] == [slot_api_id(s.id) for s in expected]
    assert {i["debut"] for i in body["resultats"]} == {nine.isoformat()}


@pytest.mark.parametrize(
    "params",
    [
        {"limite": "501"},
        {"limite": "0"},
        {"page": "0"},
        {"page": "deux"},
        {"debut_min": "2026-10-28T08:00:00-04:00"},
        {"debut_min": "demain"},
        {"debut_min": "2026-10-29T00:00:00", "debut_max": "2026-10-28T00:00:00"},
        {"types": "regulier,chirurgie"},
        {"statut": "occupe"},
        {"lat": "45.5", "lng": "-73.6"},
        {"lat": "45.5", "lng": "-73.6", "rayon_km": "0"},
        {"lat": "nan", "lng": "-73.6", "rayon_km": "5"},
        {"region": "18"},
        {"cliniques": "1001,abc"},
        {"medecins": ","},
    ],
)
async def test_bad_parameters_are_400_json(
    params: dict[str, str], client: TestClient[Any, Any]
) -> None:
    status, body = await get(client, "/api/v1/disponibilites", **params)
    assert status == 400
    assert isinstance(body["erreur"], str) and body["erreur"]


async def test_unknown_path_is_404_json(client: TestClient[Any, Any]) -> None:
    status, body = await get(client, "/api/v1/rendez-vous")
    assert status == 404 and "erreur" in body


@pytest.mark.parametrize("headers", [{}, {"X-Cle-Api": "mauvaise"}, {"X-Cle-Api": "clé"}])
async def test_missing_or_wrong_key_is_401_json(
    headers: dict[str, str], client: TestClient[Any, Any]
) -> None:
    for path in ("/api/v1/cliniques", "/api/v1/medecins", "/api/v1/disponibilites"):
        async with client.get(path, headers=headers) as response:
            assert response.status == 401
            assert "erreur" in await response.json()


async def test_hammering_gets_429_with_retry_after_and_stats_count_it(world: World) -> None:
    app = build_app(world, api_key=KEY, rate_limit_rps=0.5, rate_limit_burst=3)
    async with TestClient(TestServer(app)) as client:
        statuses = []
        for _ in range(5):
            async with client.get("/api/v1/medecins", headers=HEADERS) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
                    assert "erreur" in await response.json()
        assert statuses == [200, 200, 200, 429, 429]
        async with client.get("/api/v1/medecins") as response:
            assert response.status == 401  # no key: refused before the bucket
        for _ in range(2):
            async with client.get("/_stats") as response:
                assert await response.json() == {"requests": 6}


def test_main_reads_the_key_from_the_environment_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, API_KEY_ENV: KEY, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "examples.demo_rest", "--port", str(port), "--scale", "0.01"]
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "demo did not start"
                time.sleep(0.05)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/cliniques?limite=1", headers=HEADERS
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def test_main_without_a_key_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "examples.demo_rest", "--scale", "0.01"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert API_KEY_ENV in done.stderr
