"""Naive upstream times read in their clinic's zone, across the daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sources.timeutil import (
    MONTREAL,
    parse_upstream_datetime,
    placed_epoch,
    read_upstream_datetime,
    to_montreal,
    wall_epoch,
    zone_info,
)

HALIFAX = zone_info("America/Halifax")
BLANC_SABLON = zone_info("America/Blanc-Sablon")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "zone", "instant"),
    [
        # Winter: Montreal is UTC-5, the Îles and Blanc-Sablon UTC-4.
        ("2026-11-16T09:00:00", HALIFAX, utc(2026, 11, 16, 13)),
        ("2026-11-16T09:00:00", BLANC_SABLON, utc(2026, 11, 16, 13)),
        ("2026-11-16T09:00:00", MONTREAL, utc(2026, 11, 16, 14)),
        # Summer: the Îles are UTC-3, Blanc-Sablon stays UTC-4, as Montreal then.
        ("2027-06-07T09:00:00", HALIFAX, utc(2027, 6, 7, 12)),
        ("2027-06-07T09:00:00", BLANC_SABLON, utc(2027, 6, 7, 13)),
        ("2027-06-07T09:00:00", MONTREAL, utc(2027, 6, 7, 13)),
        # An offset, when written, decides whatever the zone.
        ("2026-11-16T09:00:00-05:00", HALIFAX, utc(2026, 11, 16, 14)),
        ("2026-11-16T14:00:00Z", BLANC_SABLON, utc(2026, 11, 16, 14)),
    ],
)
def test_a_naive_time_is_its_zones_local_time(text: str, zone: object, instant: datetime) -> None:
    assert parse_upstream_datetime(text, zone) == instant  # type: ignore[arg-type]
    written = read_upstream_datetime(text)
    if written.tzinfo is None:  # a feed keeps it as a wall time, placed once zoned
        assert placed_epoch(wall_epoch(written), zone) == int(instant.timestamp())  # type: ignore[arg-type]


def test_a_local_nine_oclock_in_montreal_terms() -> None:
    def in_montreal(text: str, zone: object) -> str:
        return to_montreal(parse_upstream_datetime(text, zone)).isoformat()  # type: ignore[arg-type]

    assert in_montreal("2026-11-16T09:00:00", HALIFAX) == "2026-11-16T08:00:00-05:00"
    assert in_montreal("2026-11-16T09:00:00", BLANC_SABLON) == "2026-11-16T08:00:00-05:00"
    assert in_montreal("2027-06-07T09:00:00", HALIFAX) == "2027-06-07T08:00:00-04:00"
    assert in_montreal("2027-06-07T09:00:00", BLANC_SABLON) == "2027-06-07T09:00:00-04:00"


@pytest.mark.parametrize(
    ("text", "zone", "instant"),
    [
        # The autumn change: the repeated hour's first occurrence (daylight time) wins.
        ("2026-11-01T01:30:00", MONTREAL, utc(2026, 11, 1, 5, 30)),
        ("2026-11-01T01:30:00", HALIFAX, utc(2026, 11, 1, 4, 30)),
        ("2026-11-01T01:30:00", BLANC_SABLON, utc(2026, 11, 1, 5, 30)),
        # The day after, each on standard time.
        ("2026-11-02T09:00:00", HALIFAX, utc(2026, 11, 2, 13)),
        # The spring change (8 March 2026, 02:00): before and after it in the Îles;
        # Blanc-Sablon does not change.
        ("2026-03-08T01:30:00", HALIFAX, utc(2026, 3, 8, 5, 30)),
        ("2026-03-08T03:30:00", HALIFAX, utc(2026, 3, 8, 6, 30)),
        ("2026-03-08T03:30:00", BLANC_SABLON, utc(2026, 3, 8, 7, 30)),
        ("2026-03-08T03:30:00", MONTREAL, utc(2026, 3, 8, 7, 30)),
    ],
)
def test_the_daylight_saving_changes(text: str, zone: object, instant: datetime) -> None:
    # As instants: == across zones is False for a time in a repeated hour (PEP 495).
    value = parse_upstream_datetime(text, zone)  # type: ignore[arg-type]
    assert value.timestamp() == instant.timestamp()
    wall = wall_epoch(datetime.fromisoformat(text))
    assert placed_epoch(wall, zone) == int(instant.timestamp())  # type: ignore[arg-type]


def test_blanc_sablon_keeps_atlantic_standard_time_all_year() -> None:
    for month in range(1, 13):
        value = parse_upstream_datetime(f"2027-{month:02d}-15T09:00:00", BLANC_SABLON)
        assert value.utcoffset() == timedelta(hours=-4)


def test_zone_names_are_checked() -> None:
    assert zone_info("America/Halifax") is HALIFAX
    for name in ("Atlantic", "America/Nowhere", "../etc/passwd", ""):
        with pytest.raises(ValueError, match="not an IANA time zone"):
            zone_info(name)
