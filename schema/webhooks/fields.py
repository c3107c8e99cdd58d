"""Webhook alerts of partners: the ``Mutation`` type and the ``slotAlertWebhooks`` query
field (merged into ``Query`` by ``schema/__init__.py``).

A webhook alert is the server-side ``slotAlerts`` subscription: the gateway watches the
filter and POSTs each alert, signed per Standard Webhooks, to the partner's callback.
Everything here is for the calling partner's own alerts; without a key:
``UNAUTHENTICATED``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from resolvers import webhooks as webhook_resolvers
from schema.inputs import SlotFilter
from schema.types import Context

if TYPE_CHECKING:
    from sources.webhooks import WebhookState

__all__ = ["Mutation", "SlotAlertWebhook", "WebhookQuery"]


@strawberry.type(description="How deliveries to a webhook alert's callback go.")
class WebhookDeliveryState:
    paused: bool = strawberry.field(
        description="Paused after repeated failures (or by the operator): nothing is "
        "delivered or watched until the operator resumes it."
    )
    consecutive_failures: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_outcome: str | None = strawberry.field(
        description='The last attempt\'s HTTP status, or why it failed ("timeout", "refused: ...").'
    )
    delivered: int = strawberry.field(description="Deliveries that succeeded.")
    pending: int = strawberry.field(description="Deliveries waiting (at most 24 h each).")
    dropped: int = strawberry.field(description="Deliveries dropped after 24 h of failures.")


@strawberry.type(description="A partner's webhook alert: a slot filter watched by the gateway.")
class SlotAlertWebhook:
    id: strawberry.ID
    callback_url: str
    created_at: datetime
    expires_at: datetime = strawberry.field(description="Deleted then, with everything it keeps.")
    state: WebhookDeliveryState

    @classmethod
    def from_state(cls, state: WebhookState) -> SlotAlertWebhook:
        return cls(
            id=strawberry.ID(state.id),
            callback_url=state.callback_url,
            created_at=state.created_at,
            expires_at=state.expires_at,
            state=WebhookDeliveryState(
                paused=state.paused,
                consecutive_failures=state.failures,
                last_attempt_at=state.last_attempt_at,
                last_success_at=state.last_success_at,
                last_outcome=state.last_outcome,
                delivered=state.delivered,
                pending=state.pending,
                dropped=state.dropped,
            ),
        )


@strawberry.type
class CreatedSlotAlertWebhook:
    webhook: SlotAlertWebhook
    signing_secret: str = strawberry.field(
        description="whsec_ and the base64 key that signs its deliveries (Standard "
        "Webhooks). Shown this once: the gateway does not keep it."
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Watch the filter and POST each slot alert to callbackUrl (https), "
        "signed per Standard Webhooks, until expiresAt (7 days by default, at most 30). "
        "The point is kept rounded to about 1 km: alerts may include slots up to 0.7 km "
        "beyond radiusKm."
    )
    async def create_slot_alert_webhook(
        self,
        info: Context,
        filter: SlotFilter,
        callback_url: str,
        expires_at: datetime | None = strawberry.UNSET,
    ) -> CreatedSlotAlertWebhook:
        state, secret = await webhook_resolvers.create_webhook(
            info.context,
            filter._arguments(),
            callback_url,
            expires_at if isinstance(expires_at, datetime) else None,
        )
        return CreatedSlotAlertWebhook(
            webhook=SlotAlertWebhook.from_state(state), signing_secret=secret
        )

    @strawberry.mutation(
        description="Delete one of your webhook alerts and its pending deliveries; returns its id."
    )
    async def delete_slot_alert_webhook(self, info: Context, id: strawberry.ID) -> strawberry.ID:
        return strawberry.ID(await webhook_resolvers.delete_webhook(info.context, str(id)))


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Your webhook alerts, oldest first, with their deliveries.")
    async def slot_alert_webhooks(self, info: Context) -> list[SlotAlertWebhook]:
        found = await webhook_resolvers.list_webhooks(info.context)
        return [SlotAlertWebhook.from_state(s) for s in found]
