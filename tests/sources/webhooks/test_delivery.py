"""Deliveries to a real https receiver on loopback: signed and verifiable, retried with
the same webhook-id, paused after repeated failures, stopped by 410; and callbacks that
resolve to the inside refused before any socket is opened."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from sources.registry.webhooks import MAX_PENDING_AGE
from sources.webhooks import (
    DeliveryPolicy,
    DeliveryWorker,
    WebhookSigner,
    WebhookStore,
    webhook_session,
)
from tests.sources.webhooks.receiver import Receiver, https_receiver

KEY = b"k" * 32
FAST = DeliveryPolicy(backoff_s=(0.01,), jitter=0.0, pause_after=4, timeout_s=5, poll_s=0.01)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class MapResolver(AbstractResolver):
    """DNS for the tests: names mapped to the addresses a test says."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.names[host]
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def store(database_url: str) -> Iterator[WebhookStore]:
    with WebhookStore(database_url) as webhooks:
        yield webhooks


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    async with https_receiver(tmp_path) as r:
        yield r


def a_client(database_url: str) -> str:
    from sources.registry.partners import PartnerStore

    with PartnerStore(database_url) as partners:
        partners.create_client("rdv-app")
    return "rdv-app"


class Worker:
    def __init__(self, store: WebhookStore, receiver: Receiver, **options: Any) -> None:
        self.sockets = 0
        self.resolver = options.pop("resolver", None)

        def counting(addr_info: Any) -> socket.socket:
            self.sockets += 1
            family, kind, proto, _, _ = addr_info
            return socket.socket(family, kind, proto)

        self.session = webhook_session(
            allowed_hosts=options.pop("allowed", ("127.0.0.1",)),
            ca_file=receiver.ca_file,
            resolver=self.resolver,
            socket_factory=counting,
        )
        self.clock = Clock()
        self.worker = DeliveryWorker(
            store,
            WebhookSigner(KEY),
            self.session,
            allowed_hosts=options.pop("allowed_hosts", ("127.0.0.1",)),
            policy=options.pop("policy", FAST),
            clock=self.clock,
        )

    async def drain(self, rounds: int = 20) -> None:
        """Attempt what is due, moving the clock past each backoff, ``rounds`` times."""
        for _ in range(rounds):
            await self.worker.run_once()
            await self.worker.idle()
            self.clock.now += timedelta(seconds=1)

    async def close(self) -> None:
        await self.session.close()


async def test_a_delivery_is_signed_retried_with_the_same_id_and_then_done(
    store: WebhookStore, receiver: Receiver, database_url: str
) -> None:
    client = a_client(database_url)
    worker = Worker(store, receiver)
    alert = store.create(
        client, {}, receiver.url, worker.clock.now + timedelta(days=1), worker.clock.now
    )
    receiver.secret = WebhookSigner(KEY).secret_text(alert.id)
    receiver.script = [500, 500]
    event = store.enqueue(alert.id, b'{"type":"slot.alert","data":{"n":1}}', worker.clock.now)
    try:
        await worker.drain(5)
    finally:
        await worker.close()
    assert [r.webhook_id for r in receiver.received] == [event] * 3
    assert all(r.verified for r in receiver.received)
    assert receiver.received[-1].body == {"type": "slot.alert", "data": {"n": 1}}
    [state] = store.alerts(client)
    assert (state.pending, state.delivered, state.failures, state.paused) == (0, 1, 0, False)
    assert state.last_outcome == "204" and worker.worker.attempts == 3


async def test_a_wrong_secret_does_not_verify(
    store: WebhookStore, receiver: Receiver, database_url: str
) -> None:
    client = a_client(database_url)
    worker = Worker(store, receiver)
    alert = store.create(
        client, {}, receiver.url, worker.clock.now + timedelta(days=1), worker.clock.now
    )
    receiver.secret = WebhookSigner(b"x" * 32).secret_text(alert.id)
    store.enqueue(alert.id, b"{}", worker.clock.now)
    try:
        await worker.drain(2)
    finally:
        await worker.close()
    assert len(receiver.received) == 1 and not receiver.received[0].verified


async def test_repeated_failures_pause_the_alert_and_redirects_are_not_followed(
    store: WebhookStore, receiver: Receiver, database_url: str
) -> None:
    client = a_client(database_url)
    worker = Worker(store, receiver)
    alert = store.create(
        client, {}, receiver.url, worker.clock.now + timedelta(days=1), worker.clock.now
    )
    receiver.script = [302] * 10
    store.enqueue(alert.id, b"{}", worker.clock.now)
    try:
        await worker.drain(10)
    finally:
        await worker.close()
    # pause_after=4: four attempts, then nothing; the redirect's target was never asked.
    assert len(receiver.received) == 4
    [state] = store.alerts(client)
    assert state.paused and state.pending == 1 and state.last_outcome == "302"
    store.set_paused(alert.id, None)
    assert not store.alerts(client)[0].paused and store.alerts(client)[0].failures == 0


async def test_410_gone_deletes_the_alert_and_its_deliveries(
    store: WebhookStore, receiver: Receiver, database_url: str
) -> None:
    client = a_client(database_url)
    worker = Worker(store, receiver)
    alert = store.create(
        client, {}, receiver.url, worker.clock.now + timedelta(days=1), worker.clock.now
    )
    receiver.script = [410]
    store.enqueue(alert.id, b"{}", worker.clock.now)
    store.enqueue(alert.id, b"{}", worker.clock.now + timedelta(seconds=1))
    try:
        await worker.drain(4)
    finally:
        await worker.close()
    assert len(receiver.received) == 1
    assert store.alerts(client) == []


async def test_expiry_and_age_sweep_alerts_and_deliveries(
    store: WebhookStore, receiver: Receiver, database_url: str
) -> None:
    client = a_client(database_url)
    now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    short = store.create(client, {}, receiver.url, now + timedelta(hours=1), now)
    long = store.create(client, {}, receiver.url, now + timedelta(days=3), now)
    store.enqueue(short.id, b"{}", now)
    store.enqueue(long.id, b"{}", now)
    store.enqueue(long.id, b"{}", now + timedelta(hours=20))
    swept = store.sweep(now + MAX_PENDING_AGE + timedelta(minutes=1))
    assert (swept.expired_alerts, swept.dropped_deliveries) == (1, 1)
    [kept] = store.alerts(client)
    assert kept.id == long.id and kept.pending == 1 and kept.dropped == 1
    # Nothing is due for an expired alert, even before the sweep.
    assert store.due(now + timedelta(days=4), 10) == []


@pytest.mark.parametrize(
    "addresses",
    [["10.1.2.3"], ["127.0.0.1"], ["169.254.169.254"], ["100.64.0.1"], ["192.168.0.10", "0.0.0.0"]],
)
async def test_a_callback_resolving_inside_is_refused_without_opening_a_socket(
    store: WebhookStore, receiver: Receiver, database_url: str, addresses: list[str]
) -> None:
    client = a_client(database_url)
    resolver = MapResolver({"hooks.partner.example": addresses})
    worker = Worker(store, receiver, resolver=resolver, allowed=(), allowed_hosts=())
    url = receiver.url.replace("127.0.0.1", "hooks.partner.example")
    alert = store.create(client, {}, url, worker.clock.now + timedelta(days=1), worker.clock.now)
    store.enqueue(alert.id, b"{}", worker.clock.now)
    try:
        await worker.drain(1)
    finally:
        await worker.close()
    assert resolver.asked == ["hooks.partner.example"]  # checked after DNS, at connect time
    assert worker.sockets == 0 and receiver.received == []
    [state] = store.alerts(client)
    assert state.last_outcome is not None and state.last_outcome.startswith("refused: ")
    assert state.failures == 1 and state.pending == 1


async def test_a_name_that_rebinds_inside_after_creation_is_refused_at_connect(
    store: WebhookStore, receiver: Receiver, database_url: str
) -> None:
    client = a_client(database_url)
    resolver = MapResolver({"hooks.partner.example": ["127.0.0.1"]})
    # The allow-list names the receiver's real address, not this name.
    worker = Worker(store, receiver, resolver=resolver, allowed=("127.0.0.1",))
    url = receiver.url.replace("127.0.0.1", "hooks.partner.example")
    alert = store.create(client, {}, url, worker.clock.now + timedelta(days=1), worker.clock.now)
    store.enqueue(alert.id, b"{}", worker.clock.now)
    try:
        await worker.drain(1)
    finally:
        await worker.close()
    assert worker.sockets == 0 and receiver.received == []


async def test_the_allowed_loopback_receiver_is_reached_through_a_socket(
    store: WebhookStore, receiver: Receiver, database_url: str
) -> None:
    client = a_client(database_url)
    worker = Worker(store, receiver)
    alert = store.create(
        client, {}, receiver.url, worker.clock.now + timedelta(days=1), worker.clock.now
    )
    store.enqueue(alert.id, b"{}", worker.clock.now)
    try:
        await worker.drain(1)
    finally:
        await worker.close()
    # The counter the refusal tests rely on does count real connections.
    assert worker.sockets == 1 and len(receiver.received) == 1


def test_backoff_grows_with_jitter_within_bounds() -> None:
    policy = DeliveryPolicy()
    assert policy.backoff(1, 0.5) == 5 and policy.backoff(3, 0.5) == 120
    assert policy.backoff(50, 0.5) == policy.backoff_s[-1]
    assert 4.0 <= policy.backoff(1, 0.0) < policy.backoff(1, 0.999) <= 6.0
    assert sum(policy.backoff(n, 0.5) for n in range(1, policy.pause_after)) > 22 * 3600
