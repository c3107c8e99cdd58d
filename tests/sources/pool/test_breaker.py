"""The circuit breaker: a failing source is left alone for a while, then probed."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web

from schema.error_codes import ErrorCode, source_code
from sources.base import SourceConfig, SourceContext
from sources.errors import SourceBadResponse, SourceNotReady, SourceRefusedRequest
from sources.pool.breaker import SourceBreakers
from sources.pool.fanout import SourcePool
from sources.pool.reads import slots_read
from sources.records import (
    ProblemSeverity,
    SlotQuery,
    SlotResult,
    SourceProtocol,
    SourceStatus,
)
from tests.conftest import serve
from tests.sources.transport.test_retry import Probe, upstream

if TYPE_CHECKING:
    from sources.pool import SourceView


def views(pool: SourcePool) -> dict[str, SourceView]:
    return {v.id: v for v in pool.views()}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_the_circuit_opens_after_failures_then_half_opens_and_closes(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SourceBreakers, "THRESHOLD", 2)
    monkeypatch.setattr(SourceBreakers, "TTL_S", 1.0)  # long enough for a loaded machine
    # 401 is not retried: one upstream request per call. Four failures, then healthy.
    app, seen = upstream(*[(401, {})] * 4)
    async with serve(app) as server:
        pool = SourcePool(session, lambda config, context: Probe(config, context))
        config = SourceConfig(
            id="p", protocol=SourceProtocol.REST_JSON, url=str(server.make_url("/"))
        )
        await pool.sync([config])
        now = datetime.now(UTC)
        query = SlotQuery(now, now, limit=1)

        async def call() -> list[str]:
            fan = await pool.fan_out(pool.enabled, lambda s: slots_read(query))
            return [e.message for e in fan.errors]

        assert await call() and await call()  # two failures: the circuit opens
        assert views(pool)["p"].status is SourceStatus.DOWN
        refused = await call()
        assert "circuit open" in refused[0]
        assert len(seen) == 2  # refused without calling the upstream
        await asyncio.sleep(1.05)
        assert views(pool)["p"].status is SourceStatus.DEGRADED
        assert await call()  # the probe fails: open again
        assert "circuit open" in (await call())[0]
        assert len(seen) == 3
        await asyncio.sleep(1.05)
        assert await call()  # probe 2 fails (4th failure upstream)
        await asyncio.sleep(1.05)
        assert await call() == []  # probe 3 succeeds: closed
        assert pool.breakers.status("p") is None
        # Closed, yet recent calls failed: the source reads DEGRADED until they age out.
        assert views(pool)["p"].status is SourceStatus.DEGRADED
        assert len(seen) == 5


async def test_a_bulk_feed_asked_during_its_first_load_never_opens_its_circuit(
    session: aiohttp.ClientSession,
) -> None:
    class Loading(Probe):
        """A bulk feed whose first load has not finished: it refuses every search."""

        loaded = False

        async def search_slots(self, query: SlotQuery) -> SlotResult:
            if not self.loaded:
                raise SourceNotReady(self.id, "first load of the bulk feed in progress")
            return SlotResult((), True, 0)

    adapters: list[Loading] = []

    def build(config: SourceConfig, context: SourceContext) -> Loading:
        adapters.append(Loading(config, context))
        return adapters[-1]

    pool = SourcePool(session, build)
    url = "http://127.0.0.1:9/$bulk-publish"
    config = SourceConfig(id="feed", protocol=SourceProtocol.SMART_SCHEDULING_LINKS, url=url)
    await pool.sync([config])
    now = datetime.now(UTC)
    query = SlotQuery(now, now, limit=1)

    async def call() -> list[str]:
        fan = await pool.fan_out(pool.enabled, lambda s: slots_read(query))
        return [e.message for e in fan.errors]

    for _ in range(2 * SourceBreakers.THRESHOLD):
        assert await call() == ["first load of the bulk feed in progress"]
    assert pool.breakers.status("feed") is None  # never opened: our copy, not the upstream
    adapters[-1].loaded = True
    assert await call() == []  # answers as soon as it is loaded, not 30 s later
    await pool.aclose()


def refusing(outcome: object, status: int = 400) -> web.Application:
    """A FHIR server refusing every search with an OperationOutcome (``near`` unsupported)."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(outcome, status=status)

    app = web.Application()
    app.router.add_get("/", handler)
    return app


NEAR_REFUSED = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "not-supported",
            # Control characters and a bidi override an upstream could slip into a log line.
            "diagnostics": "Unknown search parameter: near\x1b[31m\u202e" + "x" * 600,
        }
    ],
}


@pytest.mark.parametrize("status", [400, 422])
async def test_refused_requests_never_open_the_breaker_and_their_diagnostics_reach_problems(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    async with serve(refusing(NEAR_REFUSED, status)) as server:
        pool = SourcePool(session, lambda config, context: Probe(config, context))
        url = str(server.make_url("/"))
        await pool.sync([SourceConfig(id="fhir", protocol=SourceProtocol.FHIR_R4, url=url)])
        now = datetime.now(UTC)
        query = SlotQuery(now, now, limit=1)
        for _ in range(SourceBreakers.THRESHOLD):
            fan = await pool.fan_out(pool.enabled, lambda s: slots_read(query))
            [error] = fan.errors
            assert isinstance(error, SourceRefusedRequest)
            assert source_code(error) is ErrorCode.SOURCE_BAD_RESPONSE
            assert "near" not in error.message  # the upstream's words are for the operator
        assert pool.breakers.status("fhir") is None
        view = views(pool)["fhir"]
        assert view.status is SourceStatus.UP  # it answers; it does not support `near`
        [problem] = view.problems
        assert problem.code == "REQUEST_REFUSED" and problem.count == SourceBreakers.THRESHOLD
        assert problem.severity is ProblemSeverity.WARNING
        assert problem.diagnostics is not None
        assert problem.diagnostics.startswith("Unknown search parameter: near")
        assert len(problem.diagnostics) <= 300
        assert not any(unicodedata.category(c).startswith("C") for c in problem.diagnostics)
    logged = [r.getMessage() for r in caplog.records if r.name == "passerelle.sources.fhir"]
    # Once, and not the upstream's words: they may echo what the client asked.
    [line] = logged
    assert "REQUEST_REFUSED" in line and "Unknown search parameter" not in line
    await pool.aclose()


@pytest.mark.parametrize(
    "body",
    [{"error": "bad"}, {"resourceType": "Bundle"}, "not an outcome"],
)
async def test_a_400_without_an_operation_outcome_still_counts_against_the_source(
    session: aiohttp.ClientSession, body: object
) -> None:
    async with serve(refusing(body)) as server:
        pool = SourcePool(session, lambda config, context: Probe(config, context))
        url = str(server.make_url("/"))
        await pool.sync([SourceConfig(id="rest", protocol=SourceProtocol.REST_JSON, url=url)])
        now = datetime.now(UTC)
        query = SlotQuery(now, now, limit=1)
        for _ in range(SourceBreakers.THRESHOLD):
            fan = await pool.fan_out(pool.enabled, lambda s: slots_read(query))
            [error] = fan.errors
            assert type(error) is SourceBadResponse
        assert pool.breakers.status("rest") is SourceStatus.DOWN
        assert [p.code for p in views(pool)["rest"].problems] == ["BREAKER_OPEN"]
    await pool.aclose()
