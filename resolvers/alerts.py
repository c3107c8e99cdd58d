"""Slot alerts: a subscription's ``SlotFilter`` checked exactly as a query's, then the
watch's alerts for it, one request context renewed per alert."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Hashable, Sequence
from contextlib import aclosing
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from resolvers.inputs import DEFAULT_WINDOW, MAX_FIRST
from resolvers.slots import slot_request
from sources.watch import Alert, WatchFilter

if TYPE_CHECKING:
    from resolvers.context import RequestContext
    from sources.records import AppointmentType, GeoPoint, Region

# The most slots one alert carries (a query's largest page); more are sent as further
# alerts. The cost of a subscription counts its ``opened`` this many times.
MAX_OPENED = MAX_FIRST


def watch_filter(
    now: datetime,
    *,
    near: GeoPoint | None,
    radius_km: float | None,
    region: Region | None,
    starts_after: datetime | None,
    starts_before: datetime | None,
    appointment_types: Sequence[AppointmentType] | None,
    languages: Sequence[str] | None,
    clinic_ids: Sequence[str] | None,
    physician_ids: Sequence[str] | None,
) -> WatchFilter:
    """What a subscription watches: the filter checked by the query's own code
    (``slot_request``: the same refusals, the same codes), its window as given so
    that a default window slides with the clock."""
    request = slot_request(
        now,
        None,
        near=near,
        radius_km=radius_km,
        region=region,
        starts_after=starts_after,
        starts_before=starts_before,
        appointment_types=appointment_types,
        languages=languages,
        clinic_ids=clinic_ids,
        physician_ids=physician_ids,
    )
    return WatchFilter(request.query, starts_after, starts_before, DEFAULT_WINDOW)


async def alerts(ctx: RequestContext, wanted: WatchFilter) -> AsyncGenerator[Alert, None]:
    """The alerts of one subscription, until it ends (the client leaves, or its explicit
    window passes). Each alert is resolved with a fresh context (its own loaders,
    errors and snapshot of the sources), as a query of its own would be."""
    if ctx.watch is None:
        raise RuntimeError("subscriptions need the app's SlotWatch on the request context")
    async with aclosing(ctx.watch.alerts(wanted)) as stream:
        async for alert in stream:
            for part in _parts(alert):
                ctx.renew(part.seen_at)
                # Its extensions.sources tell every source watched, as a query's would.
                ctx.federation.rests_on(s.id for s in ctx.federation.sources)
                yield part


def _parts(alert: Alert) -> list[Alert]:
    """The alert as sent: at most ``MAX_OPENED`` opened slots each, the first carrying
    what else it says."""
    opened = alert.opened
    if len(opened) <= MAX_OPENED:
        return [alert]

    def part(at: int) -> Hashable | None:
        return None if alert.same_as is None else (alert.same_as, at)

    first = replace(alert, opened=opened[:MAX_OPENED], same_as=part(0))
    rest = range(MAX_OPENED, len(opened), MAX_OPENED)
    return [first] + [
        Alert(alert.seen_at, opened[i : i + MAX_OPENED], failing=alert.failing, same_as=part(i))
        for i in rest
    ]
