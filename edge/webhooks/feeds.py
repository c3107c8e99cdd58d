"""Each active webhook alert watched as a subscription would be: its kept filter's
alerts from the app's ``SlotWatch``, each turned into a delivery kept in the database
(before it is sent) and handed to the delivery worker.

An alert paused, deleted or expired stops being watched at the next sync (``changed``
asks for one at once); a resumed one is watched again, its first alert being the first
change after that, as for a new subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import datetime
from typing import TYPE_CHECKING

from resolvers.alerts import MAX_OPENED
from resolvers.errors import UserInputError
from resolvers.webhooks import stored_watch
from schema.webhooks import alert_payload
from sources.watch import Alert

if TYPE_CHECKING:
    from sources.registry.webhooks import WebhookState, WebhookStore
    from sources.watch import SlotWatch

__all__ = ["WebhookFeeds"]

logger = logging.getLogger("passerelle.webhooks")

# A change's delivery is claimed for this long (longer than any instance takes to hear it).
CLAIM_KEEP_S = 3600.0


class WebhookFeeds:
    """One task per active alert, kept in step with the store (``run``)."""

    def __init__(
        self,
        store: WebhookStore,
        watch: SlotWatch,
        *,
        clock: Callable[[], datetime],
        queued: Callable[[], None],
        sync_s: float = 1.0,
        claim: Callable[[str, float], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        # Between instances (Redis): every instance watches each alert (its group lives
        # on), and the first to claim a change's delivery keeps it.
        self.claim = claim
        self.watch = watch
        self.clock = clock
        self.queued = queued
        self.sync_s = sync_s
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._ended: set[str] = set()
        self._changed = asyncio.Event()

    def changed(self) -> None:
        """Alerts were made, deleted, paused or resumed: sync now."""
        self._changed.set()

    async def run(self) -> None:
        try:
            while True:
                self._changed.clear()
                try:
                    await self.sync()
                except Exception:  # the database may be away for a moment
                    logger.exception("webhooks: could not read the alerts; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), self.sync_s)
        finally:
            await self.aclose()

    async def sync(self) -> None:
        active = {a.id: a for a in await asyncio.to_thread(self.store.active, self.clock())}
        for alert_id in [i for i in self.tasks if i not in active]:
            await self._stop(alert_id)
        self._ended &= set(active)
        for alert_id, state in active.items():
            if alert_id not in self.tasks and alert_id not in self._ended:
                self.tasks[alert_id] = asyncio.create_task(self._feed(state))

    async def _stop(self, alert_id: str) -> None:
        task = self.tasks.pop(alert_id)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def aclose(self) -> None:
        for alert_id in list(self.tasks):
            await self._stop(alert_id)

    async def _feed(self, state: WebhookState) -> None:
        try:
            wanted = stored_watch(state.filter, self.clock())
        except UserInputError:
            # Its explicit window has passed: nothing more to watch until it expires.
            self._ended.add(state.id)
            return
        try:
            async with aclosing(self.watch.alerts(wanted)) as stream:
                async for alert in stream:
                    for part in _parts(alert):
                        payload = alert_payload(state.id, part)
                        if await self._first(state.id, payload):
                            await asyncio.to_thread(
                                self.store.enqueue, state.id, payload, self.clock()
                            )
                    self.queued()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("webhook %s: its watch failed", state.id)
        self._ended.add(state.id)

    async def _first(self, alert_id: str, payload: bytes) -> bool:
        """Whether this instance keeps this delivery: the same change heard by every
        instance makes the same payload (its time is the change's)."""
        if self.claim is None:
            return True
        digest = hashlib.sha256(alert_id.encode() + b"\0" + payload).hexdigest()
        return await self.claim(f"passerelle:webhook:event:{digest[:32]}", CLAIM_KEEP_S)


def _parts(alert: Alert) -> list[Alert]:
    """At most ``MAX_OPENED`` opened slots per delivery, as per subscription event."""
    opened = alert.opened
    if len(opened) <= MAX_OPENED:
        return [alert]
    return [
        Alert(
            alert.seen_at,
            opened[i : i + MAX_OPENED],
            alert.gone if i == 0 else (),
            alert.failing,
        )
        for i in range(0, len(opened), MAX_OPENED)
    ]
