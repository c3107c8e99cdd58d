"""The API's enums: the domain enums of ``sources.records``, registered as GraphQL enums.

``strawberry.enum`` marks the domain classes in place, so the same classes are
used in annotations here and in the records the resolvers return.
"""

from __future__ import annotations

import strawberry

from sources.records import (
    AppointmentType,
    ProblemSeverity,
    Region,
    SlotState,
    SourceProtocol,
    SourceStatus,
)
from sources.search import CountKind

strawberry.enum(Region, description="A Quebec administrative region.")
strawberry.enum(AppointmentType)
strawberry.enum(
    SlotState,
    description="FREE: the booking source says the slot is free now; GONE: taken, "
    "withdrawn or no longer listed; UNKNOWN: the source cannot be asked about one slot, "
    "or failed (its error says which).",
)
strawberry.enum(SourceProtocol)
strawberry.enum(
    SourceStatus,
    description="UP: answering; DEGRADED: its current data lack slots it published (a LOSS "
    "problem: an incomplete search, a failed file, a half-open circuit), failing part of its "
    "calls, or not answered yet; "
    "DOWN: failing, not called for a while (its circuit is open); "
    "DISABLED: switched off in the registry.",
)

strawberry.enum(
    ProblemSeverity,
    description="LOSS: the current data lack slots the source published (it reads DEGRADED); "
    "WARNING: records malformed per the specification skipped, or a request refused as "
    "unsupported (its status unchanged).",
)

strawberry.enum(
    CountKind,
    name="TotalCountKind",
    description="EXACT: every source answered completely; AT_LEAST: totalCount is a lower "
    "bound (a source truncated or failed), the same on every page of one search.",
)

__all__ = [
    "AppointmentType",
    "CountKind",
    "ProblemSeverity",
    "Region",
    "SourceProtocol",
    "SourceStatus",
]
