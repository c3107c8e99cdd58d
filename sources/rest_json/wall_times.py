"""The API's times read once each: its slots start and end on a few wall times shared
by every clinic of a zone, so each text is parsed, and each wall time placed in a zone,
once rather than once a slot (bounded caches: a hostile upstream cannot grow them).

    read_time("2026-12-07T09:20:00")             # naive: its clinic's wall time
    instant(read_time(...), zone_info("America/Montreal"))  # (aware time, POSIX time)
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from sources.timeutil import in_zone, read_upstream_datetime

__all__ = ["instant", "read_time"]


@lru_cache(maxsize=8192)
def read_time(text: str) -> datetime:
    """``read_upstream_datetime`` of ``text`` (``ValueError`` when it is no ISO-8601 time)."""
    return read_upstream_datetime(text)


def instant(value: datetime, zone: ZoneInfo) -> tuple[datetime, float]:
    """``value`` read in ``zone`` (``in_zone``: aware as is, naive as ``zone``'s wall
    time) and its POSIX time, which orders instants as the datetimes do."""
    if value.tzinfo is not None:
        return value, value.timestamp()
    return _wall_instant(value, zone)


@lru_cache(maxsize=8192)
def _wall_instant(value: datetime, zone: ZoneInfo) -> tuple[datetime, float]:
    placed = in_zone(value, zone)
    return placed, placed.timestamp()
