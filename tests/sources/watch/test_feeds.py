"""Slot alerts from real adapters over loopback: a SMART Scheduling Links publisher
republishes its feed, and only what changed reaches the subscribers it concerns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from resolvers.context import RequestContext
from schema import schema
from sources.base import SourceConfig
from sources.pool import SourcePool
from sources.records import SourceProtocol
from sources.smart_scheduling.adapter import SmartSchedulingSource
from sources.timeutil import MONTREAL
from sources.watch import SlotWatch
from tests.conftest import serve
from tests.sources.smart_scheduling.test_adapter import (
    MANIFEST,
    Publisher,
    at,
    location,
    schedule,
    slot,
)
from tests.sources.watch.fakes import until

CLOCK = datetime(2031, 3, 9, 8, 0, tzinfo=MONTREAL)  # the day before the feed's slots
ALERTS = """subscription($filter: SlotFilter!) {
  slotAlerts(filter: $filter) { opened { start clinic { name } } goneIds failingSources { code } }
}"""


@pytest.fixture
async def publisher(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Publisher]:
    # The feed is polled every 50 ms rather than every minute.
    monkeypatch.setattr(SmartSchedulingSource, "MIN_POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(SmartSchedulingSource, "DEFAULT_POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(SmartSchedulingSource, "MIN_FILE_INTERVAL_S", 0.0)
    pub = Publisher()
    app = web.Application()
    app.router.add_get("/{tail:.*}", pub.handle)
    async with serve(app) as server:
        pub.base = str(server.make_url("")).rstrip("/")
        yield pub


def feed(publisher: Publisher, *slots: dict[str, Any]) -> None:
    far = location("loc-q", "CMS Limoilou", "G1R 2L3")
    far["position"] = {"latitude": 46.829, "longitude": -71.225}
    publisher.put("/files/locations.ndjson", location("loc-m"), far)
    publisher.put(
        "/files/schedules.ndjson",
        schedule("sch-m", "Location/loc-m"),
        schedule("sch-q", "Location/loc-q"),
    )
    publisher.put("/files/slots.ndjson", *slots)
    publisher.publish(
        ("Location", "/files/locations.ndjson"),
        ("Schedule", "/files/schedules.ndjson"),
        ("Slot", "/files/slots.ndjson"),
    )


async def test_three_slots_republished_by_a_bulk_feed_reach_its_subscriber_within_2_s(
    publisher: Publisher,
) -> None:
    before = [slot("s1", "sch-m", at(10, 9)), slot("q1", "sch-q", at(10, 9))]
    feed(publisher, *before)
    async with aiohttp.ClientSession() as session:
        pool = SourcePool(session)
        config = SourceConfig(
            id="ssl",
            protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
            url=publisher.base + MANIFEST,
        )
        await pool.sync([config])
        await pool.wait_ready(5)
        watch = SlotWatch(pool, lambda: CLOCK, sync_s=0.02)
        context = RequestContext(pool=pool, now=CLOCK, watch=watch)
        plateau = {"near": {"latitude": 45.5201, "longitude": -73.5812}, "radiusKm": 3}
        limoilou = {"near": {"latitude": 46.8301, "longitude": -71.2262}, "radiusKm": 3}
        heard: dict[str, list[tuple[float, Any]]] = {"plateau": [], "limoilou": []}

        async def listen(name: str, where: dict[str, Any]) -> None:
            stream = await schema.subscribe(ALERTS, {"filter": where}, context_value=context)
            async for result in stream:
                heard[name].append((time.monotonic(), result))

        tasks = [
            asyncio.create_task(listen(n, w))
            for n, w in (("plateau", plateau), ("limoilou", limoilou))
        ]
        await until(
            lambda: len(watch.groups) == 2 and all(g.read_once for g in watch.groups.values())
        )
        new = [slot(f"n{i}", "sch-m", at(11, 9 + i)) for i in range(3)]
        busy = slot("b1", "sch-m", at(11, 14), status="busy")
        published = time.monotonic()
        feed(publisher, *before, *new, busy)
        await until(lambda: heard["plateau"])
        await asyncio.sleep(0.2)  # anything else would have come by now
        [(when, result)] = heard["plateau"]
        assert when - published < 2.0
        assert result.errors is None
        alert = result.data["slotAlerts"]
        assert [s["start"] for s in alert["opened"]] == [
            "2031-03-11T09:00:00-04:00",
            "2031-03-11T10:00:00-04:00",
            "2031-03-11T11:00:00-04:00",
        ]
        assert {s["clinic"]["name"] for s in alert["opened"]} == {"Clinique du Plateau"}
        assert alert["goneIds"] == [] and alert["failingSources"] == []
        assert heard["limoilou"] == []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await watch.aclose()
        await pool.aclose()
