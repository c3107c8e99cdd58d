"""Slot alerts across instances, over the real Redis: two watches (two instances, each
with its own pool and Redis link) with subscribers in one group. One reads the
sources under the group's lease; both sets of subscribers hear each change once;
when the holder dies the other takes over and tells what changed meanwhile; a
change heard twice is told once; with Redis out each reads its own, said once. No
subscriber's coordinates ever reach Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import AsyncIterator
from typing import cast

import msgspec
import pytest
import redis.asyncio as aioredis

from sources.kv import RedisLink
from sources.kv import link as kv_link
from sources.pool import SourcePool
from sources.records import GeoPoint
from sources.watch import SlotWatch
from sources.watch.held import decode_held, encode_held
from sources.watch.relay import PREFIX, GroupRelay, lease_problem
from tests.ports import REDIS_URL, free_port
from tests.sources.watch.fakes import (
    PLATEAU,
    Clock,
    Copy,
    Shop,
    Spec,
    a_pool,
    clinic,
    install,
    slot,
    until,
)
from tests.sources.watch.test_watch import Listener, near, starts

LEASE_S = 1.5
# The subscriber's own point: near the clinic, not on it (a clinic's position is public).
HOME = GeoPoint(45.5262, -73.5841)


def relay_of(watch: SlotWatch) -> GroupRelay:
    [group] = watch.groups.values()
    return cast("GroupRelay", getattr(group.publisher, "__self__"))  # noqa: B009


class Recorder:
    """Every message published on the watch's channels, and every key's value at the
    end: what Redis saw of the test."""

    def __init__(self) -> None:
        self.client = aioredis.Redis.from_url(REDIS_URL)
        self.messages: list[tuple[bytes, bytes]] = []
        self._pubsub = self.client.pubsub()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async for key in self.client.scan_iter(match=f"{PREFIX}*"):
            await self.client.delete(key)
        await self._pubsub.psubscribe(f"{PREFIX}*")
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message["type"] == "pmessage":
                self.messages.append((message["channel"], message["data"]))

    async def everything(self) -> list[bytes]:
        """Every key, its value(s), and every message recorded."""
        seen: list[bytes | str | None] = []
        async for key in self.client.scan_iter(match="*"):
            seen.append(key)
            kind = await self.client.type(key)
            if kind == b"string":
                seen.append(await self.client.get(key))
            elif kind == b"hash":
                for field, value in (await self.client.hgetall(key)).items():
                    seen += [field, value]
        seen += [part for message in self.messages for part in message]
        return [v.encode() if isinstance(v, str) else v for v in seen if v is not None]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._pubsub.aclose()
        await self.client.aclose()


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    recording = Recorder()
    await recording.start()
    yield recording
    await recording.close()


def assert_no_coordinates(blobs: list[bytes], point: GeoPoint) -> None:
    """Neither as text (any rounding to 3+ decimals) nor as a MessagePack float."""
    for value in (point.latitude, point.longitude):
        forms = [f"{value:.{n}f}".encode() for n in range(3, 8)]
        forms += [struct.pack(">d", value), struct.pack(">f", value)]
        for blob in blobs:
            assert not any(form in blob for form in forms), "a subscriber's coordinate in Redis"


@contextlib.asynccontextmanager
async def an_instance(url: str = REDIS_URL) -> AsyncIterator[tuple[SlotWatch, Shop, RedisLink]]:
    """One instance: its pool with the live source ``live``, its link, its watch."""
    spec = Spec("live", [clinic("live", "c1", PLATEAU)], [slot("live", "s1", "c1", 2)])
    async with a_pool() as pool:
        [shop] = (await install(pool, spec)).values()
        link = RedisLink.from_url(url)
        watch = SlotWatch(pool, Clock(), sync_s=0.02, link=link, lease_s=LEASE_S)
        try:
            yield watch, shop, link
        finally:
            await watch.aclose()
            await link.aclose()


def _pool_of(watch: SlotWatch) -> SourcePool:
    return watch.pool


async def two_watching(a: SlotWatch, b: SlotWatch) -> tuple[Listener, Listener, SlotWatch]:
    """A subscriber on each; returns them, once one instance holds the group's lease and
    has read its baseline, and the other follows: and the holder's watch."""
    first, second = Listener(a, near(HOME)), Listener(b, near(HOME))
    await until(lambda: a.groups and b.groups, 2.0)
    await until(lambda: {relay_of(a).mode, relay_of(b).mode} == {"holder", "follower"}, 3 * LEASE_S)
    holder = a if relay_of(a).mode == "holder" else b
    await until(lambda: holder.groups and next(iter(holder.groups.values())).read_once, 3.0)
    # Both follow the group's channel (a change published before would not reach them).
    await until(lambda: all(relay_of(w).channel in w.relay.channels.subscribed for w in (a, b)))
    return first, second, holder


async def test_one_instance_reads_a_group_and_both_sets_of_subscribers_hear_each_change_once(
    recorder: Recorder,
) -> None:
    async with an_instance() as (a, shop_a, _), an_instance() as (b, shop_b, _):
        shop_b.slots = shop_a.slots  # one upstream, asked by either instance
        first, second, holder = await two_watching(a, b)
        follower, follower_shop = (b, shop_b) if holder is a else (a, shop_a)
        holder_shop = shop_a if holder is a else shop_b
        follower_calls = len(follower_shop.calls)
        shop_a.slots.append(slot("live", "n1", "c1", 5))
        await until(lambda: first.alerts and second.alerts, 2.0)
        shop_a.slots.remove(shop_a.slots[0])  # s1 taken
        await until(lambda: len(first.alerts) == 2 and len(second.alerts) == 2, 2.0)
        await asyncio.sleep(2 * LEASE_S)  # nothing more, however many turns and renewals
        for listener in (first, second):
            assert [starts(alert) for alert in listener.alerts] == [["n1"], []]
            assert [len(alert.gone) for alert in listener.alerts] == [0, 1]
        # Only the holder asked the source; the other instance never did.
        assert len(holder_shop.calls) > 5
        assert len(follower_shop.calls) == follower_calls == 0
        assert relay_of(follower).mode == "follower"
        await first.close()
        await second.close()
    assert recorder.messages, "the changes went through Redis"
    assert_no_coordinates(await recorder.everything(), HOME)


async def test_when_the_holder_dies_the_other_takes_over_within_the_lease_and_misses_nothing(
    recorder: Recorder,
) -> None:
    async with an_instance() as (a, shop_a, _), an_instance() as (b, shop_b, _):
        shop_b.slots = shop_a.slots
        first, second, holder = await two_watching(a, b)
        survivor, heard = (b, second) if holder is a else (a, first)
        # Dies without a word: its Redis goes silent (nothing released), its tasks stop.
        holder.relay.link._paused_until = time.monotonic() + 3600  # type: ignore[union-attr]
        died = time.monotonic()
        await holder.aclose()
        # A change during the gap, before anyone reads the source.
        shop_a.slots.append(slot("live", "gap", "c1", 6))
        await until(lambda: relay_of(survivor).mode == "holder", LEASE_S + 1.0)
        took_over_s = time.monotonic() - died
        assert took_over_s <= LEASE_S + 0.5
        await until(lambda: heard.alerts, 2.0)
        # A change after the takeover.
        shop_a.slots.append(slot("live", "after", "c1", 7))
        await until(lambda: len(heard.alerts) == 2, 2.0)
        await asyncio.sleep(1.0)
        assert [starts(alert) for alert in heard.alerts] == [["gap"], ["after"]]
        await first.close()
        await second.close()
    assert_no_coordinates(await recorder.everything(), HOME)


async def test_a_change_published_twice_is_told_once(recorder: Recorder) -> None:
    async with an_instance() as (a, shop_a, _), an_instance() as (b, shop_b, _):
        shop_b.slots = shop_a.slots
        first, second, holder = await two_watching(a, b)
        heard = second if holder is a else first
        shop_a.slots.append(slot("live", "n1", "c1", 5))
        await until(lambda: heard.alerts and recorder.messages, 2.0)
        channel, data = recorder.messages[0]
        # Redis hands the same change over again (a retried publish, a replay).
        await recorder.client.publish(channel, data)
        await recorder.client.publish(channel, data)
        await until(lambda: len(recorder.messages) == 3, 2.0)
        await asyncio.sleep(0.5)
        assert [starts(alert) for alert in heard.alerts] == [["n1"]]
        await first.close()
        await second.close()


async def test_with_redis_out_each_instance_watches_its_own_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    caplog.set_level(logging.INFO, logger="passerelle.watch")
    async with an_instance(closed) as (a, shop_a, _), an_instance(closed) as (b, shop_b, _):
        shop_b.slots = shop_a.slots
        first, second = Listener(a, near(HOME)), Listener(b, near(HOME))
        third = Listener(a, near(PLATEAU, starts_after=slot("x", "x", "c", 24).start))
        await until(lambda: len(a.groups) == 2 and b.groups, 2.0)
        await until(lambda: all(g.read_once for w in (a, b) for g in w.groups.values()), 3.0)
        shop_a.slots.append(slot("live", "n1", "c1", 5))
        await until(lambda: first.alerts and second.alerts, 2.0)
        await asyncio.sleep(LEASE_S)  # several turns of each group
        assert [starts(alert) for alert in first.alerts] == [["n1"]]
        assert [starts(alert) for alert in second.alerts] == [["n1"]]
        assert shop_a.calls and shop_b.calls  # each read the source itself
        for listener in (first, second, third):
            await listener.close()
    said = [r.getMessage() for r in caplog.records if "watches its own" in r.getMessage()]
    assert len(said) == 2  # once per instance, not per group nor per turn
    assert not any(str(HOME.latitude)[:6] in line for line in said)


def test_a_group_s_state_travels_through_messagepack_unchanged() -> None:
    from sources.watch.held import Watched

    assert decode_held(encode_held(Watched())).held is None
    with pytest.raises(msgspec.DecodeError):
        decode_held(b"\x01")


def test_lease_lengths_are_checked() -> None:
    assert lease_problem(10) is None
    for bad in (0.0, -1.0, float("nan"), 1e9):
        assert "between" in (lease_problem(bad) or "")


def _redis_server(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required (Debian package redis-server)"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    raise AssertionError("the private redis-server did not start")


async def test_redis_dying_then_coming_back_each_reads_its_own_then_one_reads_for_both(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kv_link, "OUTAGE_PAUSE_S", 0.2)
    caplog.set_level(logging.INFO, logger="passerelle.watch")
    port = free_port()
    server = _redis_server(port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        async with an_instance(url) as (a, shop_a, _), an_instance(url) as (b, shop_b, _):
            shop_b.slots = shop_a.slots
            first, second, _holder = await two_watching(a, b)
            server.kill()
            server.wait()
            await until(lambda: relay_of(a).mode == relay_of(b).mode == "local", 3 * LEASE_S)
            await until(lambda: all(next(iter(w.groups.values())).read_once for w in (a, b)))
            calls = len(shop_a.calls), len(shop_b.calls)
            shop_a.slots.append(slot("live", "down", "c1", 5))
            await until(lambda: first.alerts and second.alerts, 2.0)
            assert len(shop_a.calls) > calls[0] and len(shop_b.calls) > calls[1]  # each reads
            server = _redis_server(port)
            await until(
                lambda: {relay_of(a).mode, relay_of(b).mode} == {"holder", "follower"},
                3 * LEASE_S,
            )
            follower_shop = shop_a if relay_of(a).mode == "follower" else shop_b
            await asyncio.sleep(0.3)
            calls_before = len(follower_shop.calls)
            shop_a.slots.append(slot("live", "back", "c1", 6))
            await until(lambda: len(first.alerts) == 2 and len(second.alerts) == 2, 2.0)
            await asyncio.sleep(0.5)
            for listener in (first, second):
                assert [starts(alert) for alert in listener.alerts] == [["down"], ["back"]]
            assert len(follower_shop.calls) == calls_before  # one reads for both again
            await first.close()
            await second.close()
    finally:
        server.kill()
        server.wait()
    said = [r.getMessage() for r in caplog.records if "watches its own" in r.getMessage()]
    assert len(said) == 2  # one line per instance for the outage


async def test_a_bulk_feed_loaded_by_both_is_told_once_and_an_ended_group_leaves_nothing(
    recorder: Recorder,
) -> None:
    first = [slot("feed", "s1", "c1", 2)]
    spec = Spec("feed", [clinic("feed", "c1", PLATEAU)], first, kind=Copy)
    links = [RedisLink.from_url(REDIS_URL), RedisLink.from_url(REDIS_URL)]
    async with a_pool() as pool_a, a_pool() as pool_b:
        feeds = [(await install(pool, spec))["feed"] for pool in (pool_a, pool_b)]
        watches = [
            SlotWatch(pool, Clock(), sync_s=0.02, link=link, lease_s=LEASE_S)
            for pool, link in zip((pool_a, pool_b), links, strict=True)
        ]
        for round_ in ("n1", "n2"):  # the second time, a new group: nothing stale told
            *listeners, _ = await two_watching(*watches)
            for feed in feeds:  # each instance loads the feed
                assert isinstance(feed, Copy)
                feed.republish([*first, slot("feed", round_, "c1", 3)])
            heard = listeners
            await until(lambda: all(listener.alerts for listener in heard), 2.0)  # noqa: B023
            await asyncio.sleep(0.3)
            for listener in listeners:
                assert [(starts(a), a.gone) for a in listener.alerts] == [([round_], ())]
                await listener.close()
            await until(lambda: not any(w.groups for w in watches))
            await asyncio.sleep(0.2)  # their ends release the lease and drop the state
            assert await recorder.client.keys(f"{PREFIX}*") == []
            for feed in feeds:
                assert isinstance(feed, Copy)
                feed.republish(list(first))
        for watch in watches:
            await watch.aclose()
    for link in links:
        await link.aclose()


async def test_a_holder_that_lost_its_lease_neither_publishes_nor_tells_twice(
    recorder: Recorder,
) -> None:
    async with an_instance() as (a, shop_a, _), an_instance() as (b, shop_b, _):
        shop_b.slots = shop_a.slots
        first, second, holder = await two_watching(a, b)
        follower = b if holder is a else a
        was_holder, taker = relay_of(holder), relay_of(follower)
        # The holder paused past its lease's end, and the other took it meanwhile.
        await recorder.client.set(was_holder.lease, taker.token, px=int(LEASE_S * 1000))
        shop_a.slots.append(slot("live", "n1", "c1", 5))
        await until(lambda: taker.mode == "holder" and was_holder.mode == "follower", 2 * LEASE_S)
        await until(lambda: first.alerts and second.alerts, 2.0)
        await asyncio.sleep(0.5)
        for listener in (first, second):
            assert [starts(alert) for alert in listener.alerts] == [["n1"]]
        calls = len((shop_a if holder is a else shop_b).calls)
        await asyncio.sleep(0.5)
        assert len((shop_a if holder is a else shop_b).calls) == calls  # it reads no more
        await first.close()
        await second.close()
