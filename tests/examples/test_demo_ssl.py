"""The demo SMART Scheduling Links publisher: the feed, its HTTP face, its changes.

Also the world's third system and density knobs, which exist for this publisher.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import sys
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from examples.demo_ssl import build_app
from examples.demo_ssl.feed import (
    MANIFEST_NAME,
    SLOT_CAPACITY_URL,
    format_transaction_time,
    slot_file_name,
    write_feed,
)
from examples.demo_ssl.publisher import Publisher
from examples.world import CLINIC_PERMIT_SYSTEM, World
from sources.fhir.resources import BOOKING_DEEP_LINK_URL, BOOKING_PHONE_URL
from sources.timeutil import MONTREAL, read_upstream_datetime
from tests.conftest import TEST_NOW, serve
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
MAX_AGE = 30
RESOURCE_TYPES = {"Location", "Practitioner", "PractitionerRole", "Schedule", "Slot"}


@pytest.fixture
def publisher(world: World, tmp_path: Path) -> Publisher:
    return Publisher(world, tmp_path / "feed")


@pytest.fixture
async def ssl(publisher: Publisher) -> AsyncIterator[Client]:
    async with serve(build_app(publisher, max_age_s=MAX_AGE)) as server, Client(server) as client:
        yield client


class Client:
    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.manifest_url = str(server.make_url(f"/{MANIFEST_NAME}"))

    async def __aenter__(self) -> Client:
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def get(
        self, url: str, status: int | None = 200, **kwargs: Any
    ) -> tuple[bytes, aiohttp.ClientResponse]:
        """The body and the response; ``status=None`` takes any status."""
        async with self.session.get(url, **kwargs) as response:
            body = await response.read()
            assert status is None or response.status == status, body[:300]
            return body, response

    async def manifest(self, since: str | None = None) -> dict[str, Any]:
        params = {} if since is None else {"_since": since}
        body, _ = await self.get(self.manifest_url, params=params)
        manifest: dict[str, Any] = json.loads(body)
        return manifest

    async def resources(self, url: str) -> list[dict[str, Any]]:
        body, response = await self.get(url)
        assert response.content_type == "application/fhir+ndjson"
        return [json.loads(line) for line in body.decode().splitlines()]


def world_slots(world: World, clinics: list[Any]) -> list[Any]:
    return [s for c in clinics for s in world.slots_for_clinic(c.id)]


def names(manifest: dict[str, Any]) -> list[str]:
    return [o["url"].rsplit("/", 1)[1] for o in manifest["output"]]


# -- the feed over HTTP --------------------------------------------------------------


async def test_manifest_follows_the_spec_and_every_output_is_fetchable(
    ssl: Client, world: World, publisher: Publisher
) -> None:
    manifest = await ssl.manifest()

    assert set(manifest) == {"transactionTime", "request", "output", "error"}
    assert manifest["request"] == ssl.manifest_url
    assert manifest["error"] == []
    assert manifest["transactionTime"].endswith("Z")
    assert datetime.fromisoformat(manifest["transactionTime"]) == publisher.transaction_time
    assert {o["type"] for o in manifest["output"]} == RESOURCE_TYPES
    slot_outputs = [o for o in manifest["output"] if o["type"] == "Slot"]
    assert len(slot_outputs) > 1
    assert all(o["extension"] == {"state": ["QC"]} for o in slot_outputs)

    by_type: dict[str, list[dict[str, Any]]] = {t: [] for t in RESOURCE_TYPES}
    for output in manifest["output"]:
        assert output["url"].startswith(str(ssl.server.make_url("/data/")))
        resources = await ssl.resources(output["url"])
        assert {r["resourceType"] for r in resources} == {output["type"]}
        assert len(resources) == publisher.feed.file(output["url"].rsplit("/", 1)[1]).resources
        by_type[output["type"]] += resources

    clinics = world.clinics_for("ssl")
    assert sorted(r["id"] for r in by_type["Location"]) == sorted(c.id for c in clinics)
    ids = {t: {r["id"] for r in rs} for t, rs in by_type.items()}
    for schedule in by_type["Schedule"]:
        location, role = (a["reference"].split("/", 1) for a in schedule["actor"])
        assert (location[0], role[0]) == ("Location", "PractitionerRole")
        assert location[1] in ids["Location"] and role[1] in ids["PractitionerRole"]
    for role in by_type["PractitionerRole"]:
        assert role["practitioner"]["reference"].split("/")[1] in ids["Practitioner"]
    slots = by_type["Slot"]
    assert all(s["schedule"]["reference"].split("/")[1] in ids["Schedule"] for s in slots)

    expected = world_slots(world, clinics)
    assert Counter(s["status"] for s in slots) == {
        "free": sum(s.free for s in expected),
        "busy": sum(not s.free for s in expected),
    }
    for slot in slots:
        urls = {e["url"] for e in slot.get("extension", [])}
        assert urls == (
            {BOOKING_DEEP_LINK_URL, BOOKING_PHONE_URL} if slot["status"] == "free" else set()
        )
        assert datetime.fromisoformat(slot["start"]) < datetime.fromisoformat(slot["end"])


async def test_conditional_requests_get_304_and_every_answer_says_how_long_to_cache(
    ssl: Client, publisher: Publisher
) -> None:
    slot_file = publisher.feed.of_type("Slot")[0].name
    for url in (ssl.manifest_url, str(ssl.server.make_url(f"/data/{slot_file}"))):
        body, first = await ssl.get(url)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert first.headers["Cache-Control"] == f"max-age={MAX_AGE}"
        assert body

        body, response = await ssl.get(url, 304, headers={"If-None-Match": etag})
        assert body == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == f"max-age={MAX_AGE}"
        await ssl.get(url, 304, headers={"If-None-Match": f'"other", W/{etag}'})
        await ssl.get(url, 304, headers={"If-Modified-Since": modified})
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
        await ssl.get(url, 200, headers={"If-None-Match": '"other"', "If-Modified-Since": modified})
        await ssl.get(url, 200, headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})
        async with ssl.session.head(url) as head:
            assert head.status == 200 and head.headers["ETag"] == etag


async def test_an_update_moves_transaction_time_and_rewrites_only_the_files_it_touched(
    ssl: Client, publisher: Publisher
) -> None:
    before = await ssl.manifest()
    etags = {}
    for output in before["output"]:
        _, response = await ssl.get(output["url"])
        etags[output["url"]] = response.headers["ETag"]

    booked = publisher.book(3, now=TEST_NOW)
    after = await ssl.manifest()

    assert len(booked) == 3 and all(s.free for s in booked)
    assert after["transactionTime"] > before["transactionTime"]
    assert names(after) == names(before)
    changed = set()
    for url, etag in etags.items():
        _, response = await ssl.get(url, None, headers={"If-None-Match": etag})
        assert response.status in (200, 304)
        if response.status == 200:
            changed.add(url.rsplit("/", 1)[1])
    touched = {publisher.clinics_by_id[s.clinic_id].region for s in booked}
    assert changed == {slot_file_name(region) for region in touched}
    status = {}
    for name in changed:
        for slot in await ssl.resources(str(ssl.server.make_url(f"/data/{name}"))):
            status[slot["id"]] = slot["status"]
    assert {status[s.id] for s in booked} == {"busy"}


async def test_since_lists_only_the_deltas_published_after_it(
    ssl: Client, publisher: Publisher
) -> None:
    first = (await ssl.manifest())["transactionTime"]
    assert (await ssl.manifest(since=first))["output"] == []

    booked = publisher.book(2, now=TEST_NOW)
    after_booking = (await ssl.manifest())["transactionTime"]
    added = publisher.add(3)

    both = await ssl.manifest(since=first)
    assert [o["type"] for o in both["output"]] == ["Slot", "Slot"]
    assert both["transactionTime"] == format_transaction_time(publisher.transaction_time)
    [booking, adding] = [await ssl.resources(o["url"]) for o in both["output"]]
    assert {(s["id"], s["status"]) for s in booking} == {(s.id, "busy") for s in booked}
    assert {(s["id"], s["status"]) for s in adding} == {(s.id, "free") for s in added}
    assert all(
        {e["url"] for e in s["extension"]} == {BOOKING_DEEP_LINK_URL, BOOKING_PHONE_URL}
        for s in adding
    )
    only_added = await ssl.manifest(since=after_booking)
    assert [await ssl.resources(o["url"]) for o in only_added["output"]] == [adding]

    # The same instant in Montreal time, its "+" or "-" offset unencoded, or without one.
    local = datetime.fromisoformat(after_booking).astimezone(MONTREAL)
    for spelling in (local.isoformat(), local.replace(tzinfo=None).isoformat()):
        assert (await ssl.manifest(since=spelling))["output"] == only_added["output"]
    utc_plus = after_booking.replace("Z", "+00:00")
    body, _ = await ssl.get(f"{ssl.manifest_url}?_since={utc_plus}")
    assert json.loads(body)["output"] == only_added["output"]

    everything = await ssl.manifest(since="2020-01-01T00:00:00Z")
    assert names(everything) == names(await ssl.manifest())
    assert "slots-delta" not in " ".join(names(everything))
    await ssl.get(ssl.manifest_url, 400, params={"_since": "last tuesday"})


async def test_without_since_the_full_files_hold_the_current_state(
    ssl: Client, publisher: Publisher, world: World
) -> None:
    booked = {s.id for s in publisher.book(4, now=TEST_NOW)}
    added = {s.id for s in publisher.add(5)}
    slots = {}
    for output in (await ssl.manifest())["output"]:
        if output["type"] == "Slot":
            slots.update({s["id"]: s["status"] for s in await ssl.resources(output["url"])})

    assert {slots[i] for i in booked} == {"busy"}
    assert {slots[i] for i in added} == {"free"}
    free_in_world = sum(s.free for s in world_slots(world, world.clinics_for("ssl")))
    assert Counter(slots.values())["free"] == free_in_world - len(booked) + len(added)
    assert publisher.feed.slots.free == free_in_world - len(booked) + len(added)


def test_transaction_time_strictly_increases_however_fast_the_updates(
    publisher: Publisher,
) -> None:
    times = [publisher.transaction_time]
    for n in range(6):
        publisher.book(1, now=TEST_NOW) if n % 2 else publisher.add(1)
        times.append(publisher.transaction_time)
    assert times == sorted(set(times))
    assert [p.transaction_time for p in publisher.publications] == times[1:]


async def test_a_directory_is_served_as_a_static_host_serves_it(
    world: World, tmp_path: Path
) -> None:
    feed = write_feed(world, tmp_path, base_url="https://somewhere.example")
    async with serve(build_app(tmp_path)) as server, Client(server) as ssl:
        manifest = await ssl.manifest()
        assert manifest["transactionTime"] == format_transaction_time(feed.transaction_time)
        assert names(manifest) == [f.name for f in feed.files]
        for output, name in zip(manifest["output"], names(manifest), strict=True):
            assert output["url"] == str(server.make_url(f"/data/{name}"))
            assert len(await ssl.resources(output["url"])) == feed.file(name).resources
        # A static host knows nothing of _since: the full feed.
        since = await ssl.manifest(since=manifest["transactionTime"])
        assert since["output"] == manifest["output"]


async def test_unknown_files_and_paths_are_404(ssl: Client) -> None:
    for path in ("/data/nope.ndjson", "/data/..%2Fsecrets.ndjson", "/data/.locations.ndjson.tmp",
                 "/data/%24bulk-publish", "/bulk-publish"):  # fmt: skip
        await ssl.get(str(ssl.server.make_url(path)), 404)
    body, _ = await ssl.get(str(ssl.server.make_url("/%24bulk-publish")))
    assert json.loads(body)["output"]


async def test_stats_count_every_request_but_their_own(ssl: Client) -> None:
    manifest = await ssl.manifest()
    etag = (await ssl.get(manifest["output"][0]["url"]))[1].headers["ETag"]
    await ssl.get(manifest["output"][0]["url"], 304, headers={"If-None-Match": etag})
    await ssl.get(str(ssl.server.make_url("/data/nope.ndjson")), 404)
    for _ in range(2):
        body, _ = await ssl.get(str(ssl.server.make_url("/_stats")))
        assert json.loads(body) == {"requests": 4}


# -- what real publishers send ---------------------------------------------------------


def instant(stamp: str) -> datetime:
    """A time of the demo feed, which always writes its offset (Montreal never decides)."""
    value = read_upstream_datetime(stamp)
    assert value.tzinfo is not None, stamp
    return value


def read_feed(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every line of a feed, good or bad, as a tolerant client would sort them."""
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    lines: dict[str, list[Any]] = {}
    for output in manifest["output"]:
        name = output["url"].rsplit("/", 1)[1]
        lines[name] = []
        for line in (directory / name).read_text().splitlines():
            try:
                lines[name].append(json.loads(line))
            except json.JSONDecodeError:
                lines[name].append(None)
    return manifest, lines


def test_deviations_write_the_malformed_lines_they_count(world: World, tmp_path: Path) -> None:
    feed = write_feed(world, tmp_path, deviations=True)
    manifest, lines = read_feed(tmp_path)

    assert {o["extension"]["state"] for o in manifest["output"] if o["type"] == "Slot"} == {"QC"}
    assert manifest["currentAsOf"] == manifest["transactionTime"]
    good = {t: {r["id"] for f in feed.of_type(t) for r in lines[f.name] if r and "id" in r}
            for t in RESOURCE_TYPES}  # fmt: skip
    for file in feed.files:
        found: Counter[str] = Counter()
        for resource in lines[file.name]:
            if resource is None:
                found["bad_json"] += 1
            elif resource["resourceType"] == "Schedule":
                actors = [a["reference"].split("/", 1) for a in resource["actor"]]
                if any(t == "Location" and i not in good["Location"] for t, i in actors):
                    found["unknown_location"] += 1
            elif resource["resourceType"] == "Slot":
                if resource["schedule"]["reference"].split("/", 1)[1] not in good["Schedule"]:
                    found["unknown_schedule"] += 1
                elif "start" not in resource:
                    found["missing_start"] += 1
                elif instant(resource["end"]) <= instant(resource["start"]):
                    found["end_before_start"] += 1
        assert found == Counter(file.malformed), file.name
        assert len(lines[file.name]) == file.lines
    assert set(feed.malformed) == {
        "bad_json", "unknown_location", "unknown_schedule", "missing_start", "end_before_start"
    }  # fmt: skip
    every_id = " ".join(good["Location"] | good["Schedule"] | good["Slot"])
    assert "_" in every_id and " " in every_id


def test_deviant_spellings_still_say_exactly_what_the_world_says(
    world: World, tmp_path: Path
) -> None:
    """Read back through bare offsets, missing seconds and capacities: the world's seats."""
    feed = write_feed(world, tmp_path, deviations=True)
    _, lines = read_feed(tmp_path)
    resources = [r for rs in lines.values() for r in rs if r]
    permits = {c.permit: c.id for c in world.clinics}
    clinic_of_location = {
        r["id"]: permits[r["identifier"][0]["value"]]
        for r in resources
        if r["resourceType"] == "Location" and r["identifier"][0]["system"] == CLINIC_PERMIT_SYSTEM
    }
    clinic_of_schedule = {
        r["id"]: clinic_of_location.get(r["actor"][0]["reference"].split("/", 1)[1])
        for r in resources
        if r["resourceType"] == "Schedule"
    }
    seats: Counter[tuple[str, datetime, str]] = Counter()
    spellings: Counter[str] = Counter()
    for slot in (r for r in resources if r["resourceType"] == "Slot"):
        clinic = clinic_of_schedule.get(slot["schedule"]["reference"].split("/", 1)[1])
        if clinic is None or "start" not in slot:
            continue
        start, end = instant(slot["start"]), instant(slot["end"])
        if end <= start:
            continue
        capacity = next(
            (e["valueInteger"] for e in slot.get("extension", []) if e["url"] == SLOT_CAPACITY_URL),
            1,
        )
        seats[(clinic, start, slot["status"])] += capacity
        spellings[spelling(slot["start"])] += 1

    expected: Counter[tuple[str, datetime, str]] = Counter(
        (s.clinic_id, s.start, "free" if s.free else "busy")
        for s in world_slots(world, world.clinics_for("ssl"))
    )
    assert seats == expected
    assert feed.slots.grouped > 0
    assert feed.slots.free_seats == sum(n for k, n in expected.items() if k[2] == "free")
    assert feed.slots.free < feed.slots.free_seats
    assert set(spellings) == {"iso", "bare offset", "no seconds", "no seconds, bare", "utc"}


def spelling(stamp: str) -> str:
    if stamp.endswith("Z"):
        return "utc"
    seconds = re.search(r"T\d\d:\d\d:\d\d", stamp) is not None
    bare = re.search(r"[+-]\d\d$", stamp) is not None
    return {(True, False): "iso", (True, True): "bare offset", (False, False): "no seconds",
            (False, True): "no seconds, bare"}[(seconds, bare)]  # fmt: skip


def test_the_feed_is_written_line_by_line_not_held_in_memory(tmp_path: Path) -> None:
    dense = World(0.01, sessions_per_day=3, free_share=0.75)
    tracemalloc.start()
    try:
        feed = write_feed(dense, tmp_path, clinics=dense.clinics)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = sum((tmp_path / f.name).stat().st_size for f in feed.files)
    assert feed.slots.free + feed.slots.busy > 20_000
    assert peak < size / 5, (peak, size)


# -- the world's third system and density knobs ------------------------------------------


def test_the_world_lists_a_share_of_clinics_on_ssl_alone_and_some_on_ssl_too() -> None:
    world = World(1.0)
    systems = Counter(c.systems for c in world.clinics)
    ssl_only = systems[("ssl",)] / len(world.clinics)
    others = [c for c in world.clinics if c.systems != ("ssl",)]
    also = sum("ssl" in c.systems for c in others) / len(others)

    assert 0.15 < ssl_only < 0.25
    assert 0.06 < also < 0.14
    assert all(c.systems and set(c.systems) <= {"fhir", "rest", "ssl"} for c in world.clinics)
    assert world.clinics_for("ssl") == [c for c in world.clinics if "ssl" in c.systems]


def test_density_knobs_add_sessions_and_free_slots_and_iter_slots_keeps_nothing() -> None:
    day = datetime(2026, 11, 23).date()
    base = World(0.01, first_day=day)
    dense = World(0.01, first_day=day, sessions_per_day=2, free_share=0.75)
    clinic = base.clinics[0].id

    generated = list(dense.iter_slots(clinic))
    assert dense._slots == {}
    assert sorted(generated, key=lambda s: (s.start, s.id)) == dense.slots_for_clinic(clinic)
    assert len({s.id for s in generated}) == len(generated)
    base_slots = base.slots_for_clinic(clinic)
    assert 1.7 < len(generated) / len(base_slots) < 2.3
    assert 0.65 < sum(s.free for s in generated) / len(generated) < 0.85
    by_physician_day: dict[tuple[str, object], list[Any]] = {}
    for s in generated:
        by_physician_day.setdefault((s.physician_id, s.start.date()), []).append(s)
    for day_slots in by_physician_day.values():  # two sessions never overlap
        day_slots.sort(key=lambda s: s.start)
        assert all(a.end <= b.start for a, b in itertools.pairwise(day_slots))
    with pytest.raises(ValueError, match="sessions_per_day"):
        World(0.01, sessions_per_day=4)
    with pytest.raises(ValueError, match="free_share"):
        World(0.01, free_share=1.5)


# -- the program --------------------------------------------------------------------------


async def test_main_serves_its_temporary_feed_and_removes_it_on_sigterm() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.demo_ssl", "--port", str(port), "--scale", "0.01",
        "--deviations", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        directory = Path(line.split(" written to ")[1].split(" in ")[0])
        assert await asyncio.to_thread(directory.is_dir)
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    url = f"http://127.0.0.1:{port}/$bulk-publish"
                    async with session.get(url) as response:
                        assert response.status == 200
                        assert (await response.json())["output"]
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the demo publisher never answered")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        assert not await asyncio.to_thread(directory.exists)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
