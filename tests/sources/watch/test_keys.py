"""Group keys: coarse on purpose, without the exact point; keys and changes round-trip
through msgspec as they would through Redis."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from sources.errors import SourceBadResponse, SourceTimeout, SourceUnavailable
from sources.geo import distance_km
from sources.records import AppointmentType, GeoPoint, Region, SlotQuery
from sources.search import FoundSlot, MergedClinic, SlotIdentity
from sources.watch import (
    GoneSlot,
    GroupChange,
    SourceFailure,
    WatchFilter,
    WatchKey,
    decode_change,
    decode_key,
    encode_change,
    encode_key,
)
from sources.watch.keys import HALF_DIAGONAL_KM, cell_centre
from tests.sources.watch.fakes import LIMOILOU, NOW, PLATEAU, clinic, slot

WEEK = timedelta(days=7)


def wanted(near: GeoPoint | None = PLATEAU, **query: object) -> WatchFilter:
    after = query.pop("starts_after", None)
    before = query.pop("starts_before", None)
    search = SlotQuery(
        starts_after=NOW, starts_before=NOW + WEEK, limit=20, near=near, radius_km=10.0, **query
    )
    return WatchFilter(search, after, before, WEEK)  # type: ignore[arg-type]


def test_filters_a_few_hundred_metres_apart_share_a_key_without_their_points() -> None:
    here = WatchKey.of(wanted(PLATEAU))
    nearby = WatchKey.of(wanted(GeoPoint(PLATEAU.latitude + 0.001, PLATEAU.longitude)))
    assert here == nearby and hash(here) == hash(nearby)
    assert here != WatchKey.of(wanted(LIMOILOU))
    assert here.cell is not None
    # The key holds indices of a 5 km cell, never the point; its centre is near it.
    assert str(PLATEAU.latitude) not in repr(here) and str(PLATEAU.longitude) not in repr(here)
    assert distance_km(cell_centre(here.cell), PLATEAU) <= HALF_DIAGONAL_KM


@pytest.mark.parametrize("latitude", [45.0, 48.5, 58.0])
def test_every_point_of_a_cell_is_within_its_half_diagonal(latitude: float) -> None:
    for dy in range(0, 10):
        for dx in range(0, 10):
            point = GeoPoint(latitude + dy * 0.0049, -73.0 + dx * 0.0071)
            key = WatchKey.of(wanted(point))
            assert key.cell is not None
            assert distance_km(cell_centre(key.cell), point) <= HALF_DIAGONAL_KM


def test_windows_are_rounded_to_the_day_and_a_default_bound_stays_open() -> None:
    morning = NOW + timedelta(days=1)
    evening = morning + timedelta(hours=10)
    assert WatchKey.of(wanted(starts_after=morning)) == WatchKey.of(wanted(starts_after=evening))
    sliding = WatchKey.of(wanted())
    assert sliding.since is None and sliding.until is None
    fixed = WatchKey.of(wanted(starts_after=morning, starts_before=evening))
    assert fixed.since == morning.date() and fixed.until == morning.date() + timedelta(days=1)
    assert fixed != sliding


def test_types_languages_and_region_are_part_of_the_key_in_any_order() -> None:
    one = wanted(
        appointment_types=frozenset({AppointmentType.URGENT, AppointmentType.WALK_IN}),
        languages=frozenset({"fr", "en"}),
        region=Region.MONTREAL,
    )
    same = wanted(
        appointment_types=frozenset({AppointmentType.WALK_IN, AppointmentType.URGENT}),
        languages=frozenset({"en", "fr"}),
        region=Region.MONTREAL,
    )
    assert WatchKey.of(one) == WatchKey.of(same)
    assert WatchKey.of(one) != WatchKey.of(wanted(languages=frozenset({"fr"})))
    assert WatchKey.of(wanted(None)).cell is None


def test_a_key_and_a_change_round_trip_through_msgpack() -> None:
    key = WatchKey.of(wanted(appointment_types=frozenset({AppointmentType.URGENT})))
    assert decode_key(encode_key(key)) == key
    record = slot("a", "s1", "c1", 3)
    merged = MergedClinic("i:urn:test:permit|c1", (clinic("a", "c1", PLATEAU),))
    found = FoundSlot(SlotIdentity.of(record, merged.key, None), record, merged, None, 1.25)
    change = GroupChange(
        key,
        NOW,
        opened=(found,),
        gone=(GoneSlot(found.key, record.start, PLATEAU),),
        failing=(SourceFailure.of(SourceTimeout("b", "no answer within 2 s")),),
    )
    back = decode_change(encode_change(change))
    assert back == change
    assert back.opened[0].clinic.records[0].address.region is Region.MONTREAL
    with pytest.raises(msgspec.DecodeError):
        decode_change(b"\x93not a change")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (SourceTimeout("a", "late"), SourceTimeout),
        (SourceUnavailable("a", "down", status=503), SourceUnavailable),
        (SourceBadResponse("a", "garbled"), SourceBadResponse),
    ],
)
def test_a_failure_comes_back_as_the_error_a_query_reports(error: Exception, kind: type) -> None:
    assert isinstance(error, SourceTimeout | SourceUnavailable | SourceBadResponse)
    back = SourceFailure.of(error).error()
    assert type(back) is kind and back.message == error.message and back.source_id == "a"
