"""Per-source retries, breaker refusals and bulkhead waits at ``/metrics``, moved by a
scripted run against loopback upstreams: one always failing (503), one slow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from examples import demo_fhir
from examples.world import World
from sources.pool.breaker import SourceBreakers
from sources.transport.retry import ATTEMPTS
from tests.conftest import GatewayFactory, fhir_definition, serve
from tests.edge.metrics.test_metrics import NEAR, QUERY, scrape, value

SLOW_S = 0.4
WITHIN = """query Within($radius: Float!, $near: GeoPointInput) {
  slots(filter: {near: $near, radiusKm: $radius}, first: 2) { edges { node { id } } }
}"""
HITS = web.AppKey("hits", list[str])


@pytest.fixture
async def failing_server() -> AsyncIterator[TestServer]:
    """A FHIR server that is always down (503): each request is retried."""
    hits: list[str] = []

    async def down(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=503, text="down for maintenance")

    app = web.Application()
    app[HITS] = hits
    app.router.add_route("*", "/{tail:.*}", down)
    async with serve(app) as server:
        yield server


@pytest.fixture
async def slow_server(world: World) -> AsyncIterator[TestServer]:
    """The demo FHIR server, each answer held back ``SLOW_S``."""

    @web.middleware
    async def slow(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        await asyncio.sleep(SLOW_S)
        return await handler(request)

    app = demo_fhir.build_app(world)
    app.middlewares.append(slow)
    async with serve(app) as server:
        yield server


async def test_retries_and_breaker_refusals_of_a_failing_source_are_counted(
    gateway_for: GatewayFactory, failing_server: TestServer
) -> None:
    down = fhir_definition(failing_server, "down-fhir")
    async with gateway_for(down) as gw:
        _, before = await scrape(gw)
        assert value(before, "passerelle_source_retries_total", source="down-fhir") == 0
        # What the adapter asked when it started (its capabilities) was no source call.
        started = len(failing_server.app[HITS])
        first = await gw.query(QUERY, {"first": 1, "near": NEAR})
        assert {e["extensions"]["code"] for e in first["errors"]} == {"SOURCE_UNAVAILABLE"}
        _, one = await scrape(gw)
        hits = len(failing_server.app[HITS]) - started
        # Each request the call made was tried ATTEMPTS times: ATTEMPTS - 1 retries each.
        assert hits >= ATTEMPTS and hits % ATTEMPTS == 0
        assert value(one, "passerelle_source_retries_total", source="down-fhir") == hits - (
            hits // ATTEMPTS
        )
        assert value(one, "passerelle_source_breaker_refusals_total", source="down-fhir") == 0
        # Enough failures in a row to open the circuit, then calls refused at once.
        for first_n in range(2, SourceBreakers.THRESHOLD + 4):
            await gw.query(QUERY, {"first": first_n, "near": NEAR})
        _, after = await scrape(gw)
        hits_after = len(failing_server.app[HITS]) - started

    calls = value(after, "passerelle_source_calls_total", source="down-fhir")
    refused = value(after, "passerelle_source_breaker_refusals_total", source="down-fhir")
    assert value(after, "passerelle_source_breaker_state", source="down-fhir") == 2
    assert refused >= 2
    # A refused call never reached the upstream, and is not a call made.
    assert calls == SourceBreakers.THRESHOLD + 3 - refused
    assert value(after, "passerelle_source_retries_total", source="down-fhir") == hits_after - (
        hits_after // ATTEMPTS
    )


async def test_calls_that_wait_for_a_full_bulkhead_are_counted_with_their_wait(
    gateway_for: GatewayFactory, slow_server: TestServer
) -> None:
    narrow = replace(fhir_definition(slow_server, "narrow"), max_concurrency=1, timeout_s=5.0)
    async with gateway_for(narrow, cache="off") as gw:
        _, before = await scrape(gw)
        assert value(before, "passerelle_source_bulkhead_wait_seconds_count", source="narrow") == 0
        # Three different searches at once (identical ones would make one call): one
        # slot, so two of them wait their turn.
        results = await asyncio.gather(
            *(gw.query(WITHIN, {"radius": r, "near": NEAR}) for r in (20, 30, 40)),
        )
        assert all("errors" not in r for r in results), results
        _, after = await scrape(gw)

    waits = value(after, "passerelle_source_bulkhead_wait_seconds_count", source="narrow")
    waited_s = value(after, "passerelle_source_bulkhead_wait_seconds_sum", source="narrow")
    assert waits >= 2
    # The second waited about one slow answer, the third about two.
    assert waited_s >= 2 * SLOW_S
    inf = value(after, "passerelle_source_bulkhead_wait_seconds_bucket", source="narrow", le="+Inf")
    quick = value(
        after, "passerelle_source_bulkhead_wait_seconds_bucket", source="narrow", le="0.1"
    )
    assert inf == waits and quick == 0
