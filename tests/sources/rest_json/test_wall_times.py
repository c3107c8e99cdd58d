"""Times read once each (``sources.rest_json.wall_times``) read as the long way does."""

from __future__ import annotations

from datetime import datetime

import pytest

from sources.rest_json.payload import ItemReader
from sources.rest_json.wall_times import instant, read_time
from sources.timeutil import in_zone, read_upstream_datetime, zone_info

ZONES = ("America/Montreal", "America/Halifax", "America/Blanc-Sablon")
TEXTS = (
    "2026-12-07T09:20:00",
    "2026-11-01T01:30:00",  # the repeated autumn hour: its first occurrence
    "2026-03-08T02:30:00",  # the spring gap
    "2026-12-07T09:20:00-05:00",
    "2026-12-07T14:20:00Z",
    " 2026-12-07T09:20:00 ",
)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("name", ZONES)
def test_an_instant_is_the_time_in_its_zone_and_its_posix_time(text: str, name: str) -> None:
    zone = zone_info(name)
    for _ in range(2):  # read, then remembered
        value, at = instant(read_time(text), zone)
        expected = in_zone(read_upstream_datetime(text), zone)
        assert value == expected and value.tzinfo == expected.tzinfo and value.fold == 0
        assert value.utcoffset() == expected.utcoffset()
        assert at == expected.timestamp()


def test_an_aware_time_keeps_its_own_offset_whatever_equal_time_came_first() -> None:
    zone = zone_info("America/Montreal")
    utc, _ = instant(read_time("2026-12-07T14:20:00+00:00"), zone)
    local, _ = instant(read_time("2026-12-07T09:20:00-05:00"), zone)
    assert utc == local and utc.utcoffset() != local.utcoffset()


def test_a_bad_time_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            read_time("le 7 décembre")


def test_posix_times_order_slots_as_their_instants_do() -> None:
    zone = zone_info("America/Halifax")
    times = [datetime(2026, 12, 7, 9, 0, 0, us) for us in (0, 1, 2, 999_999)]
    ats = [instant(t, zone)[1] for t in times]
    assert ats == sorted(ats) and len(set(ats)) == len(ats)


def test_a_slot_ending_in_the_second_autumn_hour_is_placed_as_before() -> None:
    reader = ItemReader("r", "permits", "licences")
    item = reader.slot(
        {
            "id": "s",
            "statut": "libre",
            "clinique_id": 1,
            "type_rdv": "regulier",
            "debut": "2026-11-01T01:50:00",
            "fin": "2026-11-01T01:10:00",
        }
    )
    assert item is not None
    placed = item.placed(zone_info("America/Montreal"))
    assert placed is not None
    start, end, start_at = placed
    assert end.fold == 1 and end.timestamp() > start.timestamp()
    assert start_at == start.timestamp()
    record = item.record(start, end, None)
    assert (record.start, record.end, record.local_id) == (start, end, "s")
