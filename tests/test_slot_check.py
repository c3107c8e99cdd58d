"""``slotCheck``: a slot checked against its booking source at the moment a patient
picks it, through the gateway, against the demo FHIR server (``Slot/{id}``) and the
demo REST API (its one-slot read, configured by ``slot_path``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from edge.middleware.rate_limit import Budget, RateLimiter
from examples import demo_rest
from examples.churn import SERVED
from examples.world import WorldSlot
from sources.base import SourceConfig
from tests.conftest import (
    REST_KEY,
    TEST_NOW,
    Gateway,
    GatewayFactory,
    fhir_definition,
    rest_definition,
    serve,
)

FIND = """query($filter: SlotFilter!) {
  slots(filter: $filter, first: 50) { edges { node { id start source { id } } } }
}"""
CHECK = """query($id: ID!) {
  slotCheck(id: $id) {
    id state checkedAt asOf slot { id start } nextSlots(first: 3) { id start }
  }
}"""


def free_slot(
    server: TestServer, clinics: list[tuple[str, float, float]]
) -> tuple[WorldSlot, tuple[float, float]]:
    """A free slot a demo system serves, a day after the pinned clock, and its clinic's point."""
    served = server.app[SERVED]
    for clinic_id, latitude, longitude in clinics:
        for slot in served.slots_of(clinic_id):
            if slot.free and slot.start > TEST_NOW + timedelta(days=1):
                return slot, (latitude, longitude)
    raise AssertionError("the demo system serves no free slot after the pinned clock")


async def slot_id(gw: Gateway, source_id: str, slot: WorldSlot, point: tuple[float, float]) -> str:
    """The gateway's id of ``slot``, found as a client finds it: near its clinic, at its start."""
    window = {
        "near": {"latitude": point[0], "longitude": point[1]},
        "radiusKm": 1,
        "startsAfter": slot.start.isoformat(),
        "startsBefore": (slot.start + timedelta(minutes=1)).isoformat(),
    }
    answer = await gw.query(FIND, {"filter": window})
    nodes = [e["node"] for e in answer["data"]["slots"]["edges"]]
    mine = [n for n in nodes if n["source"]["id"] == source_id]
    assert mine, nodes
    return str(mine[0]["id"])


def clinics_of(server: TestServer, world: Any, system: str) -> list[tuple[str, float, float]]:
    return [(c.id, c.latitude, c.longitude) for c in world.clinics_for(system)]


@pytest.mark.parametrize(
    ("system", "source_id", "definition"),
    [("fhir", "demo-fhir", fhir_definition), ("rest", "demo-rest", rest_definition)],
)
async def test_a_slot_taken_upstream_is_gone_at_the_check_and_its_clinic_s_next_slots_offered(
    gateway_for: GatewayFactory,
    fhir_server: TestServer,
    rest_server: TestServer,
    world: Any,
    system: str,
    source_id: str,
    definition: Callable[[TestServer], SourceConfig],
) -> None:
    server = fhir_server if system == "fhir" else rest_server
    slot, point = free_slot(server, clinics_of(server, world, system))
    async with gateway_for(definition(server)) as gw:
        the_id = await slot_id(gw, source_id, slot, point)
        free = (await gw.query(CHECK, {"id": the_id}))["data"]["slotCheck"]
        assert free["state"] == "FREE" and free["id"] == the_id
        assert free["slot"]["id"] == the_id and free["nextSlots"] == []
        assert free["asOf"] is not None
        # Taken upstream: the gateway's cached search still lists it, the check does not.
        server.app[SERVED].set_free(slot, False)
        answer = await gw.query(CHECK, {"id": the_id})
        assert "errors" not in answer
        gone = answer["data"]["slotCheck"]
        assert gone["state"] == "GONE"
        offered = gone["nextSlots"]
        assert offered and the_id not in {s["id"] for s in offered}
        assert all(datetime.fromisoformat(s["start"]) >= TEST_NOW for s in offered)


async def test_a_source_that_cannot_read_one_slot_answers_unknown_and_a_bad_id_is_refused(
    gateway_for: GatewayFactory, rest_server: TestServer, world: Any
) -> None:
    slot, point = free_slot(rest_server, clinics_of(rest_server, world, "rest"))
    plain = rest_definition(rest_server)
    plain = SourceConfig(
        id=plain.id, name=plain.name, protocol=plain.protocol, url=plain.url,
        credentials_env=plain.credentials_env,
    )  # fmt: skip
    async with gateway_for(plain) as gw:
        the_id = await slot_id(gw, "demo-rest", slot, point)
        unknown = (await gw.query(CHECK, {"id": the_id}))["data"]["slotCheck"]
        assert unknown["state"] == "UNKNOWN" and unknown["asOf"] is None
        assert unknown["slot"]["id"] == the_id
        bad = await gw.query(CHECK, {"id": "not-an-id"})
        assert bad["data"] is None
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_identical_checks_under_way_make_one_upstream_read(
    gateway_for: GatewayFactory, world: Any
) -> None:
    reads: list[str] = []

    @web.middleware
    async def count(request: web.Request, handler: Any) -> Any:
        if request.path.startswith("/api/v1/disponibilites/"):
            reads.append(request.path)
            await asyncio.sleep(0.3)  # the first read is still under way when the others come
        return await handler(request)

    app = demo_rest.build_app(world, api_key=REST_KEY)
    app.middlewares.append(count)
    async with serve(app) as server:
        slot, point = free_slot(server, clinics_of(server, world, "rest"))
        async with gateway_for(rest_definition(server)) as gw:
            the_id = await slot_id(gw, "demo-rest", slot, point)
            answers = await asyncio.gather(*(gw.query(CHECK, {"id": the_id}) for _ in range(20)))
            assert {a["data"]["slotCheck"]["state"] for a in answers} == {"FREE"}
            assert len(reads) == 1
            # Once it is over, the next check asks again: nothing is kept.
            await gw.query(CHECK, {"id": the_id})
            assert len(reads) == 2


async def test_a_check_costs_five_requests_of_the_client_s_rate_budget(
    gateway_for: GatewayFactory, rest_server: TestServer, world: Any
) -> None:
    slot, point = free_slot(rest_server, clinics_of(rest_server, world, "rest"))
    # One request a second, a burst of two: the search finding the slot takes one, the
    # check's own request the other; the four more a check costs are not there.
    async with gateway_for(rest_definition(rest_server), anonymous_rate=1.0) as gw:
        the_id = await slot_id(gw, "demo-rest", slot, point)
        refused = await gw.query(CHECK, {"id": the_id})
    assert refused["data"] is None
    [error] = refused["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED" and error["path"] == ["slotCheck"]
    assert "per second" in error["message"]


async def test_the_limiter_charges_a_cost_and_never_more_than_the_burst() -> None:
    limiter = RateLimiter()
    budget = Budget(rate=0.001, burst=10)
    assert await limiter.take("k", budget, cost=5) == 0
    assert await limiter.take("k", budget, cost=5) == 0
    assert await limiter.take("k", budget, cost=1) > 0  # the ten tokens are spent
    # A cost above the burst is charged as the whole burst, so it can pass at all.
    assert await limiter.take("fresh", budget, cost=50) == 0
    assert await limiter.take("fresh", budget, cost=1) > 0
