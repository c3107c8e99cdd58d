"""The SMART Scheduling Links adapter against publishers on loopback serving inline feeds."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from examples import demo_ssl
from examples.demo_ssl.publisher import Publisher as DemoPublisher
from examples.world import World
from sources.adapters import adapter_for
from sources.base import SourceConfig, SourceContext
from sources.errors import (
    AnswerTooLarge,
    ConfigError,
    SourceBadResponse,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
)
from sources.pool.fanout import SourcePool
from sources.pool.reads import slots_read
from sources.records import (
    AppointmentType,
    ClinicQuery,
    PhysicianQuery,
    ProblemSeverity,
    Region,
    SlotCheck,
    SlotQuery,
    SlotRecord,
    SlotState,
    SourceProtocol,
    SourceStatus,
)
from sources.smart_scheduling.adapter import SmartSchedulingSource
from sources.smart_scheduling.http import stream_ndjson
from sources.smart_scheduling.options import SmartSchedulingOptions
from sources.timeutil import MONTREAL
from tests.conftest import TEST_NOW, serve
from tests.ports import free_port

SSL = "http://fhir-registry.smarthealthit.org/StructureDefinition/"
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
MANIFEST = "/feed/$bulk-publish"
LOGGER = "passerelle.source.ssl-test"
T1 = "2031-03-01T12:00:00Z"
T2 = "2031-03-01T12:05:00Z"

# -- a publisher ----------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int
    at: float


@dataclass
class Publisher:
    """Serves a manifest and NDJSON files; answers conditional requests; records every hit."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    modified: dict[str, str] = field(default_factory=dict)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (type, path)
    transaction_time: str = T1
    extra: dict[str, Any] = field(default_factory=dict)  # more top-level manifest fields
    output_extra: dict[str, Any] = field(default_factory=dict)  # more fields in each output
    on_manifest: Callable[[web.Request], dict[str, Any] | None] | None = None
    cache_control: dict[str, str] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    hits: list[Hit] = field(default_factory=list)
    piece: int = 1 << 20  # bytes written at a time

    def put(self, path: str, *resources: dict[str, Any] | bytes) -> None:
        self.files[path] = ndjson(*resources)
        self.modified[path] = formatdate(time.time() + len(self.modified), usegmt=True)

    def publish(self, *outputs: tuple[str, str]) -> None:
        self.outputs = list(outputs)

    def etag(self, path: str) -> str:
        return '"' + hashlib.sha256(self.files[path]).hexdigest()[:16] + '"'

    def hits_of(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    def manifest(self, request: web.Request) -> dict[str, Any]:
        custom = self.on_manifest(request) if self.on_manifest else None
        if custom is not None:
            return custom
        return {
            "transactionTime": self.transaction_time,
            "request": self.base + MANIFEST,
            "output": [
                {"type": t, "url": self.base + p, **self.output_extra} for t, p in self.outputs
            ],
            "error": [],
            **self.extra,
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        status = self.fail.get(path)
        if path == MANIFEST and self.gate is not None:
            await self.gate.wait()
        if status is None:
            if path == MANIFEST:
                body = orjson.dumps(self.manifest(request))
                modified = None
            elif path in self.files:
                body, modified = self.files[path], self.modified[path]
            else:
                status = 404
        self.hits.append(
            Hit(path, dict(request.query), dict(request.headers), status or 200, time.monotonic())
        )
        if status is not None:
            return web.Response(status=status)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = {"ETag": etag}
        if modified:
            headers["Last-Modified"] = modified
        if path in self.cache_control:
            headers["Cache-Control"] = self.cache_control[path]
        if request.headers.get("If-None-Match") == etag:
            self.hits[-1].status = 304
            return web.Response(status=304, headers=headers)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        for start in range(0, len(body), self.piece):
            await response.write(body[start : start + self.piece])
            await asyncio.sleep(0)
        await response.write_eof()
        return response


@pytest.fixture
async def publisher() -> AsyncIterator[Publisher]:
    pub = Publisher()
    app = web.Application()
    app.router.add_get("/{tail:.*}", pub.handle)
    async with serve(app) as server:
        pub.base = str(server.make_url("")).rstrip("/")
        yield pub


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls every 50 ms; the once-a-minute rule off unless a test sets it."""
    monkeypatch.setattr(SmartSchedulingSource, "MIN_POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(SmartSchedulingSource, "DEFAULT_POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(SmartSchedulingSource, "MIN_FILE_INTERVAL_S", 0.0)
    monkeypatch.setattr(SmartSchedulingSource, "MAX_BACKOFF_S", 0.2)


def make_source(
    session: aiohttp.ClientSession, publisher: Publisher, **options: Any
) -> SmartSchedulingSource:
    return SmartSchedulingSource(
        SourceConfig(
            id="ssl-test",
            name="SSL test",
            protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
            url=publisher.base + MANIFEST,
            timeout_s=1.0,
            # Checked as a definition read from a file would be.
            options=SmartSchedulingOptions.parse(options, "source 'ssl-test'"),
        ),
        SourceContext(session=session, logger=logging.getLogger(LOGGER)),
    )


@pytest.fixture
async def source(
    session: aiohttp.ClientSession, publisher: Publisher
) -> AsyncIterator[SmartSchedulingSource]:
    adapter = make_source(session, publisher)
    yield adapter
    await adapter.aclose()


async def until(check: Callable[[], object], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def loaded(source: SmartSchedulingSource, loads: int = 1) -> None:
    """Start ``source`` if needed and wait until ``loads`` loads have completed since."""
    seen: list[object] = []

    def done() -> bool:
        report = source.last_load
        if report is not None and (not seen or seen[-1] is not report):
            seen.append(report)
        return len(seen) >= loads

    await source.start()
    await until(done)


# -- resources ------------------------------------------------------------------------


def ndjson(*resources: dict[str, Any] | bytes) -> bytes:
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in resources)


def location(
    lid: str, name: str = "Clinique du Plateau", postal: str = "H2X 1Y4"
) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": lid,
        "name": name,
        "telecom": [{"system": "phone", "value": "514-555-0100"}],
        "address": {
            "line": ["1 rue Rachel"],
            "city": "Montréal",
            "state": "QC",
            "postalCode": postal,
        },
        "position": {"latitude": 45.52, "longitude": -73.58},
    }


def practitioner(pid: str, given: str = "Marie", family: str = "Tremblay") -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "name": [{"given": [given], "family": family}],
    }


def role(rid: str, pid: str, lid: str) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": rid,
        "practitioner": {"reference": f"Practitioner/{pid}"},
        "location": [{"reference": f"Location/{lid}"}],
    }


def schedule(sid: str, *actors: str) -> dict[str, Any]:
    return {"resourceType": "Schedule", "id": sid, "actor": [{"reference": a} for a in actors]}


def slot(
    sid: str, sched: str, start: str, end: str | None = None, status: str = "free", **extra: Any
) -> dict[str, Any]:
    if end is None:
        end = (datetime.fromisoformat(start) + timedelta(minutes=15)).isoformat()
    return {
        "resourceType": "Slot",
        "id": sid,
        "schedule": {"reference": f"Schedule/{sched}"},
        "status": status,
        "start": start,
        "end": end,
        **extra,
    }


def booking(url: str | None = None, phone: str | None = None, capacity: int | None = None) -> Any:
    extension: list[dict[str, Any]] = []
    if url:
        extension.append({"url": SSL + "booking-deep-link", "valueUrl": url})
    if phone:
        extension.append({"url": SSL + "booking-phone", "valueString": phone})
    if capacity is not None:
        extension.append({"url": SSL + "slot-capacity", "valueInteger": capacity})
    return extension


def at(day: int, hour: int, minute: int = 0) -> str:
    return datetime(2031, 3, day, hour, minute, tzinfo=MONTREAL).isoformat()


WINDOW = SlotQuery(
    starts_after=datetime(2031, 1, 1, tzinfo=UTC),
    starts_before=datetime(2032, 1, 1, tzinfo=UTC),
    limit=100_000,
)


async def slots(source: SmartSchedulingSource, query: SlotQuery = WINDOW) -> list[SlotRecord]:
    return list((await source.search_slots(query)).slots)


def starts(records: list[SlotRecord]) -> list[str]:
    return [r.start.astimezone(MONTREAL).isoformat() for r in records]


def basic_feed(publisher: Publisher) -> None:
    """Two clinics; one physician through a PractitionerRole, one as a direct actor."""
    publisher.put(
        "/files/locations.ndjson", location("loc-1"), location("loc-2", "CMS Limoilou", "G1R 2L3")
    )
    publisher.put(
        "/files/people.ndjson",
        practitioner("dr-1"),
        role("role-1", "dr-1", "loc-1"),
        practitioner("dr-2", "Jean", "Gagnon"),
    )
    publisher.put(
        "/files/schedules.ndjson",
        schedule("sch-1", "Location/loc-1", "PractitionerRole/role-1"),
        schedule("sch-2", "Location/loc-2", "Practitioner/dr-2"),
        schedule("sch-3", "Location/loc-2"),
    )
    publisher.put(
        "/files/slots.ndjson",
        slot(
            "s1", "sch-1", at(10, 9), extension=booking("https://book.example/s1", "514-555-0199")
        ),
        slot("s2", "sch-2", at(10, 10), extension=booking(capacity=12)),
        slot("s3", "sch-3", at(10, 11)),
    )
    publisher.publish(
        ("Location", "/files/locations.ndjson"),
        ("Practitioner", "/files/people.ndjson"),
        ("Schedule", "/files/schedules.ndjson"),
        ("Slot", "/files/slots.ndjson"),
    )


# -- ingestion ------------------------------------------------------------------------


async def test_a_clean_feed_is_ingested(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    await loaded(source)

    found = await slots(source)
    assert starts(found) == [at(10, 9), at(10, 10), at(10, 11)]
    s1, s2, s3 = found
    assert (s1.clinic_local_id, s1.physician_local_id) == ("loc-1", "dr-1")
    assert (s1.booking_url, s1.booking_phone, s1.capacity) == (
        "https://book.example/s1",
        "514-555-0199",
        None,
    )
    assert (s2.clinic_local_id, s2.physician_local_id, s2.capacity) == ("loc-2", "dr-2", 12)
    assert (s3.clinic_local_id, s3.physician_local_id) == ("loc-2", None)
    assert s1.end - s1.start == timedelta(minutes=15)
    assert {s.appointment_type for s in found} == {AppointmentType.ROUTINE}
    assert all(s.source_id == "ssl-test" for s in found)

    clinics = await source.search_clinics(ClinicQuery())
    assert [(c.local_id, c.address.region) for c in clinics] == [
        ("loc-1", Region.MONTREAL),
        ("loc-2", Region.CAPITALE_NATIONALE),
    ]
    assert clinics[0].phone == "514-555-0100"
    physicians = await source.get_physicians(PhysicianQuery(local_ids=("dr-1", "dr-2")))
    assert [(p.local_id, p.display_name, p.clinic_local_ids) for p in physicians] == [
        ("dr-1", "Marie Tremblay", ("loc-1",)),
        ("dr-2", "Jean Gagnon", ()),
    ]
    assert source.status_hint() is SourceStatus.UP
    assert source.data_as_of == datetime(2031, 3, 1, 12, tzinfo=UTC)
    assert source.skipped_records == 0


async def test_what_publishers_do_in_the_wild_is_accepted(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    publisher.put(
        "/files/slots.ndjson",
        # Bare hour offset (the spec's own example), no seconds, and no offset at all.
        slot("slot 1", "sch_1", "2031-03-10T15:00:00-05", "2031-03-10T15:20:00-05", color="blue"),
        slot("slot_2", "sch_1", "2031-03-10T16:00-05", "2031-03-10T16:20-05"),
        slot("slot.3", "sch_1", "2031-07-10T09:00", "2031-07-10T09:30"),
        slot(
            "s4",
            "sch_1",
            at(11, 9),
            appointmentType={"coding": [{"system": V2_0276, "code": "WALKIN"}]},
        ),
        slot(
            "s5",
            "sch_1",
            at(11, 10),
            serviceType=[
                {"coding": [{"system": "http://example.org/service", "code": "covid19"}]},
                {"coding": [{"system": "urn:passerelle:appointment-type", "code": "NEW_PATIENT"}]},
            ],
        ),
    )
    # Slots before the schedules and locations they refer to; CRLF, a BOM, blank lines.
    publisher.files["/files/schedules.ndjson"] = (
        b"\xef\xbb\xbf"
        + orjson.dumps(schedule("sch_1", "Location/loc 1") | {"serviceType": [{"text": "x"}]})
        + b"\r\n\r\n"
    )
    publisher.modified["/files/schedules.ndjson"] = formatdate(usegmt=True)
    publisher.put("/files/locations.ndjson", location("loc 1") | {"unknownField": {"a": 1}})
    publisher.publish(
        ("Slot", "/files/slots.ndjson"),
        ("Schedule", "/files/schedules.ndjson"),
        ("Location", "/files/locations.ndjson"),
    )
    publisher.extra = {"currentAsOf": "2031-03-01T11:58:00Z", "publisherName": "Clinique"}
    publisher.output_extra = {"extension": {"state": "QC"}}  # the spec's example: ["MA"]

    await loaded(source)

    found = await slots(source)
    assert [s.start for s in found] == [
        datetime(2031, 3, 10, 20, tzinfo=UTC),
        datetime(2031, 3, 10, 21, tzinfo=UTC),
        datetime(2031, 3, 11, 13, tzinfo=UTC),
        datetime(2031, 3, 11, 14, tzinfo=UTC),
        datetime(2031, 7, 10, 13, tzinfo=UTC),  # naive: Montreal, summer time
    ]
    assert [s.appointment_type for s in found] == [
        AppointmentType.ROUTINE,
        AppointmentType.ROUTINE,
        AppointmentType.WALK_IN,
        AppointmentType.NEW_PATIENT,
        AppointmentType.ROUTINE,
    ]
    assert {s.clinic_local_id for s in found} == {"loc 1"}
    assert source.data_as_of == datetime(2031, 3, 1, 11, 58, tzinfo=UTC)
    assert source.skipped_records == 0


async def test_malformed_lines_and_unknown_references_are_skipped_counted_and_logged_once(
    source: SmartSchedulingSource,
    publisher: Publisher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(SmartSchedulingSource, "MAX_LINE_BYTES", 4096)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher.put(
        "/files/locations.ndjson",
        location("loc-1"),
        location("ottawa", postal="K1A 0B1"),  # outside Quebec: counted apart (test_places.py)
        b'{"resourceType": "Location", ',  # cut short
        {k: v for k, v in location("x").items() if k != "id"},
    )
    publisher.put(
        "/files/schedules.ndjson",
        schedule("sch-1", "Location/loc-1"),
        schedule("sch-2", "Location/nowhere"),  # unknown Location
        schedule("sch-3", "Location/loc-1", "PractitionerRole/ghost"),  # unknown role
        schedule("sch-4"),  # no actor
    )
    secret = "https://book.example/opaque-handle-4711"
    publisher.put(
        "/files/slots.ndjson",
        slot("ok", "sch-1", at(10, 9), extension=booking(secret)),
        slot("busy", "sch-1", at(10, 10), status="busy"),
        slot("on-skipped-schedule", "sch-2", at(10, 11)),
        slot("on-unknown-schedule", "none", at(10, 12)),
        slot("backwards", "sch-1", at(10, 13), at(10, 12)),
        slot("bad-date", "sch-1", "next tuesday", at(10, 13)),
        slot("unknown-type", "sch-1", at(10, 14), appointmentType={"coding": [{"code": "ZZZ"}]}),
        b"[1, 2]",
        slot("long", "sch-1", at(10, 15), description="x" * 10_000),  # over the line cap
        slot("longer", "sch-1", at(10, 15), description="x" * 200_000),  # over a whole chunk
        slot("no-seats", "sch-1", at(10, 16), extension=booking(capacity=0)),
        {k: v for k, v in slot("no-status", "sch-1", at(10, 17)).items() if k != "status"},
        slot("on-role-less-schedule", "sch-3", at(10, 18)),
    )
    publisher.publish(
        ("Slot", "/files/slots.ndjson"),
        ("Location", "/files/locations.ndjson"),
        ("Schedule", "/files/schedules.ndjson"),
    )
    await loaded(source)

    assert [s.start for s in await slots(source)] == [datetime.fromisoformat(at(10, 9))]
    report = source.last_load
    assert report is not None
    counts = {
        f.name: (f.lines, f.kept, f.busy, f.malformed, f.unresolved, f.skipped)
        for f in report.files
    }
    assert counts == {
        "/files/slots.ndjson": (13, 1, 1, 8, 3, 11),
        "/files/locations.ndjson": (4, 1, 0, 2, 0, 2),
        "/files/schedules.ndjson": (4, 1, 0, 1, 2, 3),
    }
    assert source.skipped_records == report.skipped == 16
    # Malformed records are a WARNING: the source stays UP, the operator sees where.
    [malformed, _outside] = source.problems
    assert (malformed.code, malformed.severity, malformed.count) == (
        "MALFORMED_RECORDS",
        ProblemSeverity.WARNING,
        16,
    )
    assert malformed.samples[0] == "/files/slots.ndjson: 8 malformed, 3 unresolved"
    assert source.status_hint() is SourceStatus.UP
    for name in counts:
        assert sum(r.getMessage().startswith(name + ":") for r in caplog.records) == 1, name
    assert secret not in caplog.text and "opaque" not in caplog.text and "K1A" not in caplog.text


async def test_busy_slots_are_never_stored(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    publisher.put(
        "/files/slots.ndjson",
        slot("s1", "sch-1", at(10, 9)),
        slot("b1", "sch-1", at(10, 10), status="busy"),
        slot("b2", "sch-3", at(10, 11), status="busy-unavailable"),
        slot("b3", "sch-3", at(10, 12), status="entered-in-error"),
    )
    await loaded(source)

    assert starts(await slots(source)) == [at(10, 9)]
    assert source._current().slot_count == 1
    report = source.last_load
    assert report is not None
    assert [(f.busy, f.skipped) for f in report.files if f.name.endswith("slots.ndjson")] == [
        (3, 0)
    ]


# -- polling and caching ------------------------------------------------------------------


async def test_validators_are_sent_and_a_304_reuses_the_file(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    await loaded(source, 3)

    first = publisher.hits_of("/files/slots.ndjson")[0]
    later = publisher.hits_of("/files/slots.ndjson")[1:]
    assert first.status == 200 and "If-None-Match" not in first.headers
    assert later and all(h.status == 304 for h in later)
    assert later[0].headers["If-None-Match"] == publisher.etag("/files/slots.ndjson")
    assert later[0].headers["If-Modified-Since"] == publisher.modified["/files/slots.ndjson"]
    assert "If-None-Match" in publisher.hits_of(MANIFEST)[1].headers
    assert len(await slots(source)) == 3
    report = source.last_load
    assert report is not None and {f.how for f in report.files} == {"not modified"}


async def test_a_changed_file_is_fetched_again_and_the_update_shows(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    await loaded(source)
    assert starts(await slots(source)) == [at(10, 9), at(10, 10), at(10, 11)]

    publisher.put(
        "/files/slots.ndjson",
        slot("s2", "sch-2", at(10, 10)),
        slot("s4", "sch-3", at(12, 8)),
        slot("s5", "sch-1", at(12, 9)),
    )
    publisher.transaction_time = T2
    await until(lambda: source.data_as_of == datetime(2031, 3, 1, 12, 5, tzinfo=UTC))

    assert starts(await slots(source)) == [at(10, 10), at(12, 8), at(12, 9)]
    report = source.last_load
    assert report is not None
    assert {f.name: f.how for f in report.files} == {
        "/files/locations.ndjson": "not modified",
        "/files/people.ndjson": "not modified",
        "/files/schedules.ndjson": "not modified",
        "/files/slots.ndjson": "fetched",
    }


async def test_cache_control_max_age_of_a_file_is_honoured(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    publisher.cache_control["/files/slots.ndjson"] = "public, max-age=1"
    await loaded(source)
    await asyncio.sleep(0.5)

    assert len(publisher.hits_of(MANIFEST)) >= 4
    assert len(publisher.hits_of("/files/schedules.ndjson")) >= 4  # no max-age: revalidated
    assert len(publisher.hits_of("/files/slots.ndjson")) == 1
    await until(lambda: len(publisher.hits_of("/files/slots.ndjson")) == 2)
    first, second = publisher.hits_of("/files/slots.ndjson")
    assert second.at - first.at >= 0.95


async def test_cache_control_max_age_of_the_manifest_is_honoured(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    publisher.cache_control[MANIFEST] = "max-age=1"
    await loaded(source)
    await asyncio.sleep(0.5)

    assert len(publisher.hits_of(MANIFEST)) == 1
    await until(lambda: len(publisher.hits_of(MANIFEST)) == 2)
    first, second = publisher.hits_of(MANIFEST)
    assert second.at - first.at >= 0.95


async def test_no_file_is_fetched_twice_within_the_minimum_interval(
    source: SmartSchedulingSource, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SmartSchedulingSource, "MIN_FILE_INTERVAL_S", 0.4)
    basic_feed(publisher)
    publisher.cache_control["/files/slots.ndjson"] = "no-cache"
    await loaded(source)
    await asyncio.sleep(1.0)

    for path in (MANIFEST, "/files/slots.ndjson", "/files/locations.ndjson"):
        times = [h.at for h in publisher.hits_of(path)]
        assert 2 <= len(times) <= 3, path
        assert all(b - a >= 0.35 for a, b in itertools.pairwise(times)), path


# -- _since --------------------------------------------------------------------------------


def delta_manifest(publisher: Publisher, since: str, time: str, **outputs: list[str]) -> Any:
    return {
        "transactionTime": time,
        "request": f"{publisher.base}{MANIFEST}?_since={since}",
        "output": [{"type": "Slot", "url": publisher.base + p} for p in outputs.get("slots", [])]
        + [{"type": "Location", "url": publisher.base + p} for p in outputs.get("locations", [])],
        "deleted": [
            {"type": "Bundle", "url": publisher.base + p} for p in outputs.get("deleted", [])
        ],
        "error": [],
    }


async def test_a_since_delta_is_applied_when_the_publisher_supports_it(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    publisher.put(
        "/files/slots.ndjson",
        slot("s1", "sch-1", at(10, 9)),
        slot("s2", "sch-2", at(10, 10)),
        slot("s3", "sch-3", at(10, 11)),
        slot("s6", "sch-3", at(10, 15)),
    )
    publisher.put(
        "/files/delta.ndjson",
        slot("s2", "sch-2", at(10, 10), status="busy"),  # booked
        slot("s3", "sch-3", at(10, 11, 30)),  # moved
        slot("s4", "sch-1", at(11, 9), extension=booking("https://book.example/s4")),  # new
    )
    publisher.put(
        "/files/deleted.ndjson",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": "Slot/s6"}}],
        },
    )

    def honour_since(request: web.Request) -> dict[str, Any] | None:
        since = request.query.get("_since")
        if since == T1:
            return delta_manifest(
                publisher, T1, T2, slots=["/files/delta.ndjson"], deleted=["/files/deleted.ndjson"]
            )
        if since == T2:
            return delta_manifest(publisher, T2, T2)
        return None

    publisher.on_manifest = honour_since
    await loaded(source, 3)

    assert publisher.hits_of(MANIFEST)[1].query == {"_since": T1}
    assert publisher.hits_of(MANIFEST)[2].query == {"_since": T2}
    found = await slots(source)
    assert starts(found) == [at(10, 9), at(10, 11, 30), at(11, 9)]
    assert found[2].booking_url == "https://book.example/s4"
    assert found[2].physician_local_id == "dr-1"
    assert len(publisher.hits_of("/files/slots.ndjson")) == 1
    assert len(publisher.hits_of("/files/delta.ndjson")) == 1
    report = source.last_load
    assert report is not None and report.delta and report.slots == 3
    assert source.data_as_of == datetime(2031, 3, 1, 12, 5, tzinfo=UTC)


async def test_a_delta_keeps_an_identical_discrete_slot(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    # The index keeps one slot per (clinic, physician, start, end, type): booking one of
    # two identical discrete slots must not take the other away.
    basic_feed(publisher)
    publisher.put(
        "/files/slots.ndjson",
        slot("a", "sch-3", at(10, 9)),
        slot("b", "sch-3", at(10, 9)),
    )
    publisher.put("/files/delta.ndjson", slot("a", "sch-3", at(10, 9), status="busy"))
    publisher.on_manifest = lambda request: (
        delta_manifest(publisher, T1, T2, slots=["/files/delta.ndjson"])
        if request.query.get("_since") == T1
        else None
    )
    await loaded(source, 2)

    assert starts(await slots(source)) == [at(10, 9)]
    report = source.last_load
    assert report is not None and report.delta


async def test_a_publisher_ignoring_since_gets_a_full_reload(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    await loaded(source)
    publisher.put("/files/slots.ndjson", slot("s9", "sch-3", at(20, 9)))
    publisher.transaction_time = T2
    await until(lambda: source.data_as_of == datetime(2031, 3, 1, 12, 5, tzinfo=UTC))

    assert publisher.hits_of(MANIFEST)[1].query == {"_since": T1}
    assert starts(await slots(source)) == [at(20, 9)]
    report = source.last_load
    assert report is not None and not report.delta


async def test_a_delta_echoing_a_later_since_is_not_taken_as_a_delta(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    publisher.put("/files/delta.ndjson", slot("s9", "sch-3", at(20, 9)))
    publisher.on_manifest = lambda request: (
        delta_manifest(publisher, T2, T2, slots=["/files/delta.ndjson"])
        if "_since" in request.query
        else None
    )
    await loaded(source, 2)

    # Read as a full data set: the delta's one file is the whole feed now.
    report = source.last_load
    assert report is not None and not report.delta
    assert starts(await slots(source)) == []


async def test_a_delta_touching_locations_leads_to_a_full_reload(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    await loaded(source)
    publisher.put("/files/new-location.ndjson", location("loc-3", "Clinique Nouvelle"))
    publisher.put(
        "/files/locations.ndjson",
        location("loc-1"),
        location("loc-2", postal="G1R 2L3"),
        location("loc-3"),
    )
    publisher.transaction_time = T2
    publisher.on_manifest = lambda request: (
        delta_manifest(publisher, T1, T2, locations=["/files/new-location.ndjson"])
        if request.query.get("_since") == T1
        else None
    )
    await until(lambda: len(publisher.hits_of("/files/new-location.ndjson")) == 1)
    await until(lambda: len(source._current().search_clinics(ClinicQuery())) == 3)

    queries = [h.query for h in publisher.hits_of(MANIFEST)]
    assert queries[:3] == [{}, {"_since": T1}, {}]
    report = source.last_load
    assert report is not None and not report.delta


async def test_a_full_reload_after_deltas_asks_again_for_files_within_their_max_age(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    # The copy read before the deltas is older than what the deltas made of it.
    basic_feed(publisher)
    publisher.cache_control["/files/slots.ndjson"] = "max-age=600"
    publisher.put("/files/booked.ndjson", slot("s2", "sch-2", at(10, 10), status="busy"))
    publisher.put("/files/new-location.ndjson", location("loc-3", "Clinique Nouvelle"))

    def manifest(request: web.Request) -> dict[str, Any] | None:
        since = request.query.get("_since")
        if since == T1:
            return delta_manifest(publisher, T1, T2, slots=["/files/booked.ndjson"])
        if since == T2:
            return delta_manifest(publisher, T2, T2, locations=["/files/new-location.ndjson"])
        return None

    publisher.on_manifest = manifest
    await loaded(source, 2)
    assert starts(await slots(source)) == [at(10, 9), at(10, 11)]
    publisher.put(  # the booking, as the full files now tell it
        "/files/slots.ndjson", slot("s1", "sch-1", at(10, 9)), slot("s3", "sch-3", at(10, 11))
    )
    publisher.transaction_time = T2
    await until(lambda: len(publisher.hits_of("/files/slots.ndjson")) == 2)
    await until(lambda: (r := source.last_load) is not None and not r.delta)
    assert starts(await slots(source)) == [at(10, 9), at(10, 11)]
    assert [h.query for h in publisher.hits_of(MANIFEST)][:4] == [
        {},
        {"_since": T1},
        {"_since": T2},
        {},
    ]


# -- serving while loading -------------------------------------------------------------------


async def test_a_query_during_a_refresh_sees_the_old_or_the_new_feed_never_a_mix(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    def version(tag: str, day: int) -> None:
        first = datetime(2031, 3, day, 8, tzinfo=MONTREAL)
        for part in range(3):
            publisher.put(
                f"/files/slots-{part}.ndjson",
                *(
                    slot(
                        f"{part}-{i}",
                        ("sch-1", "sch-2", "sch-3")[i % 3],
                        (first + timedelta(minutes=15 * (part * 3000 + i))).isoformat(),
                        extension=booking(f"https://book.example/{tag}/{part}-{i}"),
                    )
                    for i in range(3000)
                ),
            )

    basic_feed(publisher)
    publisher.piece = 8192
    version("v1", 10)
    publisher.publish(
        *publisher.outputs[:3], *(("Slot", f"/files/slots-{p}.ndjson") for p in range(3))
    )
    await loaded(source)
    first = source.last_load

    seen: dict[str, int] = {}
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            result = await source.search_slots(
                SlotQuery(WINDOW.starts_after, WINDOW.starts_before, limit=50)
            )
            tags = {s.booking_url.split("/")[3] for s in result.slots if s.booking_url}
            assert len(tags) == 1 and result.total == 9000, (tags, result.total)
            tag = tags.pop()
            seen[tag] = seen.get(tag, 0) + 1
            await asyncio.sleep(0)

    hammers = [asyncio.create_task(hammer()) for _ in range(4)]
    version("v2", 11)
    publisher.transaction_time = T2
    # Generous: four hammering readers share the loop with the refresh on a busy machine.
    await until(
        lambda: source.last_load is not first and source.data_as_of.minute == 5,  # type: ignore[union-attr]
        within_s=30,
    )
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*hammers)
    assert set(seen) == {"v1", "v2"}
    assert seen["v1"] > 10  # queries ran while the refresh was under way


async def test_before_the_first_load_searches_fail_and_the_source_is_degraded(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    publisher.gate = asyncio.Event()
    assert source.status_hint() is SourceStatus.DEGRADED
    await source.start()
    await until(lambda: publisher.gate is not None and len(publisher.hits) == 0)
    await asyncio.sleep(0.05)

    assert source.status_hint() is SourceStatus.DEGRADED
    assert [(p.code, p.severity) for p in source.problems] == [
        ("FEED_NOT_LOADED", ProblemSeverity.LOSS)
    ]
    assert source.data_as_of is None and source.skipped_records is None
    with pytest.raises(SourceUnavailable, match="first load of the bulk feed in progress"):
        await source.search_slots(WINDOW)
    with pytest.raises(SourceUnavailable):
        await source.search_clinics(ClinicQuery())
    with pytest.raises(SourceUnavailable):
        await source.get_physicians(PhysicianQuery(local_ids=("dr-1",)))

    publisher.gate.set()
    await loaded(source)
    assert source.status_hint() is SourceStatus.UP
    assert source.problems == ()
    assert len(await slots(source)) == 3


async def test_a_failed_refresh_keeps_serving_the_previous_copy(
    source: SmartSchedulingSource, publisher: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    basic_feed(publisher)
    await loaded(source)
    publisher.fail["/files/slots.ndjson"] = 503
    publisher.put("/files/locations.ndjson", location("loc-1"))  # would drop loc-2's slots
    await until(lambda: source.status_hint() is SourceStatus.DEGRADED)

    assert len(await slots(source)) == 3
    assert source.data_as_of == datetime(2031, 3, 1, 12, tzinfo=UTC)
    assert "refresh failed (upstream answered HTTP 503); serving the previous copy" in caplog.text
    assert [p.code for p in source.problems] == ["REFRESH_FAILED"]

    del publisher.fail["/files/slots.ndjson"]
    await until(lambda: source.status_hint() is SourceStatus.UP)
    assert starts(await slots(source)) == [at(10, 9)]


async def test_a_failing_first_load_is_retried(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    publisher.fail[MANIFEST] = 500
    await source.start()
    await until(lambda: len(publisher.hits_of(MANIFEST)) >= 2)
    assert source.status_hint() is SourceStatus.DEGRADED
    with pytest.raises(SourceUnavailable):
        await source.search_slots(WINDOW)

    del publisher.fail[MANIFEST]
    await loaded(source)
    assert source.status_hint() is SourceStatus.UP


async def test_a_manifest_that_is_not_one_fails_the_load(
    source: SmartSchedulingSource, publisher: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    publisher.on_manifest = lambda request: {"resourceType": "OperationOutcome"}
    await source.start()
    await until(lambda: "the manifest has no 'output' list" in caplog.text)
    assert source.status_hint() is SourceStatus.DEGRADED


async def test_aclose_cancels_the_polling(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    await loaded(source, 2)
    task = source._task
    await source.aclose()

    assert task is not None and task.cancelled()
    polls = len(publisher.hits_of(MANIFEST))
    await asyncio.sleep(0.2)
    assert len(publisher.hits_of(MANIFEST)) == polls
    assert len(await slots(source)) == 3  # what was loaded stays readable


async def test_a_file_over_the_size_cap_is_refused_and_the_rest_loaded(
    session: aiohttp.ClientSession, publisher: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    basic_feed(publisher)
    publisher.put(
        "/files/slots.ndjson", *(slot(f"s{i}", "sch-3", at(10, 9, i % 60)) for i in range(100))
    )
    source = make_source(session, publisher, max_file_bytes=2000)
    try:
        await loaded(source)
        report = source.last_load
        assert report is not None
        assert {f.name: f.how for f in report.files}["/files/slots.ndjson"] == "failed"
        assert len(await source.search_clinics(ClinicQuery())) == 2
        assert await slots(source) == []
        assert source.status_hint() is SourceStatus.DEGRADED
        too_large = "upstream answer too large (over 2000 bytes)"
        assert f"/files/slots.ndjson: not read ({too_large})" in caplog.text
        [failed] = source.problems
        assert (failed.code, failed.severity) == ("FILE_FAILED", ProblemSeverity.LOSS)
        # The file as an operator can find it (its URL, without any query).
        assert failed.samples == (
            publisher.base + "/files/slots.ndjson: upstream answer too large (over 2000 bytes)",
        )
    finally:
        await source.aclose()


async def test_bad_options_are_refused(
    session: aiohttp.ClientSession, publisher: Publisher
) -> None:
    with pytest.raises(ConfigError, match="poll_interval_s"):
        make_source(session, publisher, poll_interval_s="often")
    with pytest.raises(ConfigError, match="max_file_bytes"):
        make_source(session, publisher, max_file_bytes=1.5)


# -- in the gateway -------------------------------------------------------------------------


async def test_the_pool_starts_the_source_and_shows_its_status(
    session: aiohttp.ClientSession, publisher: Publisher
) -> None:
    assert adapter_for(SourceProtocol.SMART_SCHEDULING_LINKS) is SmartSchedulingSource
    basic_feed(publisher)
    publisher.gate = asyncio.Event()
    config = make_source(session, publisher).config
    pool = SourcePool(session)
    await pool.sync([config])
    try:
        (view,) = pool.views()
        assert view.status is SourceStatus.DEGRADED
        publisher.gate.set()
        await until(lambda: pool.views()[0].status is SourceStatus.UP)
        (view,) = pool.views()
        assert view.skipped_records == 0
        assert view.data_as_of == datetime(2031, 3, 1, 12, tzinfo=UTC)
        outcome = await pool.fan_out(pool.enabled, lambda s: slots_read(WINDOW))
        assert len(outcome.results["ssl-test"].slots) == 3
    finally:
        await pool.aclose()


async def test_the_demo_publisher_is_loaded_and_its_deltas_applied(
    session: aiohttp.ClientSession, world: World, tmp_path: Path
) -> None:
    demo = DemoPublisher(world, tmp_path / "feed", deviations=True)
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
            first = source.last_load
            assert first is not None and not first.delta and first.slots > 0
            assert source.skipped_records == first.skipped > 0  # its deviations include bad lines
            booked = demo.book(3, now=TEST_NOW)
            await until(lambda: (r := source.last_load) is not None and r.delta)
            report = source.last_load
            assert (
                report is not None and report.slots == first.slots - len(booked) == first.slots - 3
            )
            assert len(await slots_in(source, world)) == report.slots
            added = demo.add(2)
            await until(lambda: source._current().slot_count == report.slots + len(added))
        finally:
            await source.aclose()


async def slots_in(source: SmartSchedulingSource, world: World) -> list[SlotRecord]:
    start = datetime.combine(world.first_day, datetime.min.time(), MONTREAL)
    query = SlotQuery(start - timedelta(days=1), start + timedelta(days=400), limit=1_000_000)
    return await slots(source, query)


# -- the streaming helper --------------------------------------------------------------------


def _handler(
    body: bytes, status: int = 200, chunked: bool = False
) -> Callable[..., Awaitable[Any]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=body, status=status)
        response = web.StreamResponse(status=status)
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    return handle


async def slow(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b'{"a": 1}\n')
    await asyncio.sleep(5)
    return response


async def truncated(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": "1000"})
    await response.prepare(request)
    await response.write(b'{"a": 1}\n{"b"')
    assert request.transport is not None
    request.transport.close()
    return response


@pytest.fixture
async def files() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/lines", _handler(b'{"a": 1}\r\n\n{"b": 2}\n{"c": 3}'))
    app.router.add_get("/big", _handler(b"x" * 5000))
    app.router.add_get("/big-chunked", _handler(b"x" * 5000, chunked=True))
    app.router.add_get("/slow", slow)
    app.router.add_get("/truncated", truncated)
    for code in (401, 404, 429, 500):
        app.router.add_get(f"/status/{code}", _handler(b"", code))
    async with serve(app) as server:
        yield str(server.make_url("")).rstrip("/")


async def read(url: str, max_bytes: int = 1 << 20, timeout_s: float = 1.0) -> list[bytes]:
    lines: list[bytes] = []
    async with aiohttp.ClientSession() as client:
        await stream_ndjson(
            client,
            "s1",
            url,
            headers={},
            timeout_s=timeout_s,
            deadline_s=5.0,
            max_bytes=max_bytes,
            max_line_bytes=1 << 16,
            on_line=lines.append,
        )
    return lines


async def test_streaming_splits_lines_and_skips_blank_ones(files: str) -> None:
    assert await read(files + "/lines") == [b'{"a": 1}', b'{"b": 2}', b'{"c": 3}']


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_streaming_refuses_a_file_over_the_cap(files: str, path: str) -> None:
    with pytest.raises(AnswerTooLarge):
        await read(files + path, max_bytes=4096)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/status/401", SourceUnavailable),
        ("/status/404", SourceBadResponse),
        ("/status/429", SourceUnavailable),
        ("/status/500", SourceUnavailable),
        ("/truncated", SourceBadResponse),
        ("/slow", SourceTimeout),
    ],
)
async def test_streaming_failures_map_to_source_errors(
    files: str, path: str, kind: type[SourceError]
) -> None:
    with pytest.raises(kind) as caught:
        await read(files + path, timeout_s=0.2)
    assert type(caught.value) is kind and caught.value.source_id == "s1"


async def test_streaming_from_a_closed_port_is_unavailable() -> None:
    with pytest.raises(SourceUnavailable):
        await read(f"http://127.0.0.1:{free_port()}/x.ndjson")


async def test_a_slot_is_checked_against_the_latest_load_as_of_the_feed_s_time(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    await loaded(source)
    first = {r.start.astimezone(MONTREAL).isoformat(): r for r in await slots(source)}
    s1, s2 = first[at(10, 9)], first[at(10, 10)]
    as_of = source.data_as_of
    assert await source.check_slot(s1) == SlotCheck(SlotState.FREE, as_of)
    moved = replace(s2, start=s2.start + timedelta(hours=1), end=s2.end + timedelta(hours=1))
    assert (await source.check_slot(moved)).state is SlotState.GONE
    # s1 taken at the publisher: gone once the feed says so, as of the new feed's time.
    publisher.put("/files/slots.ndjson", slot("s2", "sch-2", at(10, 10)))
    publisher.transaction_time = T2
    await until(lambda: source.data_as_of == datetime(2031, 3, 1, 12, 5, tzinfo=UTC))
    assert await source.check_slot(s1) == SlotCheck(SlotState.GONE, source.data_as_of)
    assert (await source.check_slot(s2)).state is SlotState.FREE
