"""The root ``Subscription`` type: slot alerts.

``slotAlerts(filter: SlotFilter!)`` takes the query's own filter, checked by the same
code (the same refusals and ``extensions.code``s), and sends a ``SlotAlert`` each time
the free slots it covers change at a booking source. Nothing is sent at first: the
existing slots are a ``slots`` query's answer, and the first alert is the first change
(or, at once, the sources failing when it starts).

A source that fails while watched is told in ``failingSources`` (the same codes a query
carries in its errors) rather than as a GraphQL error, so that Apollo Client's default
error policy, which drops an event's data or ends the subscription on an error, keeps
both the alerts and the subscription; it is watched again and an alert says when it
answers again (``failingSources`` empty).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Hashable
from contextlib import aclosing
from datetime import datetime

import strawberry

from resolvers import alerts as alert_resolvers
from resolvers.ids import to_global_id
from schema.error_codes import source_code
from schema.inputs import SlotFilter
from schema.types import Context, Slot
from sources.errors import SourceError
from sources.watch import Alert, WatchFilter


@strawberry.type(
    description="A booking source failing while it is watched: what a query would say of "
    "it in an error's extensions (code, source) and message."
)
class SourceFailure:
    source_id: strawberry.ID
    code: str = strawberry.field(
        description="SOURCE_TIMEOUT, SOURCE_UNAVAILABLE or SOURCE_BAD_RESPONSE, as in a "
        "query's error."
    )
    message: str

    @classmethod
    def from_error(cls, error: SourceError) -> SourceFailure:
        return cls(
            source_id=strawberry.ID(error.source_id),
            code=source_code(error).value,
            message=f"Booking source {error.source_id!r} failed: {error.message}",
        )


@strawberry.type(
    description="What changed at the booking sources among the slots a subscription watches."
)
class SlotAlert:
    opened: list[Slot] = strawberry.field(
        description="Slots a booking source published since the last alert (at most 100 "
        "per alert; more come in the next ones), ordered as a query orders them. A slot "
        "that only entered a sliding window as time passed is not opened."
    )
    gone_ids: list[strawberry.ID] = strawberry.field(
        description="Ids of slots no longer free (taken or withdrawn) before their start. "
        "A slot whose start has passed is not gone."
    )
    seen_at: datetime = strawberry.field(description="When the change was seen.")
    failing_sources: list[SourceFailure] = strawberry.field(
        description="The booking sources failing as of seenAt; empty when all answer. "
        "An alert is sent when this changes, even without slots."
    )
    # Equal for alerts that say the same thing: their executions are shared
    # (schema/subscription/shared_events.py); None: not shared.
    same_as: strawberry.Private[Hashable | None] = None

    @classmethod
    def from_alert(cls, alert: Alert) -> SlotAlert:
        return cls(
            opened=Slot.many(alert.opened),
            gone_ids=[strawberry.ID(to_global_id("Slot", key)) for key in alert.gone],
            seen_at=alert.seen_at,
            failing_sources=[SourceFailure.from_error(e) for e in alert.failing],
            same_as=alert.same_as,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Alerts when free slots matching the filter open or go, at the "
        "booking sources. Nothing is sent until something changes; the subscription "
        "ends once an explicit startsBefore has passed."
    )
    async def slot_alerts(self, info: Context, filter: SlotFilter) -> AsyncIterator[SlotAlert]:
        # Checked here, before the stream starts: a bad filter is refused at once,
        # with the error a query would get.
        wanted = filter.to_watch(info.context.now)
        return _alerts(info, wanted)


async def _alerts(info: Context, wanted: WatchFilter) -> AsyncGenerator[SlotAlert, None]:
    async with aclosing(alert_resolvers.alerts(info.context, wanted)) as stream:
        async for alert in stream:
            yield _event(alert)


# Alike alerts (``Alert.same_as``) make one event object, the most recent ones kept:
# thousands of subscribers hear one change at once.
_EVENTS: OrderedDict[Hashable, SlotAlert] = OrderedDict()
KEEP_EVENTS = 2048


def _event(alert: Alert) -> SlotAlert:
    key = alert.same_as
    if key is None:
        return SlotAlert.from_alert(alert)
    event = _EVENTS.get(key)
    if event is None:
        # The event holds the alert's slots: the identities its key names stay valid.
        event = _EVENTS[key] = SlotAlert.from_alert(alert)
        if len(_EVENTS) > KEEP_EVENTS:
            _EVENTS.popitem(last=False)
    return event
