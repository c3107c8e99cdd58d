"""Validation of client arguments. Every refusal says what to fix (``BAD_USER_INPUT``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from resolvers.errors import UserInputError
from resolvers.ids import expect_global_id
from sources.records import GeoPoint

DEFAULT_RADIUS_KM = 25.0
MAX_RADIUS_KM = 200.0
DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=31)
MAX_HORIZON = timedelta(days=366)
MAX_FIRST = 100
MAX_IDS = 100
MAX_LANGUAGES = 20
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")


def first_problem(first: int, field: str) -> str | None:
    """What is wrong with ``first`` on ``field``, in the one wording both its checks use
    (this module's, and the cost check's before execution), or None."""
    if 0 <= first <= MAX_FIRST:
        return None
    return f"first must be between 0 and {MAX_FIRST}, got {first} (on {field})"


def check_first(first: int | None, default: int, field: str) -> int:
    if first is None:
        return default
    problem = first_problem(first, field)
    if problem is not None:
        raise UserInputError(problem)
    return first


def check_point(point: GeoPoint) -> GeoPoint:
    latitude, longitude = point.latitude, point.longitude
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        raise UserInputError(f"near.latitude must be between -90 and 90, got {latitude}")
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        raise UserInputError(f"near.longitude must be between -180 and 180, got {longitude}")
    return point


def check_radius(near: GeoPoint | None, radius_km: float | None) -> float | None:
    if radius_km is None:
        return DEFAULT_RADIUS_KM if near is not None else None
    if near is None:
        raise UserInputError("radiusKm needs near: give the point to measure from")
    if not (math.isfinite(radius_km) and 0 < radius_km <= MAX_RADIUS_KM):
        raise UserInputError(f"radiusKm must be between 0 and {MAX_RADIUS_KM:g}, got {radius_km:g}")
    return radius_km


def check_window(
    now: datetime, starts_after: datetime | None, starts_before: datetime | None
) -> tuple[datetime, datetime]:
    """The search window. Slots already started are never offered, so the window
    starts at ``now`` at the earliest; it ends 7 days after its start by default."""
    for name, value in (("startsAfter", starts_after), ("startsBefore", starts_before)):
        if value is not None and value - now > MAX_HORIZON:
            raise UserInputError(
                f"{name} must be within {MAX_HORIZON.days} days from now; "
                "booking systems publish no slots that far ahead"
            )
    lower = now if starts_after is None else max(starts_after, now)
    upper = starts_before if starts_before is not None else lower + DEFAULT_WINDOW
    if starts_after is not None and starts_before is not None and starts_before <= starts_after:
        raise UserInputError("startsBefore must be later than startsAfter")
    if upper <= now:
        raise UserInputError("startsBefore is in the past: only future slots can be booked")
    if upper - lower > MAX_WINDOW:
        raise UserInputError(
            f"the time window must not exceed {MAX_WINDOW.days} days: "
            "narrow startsAfter..startsBefore"
        )
    return lower, upper


def check_languages(languages: Sequence[str] | None) -> frozenset[str] | None:
    if languages is None:
        return None
    if len(languages) > MAX_LANGUAGES:
        raise UserInputError(f"languages accepts at most {MAX_LANGUAGES} values")
    out = set()
    for language in languages:
        tag = language.strip().lower()
        if not _LANGUAGE.match(tag):
            raise UserInputError(
                f'languages: {language!r} is not a language code; use codes like "fr" or "en"'
            )
        out.add(tag.split("-")[0])
    return frozenset(out) or None


def check_ids(ids: Sequence[str] | None, type_name: str, argument: str) -> tuple[str, ...] | None:
    if ids is None:
        return None
    if len(ids) > MAX_IDS:
        raise UserInputError(f"{argument} accepts at most {MAX_IDS} ids")
    return tuple(dict.fromkeys(expect_global_id(i, type_name, argument) for i in ids))


def check_text(value: str | None, argument: str, max_length: int) -> str | None:
    """Printable text of at most ``max_length`` characters; None when blank."""
    if value is None:
        return None
    if len(value) > max_length:
        raise UserInputError(f"{argument} must be at most {max_length} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserInputError(f"{argument} is not valid Unicode text") from None
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise UserInputError(f"{argument} must not contain control characters")
    return value.strip() or None
