"""The demo systems' fault knobs: parsing, and each fault as a client sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from examples.faults import Faults, install, parse_demo_faults, parse_faults
from tests.conftest import serve


def test_specs_parse_and_merge_per_source() -> None:
    faults = parse_demo_faults(
        ["demo-rest=latency:50ms,errors:0.2", "demo-fhir=hang", "demo-rest=jitter:1s"],
        ["demo-fhir", "demo-rest", "demo-ssl"],
    )
    assert faults == {
        "demo-rest": Faults(latency_s=0.05, jitter_s=1.0, errors=0.2),
        "demo-fhir": Faults(hang=True),
    }
    assert parse_faults(faults["demo-rest"].to_spec()) == faults["demo-rest"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("latency:50", "latency needs a duration such as 50ms or 2s"),
        ("errors:1.5", "errors needs a fraction between 0 and 1"),
        ("malformed:x", "malformed needs a fraction"),
        ("ratelimit:0", "ratelimit needs requests per second above 0"),
        ("slow", "unknown fault 'slow'"),
    ],
)
def test_bad_specs_are_refused_with_what_to_fix(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_faults(spec)


@pytest.mark.parametrize(
    ("value", "message"),
    [("demo-rest", "expected SOURCE=SPEC"), ("demo-x=hang", "unknown demo source 'demo-x'")],
)
def test_bad_demo_fault_options_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_demo_faults([value], ["demo-rest"])


async def _app(faults: Faults) -> web.Application:
    count = 0

    @web.middleware
    async def counting(request: web.Request, handler: object) -> web.StreamResponse:
        nonlocal count
        if request.path != "/_stats":
            count += 1
        return await handler(request)  # type: ignore[operator]

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": count})

    app = web.Application(middlewares=[counting])
    app.router.add_get("/", ok)
    app.router.add_get("/_stats", stats)
    install(app, faults, seed=7)
    return app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def _statuses(session: aiohttp.ClientSession, url: str, n: int) -> list[int]:
    out = []
    for _ in range(n):
        async with session.get(url) as response:
            await response.read()
            out.append(response.status)
    return out


async def test_errors_answer_that_share_with_503(session: aiohttp.ClientSession) -> None:
    async with serve(await _app(Faults(errors=0.5))) as server:
        statuses = await _statuses(session, str(server.make_url("/")), 200)
        async with session.get(server.make_url("/_stats")) as response:
            assert (await response.json())["requests"] == 200
    assert set(statuses) == {200, 503}
    assert 60 < statuses.count(503) < 140


async def test_malformed_answers_are_not_json(session: aiohttp.ClientSession) -> None:
    async with serve(await _app(Faults(malformed=1.0))) as server:
        async with session.get(server.make_url("/")) as response:
            assert response.status == 200
            with pytest.raises(ValueError):
                await response.json()


async def test_latency_delays_every_answer(session: aiohttp.ClientSession) -> None:
    async with serve(await _app(Faults(latency_s=0.2))) as server:
        started = time.perf_counter()
        await _statuses(session, str(server.make_url("/")), 2)
        assert time.perf_counter() - started >= 0.4


async def test_ratelimit_answers_429_with_retry_after(session: aiohttp.ClientSession) -> None:
    async with serve(await _app(Faults(ratelimit_rps=5))) as server:
        statuses = await _statuses(session, str(server.make_url("/")), 20)
        async with session.get(server.make_url("/")) as response:
            retry_after = response.headers.get("Retry-After")
    assert statuses.count(200) <= 7 and statuses.count(429) >= 13
    assert retry_after is not None and int(retry_after) >= 1


async def test_hang_never_answers_but_stats_still_do(session: aiohttp.ClientSession) -> None:
    async with serve(await _app(Faults(hang=True))) as server:
        with pytest.raises(asyncio.TimeoutError):
            async with session.get(server.make_url("/"), timeout=aiohttp.ClientTimeout(total=0.3)):
                pass
        async with session.get(server.make_url("/_stats")) as response:
            assert response.status == 200
