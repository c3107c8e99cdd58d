"""Time rules: every instant is aware; a naive upstream time is its clinic's local time.

Which zone a clinic keeps is ``sources.time_zones``' rule; here, reading a time in it.
A naive time is read in the zone given, the first occurrence (``fold=0``) in the
repeated hour of the autumn change. Output stays in Montreal time with its offset
(``to_montreal``), as the API's contract says.

    parse_upstream_datetime("2026-11-16T09:00:00", zone_info("America/Halifax"))
    # 2026-11-16 09:00-04:00, which is 08:00 in Montreal
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTREAL = ZoneInfo("America/Montreal")


@lru_cache(maxsize=64)
def zone_info(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` of an IANA name; ``ValueError`` when the name is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise ValueError(f"not an IANA time zone: {name!r}") from exc


def read_upstream_datetime(text: str) -> datetime:
    """An ISO-8601 timestamp from an upstream, aware or naive as written.

    Raises ``ValueError`` on anything that is not ISO-8601. A naive result is a wall
    time whose zone the caller knows (:func:`in_zone`).
    """
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO-8601 string, got {type(text).__name__}")
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def in_zone(value: datetime, zone: ZoneInfo) -> datetime:
    """``value`` as is when aware; a naive wall time read in ``zone`` (``fold=0``)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=zone, fold=0)
    return value


def parse_upstream_datetime(text: str, zone: ZoneInfo) -> datetime:
    """Parse an ISO-8601 timestamp from an upstream; without an offset, it is ``zone``'s
    local time (the clinic's, for a slot). Raises ``ValueError`` on anything else."""
    return in_zone(read_upstream_datetime(text), zone)


def wall_epoch(value: datetime) -> int:
    """A naive wall time as a number (its seconds as if it were UTC), placed later
    with :func:`placed_epoch` once its zone is known."""
    return int(value.replace(tzinfo=UTC).timestamp())


def placed_epoch(wall: int, zone: ZoneInfo) -> int:
    """The POSIX time of the wall time :func:`wall_epoch` gave, read in ``zone``."""
    naive = datetime.fromtimestamp(wall, UTC).replace(tzinfo=None)
    return int(in_zone(naive, zone).timestamp())


def to_montreal(value: datetime) -> datetime:
    """The same instant, expressed in Montreal local time with its offset."""
    return value.astimezone(MONTREAL)


def local_naive(value: datetime, zone: ZoneInfo) -> str:
    """``zone``'s local wall time without offset, as naive-time upstreams expect."""
    return value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")
