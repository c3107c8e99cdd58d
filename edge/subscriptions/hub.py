"""Every subscription transport open on this instance: :class:`Subscriptions`.

It holds the caps (:class:`~edge.subscriptions.limits.SubscriptionLimits`) and the
open transports, WebSockets and multipart streams, so that a server going away can
say so to each before it closes their connections: WebSockets are closed with 1001
("going away": graphql-ws clients reconnect and subscribe again by themselves),
multipart streams end with their closing boundary (Apollo Client completes the
subscription).

uvicorn closes open WebSockets with 1012 as soon as its graceful shutdown begins,
and runs the app's lifespan shutdown only afterwards, so :func:`going_away` is
called by the gateway's server first (``edge/cli/serve.py``); the lifespan calls
it too, for servers that have no such hook.

    hub = Subscriptions(settings, identify=partners.identify)
    hub.attach(transport)            # a WebSocket handler or a multipart stream
    await hub.going_away()           # each told, then given a moment to close

A partner key revoked (``clients revoke``) ends the subscriptions opened with it
within ``Settings.subscription_key_check_s`` (5 s; plus the partner registry's own
refresh, a second): every
transport opened with a key has it checked again, and one refused is ended, a
WebSocket closed with 4403 and a multipart stream with an ``UNAUTHENTICATED`` part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from edge.subscriptions.limits import Lease, SubscriptionLimits

if TYPE_CHECKING:
    from edge.settings import Settings

__all__ = ["GOING_AWAY", "Subscriptions", "Transport", "going_away"]

logger = logging.getLogger("passerelle.subscriptions")

GOING_AWAY = 1001  # RFC 6455: the server is going down
# How long the server waits for the transports to say goodbye before it goes on.
GOODBYE_S = 2.0
# A key's client, or why it is refused (edge.documents.partners.Partners.identify).
Identify = Callable[[str | None], Awaitable[object]]


class Transport(Protocol):
    """An open WebSocket or multipart stream, which can be told the server goes away,
    and pinged (a multipart stream sends its own heartbeats: its ``ping`` does nothing);
    ``authorization`` is the key it was opened with, ended by ``key_refused``."""

    @property
    def authorization(self) -> str | None: ...

    async def going_away(self) -> None: ...

    async def ping(self) -> None: ...

    async def key_refused(self, reason: str) -> None: ...


class Subscriptions:
    """The caps on open subscriptions, and the transports open now."""

    def __init__(self, settings: Settings, *, identify: Identify | None = None) -> None:
        self.per_connection = settings.subscriptions_per_connection
        self.keepalive_s = settings.ws_keepalive_s
        self.limits = SubscriptionLimits(
            per_ip=settings.subscriptions_per_ip, per_key=settings.subscriptions_per_key
        )
        self.closing = False
        self._open: set[Transport] = set()
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._pinging: asyncio.Task[None] | None = None
        self._identify = identify
        self._key_check_s = settings.subscription_key_check_s
        self._checking: asyncio.Task[None] | None = None

    def claim(self, *, address: str, key: str | None, key_limit: int | None) -> Lease | str:
        """A place for one more subscription, or why not (see ``SubscriptionLimits``)."""
        return self.limits.claim(address=address, key=key, key_limit=key_limit)

    def attach(self, transport: Transport) -> None:
        self._open.add(transport)
        self._all_closed.clear()
        if self._pinging is None and self.keepalive_s > 0:
            # One timer for every open transport, rather than one each.
            self._pinging = asyncio.create_task(self._ping_every(self.keepalive_s))
        if self._checking is None and self._identify is not None and self._key_check_s > 0:
            self._checking = asyncio.create_task(self._check_keys_every(self._key_check_s))

    def detach(self, transport: Transport) -> None:
        self._open.discard(transport)
        if not self._open:
            self._all_closed.set()

    async def _ping_every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            # Side by side: a client slow to read holds up no other's ping.
            pings = [asyncio.ensure_future(t.ping()) for t in list(self._open)]
            if pings:
                await asyncio.wait(pings, timeout=interval_s)

    async def _check_keys_every(self, interval_s: float) -> None:
        assert self._identify is not None
        while True:
            await asyncio.sleep(interval_s)
            keyed = [t for t in list(self._open) if t.authorization is not None]
            refused: list[tuple[Transport, str]] = []
            for transport in keyed:
                try:
                    found = await self._identify(transport.authorization)
                except Exception:  # the registry unreadable: keep what was admitted
                    logger.exception("checking the keys of open subscriptions failed")
                    break
                if isinstance(found, str):
                    refused.append((transport, found))
            for transport, reason in refused:
                with contextlib.suppress(Exception):  # already closed
                    await transport.key_refused(reason)
            if refused:
                logger.info("ended %d subscription transports whose key is refused", len(refused))

    @property
    def open_transports(self) -> int:
        return len(self._open)

    async def going_away(self, wait_s: float = GOODBYE_S) -> None:
        """Tell every open transport that the server goes away, and wait (at most
        ``wait_s``) for them to close; new ones are refused from now on."""
        self.closing = True
        for task in (self._pinging, self._checking):
            if task is not None:
                task.cancel()
        if not self._open:
            return
        count = len(self._open)
        await asyncio.gather(*(t.going_away() for t in list(self._open)), return_exceptions=True)
        try:
            async with asyncio.timeout(wait_s):
                await self._all_closed.wait()
        except TimeoutError:
            logger.warning("%d subscription transports still open after %g s", count, wait_s)
        else:
            logger.info("closed %d subscription transports (going away)", count)


async def going_away(app: Any) -> None:
    """Tell the subscriptions of a started gateway ``app`` (``app.create_app``'s) that the
    server goes away; nothing when it never started."""
    from edge.services import services_of

    try:
        services = services_of(app)
    except LookupError:
        return
    await services.subscriptions.going_away()
