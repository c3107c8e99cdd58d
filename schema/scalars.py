"""The ``DateTime`` scalar: ISO-8601 in America/Montreal local time, with its offset."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types.scalar import ScalarDefinition

from sources.timeutil import to_montreal


def _serialize(value: datetime) -> str:
    if value.tzinfo is None:  # pragma: no cover - records are aware by construction
        raise ValueError("cannot serialize a naive datetime")
    return to_montreal(value).isoformat()


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string such as 2026-11-26T08:00:00-05:00")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO-8601 date-time; use e.g. 2026-11-26T08:00:00-05:00"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; add one, e.g. 2026-11-26T08:00:00-05:00")
    return parsed


DateTime = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant as ISO-8601, written in America/Montreal local time with its offset "
        "(2026-11-26T08:00:00-05:00). Inputs must carry an offset."
    ),
    serialize=_serialize,
    parse_value=_parse,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: DateTime}
