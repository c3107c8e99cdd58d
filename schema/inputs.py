"""Input types. Defaults that the SDL must not show are applied in ``resolvers.inputs``."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.enums import AppointmentType, Region


@strawberry.input
class GeoPointInput:
    latitude: float
    longitude: float

    def as_tuple(self) -> tuple[float, float]:
        return (self.latitude, self.longitude)


@strawberry.input
class SlotFilter:
    near: GeoPointInput | None = strawberry.UNSET
    radius_km: float | None = strawberry.field(
        default=strawberry.UNSET, description="Around `near`; 25 by default, at most 200."
    )
    region: Region | None = strawberry.UNSET
    starts_after: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="Now by default (never earlier than now)."
    )
    starts_before: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="7 days after the window's start by default; the window is at most 31 days.",
    )
    appointment_types: list[AppointmentType] | None = strawberry.UNSET
    languages: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description='Language codes such as "fr" or "en"; a slot matches when its physician '
        "(or, without one, its clinic) speaks one of them.",
    )
    clinic_ids: list[strawberry.ID] | None = strawberry.UNSET
    physician_ids: list[strawberry.ID] | None = strawberry.UNSET


@strawberry.input
class ClinicFilter:
    near: GeoPointInput | None = strawberry.UNSET
    radius_km: float | None = strawberry.UNSET
    region: Region | None = strawberry.UNSET
    name_contains: str | None = strawberry.UNSET


def unset_to_none(value: object) -> object:
    """UNSET (argument not given) and null mean the same to our resolvers."""
    return None if value is strawberry.UNSET else value
