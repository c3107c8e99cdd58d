"""Feeds as real publishers write them: each deviation made in the test from a tiny feed,
and the recorded feeds of ``../shared/fixtures/smart-scheduling-links/`` where present."""

from __future__ import annotations

import gzip
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from sources.base import SourceConfig, SourceContext
from sources.pool.fanout import SourcePool
from sources.records import ProblemSeverity, SourceProtocol, SourceStatus
from sources.smart_scheduling.adapter import SmartSchedulingSource
from sources.smart_scheduling.options import SmartSchedulingOptions
from tests.conftest import serve
from tests.sources.smart_scheduling.recorded_feeds import BOM, RECORDED_ORIGIN, recorded_folder
from tests.sources.smart_scheduling.test_adapter import (
    WINDOW,
    at,
    booking,
    location,
    schedule,
    slot,
    until,
)


@dataclass
class RawPublisher:
    """Serves bytes exactly as given, by path and query; any other path answers 404.
    ``headers`` (by path and query, as a recorded ``F.hdr.json`` holds them) are sent
    with the body, their ``_status`` as the status."""

    base: str = ""
    bodies: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = self.bodies.get(request.path_qs)
        if body is None:
            return web.Response(status=404)
        headers = dict(self.headers.get(request.path_qs, {}))
        status = int(headers.pop("_status", 200))
        headers.setdefault("Content-Type", "application/octet-stream")
        return web.Response(body=body, status=status, headers=headers)


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SmartSchedulingSource, "MIN_POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(SmartSchedulingSource, "DEFAULT_POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(SmartSchedulingSource, "MIN_FILE_INTERVAL_S", 0.0)
    monkeypatch.setattr(SmartSchedulingSource, "MAX_BACKOFF_S", 0.2)


@pytest.fixture
async def raw() -> AsyncIterator[RawPublisher]:
    pub = RawPublisher()
    app = web.Application()
    app.router.add_get("/{tail:.*}", pub.handle)
    async with serve(app) as server:
        pub.base = str(server.make_url("")).rstrip("/")
        yield pub


@pytest.fixture
async def feed_source(raw: RawPublisher) -> AsyncIterator[SmartSchedulingSource]:
    async with aiohttp.ClientSession() as session:
        source = make_source(session, raw.base + "/$bulk-publish")
        yield source
        await source.aclose()


def make_source(session: aiohttp.ClientSession, url: str) -> SmartSchedulingSource:
    return SmartSchedulingSource(
        SourceConfig(
            id="ssl-real",
            name="SSL real",
            protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
            url=url,
            timeout_s=2.0,
            options=SmartSchedulingOptions.parse({}, "source 'ssl-real'"),
        ),
        SourceContext(session=session, logger=logging.getLogger("passerelle.source.ssl-real")),
    )


def manifest(base: str, *outputs: tuple[str, str], **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "transactionTime": "2031-03-01T12:00:00Z",
            "request": base + "/$bulk-publish",
            "output": [{"type": t, "url": base + p} for t, p in outputs],
            **extra,
        }
    )


def lines(*resources: dict[str, Any]) -> list[bytes]:
    return [orjson.dumps(r) for r in resources]


def free_slots(*bodies: bytes) -> int:
    """The test's own count: free Slot lines, whatever their extensions say."""
    count = 0
    for body in bodies:
        for line in body.split(b"\n"):
            data = line.strip().removeprefix(BOM).strip()
            if data:
                resource = orjson.loads(data)
                count += resource.get("resourceType") == "Slot" and resource["status"] == "free"
    return count


async def loaded(source: SmartSchedulingSource) -> None:
    await source.start()
    await until(lambda: source.last_load is not None)


async def served(source: SmartSchedulingSource) -> int:
    return len((await source.search_slots(WINDOW)).slots)


def tiny_feed(raw: RawPublisher) -> dict[str, bytes]:
    """Three Quebec clinics' files, clean: each test breaks them its own way."""
    return {
        "/locations.ndjson": b"\n".join(lines(location("loc-1"), location("loc-2"))) + b"\n",
        "/schedules.ndjson": b"\n".join(
            lines(schedule("sch-1", "Location/loc-1"), schedule("sch-2", "Location/loc-2"))
        )
        + b"\n",
        "/slots-a.ndjson": b"\n".join(
            lines(*(slot(f"a{i}", "sch-1", at(10, 9, i)) for i in range(4)))
        )
        + b"\n",
        "/slots-b.ndjson": b"\n".join(
            lines(*(slot(f"b{i}", "sch-2", at(11, 9, i)) for i in range(3)))
        )
        + b"\n",
    }


OUTPUTS = (
    ("Location", "/locations.ndjson"),
    ("Schedule", "/schedules.ndjson"),
    ("Slot", "/slots-a.ndjson"),
    ("Slot", "/slots-b.ndjson"),
)


async def test_string_numbers_boms_gzip_without_header_and_no_final_newline_serve_every_slot(
    raw: RawPublisher, feed_source: SmartSchedulingSource
) -> None:
    files = tiny_feed(raw)
    capacity = booking(capacity=1)
    capacity[0]["valueInteger"] = "2"  # as one large publisher writes it
    files["/slots-a.ndjson"] = (
        b"\n".join(
            lines(*(slot(f"a{i}", "sch-1", at(10, 9, i), extension=capacity) for i in range(4)))
        )
        + b"\n"
    )
    files["/locations.ndjson"] = BOM + files["/locations.ndjson"].rstrip(b"\n")
    raw.bodies = {path: body for path, body in files.items()}
    raw.bodies["/slots-b.ndjson"] = gzip.compress(files["/slots-b.ndjson"])
    raw.bodies["/$bulk-publish"] = BOM + manifest(raw.base, *OUTPUTS)

    await loaded(feed_source)

    found = (await feed_source.search_slots(WINDOW)).slots
    assert len(found) == free_slots(*files.values()) == 7
    assert sorted(s.capacity or 1 for s in found) == [1, 1, 1, 2, 2, 2, 2]
    assert feed_source.status_hint() is SourceStatus.UP
    [deviations] = feed_source.problems
    assert (deviations.code, deviations.severity) == ("FEED_DEVIATIONS", ProblemSeverity.WARNING)
    assert set(deviations.samples) == {
        "manifest: a UTF-8 byte-order mark",
        "/slots-a.ndjson: numbers written as strings (4)",
        "/slots-b.ndjson: gzip without Content-Encoding (1)",
        "/locations.ndjson: a UTF-8 byte-order mark (1)",
        "/locations.ndjson: no newline after the last line (1)",
    }


async def test_one_failed_file_serves_the_rest_degraded_and_names_it_without_its_query(
    raw: RawPublisher, feed_source: SmartSchedulingSource
) -> None:
    files = tiny_feed(raw)
    raw.bodies = {path: body for path, body in files.items() if path != "/slots-b.ndjson"}
    outputs = (*OUTPUTS[:3], ("Slot", "/slots-b.ndjson?sig=secret"))
    raw.bodies["/$bulk-publish"] = manifest(raw.base, *outputs)

    await loaded(feed_source)

    assert await served(feed_source) == free_slots(files["/slots-a.ndjson"])
    assert feed_source.status_hint() is SourceStatus.DEGRADED
    [failed] = feed_source.problems
    assert (failed.code, failed.severity, failed.count) == ("FILE_FAILED", ProblemSeverity.LOSS, 1)
    assert failed.samples == (raw.base + "/slots-b.ndjson: upstream answered HTTP 404",)
    assert "secret" not in repr(feed_source.problems)


async def test_a_feed_whose_every_file_fails_is_not_loaded(
    raw: RawPublisher, feed_source: SmartSchedulingSource
) -> None:
    raw.bodies = {"/$bulk-publish": manifest(raw.base, *OUTPUTS)}
    await feed_source.start()
    await until(lambda: "FEED_NOT_LOADED" in {p.code for p in feed_source.problems})
    await feed_source.ready()
    assert feed_source.last_load is None
    assert feed_source.status_hint() is SourceStatus.DEGRADED


async def test_a_files_own_current_as_of_gives_the_data_freshness(
    raw: RawPublisher, feed_source: SmartSchedulingSource
) -> None:
    raw.bodies = tiny_feed(raw)
    body = orjson.loads(manifest(raw.base, *OUTPUTS))
    body["output"][2]["extension"] = {"state": ["QC"], "currentAsOf": "2031-03-01T09:31:57.102Z"}
    body["output"][3]["currentAsOf"] = "2031-03-01T10:00:00Z"
    raw.bodies["/$bulk-publish"] = orjson.dumps(body)

    await loaded(feed_source)

    # The oldest file decides: the feed is no fresher than its oldest part.
    assert feed_source.data_as_of == datetime(2031, 3, 1, 9, 31, 57, 102000, tzinfo=UTC)


async def test_a_bulk_source_shows_when_its_publisher_last_answered(raw: RawPublisher) -> None:
    raw.bodies = tiny_feed(raw)
    raw.bodies["/$bulk-publish"] = manifest(raw.base, *OUTPUTS)
    async with aiohttp.ClientSession() as session:
        pool = SourcePool(session)
        await pool.sync([make_source(session, raw.base + "/$bulk-publish").config])
        try:
            await until(lambda: pool.views()[0].status is SourceStatus.UP)
            (view,) = pool.views()  # no search made: the refreshes say it
            assert view.last_success_at is not None and view.latency_ms is not None
            assert view.latency_ms >= 0
        finally:
            await pool.aclose()


# -- recorded feeds -----------------------------------------------------------------------


def _serve_folder(
    raw: RawPublisher, folder: Path, change: Callable[[str, bytes], bytes]
) -> dict[str, bytes]:
    """The folder's files at their recorded paths (``%3F`` standing for ``?``), the
    manifest's origin rewritten to ``raw``; ``change`` may break a file. The files as
    published, by path, are returned for the test's own counts."""
    published: dict[str, bytes] = {}
    for file in folder.rglob("*"):
        if not file.is_file() or file.name.endswith(".hdr.json"):
            continue
        path = "/" + file.relative_to(folder.parent).as_posix().replace("%3F", "?")
        data = file.read_bytes()
        if file.name == "$bulk-publish":
            data = data.replace(RECORDED_ORIGIN.encode(), raw.base.encode())
        else:
            published[path] = data
        raw.bodies[path] = change(path, data)
    return published


@pytest.mark.parametrize(
    "folder", ["cvs", "walgreens", "prepmod-wa", "riteaid-nj", "spec-ex", "hl7-md"]
)
async def test_every_line_of_a_recorded_feed_is_read_even_gzipd_without_a_header(
    raw: RawPublisher, folder: str
) -> None:
    path = recorded_folder(folder)
    gzipped: list[str] = []

    def gzip_slots(name: str, data: bytes) -> bytes:
        if "slot" in name.lower():
            gzipped.append(name)
            return gzip.compress(data)
        return data

    published = _serve_folder(raw, path, gzip_slots)
    async with aiohttp.ClientSession() as session:
        source = make_source(session, f"{raw.base}/{folder}/$bulk-publish")
        try:
            await loaded(source)
        finally:
            await source.aclose()

    report = source.last_load
    assert report is not None and gzipped
    expected = {
        name.split("?")[0]: sum(1 for line in data.split(b"\n") if line.strip())
        for name, data in published.items()
    }
    assert {f.name: f.lines for f in report.files} == expected
    assert all(f.how == "fetched" for f in report.files)
    codes = {p.code: p for p in source.problems}
    assert "FILE_FAILED" not in codes
    assert codes["FEED_DEVIATIONS"].count >= len(gzipped)
