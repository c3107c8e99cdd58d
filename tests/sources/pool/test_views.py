"""The sources' views are kept until a source changes, and every change shows in the
very next take: a call's outcome, a problem noted (by the pool or inside an adapter,
with no call), the adapter's own status, its circuit, the registry; what changes with
time alone shows within ``MAX_AGE_S``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import pytest

from resolvers.context import RequestContext
from schema import schema
from sources.base import SourceConfig
from sources.errors import SourceRefusedRequest
from sources.pool import breaker as breaker_module
from sources.pool import views as views_module
from sources.pool.breaker import SourceBreakers
from sources.pool.fanout import SourcePool
from sources.problems import ProblemBook, ProblemCode
from sources.records import (
    ProblemSeverity,
    SourceProblem,
    SourceProtocol,
    SourceStatus,
)
from tests.sources.pool.test_health import Clock, Switch, call

SOURCES = "{ sources { id status problems { code count } } }"


class Noting(Switch):
    """A source with a problem book of its own, noted without any call, and a status
    hint set by hand; counts how often its problems are worked out."""

    hint: SourceStatus | None = None
    worked_out = 0
    silent: tuple[SourceProblem, ...] = ()

    def __init__(self, config: SourceConfig, context: object) -> None:
        super().__init__(config, context)  # type: ignore[arg-type]
        self.book = ProblemBook()

    def status_hint(self) -> SourceStatus | None:
        return self.hint

    @property
    def problems(self) -> tuple[SourceProblem, ...]:
        self.worked_out += 1
        return (*self.book.current(), *self.silent)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    fake = SimpleNamespace(time=clock.time)
    monkeypatch.setattr("purgatory.domain.model.time", fake)
    monkeypatch.setattr(breaker_module, "time", fake)
    return clock


@pytest.fixture
async def pool() -> AsyncIterator[tuple[SourcePool, Noting]]:
    async with aiohttp.ClientSession() as session:
        pool = SourcePool(session, lambda config, context: Noting(config, context))
        config = SourceConfig(id="s", protocol=SourceProtocol.REST_JSON, url="http://s.test/")
        await pool.sync([config])
        source = pool.enabled[0]
        assert isinstance(source, Noting)
        yield pool, source
        await pool.aclose()


def codes(pool: SourcePool) -> list[str]:
    (view,) = pool.views()
    return [p.code for p in view.problems]


def status(pool: SourcePool) -> SourceStatus:
    (view,) = pool.views()
    return view.status


async def test_views_are_kept_while_nothing_changes(pool: tuple[SourcePool, Noting]) -> None:
    sources, source = pool
    await call(sources)
    first = sources.views()
    worked_out = source.worked_out
    for _ in range(5):
        assert sources.views() == first
        assert sources.views()[0] is first[0]
        assert sources.view_map()["s"] is first[0]
        assert sources.adapter_problems(source) == ()
    assert source.worked_out == worked_out  # not worked out again
    # A list of one's own each time: a caller changing it changes nothing kept.
    first.clear()
    assert len(sources.views()) == 1


async def test_a_calls_outcome_shows_in_the_next_views(pool: tuple[SourcePool, Noting]) -> None:
    sources, source = pool
    assert status(sources) is SourceStatus.DEGRADED  # not answered yet
    await call(sources)
    (up,) = sources.views()
    assert up.status is SourceStatus.UP and up.last_success_at is not None
    source.failing = True
    assert await call(sources) == ["upstream answered HTTP 503"]
    assert status(sources) is SourceStatus.DEGRADED
    source.failing = False
    for _ in range(10):
        await call(sources)
    (again,) = sources.views()
    assert again.status is SourceStatus.UP and again.last_success_at != up.last_success_at


async def test_a_problem_noted_without_a_call_shows_in_the_next_views(
    pool: tuple[SourcePool, Noting],
) -> None:
    sources, source = pool
    await call(sources)
    assert codes(sources) == []
    # Inside the adapter, between two requests, no call made: its own book.
    source.book.note(ProblemCode.MALFORMED_RECORDS, "two slots had no start", sample="Slot/1")
    assert codes(sources) == ["MALFORMED_RECORDS"]
    assert sources.adapter_problems(source)[0].code == "MALFORMED_RECORDS"
    source.book.note(ProblemCode.MALFORMED_RECORDS, "two slots had no start", sample="Slot/2")
    (view,) = sources.views()
    assert view.problems[0].count == 2
    source.book.note(ProblemCode.FEED_NOT_LOADED, "not loaded yet")  # a LOSS
    assert status(sources) is SourceStatus.DEGRADED
    source.book.clear(ProblemCode.FEED_NOT_LOADED)
    assert status(sources) is SourceStatus.UP
    # The pool's own book: a refused request.
    sources.health("s").refused(SourceRefusedRequest("s", "refused", diagnostics="near"))
    assert codes(sources) == ["MALFORMED_RECORDS", "REQUEST_REFUSED"]


async def test_a_problem_noted_again_the_same_keeps_the_views(
    pool: tuple[SourcePool, Noting],
) -> None:
    sources, source = pool
    await call(sources)
    source.book.note(ProblemCode.SAME_TIME_SLOTS, "folded", count=3, largest=True)
    first = sources.views()
    source.book.note(ProblemCode.SAME_TIME_SLOTS, "folded", count=2, largest=True)
    assert sources.views()[0] is first[0]  # nothing shown changed
    source.book.note(ProblemCode.SAME_TIME_SLOTS, "folded", count=4, largest=True)
    assert sources.views()[0].problems[0].count == 4


async def test_the_adapters_own_status_shows_in_the_next_views(
    pool: tuple[SourcePool, Noting],
) -> None:
    sources, source = pool
    await call(sources)
    assert status(sources) is SourceStatus.UP
    source.hint = SourceStatus.DEGRADED
    assert status(sources) is SourceStatus.DEGRADED
    source.hint = None
    assert status(sources) is SourceStatus.UP


async def test_the_circuit_shows_in_the_next_views_as_it_opens_and_half_opens(
    pool: tuple[SourcePool, Noting], clock: Clock
) -> None:
    sources, source = pool
    await call(sources)
    source.failing = True
    for _ in range(SourceBreakers.THRESHOLD):
        await call(sources)
    assert status(sources) is SourceStatus.DOWN
    assert "BREAKER_OPEN" in codes(sources)
    clock.now += SourceBreakers.TTL_S + 1  # time alone: no call, no event
    assert status(sources) is SourceStatus.DEGRADED
    assert "BREAKER_HALF_OPEN" in codes(sources)


async def test_the_registry_shows_in_the_next_views(pool: tuple[SourcePool, Noting]) -> None:
    sources, source = pool
    await call(sources)
    config = SourceConfig(id="s", protocol=SourceProtocol.REST_JSON, url="http://s.test/")
    other = SourceConfig(id="t", protocol=SourceProtocol.REST_JSON, url="http://t.test/")
    await sources.sync([config, other])
    assert [v.id for v in sources.views()] == ["s", "t"]
    await sources.sync(
        [
            SourceConfig(
                id="s", protocol=SourceProtocol.REST_JSON, url="http://s.test/", enabled=False
            )
        ]
    )
    assert [(v.id, v.status) for v in sources.views()] == [("s", SourceStatus.DISABLED)]
    source.book.note(ProblemCode.FEED_NOT_LOADED, "not loaded yet")
    # The disabled adapter is not in the views: its problems are worked out as asked.
    assert [p.code for p in sources.adapter_problems(source)] == ["FEED_NOT_LOADED"]


async def test_what_changes_silently_shows_within_the_max_age(
    pool: tuple[SourcePool, Noting], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources, source = pool
    now = [1000.0]
    monkeypatch.setattr(views_module.time, "monotonic", lambda: now[0])
    await call(sources)
    assert codes(sources) == []
    # A tally the adapter keeps, changed in the background: no signal at all.
    source.silent = (SourceProblem("NO_POSITION", ProblemSeverity.WARNING, "no position"),)
    now[0] += views_module.MAX_AGE_S / 2
    assert codes(sources) == []  # kept, within the max age
    now[0] += views_module.MAX_AGE_S
    assert codes(sources) == ["NO_POSITION"]


async def test_a_change_shows_in_the_very_next_requests_answer(
    pool: tuple[SourcePool, Noting],
) -> None:
    """What a client reads: ``sources { status problems }`` of the next request."""
    sources, source = pool
    await call(sources)

    async def ask() -> object:
        result = await schema.execute(SOURCES, context_value=RequestContext(pool=sources))
        assert result.errors is None
        return result.data

    assert await ask() == {"sources": [{"id": "s", "status": "UP", "problems": []}]}
    source.book.note(ProblemCode.FEED_NOT_LOADED, "not loaded yet")
    assert await ask() == {
        "sources": [
            {"id": "s", "status": "DEGRADED", "problems": [{"code": "FEED_NOT_LOADED", "count": 1}]}
        ]
    }
    source.book.clear(ProblemCode.FEED_NOT_LOADED)
    source.failing = True
    await call(sources)
    assert await ask() == {"sources": [{"id": "s", "status": "DEGRADED", "problems": []}]}
