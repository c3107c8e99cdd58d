"""Webhook alerts in a running gateway: the store, the delivery worker and the feeds,
started in the app's lifespan (``WebhookService.start``) and stopped on shutdown.

Without ``PASSERELLE_WEBHOOK_KEY`` a development gateway signs with a known key, and a
production gateway delivers nothing (the mutations answer ``WEBHOOKS_UNAVAILABLE``);
one whose database already holds alerts refuses to start, in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.webhooks.feeds import WebhookFeeds
from resolvers.webhooks import WebhookAccess
from sources.errors import ConfigError
from sources.kv.lease import Leases
from sources.registry.webhooks import WebhookStore
from sources.webhooks import (
    WEBHOOK_KEY_ENV,
    DeliveryWorker,
    WebhookSigner,
    server_key,
    webhook_session,
)

if TYPE_CHECKING:
    import aiohttp

    from edge.settings import Settings
    from sources.kv import RedisLink
    from sources.watch import SlotWatch

__all__ = ["WebhookService"]

logger = logging.getLogger("passerelle.webhooks")


@dataclass
class WebhookService:
    access: WebhookAccess
    worker: DeliveryWorker | None = None
    feeds: WebhookFeeds | None = None
    session: aiohttp.ClientSession | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        watch: SlotWatch,
        environ: Mapping[str, str] | None = None,
        link: RedisLink | None = None,
    ) -> WebhookService:
        """With ``link`` (Redis), each change and each attempt is claimed once for all
        instances (``sources.kv.lease``): every instance watches every alert, one
        delivers each change."""
        key = server_key(os.environ if environ is None else environ, production=settings.production)
        store = await asyncio.to_thread(WebhookStore, settings.database_url)
        allowed = frozenset(h.lower() for h in settings.webhook_allow_hosts)
        if key is None:
            if await asyncio.to_thread(store.alerts):
                store.close()
                raise ConfigError(
                    f"webhook alerts are stored but {WEBHOOK_KEY_ENV} is not set: set it "
                    "(at least 32 characters, the same on every instance) to deliver them"
                )
            return cls(WebhookAccess(store, None, allowed))
        signer = WebhookSigner(key)
        claim = Leases(link, 60.0).first if link is not None else None
        session = webhook_session(allowed_hosts=allowed, ca_file=settings.webhook_ca_file)
        worker = DeliveryWorker(
            store,
            signer,
            session,
            allowed_hosts=allowed,
            policy=settings.webhook_policy,
            clock=settings.clock,
            claim=claim,
        )
        feeds = WebhookFeeds(
            store,
            watch,
            clock=settings.clock,
            queued=worker.wake,
            sync_s=settings.webhook_sync_s,
            claim=claim,
        )
        access = WebhookAccess(store, signer, allowed, changed=feeds.changed)
        service = cls(access, worker, feeds, session)
        service.tasks = [asyncio.create_task(worker.run()), asyncio.create_task(feeds.run())]
        return service

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.session is not None:
            await self.session.close()
        self.access.store.close()
