"""One health model: the status a client sees agrees with the circuit breaker, a source
is not UP before it answers, and the README's promise holds with the real settings."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from sources.base import Source, SourceConfig
from sources.errors import SourceUnavailable
from sources.pool import breaker as breaker_module
from sources.pool.breaker import SourceBreakers
from sources.pool.fanout import SourcePool, SourceView
from sources.pool.health import WINDOW, SourceHealth, source_status
from sources.pool.reads import slots_read
from sources.records import (
    ClinicQuery,
    ClinicRecord,
    PhysicianQuery,
    PhysicianRecord,
    SlotQuery,
    SlotResult,
    SourceProtocol,
    SourceStatus,
)

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
POOL_README = (Path(__file__).resolve().parents[3] / "sources" / "pool" / "README.md").read_text(
    encoding="utf-8"
)
NOW = datetime(2026, 11, 16, 12, tzinfo=UTC)
QUERY = SlotQuery(NOW, NOW, limit=1)


class Switch(Source):
    """A source that fails while ``failing`` is set; counts the calls that reach it."""

    protocol = SourceProtocol.REST_JSON
    failing = False
    calls = 0

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        self.calls += 1
        if self.failing:
            raise SourceUnavailable(self.id, "upstream answered HTTP 503")
        return SlotResult((), True, 0)

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        return []

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        return []


class Clock:
    """Wall time for the breaker (purgatory reads ``time.time()``), moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    fake = SimpleNamespace(time=clock.time)
    monkeypatch.setattr("purgatory.domain.model.time", fake)
    monkeypatch.setattr(breaker_module, "time", fake)
    return clock


@pytest.fixture
async def pool() -> AsyncIterator[tuple[SourcePool, Switch]]:
    async with aiohttp.ClientSession() as session:
        pool = SourcePool(session, lambda config, context: Switch(config, context))
        config = SourceConfig(id="s", protocol=SourceProtocol.REST_JSON, url="http://s.test/")
        await pool.sync([config])
        source = pool.enabled[0]
        assert isinstance(source, Switch)
        yield pool, source
        await pool.aclose()


async def call(pool: SourcePool) -> list[str]:
    fan = await pool.fan_out(pool.enabled, lambda s: slots_read(QUERY))
    return [e.message for e in fan.errors]


def view(pool: SourcePool) -> SourceView:
    return next(v for v in pool.views() if v.id == "s")


async def test_a_source_never_called_is_degraded_until_it_answers(
    pool: tuple[SourcePool, Switch],
) -> None:
    sources, _ = pool
    before = view(sources)
    assert (before.status, before.last_success_at) == (SourceStatus.DEGRADED, None)
    assert await call(sources) == []
    after = view(sources)
    assert after.status is SourceStatus.UP and after.last_success_at is not None


class Probed(Switch):
    """A source whose own probe (a FHIR server's capabilities) answered, or not."""

    answered_at: datetime | None = None

    @property
    def probed_at(self) -> datetime | None:
        return self.answered_at


async def test_a_source_whose_probe_answered_is_up_before_any_call() -> None:
    async with aiohttp.ClientSession() as session:
        sources = SourcePool(session, lambda config, context: Probed(config, context))
        config = SourceConfig(id="s", protocol=SourceProtocol.REST_JSON, url="http://s.test/")
        await sources.sync([config])
        source = sources.enabled[0]
        assert isinstance(source, Probed)
        try:
            # Its last probe has not answered: not UP by default.
            assert (view(sources).status, view(sources).last_success_at) == (
                SourceStatus.DEGRADED,
                None,
            )
            source.answered_at = NOW
            assert (view(sources).status, view(sources).last_success_at) == (SourceStatus.UP, NOW)
            # A call that fails says more than the probe before it.
            source.failing = True
            assert await call(sources)
            assert view(sources).status is SourceStatus.DEGRADED
        finally:
            await sources.aclose()


def test_the_readme_states_the_breaker_settings() -> None:
    threshold, ttl = SourceBreakers.THRESHOLD, SourceBreakers.TTL_S
    short = " ".join(README.split())
    assert f"after {threshold} failures in a row a source's circuit opens for {ttl:g} s" in short
    assert "`DOWN` exactly while its circuit is open" in short
    text = " ".join(POOL_README.split())  # the details, beside the code
    assert f"After {threshold} failures in a row a source's circuit opens" in text
    assert f"it is not called for {ttl:g} s and shows `DOWN`" in text
    assert f"one of its last {WINDOW} calls failed" in text
    assert re.search(r"not called since start-up is `DEGRADED` with\s+`lastSuccessAt: null`", text)


async def test_the_circuit_opens_after_exactly_threshold_failures_and_the_status_follows(
    pool: tuple[SourcePool, Switch], clock: Clock
) -> None:
    sources, source = pool
    threshold, ttl = SourceBreakers.THRESHOLD, SourceBreakers.TTL_S
    assert await call(sources) == []
    source.failing = True
    for failures in range(1, threshold):
        assert await call(sources)
        # Failing, but its circuit is closed: still called, never DOWN before the breaker.
        assert view(sources).status is SourceStatus.DEGRADED, failures
    assert source.calls == threshold
    assert await call(sources)  # the THRESHOLD-th failure in a row opens the circuit
    assert view(sources).status is SourceStatus.DOWN
    assert "circuit open" in (await call(sources))[0]
    assert source.calls == threshold + 1  # refused without calling the upstream

    clock.now += ttl - 1
    assert view(sources).status is SourceStatus.DOWN
    assert "circuit open" in (await call(sources))[0]
    clock.now += 2
    assert view(sources).status is SourceStatus.DEGRADED  # half-open: the next call probes

    source.failing = False
    assert await call(sources) == []  # the probe answers: the circuit closes
    assert sources.breakers.status("s") is None
    # Closed, with failures among its last calls: DEGRADED until they age out, then UP.
    for _ in range(WINDOW - 2):
        assert view(sources).status is SourceStatus.DEGRADED
        assert await call(sources) == []
    assert view(sources).status is SourceStatus.DEGRADED
    assert await call(sources) == []
    assert view(sources).status is SourceStatus.UP


async def test_a_success_between_failures_starts_the_count_again(
    pool: tuple[SourcePool, Switch],
) -> None:
    sources, source = pool
    for _ in range(3):
        source.failing = True
        for _ in range(SourceBreakers.THRESHOLD - 1):
            assert await call(sources)
        source.failing = False
        assert await call(sources) == []
        assert view(sources).status is SourceStatus.DEGRADED  # recent failures, never DOWN
    assert sources.breakers.status("s") is None


@pytest.mark.parametrize(
    ("enabled", "circuit", "hint", "outcomes", "expected"),
    [
        (False, SourceStatus.DOWN, None, [False], SourceStatus.DISABLED),
        (True, SourceStatus.DOWN, SourceStatus.UP, [True], SourceStatus.DOWN),
        (True, SourceStatus.DEGRADED, None, [True], SourceStatus.DEGRADED),
        (True, None, SourceStatus.DEGRADED, [True], SourceStatus.DEGRADED),
        (True, None, SourceStatus.UP, [], SourceStatus.UP),  # a loaded bulk feed
        (True, None, None, [], SourceStatus.DEGRADED),  # never called
        (True, None, None, [True, False, True], SourceStatus.DEGRADED),
        (True, None, None, [False] * 4, SourceStatus.DEGRADED),  # DOWN is the breaker's
        (True, None, None, [True, True], SourceStatus.UP),
    ],
)
def test_the_status_rule(
    enabled: bool,
    circuit: SourceStatus | None,
    hint: SourceStatus | None,
    outcomes: list[bool],
    expected: SourceStatus,
) -> None:
    health = SourceHealth()
    for ok in outcomes:
        health.record(ok, 1.0)
    assert source_status(enabled=enabled, circuit=circuit, hint=hint, health=health) is expected
