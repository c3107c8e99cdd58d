"""The SMART Scheduling Links adapter against feeds the project did not write: every feed
of ``../shared/fixtures/smart-scheduling-links/`` served from loopback with its recorded
headers, its timestamps moved into the days after the pinned clock, as published, moved
to Quebec, and broken as real publishers break feeds (``recorded_feeds``). What it serves
and reports is checked against the test's own reading of the files served: every free
slot is either served or counted by a problem whose count the test checks.

Where ``../shared`` is absent these tests are skipped, naming the missing path; the same
deviations are made from the project's own tiny feeds in ``test_real_feeds.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from sources.pool.fanout import SourcePool
from sources.records import ProblemSeverity, SlotQuery, SourceStatus
from sources.search.federation import Federation
from sources.search.results import CountKind, SlotCount
from tests.conftest import TEST_NOW
from tests.sources.smart_scheduling import test_real_feeds as real
from tests.sources.smart_scheduling.recorded_feeds import (
    FEEDS,
    FIXTURES,
    FREE_SLOTS,
    PLACE_WARNINGS,
    RECORDED_ORIGIN,
    TIMESTAMP,
    WEEK,
    WHOLE,
    Counts,
    Feed,
    Key,
    breakages,
    broken,
    count,
    instant,
    natural_deviations,
    recorded,
    relocated,
    resources,
)
from tests.sources.smart_scheduling.test_adapter import until
from tests.sources.smart_scheduling.test_real_feeds import RawPublisher, loaded, make_source

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sources.smart_scheduling.adapter import SmartSchedulingSource

raw = real.raw  # a loopback publisher serving bytes as given


# -- serving and searching -----------------------------------------------------------------


def publish(
    raw: RawPublisher, feed: Feed, files: Mapping[str, bytes], manifest: bytes | None = None
) -> str:
    """Serve ``files`` (and the feed's manifest, or ``manifest``) as given; the manifest's URL."""
    raw.bodies = dict(files)
    raw.headers = feed.headers
    manifest = feed.manifest if manifest is None else manifest
    url = f"{raw.base}/{feed.folder}/$bulk-publish"
    raw.bodies[url.removeprefix(raw.base)] = manifest.replace(
        RECORDED_ORIGIN.encode(), raw.base.encode()
    )
    return url


async def load(
    raw: RawPublisher, feed: Feed, files: Mapping[str, bytes], manifest: bytes | None = None
) -> SmartSchedulingSource:
    """The feed served as given, loaded once by a new source (closed again)."""
    url = publish(raw, feed, files, manifest)
    async with aiohttp.ClientSession() as session:
        source = make_source(session, url)
        try:
            await loaded(source)
        finally:
            await source.aclose()
    return source


async def served(source: SmartSchedulingSource, counts: Counts) -> Counter[Key]:
    result = await source.search_slots(SlotQuery(*counts.window, limit=1_000_000))
    assert result.complete and result.total == len(result.slots)
    return Counter((s.clinic_local_id, s.start, s.end, s.capacity or 1) for s in result.slots)


def problems(source: SmartSchedulingSource) -> dict[str, Any]:
    return {p.code: p for p in source.problems}


def deviations(source: SmartSchedulingSource) -> set[tuple[str, str, int]]:
    report = source.last_load
    assert report is not None
    found = {("manifest", what, 1) for what in report.tolerated}
    return found | {(f.name, what, n) for f in report.files for what, n in f.tolerated}


def _place_warnings(source: SmartSchedulingSource) -> int:
    """Quebec Locations served without a position of their own, whichever warning says it."""
    return sum(p.count for p in source.problems if p.code in PLACE_WARNINGS)


def _warnings_only(source: SmartSchedulingSource) -> None:
    assert source.status_hint() is SourceStatus.UP
    assert [p.code for p in source.problems if p.severity is not ProblemSeverity.WARNING] == []


# -- the tests -------------------------------------------------------------------------------


def test_every_recorded_feed_is_tested() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded feeds absent: {FIXTURES} (CI has ../shared beside the clone)")
    assert sorted(p.parent.name for p in FIXTURES.glob("*/$bulk-publish")) == list(FEEDS)


@pytest.mark.parametrize("folder", FEEDS)
def test_moving_a_feed_changes_its_timestamps_by_whole_weeks_and_nothing_else(
    folder: str,
) -> None:
    feed = recorded(folder)
    pairs = [(feed.published[path], moved) for path, moved in feed.files.items()]
    manifest = (FIXTURES / folder / "$bulk-publish").read_bytes()
    moved_times = 0
    for before, after in [*pairs, (manifest, feed.manifest)]:
        assert TIMESTAMP.sub(b'"T"', before) == TIMESTAMP.sub(b'"T"', after)
        for old, new in zip(TIMESTAMP.finditer(before), TIMESTAMP.finditer(after), strict=True):
            assert (len(old[0]), old[2], old[3]) == (len(new[0]), new[2], new[3])
            assert instant(new[0][1:-1].decode()) - instant(old[0][1:-1].decode()) == (
                feed.weeks * WEEK
            )
            moved_times += 1
    assert moved_times > 0
    counts = count(feed.files)
    assert counts.free == FREE_SLOTS[folder]
    assert TEST_NOW < counts.window[1] - timedelta(minutes=1) < TEST_NOW + 7 * WEEK


@pytest.mark.parametrize("folder", FEEDS)
def test_relocating_a_feed_rewrites_its_addresses_and_nothing_else(folder: str) -> None:
    feed = recorded(folder)
    for path, data in relocated(feed.files).items():
        for before, after in zip(feed.files[path].split(b"\n"), data.split(b"\n"), strict=True):
            if before == after:
                continue
            old, new = json.loads(before), json.loads(after)
            assert old["resourceType"] == "Location"
            assert ("position" in old) == ("position" in new)
            assert new["address"]["state"] == "QC" and new["address"]["postalCode"][0] in "GHJ"
            assert set(new["address"]) == set(old["address"])
            for resource in (old, new):
                resource.pop("address"), resource.pop("position", None)
            assert old == new
    assert count(relocated(feed.files)).outside_locations == 0


@pytest.mark.parametrize("folder", FEEDS)
async def test_a_recorded_feed_serves_its_quebec_slots_and_counts_the_others_outside_quebec(
    raw: RawPublisher, folder: str
) -> None:
    feed = recorded(folder)
    counts = count(feed.files)
    source = await load(raw, feed, feed.files)

    assert await served(source, counts) == counts.all_served()
    found = problems(source)
    outside = found["OUTSIDE_QUEBEC"]
    assert (outside.severity, outside.count) == (ProblemSeverity.WARNING, counts.outside_locations)
    assert f"with {counts.outside_slots} free slots" in outside.message
    # Nothing lost unreported: each free slot is served or counted outside Quebec.
    assert counts.unresolved == 0 and source.skipped_records == 0
    assert counts.free == counts.all_served().total() + counts.outside_slots
    report = source.last_load
    assert report is not None
    assert sum(f.busy for f in report.files) == counts.busy
    assert deviations(source) == natural_deviations(feed.files)
    assert _place_warnings(source) == counts.no_position
    missing = [path for path in feed.listed if path not in feed.files]
    if not missing:
        _warnings_only(source)
        return
    # Files listed but never recorded answer 404: named, and the feed is DEGRADED.
    assert source.status_hint() is SourceStatus.DEGRADED
    failed = found["FILE_FAILED"]
    assert (failed.severity, failed.count) == (ProblemSeverity.LOSS, len(missing))
    named = {f"{raw.base}{path}: upstream answered HTTP 404" for path in missing}
    assert failed.samples and set(failed.samples) <= named
    assert {p.code for p in source.problems if p.severity is ProblemSeverity.LOSS} == {
        "FILE_FAILED"
    }


@pytest.mark.parametrize("folder", WHOLE)
async def test_a_recorded_feed_moved_to_quebec_serves_every_free_slot(
    raw: RawPublisher, folder: str
) -> None:
    feed = recorded(folder)
    files = relocated(feed.files)
    counts = count(files)
    assert counts.outside_locations == 0 and counts.unresolved == 0
    source = await load(raw, feed, files)

    found = await served(source, counts)
    assert found == counts.all_served()
    assert found.total() == counts.free == FREE_SLOTS[folder]  # spec-ex: 10 clinics, 30 days
    _warnings_only(source)
    assert set(problems(source)) <= {"FEED_DEVIATIONS", *PLACE_WARNINGS}
    assert _place_warnings(source) == counts.no_position


@pytest.mark.parametrize("folder", ["spec-ex", "riteaid-nj", "prepmod-wa"])
async def test_the_federation_pages_through_every_slot_of_a_feed_moved_to_quebec(
    raw: RawPublisher, folder: str
) -> None:
    """As a client pages: the clinics merged across sources, identical slots removed,
    100 at a time; nothing the adapter serves is lost on the way."""
    feed = recorded(folder)
    files = relocated(feed.files)
    counts = count(files)
    url = publish(raw, feed, files)
    found: Counter[Key] = Counter()
    async with aiohttp.ClientSession() as session:
        pool = SourcePool(session)
        await pool.sync([make_source(session, url).config])
        try:
            await until(lambda: pool.views()[0].status is SourceStatus.UP)
            query, after = SlotQuery(*counts.window, limit=100), None
            while True:
                page = await Federation(pool).search_slots(query, after)
                assert not page.errors
                if after is None:  # counted on the first page (the API carries it on)
                    assert page.count == SlotCount(counts.free, CountKind.EXACT)
                found.update(
                    (s.record.clinic_local_id, s.record.start, s.record.end, s.record.capacity or 1)
                    for s in page.slots
                )
                if (after := page.end()) is None:
                    break
        finally:
            await pool.aclose()
    assert found == counts.all_served()


@pytest.mark.parametrize("folder", WHOLE)
async def test_a_feed_with_boms_gzip_without_header_string_numbers_and_no_positions_serves_all(
    raw: RawPublisher, folder: str
) -> None:
    feed = recorded(folder)
    files = relocated(feed.files)
    counts = count(files)
    broken_files, manifest = broken(feed, files)
    source = await load(raw, feed, broken_files, manifest)

    assert await served(source, counts) == counts.all_served()
    _warnings_only(source)
    expected = breakages(feed, files)
    assert deviations(source) == expected
    assert problems(source)["FEED_DEVIATIONS"].count == sum(n for *_, n in expected)
    assert _place_warnings(source) == sum(1 for _ in resources(files, "Location"))
    assert source.skipped_records == 0


@pytest.mark.parametrize("folder", WHOLE)
async def test_a_feed_with_one_failed_file_serves_the_rest_degraded_and_names_it(
    raw: RawPublisher, folder: str
) -> None:
    feed = recorded(folder)
    files = relocated(feed.files)
    counts = count(files)
    held = {path: sum(counts.served.get(path, {}).values()) for path in feed.slot_files()}
    lost = max(held, key=lambda path: (held[path], path))  # the most slots to lose
    assert counts.served[lost], "the failed file must hold slots for the test to mean something"
    source = await load(raw, feed, {path: data for path, data in files.items() if path != lost})

    assert await served(source, counts) == counts.all_served(but=lost)
    assert source.status_hint() is SourceStatus.DEGRADED
    found = problems(source)
    failed = found.pop("FILE_FAILED")
    assert (failed.severity, failed.count) == (ProblemSeverity.LOSS, 1)
    assert failed.samples == (f"{raw.base}{lost.split('?')[0]}: upstream answered HTTP 404",)
    assert all(p.severity is ProblemSeverity.WARNING for p in found.values())
