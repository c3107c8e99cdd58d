"""A bulk feed's compact storage: booking links, phones and seats come out exactly as
published (through the files the adapter keeps and the index it builds, full loads and
deltas alike), and a reload lets each file's previous copy go."""

# The fixtures of test_adapter.py, imported to be used here, are named as the arguments.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

from aiohttp import web

from sources.records import SourceStatus
from sources.smart_scheduling.adapter import SmartSchedulingSource
from tests.sources.smart_scheduling.test_adapter import (  # noqa: F401  (fixtures)
    MANIFEST,
    T1,
    T2,
    Publisher,
    at,
    basic_feed,
    booking,
    delta_manifest,
    fast,
    loaded,
    location,
    publisher,
    schedule,
    session,
    slot,
    slots,
    source,
    starts,
    until,
)

TEMPLATE = "https://book.example/slots?id="
LINKS = [
    *(f"{TEMPLATE}s{n}" for n in range(8)),  # the usual: one beginning, the slot's id after
    "https://other.example/r/ésumé?x=1&y=%C3%A9#frag",  # another beginning, non-ASCII
    "http://book.example:8443/a/b/c?slot=中文-🙂",  # beyond the BMP
    "https://book.example/" + "l" * 490,  # as long as a text is kept (512)
    f"{TEMPLATE}s0",  # the same link as another slot's
    "HTTPS://BOOK.EXAMPLE/UPPER?ID=1",
    "https://book.example/nothing-after-the-last-slash/",
]


def many_links_feed(publisher: Publisher) -> list[dict[str, Any]]:
    publisher.put("/files/locations.ndjson", location("loc-1"))
    publisher.put("/files/schedules.ndjson", schedule("sch-1", "Location/loc-1"))
    free = [
        slot(f"s{n}", "sch-1", at(10 + n // 10, 8 + n % 10), extension=booking(link, phone))
        for n, (link, phone) in enumerate(
            (link, f"514-555-01{n % 3:02d}") for n, link in enumerate(LINKS)
        )
    ]
    free.append(slot("s99", "sch-1", at(20, 9)))  # no link, no phone
    free.append(slot("s98", "sch-1", at(20, 10), extension=booking(capacity=4)))
    publisher.put("/files/slots.ndjson", *free)
    publisher.publish(
        ("Location", "/files/locations.ndjson"),
        ("Schedule", "/files/schedules.ndjson"),
        ("Slot", "/files/slots.ndjson"),
    )
    return free


def published(resource: dict[str, Any], url: str) -> str | None:
    for extension in resource.get("extension", []):
        if extension["url"].endswith(url):
            return str(extension.get("valueUrl") or extension.get("valueString"))
    return None


async def test_booking_links_of_every_shape_come_out_exactly(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    free = many_links_feed(publisher)
    await loaded(source)

    found = await slots(source)
    assert [s.booking_url for s in found] == [published(r, "booking-deep-link") for r in free]
    assert [s.booking_phone for s in found] == [published(r, "booking-phone") for r in free]
    assert [s.capacity for s in found] == [None] * (len(free) - 1) + [4]


async def test_a_delta_s_links_come_out_exactly_beside_the_full_load_s(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    free = many_links_feed(publisher)
    moved = "https://nouveau.example/réserver/" + "é" * 300
    publisher.put(
        "/files/delta.ndjson",
        slot("s1", "sch-1", at(10, 9), status="busy"),  # booked
        slot("s2", "sch-1", at(25, 9), extension=booking(moved)),  # moved, a new link
        slot("s50", "sch-1", at(25, 10), extension=booking(f"{TEMPLATE}s0")),  # a repeated link
    )

    def honour_since(request: web.Request) -> dict[str, Any] | None:
        since = request.query.get("_since")
        if since == T1:
            return delta_manifest(publisher, T1, T2, slots=["/files/delta.ndjson"])
        if since == T2:
            return delta_manifest(publisher, T2, T2)
        return None

    publisher.on_manifest = honour_since
    await loaded(source, 2)

    found = await slots(source)
    expected = {r["start"]: published(r, "booking-deep-link") for r in free}
    del expected[at(10, 9)], expected[at(10, 10)]  # s1 booked, s2 moved
    expected |= {at(25, 9): moved, at(25, 10): f"{TEMPLATE}s0"}
    assert dict(zip(starts(found), [s.booking_url for s in found], strict=True)) == expected


async def test_a_reload_that_fails_after_letting_a_copy_go_is_followed_by_a_full_load(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    basic_feed(publisher)
    sent: list[str | None] = []

    def since_seen(request: web.Request) -> dict[str, Any] | None:
        sent.append(request.query.get("_since"))
        return None  # the full feed: a publisher ignoring _since

    publisher.on_manifest = since_seen
    await loaded(source)
    assert len(await slots(source)) == 3
    # Every file changes; the slots' file is read anew (its copy let go), the
    # schedules' fails in a way that may pass: the refresh fails, the copy is served.
    publisher.put("/files/slots.ndjson", slot("s9", "sch-1", at(12, 9)))
    publisher.put("/files/locations.ndjson", location("loc-1"), location("loc-2"))
    publisher.fail["/files/schedules.ndjson"] = 503
    await until(lambda: source.status_hint() is SourceStatus.DEGRADED)
    assert len(await slots(source)) == 3
    assert source._need_full

    del publisher.fail["/files/schedules.ndjson"]
    sent.clear()
    await until(lambda: source.status_hint() is SourceStatus.UP)
    assert starts(await slots(source)) == [at(12, 9)]
    assert sent[0] is None  # not a _since delta over a base it no longer holds
    assert publisher.hits_of(MANIFEST)
