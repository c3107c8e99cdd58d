"""Refused requests in the log: once per source and problem, never the upstream's echo."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from sources.base import SourceConfig
from sources.pool.fanout import SourcePool
from sources.pool.reads import slots_read
from sources.problems import ProblemBook, ProblemCode
from sources.records import SlotQuery, SourceProtocol
from tests.conftest import serve
from tests.sources.transport.test_retry import Probe

NEAR = "45.50|-73.56|25|km"


def echoing_refusal() -> web.Application:
    """A server refusing every search, its diagnostics echoing the value refused."""

    async def handler(request: web.Request) -> web.Response:
        said = f"Unknown search parameter value: near={request.query['near']}"
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-supported", "diagnostics": said}],
        }
        return web.json_response(outcome, status=400)

    app = web.Application()
    app.router.add_get("/", handler)
    return app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_ten_refusals_log_one_line_without_the_clients_location(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(echoing_refusal()) as server:
        pool = SourcePool(session, lambda config, context: Probe(config, context))
        url = str(server.make_url("/").with_query(near=NEAR))
        await pool.sync([SourceConfig(id="fhir", protocol=SourceProtocol.FHIR_R4, url=url)])
        now = datetime.now(UTC)
        query = SlotQuery(now, now, limit=1)
        with caplog.at_level(logging.DEBUG):
            for _ in range(10):
                fan = await pool.fan_out(pool.enabled, lambda s: slots_read(query))
                assert len(fan.errors) == 1
        [problem] = next(v for v in pool.views() if v.id == "fhir").problems
    await pool.aclose()
    ours = [r for r in caplog.records if r.name.startswith("passerelle")]
    [refusal] = [r for r in ours if "refused" in r.getMessage()]
    assert refusal.levelno == logging.WARNING
    assert not [r for r in ours if "45.5" in r.getMessage() or "73.56" in r.getMessage()]
    # The operator still reads the upstream's words, in the source's problems.
    assert problem.count == 10
    assert problem.diagnostics == f"Unknown search parameter value: near={NEAR}"


def test_a_problem_is_news_again_once_its_window_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    book = ProblemBook(ttl_s=600)
    news = []
    for _ in range(3):  # every 5 minutes: still seen, but news only every 10
        news.append(book.note(ProblemCode.REQUEST_REFUSED, "refused"))
        news.append(book.note(ProblemCode.FHIR_UNSORTED, "unsorted"))
        clock[0] += 301
    assert news == [True, True, False, False, True, True]


def test_a_problem_counting_records_keeps_the_largest_count_seen_in_its_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each search that serves same-time slots as one says how many: the same slots seen
    # by every request must not add up, and a smaller search must not hide a larger one.
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    book = ProblemBook(ttl_s=600)
    for folded in (2, 5, 5, 1):
        book.note(ProblemCode.SAME_TIME_SLOTS, "served as one", count=folded, largest=True)
    [problem] = book.current()
    assert problem.count == 5
    clock[0] += 601
    book.note(ProblemCode.SAME_TIME_SLOTS, "served as one", count=1, largest=True)
    [problem] = book.current()
    assert problem.count == 1
