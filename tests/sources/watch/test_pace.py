"""A live source's pace: turns in order, at most its calls a minute, halved for an
hour by a 429."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from sources.base import SourceConfig, SourceContext
from sources.records import SourceProtocol
from sources.rest_json.options import RestJsonOptions
from sources.watch import Pace
from tests.sources.watch.fakes import Shop


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def shop(calls_per_minute: float) -> Shop:
    config = SourceConfig(
        id="shop",
        protocol=SourceProtocol.REST_JSON,
        url="http://shop.test/",
        options=RestJsonOptions(watch_calls_per_minute=calls_per_minute),
    )
    return Shop(config, SourceContext(None, logging.getLogger("shop")))  # type: ignore[arg-type]


def test_a_429_halves_the_pace_for_an_hour_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = Ticks()
    pace = Pace("shop", clock=ticks)
    asyncio.run(pace.turn(shop(30)))
    assert pace.interval_s == 2.0
    with caplog.at_level(logging.WARNING, logger="passerelle.watch"):
        pace.rate_limited()
    assert pace.interval_s == 4.0
    [line] = caplog.messages
    assert "shop answered 429" in line and "15 times a minute for an hour" in line
    pace.rate_limited()
    assert pace.interval_s == 8.0
    ticks.now += 3599
    assert pace.interval_s == 8.0
    ticks.now += 2
    assert pace.interval_s == 2.0


async def test_turns_go_in_the_order_asked_at_the_source_s_pace() -> None:
    pace = Pace("shop")
    source = shop(600)  # one call every 0.1 s
    order: list[str] = []

    async def group(name: str) -> None:
        for _ in range(3):
            await pace.turn(source)
            order.append(name)
            await asyncio.sleep(0)  # the call it made

    started = time.monotonic()
    await asyncio.gather(group("a"), group("b"))
    elapsed = time.monotonic() - started
    # Six turns, shared in turn, the first at once: five intervals.
    assert order == ["a", "b", "a", "b", "a", "b"]
    assert 0.45 <= elapsed < 1.0
    assert pace.calls == 6
