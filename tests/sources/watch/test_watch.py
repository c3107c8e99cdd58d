"""The watch over in-process sources: what counts as a change, who hears it, how often
live sources are asked, failures, the cap, and what the logs never hold."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from sources.pool import SourcePool
from sources.records import GeoPoint, Identifier, SlotQuery
from sources.watch import Alert, SlotWatch, WatchFilter
from sources.watch.member import Member
from tests.sources.watch.fakes import (
    LIMOILOU,
    NOW,
    PERMIT,
    PLATEAU,
    Clock,
    Copy,
    Spec,
    a_pool,
    clinic,
    install,
    slot,
    until,
)

WEEK = timedelta(days=7)


def near(point: GeoPoint, radius_km: float = 5.0, **window: object) -> WatchFilter:
    query = SlotQuery(
        starts_after=NOW, starts_before=NOW + WEEK, limit=20, near=point, radius_km=radius_km
    )
    return WatchFilter(
        query,
        window.get("starts_after"),
        window.get("starts_before"),
        WEEK,  # type: ignore[arg-type]
    )


class Listener:
    """One subscriber: the alerts it has heard, as they come."""

    def __init__(self, watch: SlotWatch, wanted: WatchFilter) -> None:
        self.alerts: list[Alert] = []
        self.heard_at: list[float] = []
        self._stream = watch.alerts(wanted)
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for alert in self._stream:
            self.alerts.append(alert)
            self.heard_at.append(time.monotonic())

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self._stream.aclose()


@contextlib.asynccontextmanager
async def watching(pool: SourcePool, clock: Clock, **options: object) -> AsyncIterator[SlotWatch]:
    watch = SlotWatch(pool, clock, sync_s=0.02, **options)  # type: ignore[arg-type]
    try:
        yield watch
    finally:
        await watch.aclose()


async def read_once(watch: SlotWatch, *sources: str) -> None:
    """Until every group has read each of ``sources`` once (its baseline)."""
    await until(
        lambda: watch.groups and all(set(sources) <= g.read_once for g in watch.groups.values())
    )


def starts(alert: Alert) -> list[str]:
    return [s.record.local_id for s in alert.opened]


async def test_a_republished_copy_s_three_new_slots_reach_a_matching_subscriber_within_2_s() -> (
    None
):
    clinics = [clinic("feed", "c1", PLATEAU), clinic("feed", "c2", LIMOILOU)]
    first = [slot("feed", "s1", "c1", 2), slot("feed", "q1", "c2", 2)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, first, kind=Copy))).values()
        assert isinstance(feed, Copy)
        async with watching(pool, Clock()) as watch:
            here, there = Listener(watch, near(PLATEAU)), Listener(watch, near(LIMOILOU))
            await read_once(watch, "feed")
            assert len(watch.groups) == 2
            new = [slot("feed", f"n{i}", "c1", 3 + i) for i in range(3)]
            republished = time.monotonic()
            feed.republish([*first, *new])
            await until(lambda: here.alerts)
            assert here.heard_at[0] - republished < 2.0
            [alert] = here.alerts
            assert starts(alert) == ["n0", "n1", "n2"] and alert.gone == () and not alert.failing
            assert alert.seen_at == NOW
            assert all(s.distance_km is not None and s.distance_km < 1 for s in alert.opened)
            # Taken: gone, to the same subscriber only.
            feed.republish([first[1], *new[1:]])
            await until(lambda: len(here.alerts) == 2)
            gone = here.alerts[1]
            assert gone.opened == () and len(gone.gone) == 2  # s1 and n0
            await asyncio.sleep(0.1)
            assert there.alerts == []
            await here.close()
            await there.close()
        assert watch.groups == {}


async def test_a_slot_taken_is_gone_and_one_freed_again_is_opened() -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    first = [slot("feed", "s1", "c1", 2), slot("feed", "s2", "c1", 3)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, first, kind=Copy))).values()
        assert isinstance(feed, Copy)
        async with watching(pool, Clock()) as watch:
            listener = Listener(watch, near(PLATEAU))
            await read_once(watch, "feed")
            feed.republish(first[1:])
            await until(lambda: listener.alerts)
            [taken] = listener.alerts
            assert (
                taken.opened == ()
                and len(taken.gone) == 1
                and '"2026-11-16T14:30' in (taken.gone[0])
            )
            feed.republish(first)
            await until(lambda: len(listener.alerts) == 2)
            assert starts(listener.alerts[1]) == ["s1"]
            await listener.close()


async def test_time_passing_is_no_change_in_a_sliding_window() -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    soon = slot("feed", "soon", "c1", 2)  # its start passes
    edge = slot("feed", "edge", "c1", 7 * 24 + 3)  # enters the window as it slides
    beyond = slot("feed", "beyond", "c1", 7 * 24 + 20)  # covered only once a day has passed
    clock = Clock()
    async with a_pool() as pool:
        [feed] = (
            await install(pool, Spec("feed", clinics, [soon, edge, beyond], kind=Copy))
        ).values()
        assert isinstance(feed, Copy)
        async with watching(pool, clock) as watch:
            listener = Listener(watch, near(PLATEAU))
            await read_once(watch, "feed")
            clock.now = NOW + timedelta(days=1)
            feed.republish([soon, edge, beyond])
            await asyncio.sleep(0.2)
            assert listener.alerts == []
            fresh = slot("feed", "fresh", "c1", 24 + 5)
            feed.republish([edge, beyond, fresh])
            await until(lambda: listener.alerts)
            [alert] = listener.alerts
            assert starts(alert) == ["fresh"] and alert.gone == ()
            assert alert.seen_at == NOW + timedelta(days=1)
            await listener.close()


async def test_an_explicit_window_stays_put_and_the_subscription_ends_after_it() -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    clock = Clock()
    wanted = near(
        PLATEAU, starts_after=NOW + timedelta(hours=1), starts_before=NOW + timedelta(hours=5)
    )
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, [], kind=Copy))).values()
        assert isinstance(feed, Copy)
        async with watching(pool, clock) as watch:
            listener = Listener(watch, wanted)
            await read_once(watch, "feed")
            feed.republish([slot("feed", "in", "c1", 2), slot("feed", "out", "c1", 6)])
            await until(lambda: listener.alerts)
            assert starts(listener.alerts[0]) == ["in"]
            clock.now = NOW + timedelta(hours=5)
            feed.republish([])  # nothing is gone: every start has passed the window's end
            await asyncio.sleep(0.1)
            assert len(listener.alerts) == 1
            await listener.close()
            # Past its end, a subscription ends of itself.
            assert [a async for a in watch.alerts(wanted)] == []


async def test_live_sources_are_asked_at_their_pace_shared_by_their_groups_and_slowed_by_a_429(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clinics = [clinic("shop", "c1", PLATEAU), clinic("shop", "c2", LIMOILOU)]
    async with a_pool() as pool:
        [shop] = (
            await install(
                pool, Spec("shop", clinics, [slot("shop", "s1", "c1", 2)], calls_per_minute=300)
            )
        ).values()
        async with watching(pool, Clock()) as watch:
            # Two subscribers in one group, a third in another: two groups share the pace.
            listeners = [
                Listener(watch, near(PLATEAU)),
                Listener(watch, near(GeoPoint(PLATEAU.latitude + 0.001, PLATEAU.longitude))),
                Listener(watch, near(LIMOILOU)),
            ]
            await read_once(watch, "shop")
            assert len(watch.groups) == 2
            shop.calls.clear()
            await asyncio.sleep(1.0)
            # 300 a minute: one call every 0.2 s, whatever the number of groups.
            assert 4 <= len(shop.calls) <= 6
            gaps = [b - a for a, b in zip(shop.calls, shop.calls[1:], strict=False)]
            assert min(gaps) > 0.15
            # Both groups were read in turn; the one group of two subscribers, once a turn.
            shop.slots.append(slot("shop", "n1", "c1", 4))
            await until(lambda: listeners[0].alerts and listeners[1].alerts)
            assert starts(listeners[0].alerts[0]) == starts(listeners[1].alerts[0]) == ["n1"]
            with caplog.at_level(logging.WARNING, logger="passerelle.watch"):
                shop.fail = 429
                await until(lambda: watch.paces["shop"].interval_s >= 0.4)
            assert any("shop answered 429" in m for m in caplog.messages)
            for listener in listeners:
                await listener.close()


async def test_a_source_failing_mid_watch_is_told_then_watched_again() -> None:
    clinics = [clinic("shop", "c1", PLATEAU)]
    async with a_pool() as pool:
        [shop] = (
            await install(pool, Spec("shop", clinics, [slot("shop", "s1", "c1", 2)]))
        ).values()
        async with watching(pool, Clock()) as watch:
            listener = Listener(watch, near(PLATEAU))
            await read_once(watch, "shop")
            shop.fail = 503
            await until(lambda: listener.alerts)
            [failing] = listener.alerts[0].failing
            assert failing.source_id == "shop" and "503" in failing.message
            assert listener.alerts[0].opened == () == listener.alerts[0].gone
            # A subscriber joining now hears of it at once.
            late = Listener(watch, near(PLATEAU))
            await until(lambda: late.alerts)
            assert [f.source_id for f in late.alerts[0].failing] == ["shop"]
            # What changed meanwhile is told when it answers again, with the recovery.
            shop.slots = [slot("shop", "n1", "c1", 3)]
            shop.fail = None
            await until(lambda: len(listener.alerts) == 2)
            back = listener.alerts[1]
            assert back.failing == () and starts(back) == ["n1"] and len(back.gone) == 1
            await listener.close()
            await late.close()


async def test_a_slot_free_at_two_sources_is_opened_once_and_gone_when_both_drop_it() -> None:
    async with a_pool() as pool:
        built = await install(
            pool,
            Spec("a", [clinic("a", "c1", PLATEAU)], [], kind=Copy),
            Spec("b", [clinic("b", "c1", PLATEAU)], [slot("b", "x", "c1", 2)], kind=Copy),
        )
        a, b = built["a"], built["b"]
        assert isinstance(a, Copy) and isinstance(b, Copy)
        async with watching(pool, Clock()) as watch:
            listener = Listener(watch, near(PLATEAU))
            await read_once(watch, "a", "b")
            a.republish([slot("a", "x", "c1", 2)])  # the same slot, already free at b
            b.republish([])  # still free at a: not gone
            await asyncio.sleep(0.2)
            assert listener.alerts == []
            a.republish([])
            await until(lambda: listener.alerts)
            assert len(listener.alerts[0].gone) == 1
            await listener.close()


async def test_a_load_naming_its_changed_clinics_is_read_again_for_those_only() -> None:
    clinics = [clinic("feed", "c1", PLATEAU), clinic("feed", "c2", PLATEAU)]
    s1, s2 = slot("feed", "s1", "c1", 2), slot("feed", "s2", "c2", 3)
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, [s1, s2], kind=Copy))).values()
        assert isinstance(feed, Copy)
        async with watching(pool, Clock()) as watch:
            listener = Listener(watch, near(PLATEAU))
            await read_once(watch, "feed")
            assert feed.asked == [None]  # the baseline: every clinic
            n1 = slot("feed", "n1", "c1", 4)
            feed.republish([s1, n1, s2], {"c1": None})
            await until(lambda: listener.alerts)
            assert feed.asked[1:] == [("c1",)]
            assert starts(listener.alerts[0]) == ["n1"] and listener.alerts[0].gone == ()
            # c2's slot, held since the baseline, is still held: taken, it is gone.
            feed.republish([s1, n1], {"c2": None})
            await until(lambda: len(listener.alerts) == 2)
            assert feed.asked[2:] == [("c2",)]
            assert listener.alerts[1].opened == () and len(listener.alerts[1].gone) == 1
            assert "permit|c2" in listener.alerts[1].gone[0]  # s2: its clinic and start
            assert "T15:30:00" in listener.alerts[1].gone[0]
            # A load that changed nothing is not read at all; one that cannot say is
            # read whole, and what it changed is told.
            feed.republish([s1, n1], {})
            await asyncio.sleep(0.1)
            assert feed.asked[3:] == [] and len(listener.alerts) == 2
            feed.republish([n1])
            await until(lambda: len(listener.alerts) == 3)
            assert feed.asked[3:] == [None] and len(listener.alerts[2].gone) == 1
            # A subscriber watching farther widens the group's coverage: the next read
            # covers every clinic again, and a slot already free there is not opened.
            wider = Listener(watch, near(PLATEAU, radius_km=50.0))
            await asyncio.sleep(0.05)
            feed.republish([n1, s2], {"c2": None})
            await until(lambda: len(listener.alerts) == 4)
            assert feed.asked[4:] == [None]
            assert starts(listener.alerts[3]) == ["s2"] and starts(wider.alerts[0]) == ["s2"]
            await wider.close()
            await listener.close()


async def test_a_load_naming_the_starts_it_changed_is_read_at_those_starts_only() -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    day = [slot("feed", f"s{i}", "c1", 2 + i) for i in range(8)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, day, kind=Copy))).values()
        assert isinstance(feed, Copy)
        async with watching(pool, Clock()) as watch:
            listener = Listener(watch, near(PLATEAU))
            await read_once(watch, "feed")
            # s3 taken, n1 opened: a second at each of their starts is read, no more.
            n1 = slot("feed", "n1", "c1", 30)
            changed = {int(s.start.timestamp()) for s in (day[3], n1)}
            feed.republish([*day[:3], *day[4:], n1], {"c1": frozenset(changed)})
            await until(lambda: listener.alerts)
            [alert] = listener.alerts
            assert starts(alert) == ["n1"] and len(alert.gone) == 1
            # (the federation asks a source whole minutes)
            assert sorted(feed.windows[1:]) == [
                (s.start, s.start + timedelta(minutes=1)) for s in (day[3], n1)
            ]
            assert feed.asked[1:] == [("c1",), ("c1",)]
            # The slots at other starts are still held: taken now, they are gone.
            feed.republish([n1], {"c1": None})
            await until(lambda: len(listener.alerts) == 2)
            assert len(listener.alerts[1].gone) == 7
            await listener.close()


async def test_clinics_a_source_lists_twice_are_read_again_together() -> None:
    # Two records of one clinic at one source (the same permit): one merged clinic,
    # whose slot listed under both is one slot, gone only when neither lists it.
    same = (Identifier(PERMIT, "one"),)
    clinics = [
        replace(clinic("feed", "c1", PLATEAU), identifiers=same),
        replace(clinic("feed", "c2", PLATEAU), identifiers=same),
    ]
    twice = [slot("feed", "x1", "c1", 2), slot("feed", "x2", "c2", 2)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, twice, kind=Copy))).values()
        assert isinstance(feed, Copy)
        async with watching(pool, Clock()) as watch:
            listener = Listener(watch, near(PLATEAU))
            await read_once(watch, "feed")
            feed.republish(twice[1:], {"c1": None})
            await until(lambda: len(feed.asked) == 2)
            await asyncio.sleep(0.1)
            assert listener.alerts == []  # still free under c2
            assert set(feed.asked[1] or ()) == {"c1", "c2"}
            feed.republish([], {"c2": None})
            await until(lambda: listener.alerts)
            assert listener.alerts[0].opened == () and len(listener.alerts[0].gone) == 1
            await listener.close()


async def test_a_window_too_large_is_watched_up_to_its_cap_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    many = [slot("feed", f"s{i}", "c1", 2 + i) for i in range(30)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, many, kind=Copy))).values()
        assert isinstance(feed, Copy)
        with caplog.at_level(logging.WARNING, logger="passerelle.watch"):
            async with watching(pool, Clock(), max_slots=10) as watch:
                listener = Listener(watch, near(PLATEAU))
                await read_once(watch, "feed")
                early, late = slot("feed", "early", "c1", 2.5), slot("feed", "late", "c1", 100)
                feed.republish([*many, early, late])
                await until(lambda: listener.alerts)
                assert starts(listener.alerts[0]) == ["early"]
                feed.republish(many)
                await until(lambda: len(listener.alerts) == 2)
                await listener.close()
        warnings = [m for m in caplog.messages if "holds over 10 free slots" in m]
        assert len(warnings) == 1 and "feed" in warnings[0]


async def test_no_log_line_holds_a_subscriber_s_coordinates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    point = GeoPoint(45.508112, -73.587641)
    clinics = [clinic("shop", "c1", PLATEAU)]
    caplog.set_level(logging.DEBUG)
    async with a_pool() as pool:
        built = await install(
            pool,
            Spec("shop", clinics, [slot("shop", "s1", "c1", 2)]),
            Spec("feed", [clinic("feed", "c1", PLATEAU)], [], kind=Copy),
        )
        shop, feed = built["shop"], built["feed"]
        assert isinstance(feed, Copy)
        async with watching(pool, Clock(), max_slots=1) as watch:
            listener = Listener(watch, near(point, 7.5))
            await read_once(watch, "shop", "feed")
            shop.fail = 429
            feed.republish([slot("feed", "f1", "c1", 2), slot("feed", "f2", "c1", 3)])
            await until(lambda: listener.alerts)
            shop.fail = None
            await until(lambda: len(listener.alerts) >= 2)
            await listener.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "429" in text and "holds over" in text  # the lines the watch writes were written
    for needle in ("45.508", "-73.587", "73.587", "45,508"):
        assert needle not in text


async def test_closing_the_watch_ends_every_subscription() -> None:
    async with a_pool() as pool:
        await install(pool, Spec("feed", [clinic("feed", "c1", PLATEAU)], [], kind=Copy))
        watch = SlotWatch(pool, Clock(), sync_s=0.02)
        listener = Listener(watch, near(PLATEAU))
        await read_once(watch, "feed")
        await watch.aclose()
        await asyncio.wait_for(listener.task, 1)  # the stream ended: the client gets complete
        assert listener.alerts == [] and watch.groups == {}
        await watch.aclose()  # twice is harmless


async def test_a_subscriber_cancelled_as_news_comes_in_is_cancelled() -> None:
    # Its news (here, the watch closing) and the cancel in the same turn of the loop:
    # the cancel must win (on Python 3.11, asyncio.wait_for lost it, and a subscription
    # cancelled as a change came in went on for ever).
    member = Member(near(PLATEAU))
    waiting = asyncio.create_task(member.next(60))
    await asyncio.sleep(0)
    member.close()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
