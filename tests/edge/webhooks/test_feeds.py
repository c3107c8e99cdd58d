"""From a change at a booking source to a verified delivery: a kept alert watched by the
real SlotWatch, its alerts kept and delivered to an https receiver; nothing after the
alert is deleted or has expired."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from edge.webhooks import WebhookFeeds
from sources.kv import RedisLink
from sources.kv.lease import Leases
from sources.registry.partners import PartnerStore
from sources.watch import SlotWatch
from sources.webhooks import (
    DeliveryPolicy,
    DeliveryWorker,
    WebhookSigner,
    WebhookStore,
    webhook_session,
)
from tests.ports import REDIS_URL
from tests.sources.watch.fakes import (
    NOW,
    PLATEAU,
    Clock,
    Copy,
    Spec,
    a_pool,
    clinic,
    install,
    slot,
)
from tests.sources.watch.fakes import until as until_within
from tests.sources.webhooks.receiver import Receiver, https_receiver

KEY = b"f" * 32
# An HTTPS delivery, its retry and the watch's reads: seconds on a loaded machine (a 3 s
# bound failed in loaded suite runs). Waits end as soon as the check holds.
WITHIN_S = 15.0


async def until(check: Callable[[], object], within_s: float = WITHIN_S) -> None:
    await until_within(check, max(within_s, WITHIN_S))


NEAR = {"near": [45.52, -73.58], "radius_km": 5.0}


@contextlib.asynccontextmanager
async def running(
    store: WebhookStore,
    watch: SlotWatch,
    receiver: Receiver,
    clock: Clock,
    claim: Callable[[str, float], Awaitable[bool]] | None = None,
) -> AsyncIterator[WebhookFeeds]:
    session = webhook_session(allowed_hosts=("127.0.0.1",), ca_file=receiver.ca_file)
    worker = DeliveryWorker(
        store,
        WebhookSigner(KEY),
        session,
        allowed_hosts=("127.0.0.1",),
        policy=DeliveryPolicy(poll_s=0.02, backoff_s=(0.01,), jitter=0),
        clock=clock,
        claim=claim,
    )
    feeds = WebhookFeeds(store, watch, clock=clock, queued=worker.wake, sync_s=0.02, claim=claim)
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(feeds.run())]
    try:
        yield feeds
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()


async def test_opened_slots_reach_the_partner_signed_and_nothing_after_deletion(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    with PartnerStore(url) as partners:
        partners.create_client("rdv-app")
    store = WebhookStore(url)
    clock = Clock()
    first = [slot("feed", "s1", "c1", 2)]
    async with https_receiver(tmp_path) as receiver, a_pool() as pool:
        [feed] = (
            await install(pool, Spec("feed", [clinic("feed", "c1", PLATEAU)], first, kind=Copy))
        ).values()
        assert isinstance(feed, Copy)
        watch = SlotWatch(pool, clock, sync_s=0.02)
        alert = store.create("rdv-app", NEAR, receiver.url, NOW + timedelta(days=1), NOW)
        receiver.secret = WebhookSigner(KEY).secret_text(alert.id)
        receiver.script = [503]  # the first attempt fails: retried with the same id
        async with running(store, watch, receiver, clock) as feeds:
            await until(
                lambda: watch.groups and all("feed" in g.read_once for g in watch.groups.values())
            )
            feed.republish([*first, slot("feed", "n1", "c1", 3)])
            await until(lambda: len(receiver.received) == 1)
            # The failure stored (its next attempt set from the clock as it read it) before
            # the clock moves: moved sooner, the next attempt would be set past it, forever.
            await until(lambda: (state := store.get(alert.id)) is not None and state.failures == 1)
            clock.now += timedelta(seconds=1)  # past its backoff
            await until(lambda: len(receiver.received) == 2)
            one, again = receiver.received
            assert one.webhook_id == again.webhook_id and again.verified
            data = again.body["data"]
            assert again.body["type"] == "slot.alert" and data["webhookId"] == alert.id
            assert len(data["opened"]) == 1 and data["goneIds"] == []
            assert data["opened"][0]["distanceKm"] < 1
            # Deleted: not watched any more, nothing delivered.
            store.delete(alert.id)
            feeds.changed()
            await until(lambda: alert.id not in feeds.tasks)
            feed.republish([*first, slot("feed", "n2", "c1", 4)])
            await asyncio.sleep(0.3)
            assert len(receiver.received) == 2
        await watch.aclose()
    store.close()


async def test_an_expired_alert_is_not_watched_and_is_swept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    with PartnerStore(url) as partners:
        partners.create_client("rdv-app")
    store = WebhookStore(url)
    clock = Clock()
    first = [slot("feed", "s1", "c1", 2)]
    async with https_receiver(tmp_path) as receiver, a_pool() as pool:
        [feed] = (
            await install(pool, Spec("feed", [clinic("feed", "c1", PLATEAU)], first, kind=Copy))
        ).values()
        assert isinstance(feed, Copy)
        watch = SlotWatch(pool, clock, sync_s=0.02)
        alert = store.create("rdv-app", NEAR, receiver.url, NOW + timedelta(minutes=5), NOW)
        async with running(store, watch, receiver, clock) as feeds:
            await until(lambda: alert.id in feeds.tasks)
            clock.now = NOW + timedelta(minutes=6)
            await until(lambda: alert.id not in feeds.tasks)
            feed.republish([*first, slot("feed", "n1", "c1", 3)])
            await asyncio.sleep(0.3)
            assert receiver.received == []
        await watch.aclose()
    assert store.sweep(clock.now).expired_alerts == 1 and store.alerts() == []
    store.close()


async def test_two_instances_over_redis_deliver_each_change_once(tmp_path: Path) -> None:
    """Both instances watch the alert (its group lives on either); each change and each
    attempt is claimed in Redis by one of them: the partner gets it once."""
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    with PartnerStore(url) as partners:
        partners.create_client("rdv-app")
    stores = [WebhookStore(url), WebhookStore(url)]
    links = [RedisLink.from_url(REDIS_URL), RedisLink.from_url(REDIS_URL)]
    clock = Clock()
    first = [slot("feed", "s1", "c1", 2)]
    spec = Spec("feed", [clinic("feed", "c1", PLATEAU)], first, kind=Copy)
    async with https_receiver(tmp_path) as receiver, a_pool() as pool_a, a_pool() as pool_b:
        feeds = [(await install(pool, spec))["feed"] for pool in (pool_a, pool_b)]
        watches = [
            SlotWatch(pool, clock, sync_s=0.02, link=link, lease_s=1.5)
            for pool, link in zip((pool_a, pool_b), links, strict=True)
        ]
        alert = stores[0].create("rdv-app", NEAR, receiver.url, NOW + timedelta(days=1), NOW)
        receiver.secret = WebhookSigner(KEY).secret_text(alert.id)
        claims = [Leases(link, 60.0).first for link in links]
        async with (
            running(stores[0], watches[0], receiver, clock, claims[0]),
            running(stores[1], watches[1], receiver, clock, claims[1]),
        ):
            await until(
                lambda: (
                    all(w.groups for w in watches)
                    and any("feed" in g.read_once for w in watches for g in w.groups.values())
                ),
                5.0,
            )
            await asyncio.sleep(0.3)  # the other instance follows the group's channel
            for feed in feeds:  # each instance loads the same feed
                assert isinstance(feed, Copy)
                feed.republish([*first, slot("feed", "n1", "c1", 3)])
            await until(lambda: len(receiver.received) == 1)
            await asyncio.sleep(0.5)
            assert len(receiver.received) == 1
            [delivery] = receiver.received
            assert delivery.verified and len(delivery.body["data"]["opened"]) == 1
        for watch in watches:
            await watch.aclose()
    for link in links:
        await link.aclose()
    for store in stores:
        store.close()
