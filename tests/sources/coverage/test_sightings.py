"""What the cache holds of live sources, by region: each answer kept as long as the cache
keeps it, each slot counted once, only the slots in the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sources.coverage import CacheSightings
from sources.coverage import sightings as sightings_module
from sources.records import (
    Address,
    AppointmentType,
    ClinicRecord,
    PhysicianRecord,
    Region,
    SlotRecord,
    SlotResult,
)

T0 = datetime(2026, 11, 16, 12, 30, tzinfo=UTC)
WEEK = timedelta(days=7)
LAVAL = ClinicRecord("live", "c1", "Clinique A", Address("Laval", Region.LAVAL))
MONTREAL = ClinicRecord("live", "c2", "Clinique B", Address("Montréal", Region.MONTREAL))


def slot(local_id: str, start: datetime, clinic: str = "c1") -> SlotRecord:
    return SlotRecord(
        "live", local_id, start, start + timedelta(minutes=15), AppointmentType.ROUTINE, clinic
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_slot_in_the_window_counts_once_by_its_clinics_region() -> None:
    clock = Clock()
    sightings = CacheSightings(clock)
    first = SlotResult(
        (slot("s1", T0), slot("s2", T0 + WEEK + timedelta(hours=1))), True, clinics={"c1": LAVAL}
    )
    again = SlotResult(
        (slot("s1", T0), slot("s3", T0 + timedelta(days=2))), True, clinics={"c1": LAVAL}
    )
    sightings.note("live", "k1", first, 60)
    sightings.note("live", "k2", again, 60)
    sightings.note("live", "k3", [MONTREAL], 60)
    sightings.note("live", "k4", [PhysicianRecord("live", "p1", "Dr A")], 60)
    counts = sightings.counts("live", T0.timestamp(), (T0 + WEEK).timestamp())
    # s1 twice, s3 once; s2 after the window. Montréal's clinic from a clinic search.
    assert counts == {Region.LAVAL: (1, 2), Region.MONTREAL: (1, 0)}
    assert sightings.counts("other", T0.timestamp(), (T0 + WEEK).timestamp()) == {}


def test_an_answer_is_forgotten_when_the_cache_would_drop_it() -> None:
    clock = Clock()
    sightings = CacheSightings(clock)
    sightings.note("live", "k1", SlotResult((slot("s1", T0),), True, clinics={"c1": LAVAL}), 60)
    sightings.note("live", "k2", [MONTREAL], 300)
    window = (T0.timestamp(), (T0 + WEEK).timestamp())
    clock.now += 59
    assert sightings.counts("live", *window) == {Region.LAVAL: (1, 1), Region.MONTREAL: (1, 0)}
    clock.now += 2
    assert sightings.counts("live", *window) == {Region.MONTREAL: (1, 0)}
    # The same key stored again replaces what it held.
    sightings.note("live", "k2", [LAVAL], 300)
    assert sightings.counts("live", *window) == {Region.LAVAL: (1, 0)}
    sightings.forget(keep=set())
    assert sightings.sources() == set()


def test_past_its_bound_the_oldest_answers_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sightings_module, "MAX_RECORDS", 4)
    seen = CacheSightings(Clock())
    window = (T0.timestamp(), (T0 + WEEK).timestamp())
    for n in range(3):  # two records each: its slot and its clinic
        answer = SlotResult((slot(f"s{n}", T0),), True, clinics={"c1": LAVAL})
        seen.note("live", f"k{n}", answer, 60)
    assert seen.counts("live", *window) == {Region.LAVAL: (1, 2)}
