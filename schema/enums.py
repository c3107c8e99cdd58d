"""The API's enums: the domain enums of ``sources.records``, exposed as GraphQL enums."""

from __future__ import annotations

import strawberry

from sources import records

Region = strawberry.enum(records.Region, description="A Quebec administrative region.")
AppointmentType = strawberry.enum(records.AppointmentType)
SourceProtocol = strawberry.enum(records.SourceProtocol)
SourceStatus = strawberry.enum(
    records.SourceStatus,
    description="UP: answering; DEGRADED: failing part of its calls; DOWN: failing; "
    "DISABLED: switched off in the registry.",
)

__all__ = ["AppointmentType", "Region", "SourceProtocol", "SourceStatus"]
