"""The bulkhead: background calls (the watch's) take a slot only when one is free, and
never make a client's request wait."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from sources.errors import SourceBusy
from sources.pool.bulkhead import Bulkhead
from sources.pool.reads import slots_read
from sources.records import SlotQuery
from tests.sources.watch.fakes import NOW, PLATEAU, Spec, a_pool, clinic, install, slot

QUERY = SlotQuery(starts_after=NOW, starts_before=NOW + timedelta(days=7), limit=10)


async def _free(source: object) -> None:
    """A gate that lets the call go at once."""


async def test_a_background_call_is_admitted_only_when_a_slot_is_free() -> None:
    bulkhead = Bulkhead(1)
    async with bulkhead.request():
        async with bulkhead.background() as admitted:
            assert not admitted
    async with bulkhead.background() as admitted:
        assert admitted


async def test_a_request_takes_over_a_background_call_s_slot_and_never_waits() -> None:
    bulkhead = Bulkhead(1)
    background_done = asyncio.Event()

    async def background() -> None:
        async with bulkhead.background() as admitted:
            assert admitted
            await asyncio.sleep(0.5)
        background_done.set()

    task = asyncio.create_task(background())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    async with bulkhead.request():
        waited = time.monotonic() - started
    assert waited < 0.05 and not background_done.is_set()
    await task
    # Its slot was counted once: one request, then another, each at once.
    for _ in range(2):
        async with asyncio.timeout(0.1), bulkhead.request():
            pass


async def test_the_watch_never_delays_a_client_s_request_at_the_source() -> None:
    async with a_pool() as pool:
        [shop] = (
            await install(
                pool,
                Spec(
                    "shop",
                    [clinic("shop", "c1", PLATEAU)],
                    [slot("shop", "s1", "c1", 2)],
                    max_concurrency=1,
                ),
            )
        ).values()
        shop.delay_s = 0.5
        source = pool.enabled[0]
        background = asyncio.create_task(pool.read(source, slots_read(QUERY), gate=_free))
        await asyncio.sleep(0.05)  # the watch's call is under way, holding the only slot
        started = time.monotonic()
        answer = await pool.read(source, slots_read(QUERY))
        assert time.monotonic() - started < 0.7  # its own call, not the watch's plus its own
        assert not isinstance(answer, Exception) and len(answer.value.slots) == 1
        assert not isinstance(await background, Exception)
        # While clients fill the bulkhead, a background call is not made at all.
        shop.calls.clear()
        request = asyncio.create_task(pool.read(source, slots_read(QUERY)))
        await asyncio.sleep(0.05)
        busy = await pool.read(source, slots_read(QUERY), gate=_free)
        assert isinstance(busy, SourceBusy) and len(shop.calls) == 1
        await request


async def test_only_requests_that_found_it_full_report_their_wait_even_cut_short() -> None:
    waits: list[float] = []
    bulkhead = Bulkhead(1, waits.append)
    async with bulkhead.request():
        pass
    assert waits == []  # a free slot: no wait

    release = asyncio.Event()

    async def hold() -> None:
        async with bulkhead.request():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)

    async def waiter() -> None:
        async with bulkhead.request():
            pass

    second = asyncio.create_task(waiter())
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(holder, second)
    assert len(waits) == 1 and waits[0] >= 0.04

    # A wait given up (the call's deadline) is reported too, and frees nothing it never had.
    release.clear()
    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.03), bulkhead.request():
            pass
    assert len(waits) == 2 and waits[1] >= 0.02
    release.set()
    await holder
    async with asyncio.timeout(0.1), bulkhead.request():
        pass  # the slot is free again: nothing leaked
    assert len(waits) == 2
