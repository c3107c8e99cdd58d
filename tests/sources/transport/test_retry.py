"""Retries: retryable failures are tried again within the deadline, others are not."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from sources.base import Source, SourceConfig
from sources.errors import SourceUnavailable
from sources.pool.fanout import SourcePool
from sources.pool.reads import slots_read
from sources.records import (
    ClinicQuery,
    ClinicRecord,
    PhysicianQuery,
    PhysicianRecord,
    SlotQuery,
    SlotResult,
    SourceProtocol,
)
from sources.transport import failures, http
from tests.conftest import serve


class Probe(Source):
    """A source whose every search is one GET of its URL."""

    protocol = SourceProtocol.REST_JSON

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        await http.request_json(
            self.session, self.id, "GET", self.config.url, timeout_s=self.config.timeout_s
        )
        return SlotResult((), True, 0)

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        return []

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        return []


def upstream(*answers: tuple[int, dict[str, str]]) -> tuple[web.Application, list[float]]:
    """An app answering ``answers`` in turn (then 200), recording when each request came."""
    seen: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(time.monotonic())
        if len(seen) <= len(answers):
            status, headers = answers[len(seen) - 1]
            return web.json_response({"error": status}, status=status, headers=headers)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/", handler)
    return app, seen


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def ask(session: aiohttp.ClientSession, url: str, timeout_s: float = 2.0) -> object:
    pool = SourcePool(session, lambda config, context: Probe(config, context))
    await pool.sync(
        [SourceConfig(id="probe", protocol=SourceProtocol.REST_JSON, url=url, timeout_s=timeout_s)]
    )
    now = datetime.now(UTC)
    query = SlotQuery(now, now, limit=1)
    fan = await pool.fan_out(pool.enabled, lambda s: slots_read(query))
    return fan.errors[0] if fan.errors else fan.results["probe"]


async def test_a_503_then_success_is_retried_and_answers(session: aiohttp.ClientSession) -> None:
    app, seen = upstream((503, {}), (502, {}))
    async with serve(app) as server:
        result = await ask(session, str(server.make_url("/")))
    assert isinstance(result, SlotResult)
    assert len(seen) == 3


async def test_retry_after_is_honoured_when_it_fits(session: aiohttp.ClientSession) -> None:
    app, seen = upstream((429, {"Retry-After": "1"}))
    async with serve(app) as server:
        result = await ask(session, str(server.make_url("/")), timeout_s=3.0)
    assert isinstance(result, SlotResult)
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.95


async def test_retry_after_beyond_the_deadline_is_not_waited_for(
    session: aiohttp.ClientSession,
) -> None:
    app, seen = upstream((503, {"Retry-After": "30"}))
    async with serve(app) as server:
        started = time.monotonic()
        error = await ask(session, str(server.make_url("/")), timeout_s=2.0)
    assert isinstance(error, SourceUnavailable)
    assert len(seen) == 1 and time.monotonic() - started < 1.0


async def test_refused_credentials_are_not_retried(session: aiohttp.ClientSession) -> None:
    app, seen = upstream((401, {}), (401, {}))
    async with serve(app) as server:
        error = await ask(session, str(server.make_url("/")))
    assert isinstance(error, SourceUnavailable)
    assert len(seen) == 1


async def test_three_attempts_at_most(session: aiohttp.ClientSession) -> None:
    app, seen = upstream(*[(500, {})] * 10)
    async with serve(app) as server:
        error = await ask(session, str(server.make_url("/")))
    assert isinstance(error, SourceUnavailable)
    assert len(seen) == 3


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert failures.retry_after("7") == 7.0
    assert failures.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert failures.retry_after("soon") is None
    assert failures.retry_after(None) is None
