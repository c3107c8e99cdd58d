"""The status page's test set-up: a gateway over the three demo booking systems (FHIR,
REST, the whole SMART Scheduling Links feed) and one that is always down, and the
counts by region the tests expect, read from the demo world itself (never from the
code under test)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from examples.demo_ssl import build_app
from examples.demo_ssl.publisher import Publisher
from examples.world import World
from sources.base import SourceConfig
from sources.coverage import RegionCoverage
from sources.pool.breaker import SourceBreakers
from sources.records import Region, SourceProtocol
from tests.conftest import (
    TEST_NOW,
    Gateway,
    GatewayFactory,
    fhir_definition,
    rest_definition,
    serve,
)

WEEK_END = TEST_NOW + timedelta(days=7)
# The region the tests search through the live sources (their answers then in the cache).
SEARCHED = Region.COTE_NORD
QUERY = """query Region($filter: SlotFilter!) {
  slots(filter: $filter, first: 100) { edges { node { id } } }
}"""
FILTER: dict[str, Any] = {
    "region": SEARCHED.value,
    "startsAfter": TEST_NOW.isoformat(),
    "startsBefore": WEEK_END.isoformat(),
}


@dataclass(frozen=True, slots=True)
class Expected:
    clinics: int
    free_slots: int


def world_counts(world: World, system: str, *, with_slots_only: bool) -> dict[Region, Expected]:
    """The demo ``system``'s clinics and free slots in the next 7 days, by region, from
    the world; ``with_slots_only``: only the clinics with such a slot (what a live
    source's slot answers name)."""
    clinics: Counter[Region] = Counter()
    slots: Counter[Region] = Counter()
    for clinic in world.clinics_for(system):
        free = sum(1 for s in world.slots_between(clinic.id, TEST_NOW, WEEK_END) if s.free)
        slots[clinic.region] += free
        if free or not with_slots_only:
            clinics[clinic.region] += 1
    return {r: Expected(clinics[r], slots[r]) for r in Region}


def expected_after_search(world: World) -> dict[Region, Expected]:
    """The whole SMART feed (its index), plus the searched region's slots of FHIR and REST
    (what their cached answers hold)."""
    out = world_counts(world, "ssl", with_slots_only=False)
    for system in ("fhir", "rest"):
        seen = world_counts(world, system, with_slots_only=True)[SEARCHED]
        ours = out[SEARCHED]
        out[SEARCHED] = Expected(ours.clinics + seen.clinics, ours.free_slots + seen.free_slots)
    return out


@contextlib.asynccontextmanager
async def failing_server() -> AsyncIterator[TestServer]:
    """A FHIR server that is always down (503)."""

    async def down(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", down)
    async with serve(app) as server:
        yield server


@contextlib.asynccontextmanager
async def status_gateway(
    gateway_for: GatewayFactory,
    world: World,
    fhir_server: TestServer,
    rest_server: TestServer,
    directory: Path,
    *,
    name: str = "Demo FHIR",
    **settings: Any,
) -> AsyncIterator[Gateway]:
    """The gateway over the demo systems (the FHIR one named ``name``) and a down one."""
    publisher = Publisher(world, directory)
    async with (
        serve(build_app(publisher, max_age_s=0)) as feed,
        failing_server() as down,
    ):
        smart = SourceConfig(
            id="demo-ssl",
            name="Demo SSL",
            protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
            url=str(feed.make_url("/$bulk-publish")),
        )
        fhir = SourceConfig(
            id="demo-fhir",
            name=name,
            protocol=SourceProtocol.FHIR_R4,
            url=fhir_definition(fhir_server).url,
        )
        definitions = (fhir, rest_definition(rest_server), smart)
        failing = replace(fhir_definition(down, "down-fhir"), name="Demo FHIR (panne)")
        async with gateway_for(*definitions, failing, **settings) as gateway:
            yield gateway


async def search_until_the_down_source_is_down(gateway: Gateway) -> None:
    """Search the region (the live sources' answers land in the cache) until the down
    source's circuit opens."""
    for _ in range(SourceBreakers.THRESHOLD + 1):
        result = await gateway.query(QUERY, {"filter": FILTER})
        assert result["data"]["slots"]["edges"], result


def fast_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The coverage counted every 100 ms rather than every minute, for this test."""
    monkeypatch.setattr(RegionCoverage, "INTERVAL_S", 0.1)


def status_url(gateway: Gateway, path: str = "/status") -> str:
    return gateway.url.replace("/graphql", path)
