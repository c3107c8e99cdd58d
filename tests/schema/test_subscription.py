"""``slotAlerts`` through the schema, in process: the query's own checks and codes, a
slot as a query gives it, failures as fields, limits and cost, alerts of 100 at most."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from resolvers.context import RequestContext
from schema import make_schema, schema
from schema.cost import operation_cost
from sources.errors import SourceUnavailable
from sources.pool import SourcePool
from sources.records import PhysicianQuery, PhysicianRecord
from sources.watch import SlotWatch
from tests.sources.watch.fakes import (
    NOW,
    PLATEAU,
    Clock,
    Copy,
    Spec,
    a_pool,
    clinic,
    install,
    slot,
    until,
)

ALERTS = """
subscription Alerts($filter: SlotFilter!) {
  slotAlerts(filter: $filter) {
    opened { id start distanceKm clinic { id name } physician { id } source { id status } }
    goneIds seenAt
    failingSources { sourceId code message }
  }
}"""
SLOTS = "query Slots($filter: SlotFilter!) { slots(filter: $filter) { edges { node { id } } } }"
HERE = {"latitude": PLATEAU.latitude, "longitude": PLATEAU.longitude}


@contextlib.asynccontextmanager
async def subscribed(
    pool: SourcePool, variables: dict[str, Any], document: str = ALERTS
) -> AsyncIterator[tuple[list[Any], RequestContext]]:
    """The results of a subscription as they come, and its context."""
    watch = SlotWatch(pool, Clock(), sync_s=0.02)
    context = RequestContext(pool=pool, now=NOW, watch=watch)
    stream = await schema.subscribe(document, variables, context_value=context)
    results: list[Any] = []

    async def listen() -> None:
        async for result in stream:
            results.append(result)

    task = asyncio.create_task(listen())
    try:
        await until(lambda: watch.groups and all(g.read_once for g in watch.groups.values()))
        yield results, context
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.aclose()
        await watch.aclose()


@pytest.mark.parametrize(
    "bad",
    [
        {"near": HERE, "radiusKm": 500},
        {"radiusKm": 5},
        {"near": {"latitude": 91, "longitude": 0}},
        {"startsAfter": "2026-11-20T08:00:00-05:00", "startsBefore": "2026-11-19T08:00:00-05:00"},
        {"startsAfter": "2026-11-20T08:00:00-05:00", "startsBefore": "2026-12-30T08:00:00-05:00"},
        {"startsBefore": "2026-11-10T08:00:00-05:00"},
        {"languages": ["!!"]},
        {"clinicIds": ["not-an-id"]},
        {"startsAfter": "2026-11-20T08:00:00"},
    ],
)
async def test_a_filter_is_refused_as_a_query_refuses_it(bad: dict[str, Any]) -> None:
    async with a_pool() as pool:
        watch = SlotWatch(pool, Clock())
        context = RequestContext(pool=pool, now=NOW, watch=watch)
        query = await schema.execute(SLOTS, {"filter": bad}, context_value=context)
        stream = await schema.subscribe(ALERTS, {"filter": bad}, context_value=context)
        results = [r async for r in stream]
        await watch.aclose()
    assert query.errors and len(results) == 1
    [refused] = results
    assert refused.data is None and refused.errors
    expected = [(e.message, e.extensions) for e in query.errors]
    assert [(e.message, e.extensions) for e in refused.errors] == expected
    assert expected[0][1] is not None and expected[0][1]["code"] == "BAD_USER_INPUT"
    assert watch.groups == {}


async def test_an_alert_gives_a_slot_as_a_query_gives_it_and_its_id_when_gone() -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, [], kind=Copy))).values()
        assert isinstance(feed, Copy)
        variables = {"filter": {"near": HERE, "radiusKm": 2}}
        async with subscribed(pool, variables) as (results, context):
            new = slot("feed", "n1", "c1", 3)
            feed.republish([new])
            await until(lambda: results)
            [opened] = results
            assert opened.errors is None
            alert = opened.data["slotAlerts"]
            [found] = alert["opened"]
            query = await schema.execute(SLOTS, variables, context_value=context)
            assert query.data is not None
            assert [e["node"]["id"] for e in query.data["slots"]["edges"]] == [found["id"]]
            assert found["start"] == "2026-11-16T10:30:00-05:00" and found["distanceKm"] == 0.0
            assert found["clinic"]["name"] == "Clinique c1" and found["physician"] is None
            assert found["source"] == {"id": "feed", "status": "UP"}
            assert alert["goneIds"] == [] and alert["failingSources"] == []
            assert alert["seenAt"] == "2026-11-16T07:30:00-05:00"
            # How fresh each source watched is, as a query's extensions.sources say it.
            assert opened.extensions == {
                "sources": [{"id": "feed", "status": "UP", "fromCache": False, "ageSeconds": 0.0}]
            }
            feed.republish([])
            await until(lambda: len(results) == 2)
            assert results[1].data["slotAlerts"]["goneIds"] == [found["id"]]
            assert results[1].data["slotAlerts"]["opened"] == []


async def test_a_failing_source_is_a_field_with_the_code_and_message_of_a_query_s_error() -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, [], kind=Copy))).values()
        assert isinstance(feed, Copy)
        variables = {"filter": {"near": HERE}}
        async with subscribed(pool, variables) as (results, context):
            feed.loaded = False  # answers SOURCE_UNAVAILABLE from now on
            query = await schema.execute(SLOTS, variables, context_value=context)
            feed.copy_loaded()
            await until(lambda: results)
            assert results[0].errors is None  # no GraphQL error: Apollo Client keeps it
            [failure] = results[0].data["slotAlerts"]["failingSources"]
            assert query.errors is not None
            [error] = query.errors
            assert error.extensions == {"code": failure["code"], "source": failure["sourceId"]}
            assert failure["message"] == error.message
            assert failure["code"] == "SOURCE_UNAVAILABLE"
            feed.republish([])
            await until(lambda: len(results) == 2)
            assert results[1].data["slotAlerts"]["failingSources"] == []


async def test_more_than_100_opened_slots_come_in_alerts_of_100_at_most() -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, [], kind=Copy))).values()
        assert isinstance(feed, Copy)
        document = "subscription($f: SlotFilter!) { slotAlerts(filter: $f) { opened { id } } }"
        async with subscribed(pool, {"f": {}}, document) as (results, _):
            feed.republish([slot("feed", f"n{i}", "c1", 1 + i / 10) for i in range(150)])
            await until(lambda: len(results) == 2)
            sizes = [len(r.data["slotAlerts"]["opened"]) for r in results]
            assert sizes == [100, 50]


def test_a_subscription_is_costed_for_100_slots_and_bound_by_the_limits() -> None:
    graphql_schema = schema._schema
    from graphql import parse

    def cost(text: str) -> int:
        return operation_cost(graphql_schema, parse(text))

    slot_selection = "id clinic { name } physician { displayName }"
    alerts = cost(
        f"subscription {{ slotAlerts(filter: {{}}) {{ opened {{ {slot_selection} }} }} }}"
    )
    # 1 for the alert, 100 times (1 for the slot, 1 for its clinic, 1 for its physician).
    assert alerts == 1 + 100 * 3
    page = cost(
        f"{{ slots(filter: {{}}, first: 100) {{ edges {{ node {{ {slot_selection} }} }} }} }}"
    )
    assert page == 100 * (1 + 1 + 3)  # the connection and its edges around the same slots


async def test_a_document_that_does_not_parse_is_refused_with_its_code() -> None:
    async with a_pool() as pool:
        context = RequestContext(pool=pool, now=NOW, watch=SlotWatch(pool, Clock()))
        stream = await schema.subscribe("subscription { slotAlerts(", context_value=context)
        [result] = [r async for r in stream]
    assert result.data is None and result.errors
    assert result.errors[0].extensions == {"code": "GRAPHQL_PARSE_FAILED"}


async def test_a_subscription_over_the_cost_or_depth_limit_is_refused_before_it_starts() -> None:
    strict = make_schema(max_cost=200)
    async with a_pool() as pool:
        watch = SlotWatch(pool, Clock())
        context = RequestContext(pool=pool, now=NOW, watch=watch)
        costly = "subscription { slotAlerts(filter: {}) { opened { clinic { name } } } }"
        deep = (
            "subscription { slotAlerts(filter: {}) { opened { clinic { physicians { clinics "
            "{ physicians { clinics { physicians { clinics { physicians { id } } } } } } } } } } }"
        )
        codes = []
        for gateway, document in ((strict, costly), (schema, deep)):
            stream = await gateway.subscribe(document, context_value=context)
            [result] = [r async for r in stream]
            assert result.data is None and result.errors
            codes.append(result.errors[0].extensions["code"])
        await watch.aclose()
    assert codes == ["COST_LIMIT_EXCEEDED", "DEPTH_LIMIT_EXCEEDED"]
    assert watch.groups == {}


class NoDoctors(Copy):
    """A bulk feed's copy whose physicians cannot be looked up (its upstream fails)."""

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        raise SourceUnavailable(self.id, "upstream answered HTTP 503", retryable=False, status=503)


SHARED = """
subscription Alerts($filter: SlotFilter!) {
  slotAlerts(filter: $filter) { opened { id distanceKm clinic { name physicians { id } } } }
}"""


async def test_subscribers_alike_share_one_execution_and_each_gets_its_errors() -> None:
    clinics = [clinic("feed", "c1", PLATEAU)]
    async with a_pool() as pool:
        [feed] = (await install(pool, Spec("feed", clinics, [], kind=NoDoctors))).values()
        assert isinstance(feed, Copy)
        watch = SlotWatch(pool, Clock(), sync_s=0.02)
        heard: dict[str, list[Any]] = {"a": [], "b": [], "wider": [], "other": []}
        alike = {"filter": {"near": HERE, "radiusKm": 2}}
        asks = {
            "a": (SHARED, alike),
            "b": (SHARED, alike),
            "wider": (SHARED, {"filter": {"near": HERE, "radiusKm": 3}}),
            "other": (SHARED.replace("distanceKm", "start"), alike),
        }

        async def listen(name: str) -> None:
            # Each subscriber with its own context, as each connection has.
            context = RequestContext(pool=pool, now=NOW, watch=watch)
            document, variables = asks[name]
            async for result in await schema.subscribe(document, variables, context_value=context):
                heard[name].append(result)

        tasks = [asyncio.create_task(listen(name)) for name in heard]
        await until(lambda: watch.groups and all(g.read_once for g in watch.groups.values()))
        assert all(len(g.members) == 4 for g in watch.groups.values())
        feed.republish([slot("feed", "n1", "c1", 3)])
        await until(lambda: all(heard.values()))
        [a], [b], [wider], [other] = heard.values()
        # The same document, variables and alert: one execution, one data for both.
        assert a.data is b.data
        # Another filter or another document: executed on their own.
        assert wider.data is not a.data and wider.data == a.data
        assert other.data is not a.data
        assert other.data["slotAlerts"]["opened"][0].keys() == {"id", "start", "clinic"}
        # The lookup that failed during the shared execution is told to each of them.
        for result in (a, b, wider, other):
            assert result.errors is not None
            [error] = result.errors
            assert error.extensions == {"code": "SOURCE_UNAVAILABLE", "source": "feed"}
            assert result.data["slotAlerts"]["opened"][0]["clinic"]["physicians"] == []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await watch.aclose()
