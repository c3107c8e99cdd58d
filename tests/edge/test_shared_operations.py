"""Identical concurrent queries share one execution; anything that differs runs its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from strawberry.types.execution import ExecutionResult

from edge.operation import Operation
from edge.shared_operations import SharedOperations, is_query
from examples import demo_fhir
from examples.faults import Faults, install
from examples.world import World
from resolvers.context import ReportedError, RequestContext
from schema import GatewaySchema
from sources.errors import SourceTimeout
from sources.registry.partners import PartnerStore
from tests.conftest import Gateway, GatewayFactory, fhir_definition, serve

NEAR = """query Near($lat: Float!) {
  slots(filter: {near: {latitude: $lat, longitude: -73.5673}, radiusKm: 10}, first: 5) {
    edges { node { start clinic { name } physician { displayName } } }
  }
}"""
MONTREAL = {"lat": 45.5017}
CLIENTS = 6


@pytest.fixture
async def slow_fhir(world: World) -> AsyncIterator[TestServer]:
    """The demo FHIR server, each answer 150 ms late: concurrent requests overlap."""
    app = demo_fhir.build_app(world)
    install(app, Faults(latency_s=0.15))
    async with serve(app) as server:
        yield server


def counted(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The documents the gateway's schema executes from now on, one entry per execution
    (the source pool merges identical upstream calls itself: those cannot tell)."""
    executed: list[str | None] = []
    execute = GatewaySchema.execute

    async def counting(schema: GatewaySchema, query: str | None, *args: Any, **kw: Any) -> Any:
        executed.append(query)
        return await execute(schema, query, *args, **kw)

    monkeypatch.setattr(GatewaySchema, "execute", counting)
    return executed


async def post(gw: Gateway, body: dict[str, Any], **headers: str) -> tuple[int, Any, Any]:
    async with gw.session.post(gw.url, json=body, headers=headers) as response:
        return response.status, response.headers, await response.json()


async def test_identical_concurrent_queries_share_one_execution(
    gateway_for: GatewayFactory, slow_fhir: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gateway_for(fhir_definition(slow_fhir), cache="off") as gw:
        alone = await post(gw, {"query": NEAR, "variables": MONTREAL})
        assert alone[2]["data"]["slots"]["edges"]
        executed = counted(monkeypatch)
        answers = await asyncio.gather(
            *(post(gw, {"query": NEAR, "variables": MONTREAL}) for _ in range(CLIENTS))
        )
    assert executed == [NEAR]  # one execution for the six requests
    # Each got the whole answer, with its own request id.
    assert all(status == 200 for status, _, _ in answers)
    assert all(body == alone[2] | {"extensions": body["extensions"]} for _, _, body in answers)
    assert all(body["extensions"]["sources"] for _, _, body in answers)
    request_ids = {headers.get("x-request-id") for _, headers, _ in answers}
    assert len(request_ids) == CLIENTS and None not in request_ids


async def test_differing_variables_do_not_share(
    gateway_for: GatewayFactory, slow_fhir: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gateway_for(fhir_definition(slow_fhir), cache="off") as gw:
        executed = counted(monkeypatch)
        points = [{"lat": 45.5017 + i / 1000} for i in range(CLIENTS)]
        answers = await asyncio.gather(
            *(post(gw, {"query": NEAR, "variables": point}) for point in points)
        )
    assert all(status == 200 for status, _, _ in answers)
    assert executed == [NEAR] * CLIENTS  # six points: six executions


async def test_switched_off_each_request_executes(
    gateway_for: GatewayFactory, slow_fhir: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gateway_for(fhir_definition(slow_fhir), cache="off", share_operations=False) as gw:
        executed = counted(monkeypatch)
        await asyncio.gather(
            *(post(gw, {"query": NEAR, "variables": MONTREAL}) for _ in range(CLIENTS))
        )
    assert executed == [NEAR] * CLIENTS


async def test_a_request_that_gives_up_leaves_the_execution_to_the_others(
    gateway_for: GatewayFactory, slow_fhir: TestServer
) -> None:
    async with gateway_for(fhir_definition(slow_fhir), cache="off") as gw:
        body = {"query": NEAR, "variables": MONTREAL}
        first = asyncio.create_task(post(gw, body))
        await asyncio.sleep(0.05)  # the first one's execution is under way
        second = asyncio.create_task(post(gw, body))
        await asyncio.sleep(0.02)
        first.cancel()  # its client leaves
        with pytest.raises(asyncio.CancelledError):
            await first
        status, _, answer = await second
    assert status == 200 and answer["data"]["slots"]["edges"]


@pytest.mark.parametrize(
    ("query", "name", "shared"),
    [
        ("{ sources { id } }", None, True),
        ("query A { sources { id } }", "A", True),
        ("query A { sources { id } } query B { sources { id } }", None, False),
        ("query A { sources { id } }", "B", False),
        ("mutation M { deleteWebhook(id: 1) }", None, False),
        ("subscription S { slotAlerts { id } }", None, False),
        ("{ sources { id }", None, False),
    ],
)
def test_only_one_known_query_is_shared(query: str, name: str | None, shared: bool) -> None:
    assert is_query(query, name) is shared


async def test_partner_keys_and_anonymous_clients_do_not_share(
    gateway_for: GatewayFactory,
    slow_fhir: TestServer,
    registry_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with PartnerStore(registry_url) as partners:
        keys = [partners.create_client(name)[1] for name in ("app-one", "app-two")]
    async with gateway_for(fhir_definition(slow_fhir), cache="off") as gw:
        executed = counted(monkeypatch)
        # Anonymous, two partners, and one of them thrice: three executions for five.
        answers = await asyncio.gather(
            post(gw, {"query": NEAR, "variables": MONTREAL}),
            *(
                post(gw, {"query": NEAR, "variables": MONTREAL}, Authorization=f"Bearer {key}")
                for key in (*keys, keys[0], keys[0])
            ),
        )
    assert [status for status, _, _ in answers] == [200] * 5
    assert executed == [NEAR] * 3


def context() -> RequestContext:
    pool: Any = SimpleNamespace(views=list, view_map=dict, enabled=(), order={})
    return RequestContext(pool=pool)


async def test_a_failed_execution_is_each_waiter_s_own_to_fail() -> None:
    """Its failure (an HTTP 400, say) is not handed on: each waiter runs its own."""
    shared, calls = SharedOperations(), []

    async def failing() -> ExecutionResult:
        calls.append(1)
        await asyncio.sleep(0.05)
        raise ValueError("no")

    operation = Operation("POST", "{ sources { id } }")
    outcomes = await asyncio.gather(
        *(shared.run(operation, context(), failing) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert len(calls) == 4 and shared.shared == 0


async def test_a_waiter_gets_a_result_of_its_own_and_the_first_one_s_reports() -> None:
    shared, first = SharedOperations(), context()
    reported = ReportedError(SourceTimeout("demo-fhir", "late"), ["slots"])

    async def execute() -> ExecutionResult:
        await asyncio.sleep(0.05)
        first.reported.append(reported)
        return ExecutionResult(data={"sources": []}, errors=[], extensions={"sources": []})

    operation = Operation("POST", "{ sources { id } }")
    other = context()
    one, two = await asyncio.gather(
        shared.run(operation, first, execute), shared.run(operation, other, execute)
    )
    assert one == two and one is not two and one.errors is not two.errors
    assert one.data is two.data  # the data is shared, never changed
    assert other.reported == [reported] and other.federation is first.federation
    assert shared.shared == 1
