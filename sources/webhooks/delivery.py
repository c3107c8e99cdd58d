"""The delivery worker: pending deliveries, kept in the database before they are sent,
POSTed to their callback until one attempt succeeds (at least once).

- A 2xx within ``timeout_s`` is a success; the delivery is deleted.
- 410 Gone deletes the alert: the partner said it wants no more.
- Anything else (a 3xx: redirects are never followed; a 4xx or 5xx; a timeout; a refused
  address) is a failure: the alert backs off (``backoff_s``, each with +/- ``jitter``),
  one attempt in flight per alert, its deliveries in order, and is paused after
  ``pause_after`` failures in a row (about 23 h with the default schedule), visible to
  its partner as paused. Deliveries older than 24 h are dropped, and counted
  (``WebhookStore.sweep``, run every ``sweep_s``; expired alerts go then too).

Every connection goes through ``GuardedResolver`` (``callbacks.py``); logs name the
alert and the event, never the callback URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from sources.registry.webhooks import Delivery, WebhookStore
from sources.webhooks.callbacks import CallbackRefused, GuardedResolver, check_callback_url
from sources.webhooks.signing import WebhookSigner

__all__ = ["DeliveryPolicy", "DeliveryWorker", "webhook_session"]

logger = logging.getLogger("passerelle.webhooks")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How deliveries are attempted; tests shorten the waits rather than sleep."""

    timeout_s: float = 10.0
    # The wait after the 1st, 2nd, ... failure in a row (the last repeats).
    backoff_s: tuple[float, ...] = (5, 30, 120, 600, 3600, 7200, 14400, 28800)
    jitter: float = 0.2
    pause_after: int = 10
    batch: int = 100
    poll_s: float = 1.0
    sweep_s: float = 60.0

    def backoff(self, failures: int, draw: float) -> float:
        """The wait after ``failures`` failures in a row, ``draw`` in [0, 1)."""
        base = self.backoff_s[min(max(failures, 1), len(self.backoff_s)) - 1]
        return base * (1 + self.jitter * (2 * draw - 1))


def webhook_session(
    *,
    allowed_hosts: Collection[str] = (),
    ca_file: str | None = None,
    resolver: AbstractResolver | None = None,
    trace_configs: list[aiohttp.TraceConfig] | None = None,
    limit: int = 100,
    socket_factory: Callable[[Any], socket.socket] | None = None,
) -> aiohttp.ClientSession:
    """The session deliveries go out through: every host resolved by a
    ``GuardedResolver`` (over ``resolver``, aiohttp's default unless given) at each new
    connection (no DNS cache, so a re-binding is seen), the system's CAs and
    ``ca_file``'s, no cookies."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(resolver, allowed_hosts),
        ssl=context,
        use_dns_cache=False,
        limit=limit,
        socket_factory=socket_factory,
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": "Passerelle-Webhooks/0.1"},
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=trace_configs,
    )


class DeliveryWorker:
    """Sends the pending deliveries of every alert (``run`` until cancelled); ``wake``
    when a delivery is added, so it goes out at once."""

    def __init__(
        self,
        store: WebhookStore,
        signer: WebhookSigner,
        session: aiohttp.ClientSession,
        *,
        allowed_hosts: Collection[str] = (),
        policy: DeliveryPolicy | None = None,
        clock: Callable[[], datetime],
        draw: Callable[[], float] = random.random,
        wall: Callable[[], float] = time.time,
        claim: Callable[[str, float], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        # Between instances (Redis): an attempt is made by whichever claims it first.
        self.claim = claim
        self.signer = signer
        self.session = session
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.policy = policy or DeliveryPolicy()
        self.clock = clock
        self.draw = draw
        # The signed timestamp is the real time of the attempt (receivers check it against
        # their own clock), whatever ``clock`` says for scheduling.
        self.wall = wall
        self._wake = asyncio.Event()
        self._busy: dict[str, asyncio.Task[None]] = {}
        # Counts since start, for the benchmark and the operator.
        self.attempts = 0
        self.successes = 0
        self.failures = 0
        self.latencies_s: list[float] = []

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        last_sweep = float("-inf")
        try:
            while True:
                if time.monotonic() - last_sweep >= self.policy.sweep_s:
                    last_sweep = time.monotonic()
                    await self.sweep()
                self._wake.clear()
                if not await self.run_once():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.policy.poll_s)
        finally:
            await self.aclose()

    async def sweep(self) -> None:
        swept = await asyncio.to_thread(self.store.sweep, self.clock())
        if swept.expired_alerts or swept.dropped_deliveries:
            logger.info(
                "webhooks: %d expired alerts deleted, %d deliveries older than 24 h dropped",
                swept.expired_alerts,
                swept.dropped_deliveries,
            )

    async def run_once(self) -> int:
        """Start the attempts due now; how many started."""
        due = await asyncio.to_thread(
            self.store.due, self.clock(), self.policy.batch, frozenset(self._busy)
        )
        started = 0
        for delivery in due:
            # Keyed on its attempt count: another instance's read of it from before this
            # attempt's outcome finds the claim taken; the next attempt has its own key.
            key = f"passerelle:webhook:attempt:{delivery.id}:{delivery.attempts}"
            if self.claim is not None and not await self.claim(key, 2 * self.policy.timeout_s + 10):
                continue
            task = asyncio.create_task(self.attempt(delivery))
            self._busy[delivery.alert_id] = task
            task.add_done_callback(functools.partial(self._done, delivery.alert_id))
            started += 1
        return started

    def _done(self, alert_id: str, _task: asyncio.Task[None]) -> None:
        self._busy.pop(alert_id, None)
        self._wake.set()

    async def idle(self) -> None:
        """Until no attempt is in flight (tests, shutdown)."""
        while self._busy:
            await asyncio.gather(*self._busy.values(), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._busy.values()):
            task.cancel()
        await asyncio.gather(*self._busy.values(), return_exceptions=True)

    async def attempt(self, delivery: Delivery) -> None:
        """One attempt at one delivery, its outcome stored."""
        self.attempts += 1
        started = time.monotonic()
        outcome, ok = await self._post(delivery)
        now = self.clock()
        if ok:
            self.successes += 1
            self.latencies_s.append(time.monotonic() - started)
            await asyncio.to_thread(self.store.delivered, delivery, now, outcome)
            return
        self.failures += 1
        if outcome == "410":
            await asyncio.to_thread(self.store.delete, delivery.alert_id)
            logger.info("webhook %s: its callback answered 410 Gone: deleted", delivery.alert_id)
            return
        state = await asyncio.to_thread(self.store.get, delivery.alert_id)
        failures = (state.failures if state is not None else 0) + 1
        wait = self.policy.backoff(failures, self.draw())
        paused = await asyncio.to_thread(
            self.store.failed,
            delivery,
            now,
            outcome,
            now + timedelta(seconds=wait),
            self.policy.pause_after,
        )
        logger.warning(
            "webhook %s: delivery %s failed (%s), failure %d in a row%s",
            delivery.alert_id,
            delivery.id,
            outcome,
            failures,
            ": paused" if paused else f", next attempt in {wait:.0f} s",
        )

    async def _post(self, delivery: Delivery) -> tuple[str, bool]:
        try:
            url = check_callback_url(delivery.callback_url, self.allowed_hosts)
        except CallbackRefused as exc:
            return f"refused: {exc}", False
        timestamp = int(self.wall())
        headers = self.signer.headers(delivery.alert_id, delivery.id, timestamp, delivery.payload)
        try:
            async with self.session.post(
                url,
                data=delivery.payload,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s),
            ) as response:
                # The body is not read: only the status says something.
                status = response.status
        except CallbackRefused as exc:
            return f"refused: {exc}", False
        except TimeoutError:
            return "timeout", False
        except aiohttp.ClientError as exc:
            refused = exc.__cause__ or exc.__context__
            if isinstance(refused, CallbackRefused):
                return f"refused: {refused}", False
            return f"connection failed ({type(exc).__name__})", False
        return str(status), 200 <= status < 300
