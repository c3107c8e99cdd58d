"""``/_stats`` counts every request but its own, and times the recent ones on demand."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from examples import request_stats
from examples.faults import Faults
from examples.faults import install as install_faults
from tests.conftest import serve


def _app(
    faults: Faults | None = None, recent_max: int = request_stats.RECENT_MAX
) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    request_stats.install(app, recent_max=recent_max)
    app.router.add_get("/ok", ok)
    install_faults(app, faults or Faults())
    return app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def _get(session: aiohttp.ClientSession, url: object) -> tuple[int, Any]:
    async with session.get(str(url)) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def test_plain_stats_answer_only_the_count(session: aiohttp.ClientSession) -> None:
    async with serve(_app()) as server:
        await _get(session, server.make_url("/ok"))
        await _get(session, server.make_url("/nope"))
        for _ in range(2):
            assert await _get(session, server.make_url("/_stats")) == (200, {"requests": 2})


async def test_since_lists_the_requests_started_then_with_path_status_and_time(
    session: aiohttp.ClientSession,
) -> None:
    async with serve(_app()) as server:
        await _get(session, server.make_url("/ok?early=1"))
        since = time.time()
        await _get(session, server.make_url("/ok?a=1&b=2"))
        await _get(session, server.make_url("/nope"))
        status, body = await _get(session, server.make_url("/_stats").with_query(since=since))
    assert status == 200 and body["requests"] == 3
    listed = body["recent"]
    assert [(r["path"], r["query"], r["status"]) for r in listed] == [
        ("/ok", "a=1&b=2", 200),
        ("/nope", "", 404),
    ]
    assert all(since <= r["start"] <= time.time() and r["ms"] >= 0 for r in listed)


async def test_service_time_includes_injected_latency(session: aiohttp.ClientSession) -> None:
    async with serve(_app(Faults(latency_s=0.05))) as server:
        since = time.time()
        await _get(session, server.make_url("/ok"))
        _, body = await _get(session, server.make_url("/_stats").with_query(since=since))
    [served] = body["recent"]
    assert 50 <= served["ms"] < 1000


async def test_the_ring_keeps_only_the_most_recent(session: aiohttp.ClientSession) -> None:
    async with serve(_app(recent_max=2)) as server:
        for i in range(4):
            await _get(session, server.make_url(f"/ok?i={i}"))
        _, body = await _get(session, server.make_url("/_stats").with_query(since=0))
    assert body["requests"] == 4
    assert [r["query"] for r in body["recent"]] == ["i=2", "i=3"]


async def test_a_since_that_is_not_a_time_is_refused(session: aiohttp.ClientSession) -> None:
    async with serve(_app()) as server:
        async with session.get(server.make_url("/_stats").with_query(since="soon")) as response:
            assert response.status == 400
            assert "since" in await response.text()
