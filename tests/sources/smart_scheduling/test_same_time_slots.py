"""Free slots of one place, physician and type at one time: one slot, every seat served.

Two Schedules of one Location (a doctor each without a PractitionerRole, one per vaccine
product) give slots that the API cannot tell apart: they are served as one slot whose
capacity is the sum of theirs, with the first one's booking link, and said in a
SAME_TIME_SLOTS warning. Deltas keep every seat too, and publishers that repeat slot ids
(every slot of a store with the store's id) keep every slot of a store.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from aiohttp import web

from sources.base import SourceConfig
from sources.records import ProblemSeverity, SourceProtocol, SourceStatus
from sources.smart_scheduling.adapter import SmartSchedulingSource
from sources.timeutil import MONTREAL
from tests.conftest import TEST_FIRST_DAY, GatewayFactory
from tests.sources.smart_scheduling import test_adapter as base
from tests.sources.smart_scheduling.test_adapter import (
    MANIFEST,
    T1,
    T2,
    Publisher,
    at,
    booking,
    delta_manifest,
    loaded,
    location,
    practitioner,
    role,
    schedule,
    slot,
    slots,
    starts,
)

# The adapter tests' fixtures: a loopback publisher, a session, the source, fast polling.
publisher, session, source, fast = base.publisher, base.session, base.source, base.fast
T3 = "2031-03-01T12:10:00Z"


def feed(publisher: Publisher, *slot_lines: dict[str, Any]) -> None:
    """One Location; two Schedules without a physician, two of one PractitionerRole."""
    publisher.put("/files/locations.ndjson", location("loc-1"), location("loc-2", "CMS", "G1R 2L3"))
    publisher.put("/files/people.ndjson", practitioner("dr-1"), role("role-1", "dr-1", "loc-1"))
    publisher.put(
        "/files/schedules.ndjson",
        schedule("sch-a", "Location/loc-1"),
        schedule("sch-b", "Location/loc-1"),
        schedule("sch-c", "Location/loc-1", "PractitionerRole/role-1"),
        schedule("sch-d", "Location/loc-1", "PractitionerRole/role-1"),
        schedule("sch-2", "Location/loc-2"),
    )
    publisher.put("/files/slots.ndjson", *slot_lines)
    publisher.publish(
        ("Location", "/files/locations.ndjson"),
        ("Practitioner", "/files/people.ndjson"),
        ("Schedule", "/files/schedules.ndjson"),
        ("Slot", "/files/slots.ndjson"),
    )


def problems(source: SmartSchedulingSource) -> dict[str, Any]:
    return {p.code: p for p in source.problems}


def deltas(publisher: Publisher, *files: list[str]) -> None:
    """The manifest answers ``_since`` T1 with the first files, T2 with the next..."""
    times = [T1, T2, T3]

    def honour_since(request: web.Request) -> dict[str, Any] | None:
        since = request.query.get("_since")
        if since not in times:
            return None
        n = times.index(since)
        if n >= len(files):
            return delta_manifest(publisher, since, since)
        return delta_manifest(publisher, since, times[n + 1], slots=files[n])

    publisher.on_manifest = honour_since


@pytest.mark.parametrize(("seats", "served"), [((None, None), 2), ((3, 2), 5)], ids=["1+1", "3+2"])
async def test_two_schedules_of_one_location_at_one_time_serve_one_slot_with_every_seat(
    source: SmartSchedulingSource,
    publisher: Publisher,
    seats: tuple[int | None, int | None],
    served: int,
) -> None:
    first, second = seats
    feed(
        publisher,
        slot("a", "sch-a", at(10, 9), extension=booking("https://book.example/a", capacity=first)),
        slot("b", "sch-b", at(10, 9), extension=booking("https://book.example/b", capacity=second)),
    )
    await loaded(source)

    (found,) = await slots(source)
    assert (found.capacity, found.booking_url) == (served, "https://book.example/a")
    assert found.physician_local_id is None
    same_time = problems(source)["SAME_TIME_SLOTS"]
    assert (same_time.severity, same_time.count) == (ProblemSeverity.WARNING, 1)
    assert "served as one slot" in same_time.message and "seats" in same_time.message
    assert same_time.samples == (
        f"Location/loc-1 at {datetime(2031, 3, 10, 9, tzinfo=MONTREAL).astimezone(UTC).isoformat()}"
        f", ROUTINE, physician none: 2 slots served as one, {served} seats",
    )
    assert source.status_hint() is SourceStatus.UP


async def test_same_time_slots_of_one_physician_are_one_slot_and_a_busy_one_never_counts(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    feed(
        publisher,
        slot("c", "sch-c", at(10, 9), extension=booking(capacity=3)),
        slot("d", "sch-d", at(10, 9), extension=booking(capacity=2)),
        slot("d-busy", "sch-d", at(10, 9), status="busy"),
        slot("a", "sch-a", at(10, 9)),  # no physician: another slot
        slot("b", "sch-b", at(10, 9), at(10, 9, 30)),  # ends later: another slot
    )
    await loaded(source)

    found = {(s.physician_local_id, s.end): s.capacity for s in await slots(source)}
    nine_fifteen = datetime(2031, 3, 10, 9, 15, tzinfo=MONTREAL)
    assert found == {
        ("dr-1", nine_fifteen): 5,
        (None, nine_fifteen): None,
        (None, datetime(2031, 3, 10, 9, 30, tzinfo=MONTREAL)): None,
    }
    assert problems(source)["SAME_TIME_SLOTS"].count == 1
    report = source.last_load
    assert report is not None and (report.slots, report.folded) == (3, 1)


async def test_a_feed_without_same_time_slots_has_no_such_problem(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    feed(publisher, slot("a", "sch-a", at(10, 9)), slot("b", "sch-b", at(10, 10)))
    await loaded(source)
    assert "SAME_TIME_SLOTS" not in problems(source)


# -- deltas ---------------------------------------------------------------------------


async def test_a_delta_booking_one_of_two_same_time_slots_leaves_the_other_with_its_seats(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    feed(
        publisher,
        slot("a", "sch-a", at(10, 9), extension=booking("https://book.example/a", capacity=3)),
        slot("b", "sch-b", at(10, 9), extension=booking("https://book.example/b", capacity=2)),
    )
    publisher.put("/files/delta.ndjson", slot("a", "sch-a", at(10, 9), status="busy"))
    deltas(publisher, ["/files/delta.ndjson"])
    await loaded(source, 2)

    (found,) = await slots(source)
    assert (found.capacity, found.booking_url) == (2, "https://book.example/b")
    report = source.last_load
    assert report is not None and report.delta and report.folded == 0
    assert "SAME_TIME_SLOTS" not in problems(source)


async def test_deltas_adding_and_booking_a_same_time_slot_add_and_take_its_seats(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    feed(
        publisher,
        slot("a", "sch-a", at(10, 9), extension=booking("https://book.example/a", capacity=3)),
        slot("x", "sch-a", at(10, 10)),
    )
    publisher.put(
        "/files/delta-1.ndjson",
        slot("b", "sch-b", at(10, 9), extension=booking("https://book.example/b", capacity=2)),
    )
    publisher.put("/files/delta-2.ndjson", slot("x", "sch-a", at(10, 11)))  # another slot moved
    deltas(publisher, ["/files/delta-1.ndjson"], ["/files/delta-2.ndjson"])
    await loaded(source, 2)

    first, _ = await slots(source)
    assert (first.capacity, first.booking_url) == (5, "https://book.example/a")
    assert problems(source)["SAME_TIME_SLOTS"].count == 1
    await loaded(source, 2)  # one more: the second delta, or a later one
    assert starts(await slots(source)) == [at(10, 9), at(10, 11)]
    assert (await slots(source))[0].capacity == 5  # untouched by the second delta


async def test_a_delta_with_repeated_ids_keeps_every_slot_of_the_store(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    # As Rite Aid publishes: every slot of a store has the store's id.
    feed(
        publisher,
        *(slot("116", "sch-2", at(day, 9), extension=booking(capacity=10)) for day in (10, 11, 12)),
        slot("117", "sch-a", at(10, 9)),  # a store with one slot so far
    )
    publisher.put(
        "/files/delta.ndjson",
        slot("116", "sch-2", at(11, 9), status="busy"),  # fully booked
        slot("116", "sch-2", at(12, 9), extension=booking(capacity=4)),  # seats taken
        slot("116", "sch-2", at(13, 9), extension=booking(capacity=10)),  # a new day
        slot("117", "sch-a", at(11, 9)),  # its second slot
    )
    deltas(publisher, ["/files/delta.ndjson"])
    await loaded(source, 2)

    found = {(s.clinic_local_id, s.start): s.capacity for s in await slots(source)}
    day = lambda d: datetime(2031, 3, d, 9, tzinfo=MONTREAL)  # noqa: E731
    assert found == {
        ("loc-2", day(10)): 10,
        ("loc-2", day(12)): 4,
        ("loc-2", day(13)): 10,
        ("loc-1", day(10)): None,
        ("loc-1", day(11)): None,
    }
    report = source.last_load
    assert report is not None and report.delta and report.slots == 5


async def test_a_delete_of_a_repeated_id_takes_every_slot_of_it(
    source: SmartSchedulingSource, publisher: Publisher
) -> None:
    feed(
        publisher,
        *(slot("116", "sch-2", at(day, 9)) for day in (10, 11)),
        slot("117", "sch-a", at(10, 9)),
    )
    publisher.put(
        "/files/deleted.ndjson",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": "Slot/116"}}],
        },
    )

    def delete(request: web.Request) -> dict[str, Any] | None:
        if request.query.get("_since") == T1:
            return delta_manifest(publisher, T1, T2, deleted=["/files/deleted.ndjson"])
        return None

    publisher.on_manifest = delete
    await loaded(source, 2)
    assert [s.clinic_local_id for s in await slots(source)] == ["loc-1"]


# -- through the API ------------------------------------------------------------------


async def test_one_query_shows_the_summed_seats_and_the_warning(
    gateway_for: GatewayFactory, publisher: Publisher
) -> None:
    nine = datetime.combine(TEST_FIRST_DAY + timedelta(days=1), time(9), MONTREAL)
    feed(
        publisher,
        slot(
            "a", "sch-a", nine.isoformat(), extension=booking("https://book.example/a", capacity=3)
        ),
        slot(
            "b", "sch-b", nine.isoformat(), extension=booking("https://book.example/b", capacity=2)
        ),
    )
    definition = SourceConfig(
        id="ssl-test",
        name="SSL test",
        protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
        url=publisher.base + MANIFEST,
        timeout_s=1.0,
    )
    async with gateway_for(definition) as gateway:
        answer = await gateway.query(
            "{ slots(filter: {}, first: 10) { totalCount totalCountKind edges { node {"
            " start capacity bookingUrl clinic { name } } } }"
            " sources { id status problems { code severity count message } } }"
        )
    assert "errors" not in answer, answer
    data = answer["data"]
    (edge,) = data["slots"]["edges"]
    assert edge["node"]["capacity"] == 5
    assert edge["node"]["bookingUrl"] == "https://book.example/a"
    assert datetime.fromisoformat(edge["node"]["start"]) == nine
    assert (data["slots"]["totalCount"], data["slots"]["totalCountKind"]) == (1, "EXACT")
    (view,) = data["sources"]
    assert view["status"] == "UP"
    (same_time,) = [p for p in view["problems"] if p["code"] == "SAME_TIME_SLOTS"]
    assert (same_time["severity"], same_time["count"]) == ("WARNING", 1)
