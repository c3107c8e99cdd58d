"""Webhook alerts of partners: made, listed and deleted for the calling partner only.

An alert keeps its ``SlotFilter`` as checked by the ``slots`` query's own code, with
its point rounded to ``POINT_DECIMALS`` decimals of a degree (about 1 km: an alert may
then carry slots up to ``ROUNDING_KM_AT_45N`` beyond the radius asked), its callback
URL (checked by ``sources.webhooks.callbacks``), and an expiry of at most
``MAX_EXPIRY``. The signing secret is derived, shown once by ``create_webhook``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from resolvers.alerts import watch_filter
from resolvers.errors import (
    CallbackRefusedError,
    NotFound,
    Unauthenticated,
    UserInputError,
    WebhookLimitError,
    WebhooksUnavailable,
)
from sources.records import AppointmentType, GeoPoint, Region
from sources.webhooks import CallbackRefused, check_callback_url

if TYPE_CHECKING:
    from resolvers.context import RequestContext
    from sources.watch import WatchFilter
    from sources.webhooks import WebhookSigner, WebhookState, WebhookStore

__all__ = [
    "DEFAULT_EXPIRY",
    "MAX_EXPIRY",
    "MAX_PER_CLIENT",
    "POINT_DECIMALS",
    "WebhookAccess",
    "create_webhook",
    "delete_webhook",
    "filter_arguments",
    "list_webhooks",
    "stored_filter",
    "stored_watch",
]

DEFAULT_EXPIRY = timedelta(days=7)
MAX_EXPIRY = timedelta(days=30)
MAX_PER_CLIENT = 100
POINT_DECIMALS = 2
# The farthest a rounded point lies from the one asked, at Quebec's southern edge
# (45 deg N, where a degree of longitude is longest): half a step each way,
# hypot(0.005 * 111.2 km, 0.005 * 111.3 km * cos 45 deg) = 0.68 km
# (tests/resolvers/test_webhooks.py checks the figure).
ROUNDING_KM_AT_45N = 0.68


@dataclass
class WebhookAccess:
    """What the webhook resolvers need, from the app: the store, the signer (None:
    webhooks off in production without ``PASSERELLE_WEBHOOK_KEY``), the hosts an
    operator allowed, and who to tell when alerts change (the feeds)."""

    store: WebhookStore
    signer: WebhookSigner | None
    allowed_hosts: Collection[str] = ()
    max_per_client: int = MAX_PER_CLIENT
    changed: Callable[[], None] = field(default=lambda: None)


def _partner(ctx: RequestContext) -> tuple[str, WebhookAccess]:
    if ctx.client_id is None:
        raise Unauthenticated("Webhook alerts are for partners: send your key as Bearer")
    if ctx.webhooks is None or ctx.webhooks.signer is None:
        raise WebhooksUnavailable("This gateway delivers no webhooks (no PASSERELLE_WEBHOOK_KEY)")
    return ctx.client_id, ctx.webhooks


def stored_filter(arguments: dict[str, Any]) -> dict[str, Any]:
    """The filter's arguments as kept (JSON), the point rounded."""
    near: GeoPoint | None = arguments.get("near")
    kept: dict[str, Any] = {}
    if near is not None:
        kept["near"] = [round(near.latitude, POINT_DECIMALS), round(near.longitude, POINT_DECIMALS)]
    for name in ("radius_km", "languages", "clinic_ids", "physician_ids"):
        if arguments.get(name) is not None:
            value = arguments[name]
            kept[name] = list(value) if isinstance(value, list | tuple) else value
    if arguments.get("region") is not None:
        kept["region"] = arguments["region"].value
    if arguments.get("appointment_types") is not None:
        kept["appointment_types"] = [t.value for t in arguments["appointment_types"]]
    for name in ("starts_after", "starts_before"):
        if arguments.get(name) is not None:
            kept[name] = arguments[name].isoformat()
    return kept


def filter_arguments(kept: dict[str, Any]) -> dict[str, Any]:
    """``watch_filter``'s arguments from a kept filter."""
    near = kept.get("near")
    return {
        "near": GeoPoint(near[0], near[1]) if near is not None else None,
        "radius_km": kept.get("radius_km"),
        "region": Region(kept["region"]) if "region" in kept else None,
        "starts_after": _instant(kept.get("starts_after")),
        "starts_before": _instant(kept.get("starts_before")),
        "appointment_types": [AppointmentType(t) for t in kept["appointment_types"]]
        if "appointment_types" in kept
        else None,
        "languages": kept.get("languages"),
        "clinic_ids": kept.get("clinic_ids"),
        "physician_ids": kept.get("physician_ids"),
    }


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def stored_watch(kept: dict[str, Any], now: datetime) -> WatchFilter:
    """What a kept alert watches at ``now`` (``UserInputError`` once its window passed)."""
    return watch_filter(now, **filter_arguments(kept))


async def create_webhook(
    ctx: RequestContext,
    arguments: dict[str, Any],
    callback_url: str,
    expires_at: datetime | None,
) -> tuple[WebhookState, str]:
    """A new alert of the calling partner, and its signing secret (shown this once)."""
    client, access = _partner(ctx)
    now = ctx.now
    expiry = expires_at if expires_at is not None else now + DEFAULT_EXPIRY
    if expiry <= now:
        raise UserInputError("expiresAt must be in the future")
    if expiry > now + MAX_EXPIRY:
        raise UserInputError(f"expiresAt may be at most {MAX_EXPIRY.days} days from now")
    kept = stored_filter(arguments)
    # The filter as a query checks it, rounded point included (same refusals, codes).
    stored_watch(kept, now)
    try:
        check_callback_url(callback_url, access.allowed_hosts)
    except CallbackRefused as exc:
        raise CallbackRefusedError(f"callbackUrl refused: {exc}") from None
    count = await asyncio.to_thread(access.store.count, client)
    if count >= access.max_per_client:
        raise WebhookLimitError(
            f"A partner may keep at most {access.max_per_client} webhook alerts; delete one first"
        )
    state = await asyncio.to_thread(access.store.create, client, kept, callback_url, expiry, now)
    access.changed()
    assert access.signer is not None  # checked by _partner
    return state, access.signer.secret_text(state.id)


async def list_webhooks(ctx: RequestContext) -> list[WebhookState]:
    client, access = _partner(ctx)
    return await asyncio.to_thread(access.store.alerts, client)


async def delete_webhook(ctx: RequestContext, alert_id: str) -> str:
    client, access = _partner(ctx)
    if not await asyncio.to_thread(access.store.delete, alert_id, client):
        raise NotFound(f"No webhook alert {alert_id!r} of yours")
    access.changed()
    return alert_id


def rounding_km(latitude: float) -> float:
    """The farthest a point is moved by rounding, at ``latitude`` (for the docs' figure)."""
    half = 0.5 * 10**-POINT_DECIMALS
    north = half * 111.2
    east = half * 111.32 * math.cos(math.radians(latitude))
    return math.hypot(north, east)
