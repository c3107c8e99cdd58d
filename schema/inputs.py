"""Input types. Defaults that the SDL must not show are applied in ``resolvers.inputs``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry

from resolvers.alerts import watch_filter
from resolvers.slots import SlotRequest, slot_request
from schema.enums import AppointmentType, Region
from sources.records import GeoPoint

if TYPE_CHECKING:
    from sources.watch import WatchFilter

T = TypeVar("T")


@strawberry.input
class GeoPointInput:
    latitude: float
    longitude: float

    def to_point(self) -> GeoPoint:
        """The domain point (checked on Earth by the resolvers)."""
        return GeoPoint(self.latitude, self.longitude)


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

    def to_request(self, now: datetime, first: int | None) -> SlotRequest:
        """The search this filter asks for, as one domain value (``SlotQuery``, checked
        and with its defaults applied by the resolvers) and its cursors' fingerprint."""
        return slot_request(now, first, **self._arguments())

    def to_watch(self, now: datetime) -> WatchFilter:
        """What a subscription with this filter watches, checked as a query's filter."""
        return watch_filter(now, **self._arguments())

    def _arguments(self) -> dict[str, Any]:
        near = unset_to_none(self.near)
        return {
            "near": near.to_point() if near is not None else None,
            "radius_km": unset_to_none(self.radius_km),
            "region": unset_to_none(self.region),
            "starts_after": unset_to_none(self.starts_after),
            "starts_before": unset_to_none(self.starts_before),
            "appointment_types": unset_to_none(self.appointment_types),
            "languages": unset_to_none(self.languages),
            "clinic_ids": unset_to_none(self.clinic_ids),
            "physician_ids": unset_to_none(self.physician_ids),
        }


@strawberry.input
class ClinicFilter:
    near: GeoPointInput | None = strawberry.UNSET
    radius_km: float | None = strawberry.UNSET
    region: Region | None = strawberry.UNSET
    name_contains: str | None = strawberry.UNSET


def unset_to_none(value: T | None) -> T | None:
    """UNSET (argument not given) and null mean the same to our resolvers."""
    return None if value is strawberry.UNSET else value
