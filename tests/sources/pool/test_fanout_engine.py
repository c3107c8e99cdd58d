"""The fan-out engine end to end: batching, caching and failures, through a live gateway.

The booking systems are the demo servers on loopback, broken with the same
fault knobs as ``python app.py --demo-faults``; upstream calls are counted
with their ``GET /_stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from examples import demo_fhir, demo_rest
from examples.faults import Faults
from examples.faults import install as install_faults
from examples.world import DAYS, World, WorldSlot
from sources.base import SourceConfig
from sources.records import AppointmentType
from sources.timeutil import MONTREAL
from tests.conftest import (
    REST_KEY,
    Gateway,
    GatewayFactory,
    fhir_definition,
    rest_definition,
    serve,
)
from tests.ports import REDIS_URL, free_port

NEAR = {"latitude": 45.5, "longitude": -73.6}
SLOTS = """
query Slots($first: Int!, $near: GeoPointInput) {
  slots(first: $first, filter: {near: $near}) {
    edges { node { start source { id } clinic { name address { city } }
                   physician { displayName languages } } }
  }
}"""
NEXT_SLOTS = """
query Clinics($first: Int!) {
  clinics(first: $first) {
    edges { node { name physicians { displayName languages }
                   nextSlots(first: 3) { start clinic { name } physician { displayName } } } }
  }
}"""


class RegularWorld(World):
    """The demo province where every physician works 8:00 to 12:00 every day, all slots
    free, each physician's half-hours offset by a few minutes (no province-wide ties).
    Every clinic then has slots soon, so the calls a query makes depend on the engine,
    not on whether some clinic happens to be fully booked for days."""

    def _physician_slots(self, clinic_id: str, physician_id: str) -> Iterator[WorldSlot]:
        offset = timedelta(minutes=int(physician_id[1:]) % 30)
        for day_index in range(DAYS):
            day = self.first_day + timedelta(days=day_index)
            begin = datetime.combine(day, clock(8), MONTREAL) + offset
            for n in range(8):
                start = begin + timedelta(minutes=30 * n)
                yield WorldSlot(
                    f"{clinic_id}-{physician_id}-{day_index:02d}-{n}",
                    clinic_id,
                    physician_id,
                    start,
                    start + timedelta(minutes=30),
                    AppointmentType.ROUTINE,
                    True,
                )


@pytest.fixture(scope="module")
def regular_world() -> World:
    return RegularWorld(0.05)  # 81 clinics


@contextlib.asynccontextmanager
async def demo_servers(
    world: World, fhir_faults: Faults | None = None, rest_faults: Faults | None = None
) -> AsyncIterator[tuple[TestServer, TestServer]]:
    fhir_app = demo_fhir.build_app(world)
    rest_app = demo_rest.build_app(world, api_key=REST_KEY)
    install_faults(fhir_app, fhir_faults or Faults(), seed=7)
    install_faults(rest_app, rest_faults or Faults(), seed=7)
    async with serve(fhir_app) as fhir, serve(rest_app) as rest:
        yield fhir, rest


async def upstream_calls(gateway: Gateway, *servers: TestServer) -> list[int]:
    counts = []
    for server in servers:
        async with gateway.session.get(server.make_url("/_stats")) as response:
            counts.append((await response.json())["requests"])
    return counts


async def calls_of(
    gateway: Gateway, servers: tuple[TestServer, ...], query: str, variables: dict[str, Any]
) -> list[int]:
    """Upstream calls (per server) that one query makes; the query must succeed."""
    before = await upstream_calls(gateway, *servers)
    result = await gateway.query(query, variables)
    assert "errors" not in result, result["errors"]
    after = await upstream_calls(gateway, *servers)
    return [b - a for a, b in zip(before, after, strict=True)]


def rest_asked_every_time(server: TestServer) -> SourceConfig:
    """The REST source without its directory of clinics and physicians: each search
    makes its three calls (slots, clinics, physicians), as these tests count them."""
    definition = rest_definition(server)
    options = definition.options.model_copy(update={"directory_ttl_s": 0})
    return replace(definition, options=options)


# -- batching -------------------------------------------------------------------------------


async def test_next_slots_of_5_and_50_clinics_make_the_same_upstream_calls(
    gateway_for: GatewayFactory, regular_world: World
) -> None:
    async with (
        demo_servers(regular_world) as servers,
        gateway_for(fhir_definition(servers[0]), rest_definition(servers[1]), cache="off") as gw,
    ):
        five = await calls_of(gw, servers, NEXT_SLOTS, {"first": 5})
        fifty = await calls_of(gw, servers, NEXT_SLOTS, {"first": 50})
        result = await gw.query(NEXT_SLOTS, {"first": 50})
    assert fifty == five
    assert sum(five) <= 12  # a few batched calls per source, not one per clinic
    nodes = [e["node"] for e in result["data"]["clinics"]["edges"]]
    assert len(nodes) == 50
    assert all(len(n["nextSlots"]) == 3 for n in nodes)  # every clinic got its own 3


async def test_slot_pages_of_5_50_and_100_make_the_same_upstream_calls(
    gateway_for: GatewayFactory, regular_world: World
) -> None:
    async with (
        demo_servers(regular_world) as servers,
        gateway_for(fhir_definition(servers[0]), rest_definition(servers[1]), cache="off") as gw,
    ):
        counts = [
            await calls_of(gw, servers, SLOTS, {"first": n, "near": NEAR}) for n in (5, 50, 100)
        ]
    assert counts[0] == counts[1] == counts[2]
    assert sum(counts[0]) <= 6


async def test_fifty_concurrent_identical_queries_make_the_calls_of_one(
    gateway_for: GatewayFactory, world: World
) -> None:
    slow = Faults(latency_s=0.2)  # so that all fifty are in flight together
    async with (
        demo_servers(world, slow, slow) as servers,
        gateway_for(
            fhir_definition(servers[0]), rest_asked_every_time(servers[1]), cache="off"
        ) as gw,
    ):
        variables = {"first": 20, "near": NEAR}
        one = await calls_of(gw, servers, SLOTS, variables)
        before = await upstream_calls(gw, *servers)
        results = await asyncio.gather(*(gw.query(SLOTS, variables) for _ in range(50)))
        after = await upstream_calls(gw, *servers)
    assert all("errors" not in r for r in results)
    assert len({str(r["data"]) for r in results}) == 1
    assert [b - a for a, b in zip(before, after, strict=True)] == one


# -- the cache --------------------------------------------------------------------------------


async def test_a_repeated_query_is_answered_from_the_cache_with_its_age(
    gateway_for: GatewayFactory, world: World
) -> None:
    async with (
        demo_servers(world) as servers,
        gateway_for(fhir_definition(servers[0]), rest_definition(servers[1])) as gw,
    ):
        variables = {"first": 20, "near": NEAR}
        first = await gw.query(SLOTS, variables)
        await asyncio.sleep(0.3)
        before = await upstream_calls(gw, *servers)
        again = await gw.query(SLOTS, variables)
        after = await upstream_calls(gw, *servers)
    assert again["data"] == first["data"]
    assert after == before  # no upstream call at all
    assert [s["fromCache"] for s in first["extensions"]["sources"]] == [False, False]
    cached = again["extensions"]["sources"]
    assert [(s["id"], s["fromCache"]) for s in cached] == [
        ("demo-fhir", True),
        ("demo-rest", True),
    ]
    assert all(0.3 <= s["ageSeconds"] < 30 for s in cached)


async def test_two_gateways_share_answers_through_redis(
    gateway_for: GatewayFactory, world: World
) -> None:
    async with demo_servers(world) as servers:
        definitions = (fhir_definition(servers[0]), rest_definition(servers[1]))
        redis = {"cache": "redis", "redis_url": REDIS_URL}
        async with gateway_for(*definitions, **redis) as one:
            variables = {"first": 10, "near": NEAR}
            first = await one.query(SLOTS, variables)
            async with gateway_for(**redis) as two:  # the same registry, another instance
                before = await upstream_calls(two, *servers)
                second = await two.query(SLOTS, variables)
                after = await upstream_calls(two, *servers)
    assert second["data"] == first["data"]
    assert after == before
    assert all(s["fromCache"] for s in second["extensions"]["sources"])


async def test_with_redis_down_the_gateway_calls_the_sources_without_errors(
    gateway_for: GatewayFactory, world: World
) -> None:
    async with (
        demo_servers(world) as servers,
        gateway_for(
            fhir_definition(servers[0]),
            rest_definition(servers[1]),
            cache="redis",
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
        ) as gw,
    ):
        results = [await gw.query(SLOTS, {"first": 10, "near": NEAR}) for _ in range(3)]
    for result in results:
        assert "errors" not in result
        assert len(result["data"]["slots"]["edges"]) == 10
        assert not any(s["fromCache"] for s in result["extensions"]["sources"])


# -- failing sources ---------------------------------------------------------------------------


def sources_of(result: dict[str, Any]) -> set[str]:
    return {e["node"]["source"]["id"] for e in result["data"]["slots"]["edges"]}


async def test_a_hanging_source_costs_no_more_than_the_fanout_deadline(
    gateway_for: GatewayFactory, world: World
) -> None:
    async with demo_servers(world, fhir_faults=Faults(hang=True)) as servers:
        patient = replace(fhir_definition(servers[0]), timeout_s=30.0)
        async with gateway_for(
            patient, rest_definition(servers[1]), fanout_deadline_s=0.5, cache="off"
        ) as gw:
            started = time.monotonic()
            result = await gw.query(SLOTS, {"first": 10, "near": NEAR})
            elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.4
    assert sources_of(result) == {"demo-rest"}
    codes = [(e["extensions"]["code"], e["extensions"]["source"]) for e in result["errors"]]
    assert codes == [("SOURCE_TIMEOUT", "demo-fhir")]


async def test_a_source_failing_half_its_calls_is_mostly_rescued_by_retries(
    gateway_for: GatewayFactory, world: World
) -> None:
    async with demo_servers(world, fhir_faults=Faults(errors=0.5)) as servers:
        async with gateway_for(
            fhir_definition(servers[0]), rest_definition(servers[1]), cache="off"
        ) as gw:
            results = []
            for i in range(10):  # ten different queries: no cache, no single-flight
                near = {"latitude": 45.5 + i / 100, "longitude": -73.6}
                results.append(await gw.query(SLOTS, {"first": 10, "near": near}))
            fhir_calls, _ = await upstream_calls(gw, *servers)
    with_fhir = sum("demo-fhir" in sources_of(r) for r in results)
    # Without retries each query (two FHIR calls) would fail 3 times in 4.
    assert with_fhir >= 7, with_fhir
    assert fhir_calls > 2 * 10  # retried calls
    for result in results:
        for error in result.get("errors", []):
            assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE"


async def test_a_source_answering_garbage_is_named_and_the_others_answer(
    gateway_for: GatewayFactory, world: World
) -> None:
    async with demo_servers(world, rest_faults=Faults(malformed=1.0)) as servers:
        async with gateway_for(
            fhir_definition(servers[0]), rest_definition(servers[1]), cache="off"
        ) as gw:
            result = await gw.query(SLOTS, {"first": 10, "near": NEAR})
    assert sources_of(result) == {"demo-fhir"}
    codes = [(e["extensions"]["code"], e["extensions"]["source"]) for e in result["errors"]]
    assert codes == [("SOURCE_BAD_RESPONSE", "demo-rest")]
    statuses = {s["id"]: s["status"] for s in result["extensions"]["sources"]}
    assert statuses == {"demo-fhir": "UP", "demo-rest": "DEGRADED"}


async def test_a_rate_limiting_source_is_retried_after_its_retry_after(
    gateway_for: GatewayFactory, world: World
) -> None:
    async with demo_servers(world, rest_faults=Faults(ratelimit_rps=4)) as servers:
        async with gateway_for(
            fhir_definition(servers[0]), rest_asked_every_time(servers[1]), cache="off"
        ) as gw:
            results, elapsed = [], []
            for i in range(3):
                near = {"latitude": 45.5 + i / 100, "longitude": -73.6}
                started = time.monotonic()
                results.append(await gw.query(SLOTS, {"first": 10, "near": near}))
                elapsed.append(time.monotonic() - started)
            _, rest_calls = await upstream_calls(gw, *servers)
    assert all("errors" not in r for r in results), [r.get("errors") for r in results]
    assert all("demo-rest" in sources_of(r) for r in results)
    assert rest_calls > 3 * 3  # some calls were answered 429 and made again
    assert max(elapsed) >= 0.9  # one waited for the announced second
