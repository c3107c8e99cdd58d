"""A slot's identity: one value, sortable, and encoded as the ids handed out before."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sources.records import AppointmentType, SlotRecord
from sources.search import FoundSlot, SlotIdentity
from sources.search.federation import _slot_order
from sources.timeutil import MONTREAL

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=MONTREAL)
# A slot key as the gateway encoded it in its ids before SlotIdentity (ids are stable).
OLD_KEY = (
    '["i:urn:test:permit|P-1","i:urn:test:md|9","2026-12-01T13:00:00+00:00",'
    '"2026-12-01T13:20:00+00:00","ROUTINE"]'
)


def record(start: datetime, source_id: str = "a") -> SlotRecord:
    return SlotRecord(
        source_id, "s1", start, start + timedelta(minutes=20), AppointmentType.ROUTINE, "c1"
    )


def test_an_id_handed_out_before_decodes_and_encodes_to_the_same_text() -> None:
    identity = SlotIdentity.decode(OLD_KEY)
    assert identity == SlotIdentity.of(record(T0), "i:urn:test:permit|P-1", "i:urn:test:md|9")
    assert identity is not None and identity.encode() == OLD_KEY


def test_the_same_slot_in_two_zones_is_one_identity_with_one_sort_key() -> None:
    here = SlotIdentity.of(record(T0, "a"), "k", None)
    there = SlotIdentity.of(record(T0.astimezone(UTC), "b"), "k", None)
    assert here == there and hash(here) == hash(there)
    assert here.sort_key() == there.sort_key() == ("k", "", *here.sort_key()[2:4], "ROUTINE")
    assert here.encode() == there.encode()


def test_sort_keys_order_by_clinic_then_physician_then_times() -> None:
    first = SlotIdentity.of(record(T0), "a", None)
    later = SlotIdentity.of(record(T0 + timedelta(minutes=1)), "a", None)
    with_physician = SlotIdentity.of(record(T0), "a", "p")
    other_clinic = SlotIdentity.of(record(T0), "b", None)
    assert sorted([other_clinic, later, with_physician, first], key=SlotIdentity.sort_key) == [
        first,
        later,
        with_physician,
        other_clinic,
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        '"abcde"',
        '["k", null, "2026-12-01T13:00:00+00:00", "2026-12-01T13:20:00+00:00"]',
        '["k", null, "2026-12-01T13:00:00", "2026-12-01T13:20:00", "ROUTINE"]',  # naive
        '["k", null, "tomorrow", "2026-12-01T13:20:00+00:00", "ROUTINE"]',
        '["k", null, "2026-12-01T13:00:00+00:00", "2026-12-01T13:20:00+00:00", "SPA"]',
        '["k", 3, "2026-12-01T13:00:00+00:00", "2026-12-01T13:20:00+00:00", "ROUTINE"]',
    ],
)
def test_anything_else_is_not_an_identity(text: str) -> None:
    assert SlotIdentity.decode(text) is None


def test_the_merge_orders_slots_as_their_sort_keys_do() -> None:
    """The merge's own sort (UTC datetimes, flattened) gives ``FoundSlot.sort_key``'s
    order, ties at one start and distance included, whatever zone a source wrote."""
    rng = random.Random(17)
    montreal, halifax = ZoneInfo("America/Montreal"), ZoneInfo("America/Halifax")
    base = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # the day clocks go forward
    slots = []
    for n in range(400):
        start = base + timedelta(minutes=15 * rng.randrange(40))
        zone = rng.choice((UTC, montreal, halifax))
        end = start + timedelta(minutes=rng.choice((15, 30)))
        record = SlotRecord(
            rng.choice(("a", "b")), f"s{n}", start.astimezone(zone), end.astimezone(zone),
            rng.choice(list(AppointmentType)), "c1",
        )  # fmt: skip
        clinic_key = rng.choice(("i:permit|1", "i:permit|2", "n:clinique|H2X 1Y4"))
        physician = rng.choice((None, "i:licence|7", "i:licence|8"))
        identity = SlotIdentity.of(record, clinic_key, physician)
        distance = rng.choice((None, 1.5, 2.25, 2.25))
        slots.append(FoundSlot(identity, record, None, None, distance))  # type: ignore[arg-type]
    assert sorted(slots, key=_slot_order) == sorted(slots, key=FoundSlot.sort_key)
