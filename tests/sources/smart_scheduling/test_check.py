"""``sources check`` of SMART Scheduling Links feeds: publishers on loopback serving the demo
feed, tiny feeds broken one way each, bad input, and the recorded real feeds."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from examples import demo_ssl
from examples.demo_ssl.publisher import Publisher as DemoPublisher
from examples.world import World
from sources.base import SourceConfig, SourceContext
from sources.check import CheckReport, Outcome
from sources.records import SourceProtocol
from sources.smart_scheduling.check import check_source
from sources.smart_scheduling.options import SmartSchedulingOptions
from tests.conftest import pinned_clock, serve
from tests.sources.smart_scheduling.recorded_feeds import (
    FREE_SLOTS,
    RECORDED_ORIGIN,
    WHOLE,
    count,
    recorded,
    relocated,
    resources,
)
from tests.sources.smart_scheduling.recorded_feeds import Feed as RecordedFeed
from tests.sources.smart_scheduling.test_adapter import at, booking, location, schedule, slot

BOM = b"\xef\xbb\xbf"
SERVICE = [
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "124"}]}
]
T0 = "2031-03-01T12:00:00Z"


def march_2031() -> datetime:
    """The clock of the tiny feeds, whose slots are in March 2031."""
    return datetime(2031, 3, 1, 12, tzinfo=UTC)


@dataclass
class Feed:
    """A publisher as the specification would have it: ETag, Last-Modified and max-age on
    every answer, 304 to If-None-Match, and ``?_since`` answered with an empty delta.
    Each test breaks it its own way: ``bodies`` are served as given (by path and query),
    ``status`` overrides a path's answer."""

    base: str = ""
    bodies: dict[str, bytes] = field(default_factory=dict)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    caching: bool = True  # Cache-Control, ETag, Last-Modified and 304s
    deltas: bool = True  # ?_since answered with a delta (else ignored)
    since: Callable[[web.Request], web.Response] | None = None

    def manifest(self, request: web.Request) -> bytes:
        body: dict[str, Any] = {
            "transactionTime": T0,
            "request": str(request.url),
            "output": [{"type": t, "url": self.base + p} for t, p in self.outputs],
            "error": [],
        }
        if "_since" in request.query and self.deltas:
            body["output"] = []
        return orjson.dumps(body)

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path_qs if request.path_qs in self.bodies else request.path
        if path in self.status:
            return web.Response(status=self.status[path], text="no")
        if request.path == "/$bulk-publish" and "_since" in request.query and self.since:
            return self.since(request)
        body = self.manifest(request) if request.path == "/$bulk-publish" else self.bodies.get(path)
        if body is None:
            return web.Response(status=404)
        headers = {}
        if self.caching:
            headers = {
                "Cache-Control": "max-age=60",
                "Last-Modified": "Sat, 01 Mar 2031 12:00:00 GMT",
                "ETag": '"' + hashlib.sha256(body).hexdigest()[:16] + '"',
            }
            if request.headers.get("If-None-Match") == headers["ETag"]:
                return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers, content_type="application/fhir+ndjson")


@pytest.fixture
async def feed() -> AsyncIterator[Feed]:
    published = Feed()
    app = web.Application()
    app.router.add_get("/{tail:.*}", published.handle)
    async with serve(app) as server:
        published.base = str(server.make_url("")).rstrip("/")
        yield published


def ndjson(*resources: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in resources)


def with_service(resource: dict[str, Any]) -> dict[str, Any]:
    return {**resource, "serviceType": SERVICE}


def tiny(feed: Feed) -> None:
    """Two Quebec clinics, one schedule each, seven free slots and one busy: clean."""
    feed.bodies = {
        "/locations.ndjson": ndjson(
            location("loc-1"), location("loc-2", "CMS Limoilou", "G1R 2L3")
        ),
        "/schedules.ndjson": ndjson(
            with_service(schedule("sch-1", "Location/loc-1")),
            with_service(schedule("sch-2", "Location/loc-2")),
        ),
        "/slots-a.ndjson": ndjson(*(slot(f"a{i}", "sch-1", at(10, 9, i)) for i in range(4))),
        "/slots-b.ndjson": ndjson(
            *(slot(f"b{i}", "sch-2", at(11, 9, i)) for i in range(3)),
            slot("b-busy", "sch-2", at(11, 10), status="busy"),
        ),
    }
    feed.outputs = [
        ("Location", "/locations.ndjson"),
        ("Schedule", "/schedules.ndjson"),
        ("Slot", "/slots-a.ndjson"),
        ("Slot", "/slots-b.ndjson"),
    ]


def config_for(url: str, **options: Any) -> SourceConfig:
    return SourceConfig(
        id="checked",
        protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
        url=url,
        timeout_s=2.0,
        options=SmartSchedulingOptions.parse(options, "source 'checked'"),
    )


async def check(
    url: str, clock: Callable[[], datetime] = march_2031, **options: Any
) -> CheckReport:
    report = CheckReport(url, SourceProtocol.SMART_SCHEDULING_LINKS.value, url)
    async with aiohttp.ClientSession() as session:
        context = SourceContext(session, logging.getLogger("passerelle.check.test"))
        await check_source(config_for(url, **options), context, report, clock=clock)
    return report


def outcomes(report: CheckReport) -> dict[str, Outcome]:
    return {c.name: c.outcome for c in report.checks}


def not_served(report: CheckReport) -> dict[str, tuple[int, bool]]:
    return {n.reason: (n.slots, n.loss) for n in report.not_served}


def detail(report: CheckReport, name: str) -> str:
    [found] = [c for c in report.checks if c.name == name]
    return found.detail


def free_slot_lines(*bodies: bytes) -> int:
    """The test's own count: Slot lines whose status is free."""
    count = 0
    for body in bodies:
        for line in body.split(b"\n"):
            if data := line.strip().removeprefix(BOM).strip():
                resource = orjson.loads(data)
                count += resource.get("resourceType") == "Slot" and resource.get("status") == "free"
    return count


# -- the demo feed and clean feeds ------------------------------------------------------------


async def test_the_demo_feed_passes_every_check_and_serves_every_free_slot(
    world: World, tmp_path: Path
) -> None:
    demo = DemoPublisher(world, tmp_path / "feed")
    async with serve(demo_ssl.build_app(demo)) as server:
        report = await check(str(server.make_url("/$bulk-publish")), clock=pinned_clock)

    assert report.exit_code == 0
    assert {c.outcome for c in report.checks} == {Outcome.PASS}, report.text()
    files = [p.read_bytes() for p in (tmp_path / "feed").glob("*.ndjson")]
    assert report.served == free_slot_lines(*files) > 0
    assert report.not_served == []
    assert "_since: honoured" in report.capabilities
    assert any("?_since=<transactionTime>" in step for step in report.plan)
    assert any("a 304 reuses what was read" in step for step in report.plan)


async def test_a_clean_feed_passes_and_counts_free_and_busy_slots(feed: Feed) -> None:
    tiny(feed)
    report = await check(feed.base + "/$bulk-publish")
    assert report.exit_code == 0 and set(outcomes(report).values()) == {Outcome.PASS}, report.text()
    assert report.served == 7 and report.not_served == []
    assert detail(report, "slots") == "7 free, 1 busy or otherwise taken"
    assert detail(report, "files").startswith("4 of 4 read, 12 lines")


# -- what loses slots fails ----------------------------------------------------------------------


async def test_a_file_that_fails_fails_the_check_naming_it_and_its_status(feed: Feed) -> None:
    tiny(feed)
    feed.outputs[3] = ("Slot", "/slots-b.ndjson?sig=secret")
    feed.status["/slots-b.ndjson"] = 404
    report = await check(feed.base + "/$bulk-publish")

    assert report.exit_code == 1
    assert outcomes(report)["files"] is Outcome.FAIL
    assert detail(report, "files") == (
        "3 of 4 read, 8 lines; /slots-b.ndjson: upstream answered HTTP 404; "
        "their free slots are not served (how many is not known)"
    )
    assert report.served == 4
    assert "secret" not in report.text() + report.dumps()
    assert report.text().splitlines()[-1].startswith("  result: FAIL (")


async def test_malformed_and_unresolved_slots_are_lost_and_fail(feed: Feed) -> None:
    tiny(feed)
    broken = slot("a-bad", "sch-1", at(10, 11))
    del broken["start"]
    feed.bodies["/slots-a.ndjson"] += (
        ndjson(broken, slot("a-lost", "sch-9", at(10, 12))) + b"{oops\n"
    )
    report = await check(feed.base + "/$bulk-publish")

    assert report.exit_code == 1
    assert report.served == 7
    assert not_served(report) == {"MALFORMED": (2, True), "UNRESOLVED": (1, True)}
    checks = outcomes(report)
    assert (checks["fields"], checks["references"], checks["lines"]) == (Outcome.FAIL,) * 3
    assert "Slot 1 (start 1)" in detail(report, "fields")
    references = detail(report, "references")
    assert (
        "Slot -> Schedule: 1 reference to ids not in the feed (1 free slot; e.g. sch-9)"
        in references
    )
    assert "1 free slot cannot be placed" in references
    assert report.lost == 3


async def test_a_file_over_max_file_bytes_fails_and_says_the_option(feed: Feed) -> None:
    tiny(feed)
    feed.bodies["/slots-a.ndjson"] += ndjson(
        *(slot(f"a{i}", "sch-1", at(12, 9, i)) for i in range(4, 8))
    )
    limit = len(feed.bodies["/slots-b.ndjson"])
    report = await check(feed.base + "/$bulk-publish", max_file_bytes=limit)
    assert report.exit_code == 1, report.text()
    [failed] = [c for c in report.checks if c.outcome is Outcome.FAIL]
    assert failed.name == "files"
    assert f"/slots-a.ndjson: upstream answer too large (over {limit} bytes)" in failed.detail
    assert "max_file_bytes" in failed.fix
    assert report.served == 3


async def test_a_manifest_refusing_since_fails(feed: Feed) -> None:
    tiny(feed)
    feed.since = lambda request: web.Response(status=400, text="unknown parameter")
    report = await check(feed.base + "/$bulk-publish")
    assert report.exit_code == 1 and outcomes(report)["_since"] is Outcome.FAIL
    assert "upstream answered HTTP 400" in detail(report, "_since")
    assert any("is refused: the refreshes fail" in step for step in report.plan)
    assert report.served == 7 and report.lost == 0


# -- what the gateway reads all the same warns --------------------------------------------------


async def test_tolerated_deviations_pass_with_warnings(feed: Feed) -> None:
    tiny(feed)
    capacity = booking(capacity=1)
    capacity[0]["valueInteger"] = "2"
    feed.bodies["/slots-a.ndjson"] = ndjson(
        *(slot(f"a{i}", "sch-1", at(10, 9, i), extension=capacity) for i in range(4))
    )
    feed.bodies["/locations.ndjson"] = BOM + feed.bodies["/locations.ndjson"].rstrip(b"\n")
    feed.bodies["/slots-b.ndjson"] = gzip.compress(feed.bodies["/slots-b.ndjson"])
    report = await check(feed.base + "/$bulk-publish")

    assert report.exit_code == 0, report.text()
    warned = {name for name, outcome in outcomes(report).items() if outcome is Outcome.WARN}
    assert warned == {"compression", "lines", "fields"}
    assert "/slots-b.ndjson gzip'd without Content-Encoding" in detail(report, "compression")
    assert "/locations.ndjson: a UTF-8 byte-order mark" in detail(report, "lines")
    assert "/locations.ndjson: no newline after the last line" in detail(report, "lines")
    assert "4 slot-capacity counts written as strings" in detail(report, "fields")
    assert report.served == 7


async def test_locations_outside_quebec_are_not_served_and_not_a_loss(feed: Feed) -> None:
    tiny(feed)
    newark = location("nj-1", "Newark Pharmacy", "07102")
    newark["address"] = {"city": "Newark", "state": "NJ", "postalCode": "07102", "country": "US"}
    newark.pop("position")
    feed.bodies["/locations.ndjson"] += ndjson(newark)
    feed.bodies["/schedules.ndjson"] += ndjson(with_service(schedule("sch-nj", "Location/nj-1")))
    feed.bodies["/slots-b.ndjson"] += ndjson(
        *(slot(f"nj{i}", "sch-nj", at(12, 9, i)) for i in range(5))
    )
    report = await check(feed.base + "/$bulk-publish")

    assert report.exit_code == 0
    assert not_served(report) == {"OUTSIDE_QUEBEC": (5, False)}
    assert outcomes(report)["places"] is Outcome.WARN
    assert "1 Location outside Quebec: not served, nor their 5 free slots" in detail(
        report, "places"
    )
    assert report.served == 7


async def test_duplicates_implausible_times_links_and_phones_warn(feed: Feed) -> None:
    tiny(feed)
    feed.bodies["/slots-a.ndjson"] += ndjson(
        slot("a0", "sch-1", at(10, 14)),  # an id already read
        slot("past", "sch-1", "2031-02-27T09:00:00-05:00"),
        slot("far", "sch-1", "2032-06-01T09:00:00-04:00"),
        slot("naive", "sch-1", "2031-03-10T15:00:00", "2031-03-10T15:15:00"),
        slot("js", "sch-1", at(10, 16), extension=booking(url="javascript:alert(1)")),
        slot("ph", "sch-1", at(10, 17), extension=booking(phone="555-01")),
        slot("ph2", "sch-1", at(10, 18), extension=booking(phone="call us")),
        slot("open", "sch-1", at(10, 19), status="available"),  # read as busy
    )
    feed.bodies["/schedules.ndjson"] += ndjson(location("loc-3", "CLSC Verdun", "H4G 1X5"))
    report = await check(feed.base + "/$bulk-publish")

    assert report.exit_code == 0, report.text()
    warned = {name for name, outcome in outcomes(report).items() if outcome is Outcome.WARN}
    assert warned == {"file types", "duplicate ids", "times", "slots", "booking links", "phones"}
    assert "/schedules.ndjson is listed as Schedule and holds 1 line (Location 1)" in detail(
        report, "file types"
    )
    assert "1 slot with a status outside the FHIR codes, read as busy" in detail(report, "slots")
    assert "Slot: 1 line with an id already read" in detail(report, "duplicate ids")
    times = detail(report, "times")
    assert "2 free slot times without an offset" in times
    assert "1 free slot already begun (not served)" in times
    assert "1 free slot more than a year ahead" in times
    assert "1 booking-deep-link; 1 link not http(s): dropped" in detail(report, "booking links")
    phones = detail(report, "phones")
    assert "1 phone not a phone number: dropped" in phones
    assert "1 phone not a 10-digit North American number" in phones
    assert not_served(report) == {"PAST": (1, False)}
    assert report.served == 7 + 6


async def test_same_time_slots_are_served_with_their_seats_and_warned(feed: Feed) -> None:
    tiny(feed)
    # A second Schedule of loc-1 (another doctor, no PractitionerRole) with a slot at the
    # very time of a0: served as one slot of two seats, nothing lost.
    feed.bodies["/schedules.ndjson"] += ndjson(with_service(schedule("sch-3", "Location/loc-1")))
    feed.bodies["/slots-b.ndjson"] += ndjson(slot("c0", "sch-3", at(10, 9, 0)))
    report = await check(feed.base + "/$bulk-publish")

    assert report.exit_code == 0, report.text()
    assert outcomes(report)["same-time slots"] is Outcome.WARN
    assert detail(report, "same-time slots").startswith("1 free slot shared place, physician")
    assert report.not_served == [] and report.lost == 0
    assert report.served == 7  # the index's slots: a0 and c0 are one, of two seats


async def test_a_feed_without_validators_nor_deltas_warns_and_says_the_plan(feed: Feed) -> None:
    tiny(feed)
    feed.caching = feed.deltas = False
    report = await check(feed.base + "/$bulk-publish")

    assert report.exit_code == 0
    warned = {name for name, outcome in outcomes(report).items() if outcome is Outcome.WARN}
    assert warned == {"caching", "_since"}
    caching = detail(report, "caching")
    assert caching.startswith("manifest: no caching headers; no Cache-Control max-age")
    assert "neither ETag nor Last-Modified" in caching
    assert "ignored (the answer is the full feed)" in detail(report, "_since")
    assert "no deltas (_since ignored): each change of the manifest is a full load" in report.plan
    assert "no conditional requests: each poll downloads the manifest whole" in report.plan
    assert "files: ETag on 0/4, Last-Modified on 0/4, max-age on 0/4" in report.capabilities[2]


# -- bad input: one failed check, never a traceback ---------------------------------------------


@pytest.mark.parametrize("what", ["unreachable", "an HTML page", "a huge file", "no files"])
async def test_bad_input_is_one_failed_check(feed: Feed, what: str) -> None:
    url = feed.base + "/$bulk-publish"
    if what == "unreachable":
        url = "http://127.0.0.1:1/$bulk-publish"
    elif what == "an HTML page":
        feed.status = {}
        feed.bodies["/page/$bulk-publish"] = b"<!doctype html><html><body>Hello</body></html>"
        url = feed.base + "/page/$bulk-publish"
    elif what == "a huge file":
        feed.bodies["/huge/$bulk-publish"] = b"\0" * (33 * 1024 * 1024)
        url = feed.base + "/huge/$bulk-publish"
    report = await check(url)

    [only] = report.checks
    assert (only.name, only.outcome) == ("manifest", Outcome.FAIL)
    assert "\n" not in only.detail
    assert report.exit_code == 1
    expected = {
        "unreachable": "not read: ",
        "an HTML page": "not read: the manifest is not valid JSON",
        "a huge file": "not read: upstream answer too large",
        "no files": "lists no file the gateway reads",
    }[what]
    assert only.detail.startswith(expected)


# -- JSON ----------------------------------------------------------------------------------------


async def test_the_json_report_says_what_the_text_says(feed: Feed) -> None:
    tiny(feed)
    feed.status["/slots-b.ndjson"] = 404
    report = await check(feed.base + "/$bulk-publish")
    data = json.loads(report.dumps())
    text = report.text()
    assert data["result"] == "fail"
    for item in data["checks"]:
        assert f"  {item['outcome']:<4}  {item['name']}" in text
        assert item["detail"] in text
    assert data["slots"]["served"] == 4


# -- recorded real feeds -----------------------------------------------------------------------


def serve_recorded(feed: Feed, recorded_feed: RecordedFeed, files: Mapping[str, bytes]) -> str:
    """The recorded feed's ``files`` and its manifest, moved to ``feed``'s origin."""
    feed.bodies = dict(files)
    url = f"{feed.base}/{recorded_feed.folder}/$bulk-publish"
    manifest = recorded_feed.manifest.replace(RECORDED_ORIGIN.encode(), feed.base.encode())
    feed.bodies[url.removeprefix(feed.base)] = manifest
    return url


def lines_of(files: Mapping[str, bytes]) -> int:
    return sum(1 for data in files.values() for line in data.split(b"\n") if line.strip())


@pytest.mark.parametrize("folder", WHOLE)
async def test_a_recorded_feed_moved_to_quebec_passes_with_every_free_slot_served(
    feed: Feed, folder: str
) -> None:
    """Each real feed, its times moved after the pinned clock and its Locations to Quebec
    (``recorded_feeds``), against the test's own reading of the files served."""
    recorded_feed = recorded(folder)
    files = relocated(recorded_feed.files)
    counts = count(files)
    report = await check(serve_recorded(feed, recorded_feed, files), clock=pinned_clock)

    assert report.exit_code == 0, report.text()
    assert report.served == counts.free == FREE_SLOTS[folder]
    assert report.not_served == []
    n = len(files)
    assert detail(report, "files") == f"{n} of {n} read, {lines_of(files):,} lines"
    checks = outcomes(report)
    assert Outcome.FAIL not in checks.values()
    assert (checks["places"] is Outcome.WARN) == (counts.no_position > 0)
    slot_ids = [slot["id"] for _, slot in resources(files, "Slot")]
    repeated = len(slot_ids) - len(set(slot_ids))  # riteaid-nj repeats its slot ids
    assert (checks["duplicate ids"] is Outcome.WARN) == (repeated > 0)
    if repeated:
        assert f"Slot: {repeated:,} lines with an id already read" in detail(
            report, "duplicate ids"
        )


async def test_a_recorded_feed_as_published_fails_on_its_unrecorded_files(feed: Feed) -> None:
    """riteaid-full lists 48 files of other states that were never recorded; its own
    are in New Jersey."""
    recorded_feed = recorded("riteaid-full")
    counts = count(recorded_feed.files)
    report = await check(
        serve_recorded(feed, recorded_feed, recorded_feed.files), clock=pinned_clock
    )

    assert report.exit_code == 1
    listed, read = len(recorded_feed.listed), len(recorded_feed.files)
    files = detail(report, "files")
    assert files.startswith(f"{read} of {listed} read, {lines_of(recorded_feed.files):,} lines; ")
    assert f"and {listed - read - 3} more: upstream answered HTTP 404" in files
    assert report.served == counts.all_served().total() == 0
    assert not_served(report) == {"OUTSIDE_QUEBEC": (counts.outside_slots, False)}
    assert counts.outside_slots == FREE_SLOTS["riteaid-full"]
