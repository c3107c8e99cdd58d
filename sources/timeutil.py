"""Time rules: every instant is aware; naive upstream times are Montreal local time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

MONTREAL = ZoneInfo("America/Montreal")


def parse_upstream_datetime(text: str) -> datetime:
    """Parse an ISO-8601 timestamp from an upstream.

    A timestamp without an offset is America/Montreal local time; in the
    repeated hour of the autumn change, the first occurrence (``fold=0``) wins.
    Raises ``ValueError`` on anything that is not ISO-8601.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO-8601 string, got {type(text).__name__}")
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=MONTREAL, fold=0)
    return value


def to_montreal(value: datetime) -> datetime:
    """The same instant, expressed in Montreal local time with its offset."""
    return value.astimezone(MONTREAL)


def montreal_naive(value: datetime) -> str:
    """Montreal local wall time without offset, as naive-time upstreams expect."""
    return to_montreal(value).replace(tzinfo=None).isoformat(timespec="seconds")
