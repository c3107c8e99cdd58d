"""The gateway end to end: GraphQL over HTTP, in front of the demo booking servers.

Each test runs uvicorn on a loopback port, with the demo FHIR and REST servers
(aiohttp, loopback) registered in a SQLite registry.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from examples import demo_fhir, demo_rest
from examples.world import CLINIC_PERMIT_SYSTEM, World, WorldClinic
from resolvers.ids import from_global_id
from sources.base import SourceConfig
from sources.records import SourceProtocol
from sources.search import SlotIdentity
from sources.timeutil import MONTREAL
from tests.conftest import (
    REST_KEY,
    TEST_FIRST_DAY,
    TEST_NOW,
    TEST_SCALE,
    Gateway,
    GatewayFactory,
    fhir_definition,
    rest_definition,
    serve,
)
from tests.examples.test_demo_fhir import Client, check_start_prefixes

SLOTS = """
query Slots($f: SlotFilter!, $first: Int, $after: String) {
  slots(filter: $f, first: $first, after: $after) {
    totalCount totalCountKind
    edges {
      cursor
      node {
        id start end durationMinutes appointmentType distanceKm bookingUrl bookingPhone
        clinic { id name address { line city postalCode region } sources { id } }
        physician { id displayName languages }
        source { id protocol status }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
MONTREAL_DOWNTOWN = {"latitude": 45.5017, "longitude": -73.5673}


def slot_keys(result: dict[str, Any]) -> list[SlotIdentity]:
    keys = []
    for edge in result["data"]["slots"]["edges"]:
        type_name, key = from_global_id(edge["node"]["id"])
        assert type_name == "Slot"
        decoded = SlotIdentity.decode(key)
        assert decoded is not None
        keys.append(decoded)
    return keys


def listed_by_both(clinic: WorldClinic) -> bool:
    """Listed by the two systems these tests run (the world's third, ssl, is not served)."""
    return {"fhir", "rest"} <= set(clinic.systems)


def world_slot_is_free(world: World, key: SlotIdentity) -> bool:
    permit = key.clinic_key.removeprefix(f"i:{CLINIC_PERMIT_SYSTEM}|")
    clinic = next(c for c in world.clinics if c.permit == permit)
    start = key.start
    matches = [s for s in world.slots_between(clinic.id, start, start + timedelta(seconds=1))]
    assert matches, f"no world slot behind {key}"
    return any(s.free for s in matches)


async def test_slots_near_me_come_from_both_systems_in_start_order(gateway: Gateway) -> None:
    result = await gateway.query(
        SLOTS, {"f": {"near": MONTREAL_DOWNTOWN, "radiusKm": 30}, "first": 100}
    )
    assert "errors" not in result, result.get("errors")
    edges = result["data"]["slots"]["edges"]
    assert len(edges) == 100
    starts = [datetime.fromisoformat(e["node"]["start"]) for e in edges]
    assert starts == sorted(starts)
    assert all(s.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4)) for s in starts)
    assert {e["node"]["source"]["id"] for e in edges} == {"demo-fhir", "demo-rest"}
    for edge in edges:
        node = edge["node"]
        assert node["clinic"]["name"] and node["clinic"]["address"]["city"]
        assert node["distanceKm"] <= 30
        assert node["durationMinutes"] in (15, 20, 30)


async def test_no_busy_slot_is_ever_returned(gateway: Gateway, world: World) -> None:
    result = await gateway.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 100})
    keys = slot_keys(result)
    assert keys
    assert all(world_slot_is_free(world, k) for k in keys)


async def test_a_clinic_listed_by_both_systems_is_one_clinic(
    gateway: Gateway, world: World
) -> None:
    query = "{ clinics(first: 100) { totalCount edges { node { id name sources { id } } } } }"
    result = await gateway.query(query)
    assert "errors" not in result
    clinics = result["data"]["clinics"]
    listed = [c for c in world.clinics if {"fhir", "rest"} & set(c.systems)]
    assert clinics["totalCount"] == len(listed)
    shared = [e for e in clinics["edges"] if len(e["node"]["sources"]) == 2]
    assert len(shared) == sum(1 for c in listed if listed_by_both(c)) > 0
    assert len({e["node"]["id"] for e in clinics["edges"]}) == len(listed)


async def test_identical_slots_of_a_shared_clinic_are_listed_once(
    gateway: Gateway, world: World
) -> None:
    shared = next(c for c in world.clinics if listed_by_both(c))
    clinic = await merged_clinic_id(gateway, shared)
    result = await gateway.query(SLOTS, {"f": {"clinicIds": [clinic]}, "first": 100})
    assert "errors" not in result
    keys = slot_keys(result)
    assert keys and len(keys) == len(set(keys))
    expected = free_slots_of(world, shared.id, TEST_NOW, TEST_NOW + timedelta(days=7))
    assert_total_count_rule(result["data"]["slots"], len(expected))


async def merged_clinic_id(gateway: Gateway, clinic: WorldClinic) -> str:
    """The gateway's one id for a world clinic, found by name and postal code."""
    query = """query($name: String) { clinics(filter: {nameContains: $name}, first: 50) {
        edges { node { id address { postalCode } } } } }"""
    found = await gateway.query(query, {"name": clinic.name})
    ids = [
        e["node"]["id"]
        for e in found["data"]["clinics"]["edges"]
        if e["node"]["address"]["postalCode"] == clinic.postal_code
    ]
    assert len(ids) == 1
    return ids[0]


def free_slots_of(world: World, clinic_id: str, start: datetime, end: datetime) -> list[Any]:
    return [s for s in world.slots_between(clinic_id, start, end) if s.free]


def assert_total_count_rule(connection: dict[str, Any], matching: int) -> None:
    """The README's ``totalCount`` rule, for a search ``matching`` slots in all.

    ``EXACT`` is the exact number, never a wrong one; ``AT_LEAST`` a lower bound: at
    least the slots of the page, never more than match (no slot counted twice, even
    when two systems list it). Null only when no source could count.
    """
    listed = len(connection["edges"])
    total, kind = connection["totalCount"], connection["totalCountKind"]
    if kind == "EXACT":
        assert total == matching
        if not connection["pageInfo"]["hasNextPage"]:
            assert listed == matching
    else:
        assert kind == "AT_LEAST"
        assert listed <= total <= matching


@pytest.mark.parametrize("offset", range(7))
async def test_date_sensitive_answers_hold_whatever_the_first_weekday(
    gateway_for: GatewayFactory, offset: int
) -> None:
    """The checks that once failed on some weekdays, over seven consecutive first days."""
    first_day = TEST_FIRST_DAY + timedelta(days=offset)
    now = datetime.combine(first_day, time(7, 30), MONTREAL)
    world = World(TEST_SCALE, first_day=first_day)
    async with (
        serve(demo_fhir.build_app(world)) as fhir_server,
        serve(demo_rest.build_app(world, api_key=REST_KEY)) as rest_server,
        aiohttp.ClientSession() as session,
    ):
        await check_start_prefixes(Client(session, str(fhir_server.make_url("/fhir"))), world)
        async with gateway_for(
            fhir_definition(fhir_server), rest_definition(rest_server), clock=lambda: now
        ) as gateway:
            near = await gateway.query(
                SLOTS, {"f": {"near": MONTREAL_DOWNTOWN, "radiusKm": 30}, "first": 10}
            )
            assert "errors" not in near and len(near["data"]["slots"]["edges"]) == 10
            shared = next(c for c in world.clinics if listed_by_both(c))
            result = await gateway.query(
                SLOTS, {"f": {"clinicIds": [await merged_clinic_id(gateway, shared)]}, "first": 100}
            )
            expected = free_slots_of(world, shared.id, now, now + timedelta(days=7))
            assert_total_count_rule(result["data"]["slots"], len(expected))


async def test_pages_follow_each_other_without_gap_or_duplicate(gateway: Gateway) -> None:
    f = {
        "near": MONTREAL_DOWNTOWN,
        "radiusKm": 30,
        "startsBefore": (TEST_NOW + timedelta(days=2)).isoformat(),
    }
    whole = await gateway.query(SLOTS, {"f": f, "first": 100})
    want = [e["node"]["id"] for e in whole["data"]["slots"]["edges"]]
    got: list[str] = []
    counts: list[tuple[int, str]] = []
    after = None
    for _ in range(50):
        page = await gateway.query(SLOTS, {"f": f, "first": 7, "after": after})
        conn = page["data"]["slots"]
        got += [e["node"]["id"] for e in conn["edges"]]
        counts.append((conn["totalCount"], conn["totalCountKind"]))
        if not conn["pageInfo"]["hasNextPage"] or len(got) >= len(want):
            break
        after = conn["pageInfo"]["endCursor"]
    assert got[: len(want)] == want
    # Every page of one search shows the count its first page made.
    assert len(counts) > 2 and len(set(counts)) == 1
    # A cursor belongs to its search: one with other filters refuses it.
    other = await gateway.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 7, "after": after})
    (error,) = other["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "start again without after" in error["message"]


async def test_node_resolves_every_kind_of_id(gateway: Gateway) -> None:
    result = await gateway.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 5})
    node = next(e["node"] for e in result["data"]["slots"]["edges"] if e["node"]["physician"])
    query = """query($id: ID!) { node(id: $id) { __typename id
        ... on Clinic { name } ... on Physician { displayName } ... on Slot { start } } }"""
    for wanted, typename in (
        (node["id"], "Slot"),
        (node["clinic"]["id"], "Clinic"),
        (node["physician"]["id"], "Physician"),
    ):
        found = await gateway.query(query, {"id": wanted})
        assert "errors" not in found, found
        assert found["data"]["node"]["__typename"] == typename
        assert found["data"]["node"]["id"] == wanted


async def test_a_source_down_still_gives_the_others_and_names_it(
    gateway_for: GatewayFactory, fhir_server: Any
) -> None:
    # Nothing listens on port 9 (discard) on loopback: connections are refused.
    down = SourceConfig(
        id="demo-rest", protocol=SourceProtocol.REST_JSON, url="http://127.0.0.1:9/api/v1"
    )
    async with gateway_for(fhir_definition(fhir_server), down) as gw:
        result = await gw.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 10})
    assert result["data"]["slots"]["edges"]
    assert {e["node"]["source"]["id"] for e in result["data"]["slots"]["edges"]} == {"demo-fhir"}
    assert [(e["extensions"]["code"], e["extensions"]["source"]) for e in result["errors"]] == [
        ("SOURCE_UNAVAILABLE", "demo-rest")
    ]


async def test_a_hostile_upstream_gives_a_bad_response_error_never_a_crash(
    gateway_for: GatewayFactory, rest_server: Any
) -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(
            body=b'{"resourceType": "Bundle", "entry": 12', content_type="application/fhir+json"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", garbage)
    async with serve(app) as hostile:
        bad = fhir_definition(hostile, "hostile-fhir")
        async with gateway_for(bad, rest_definition(rest_server)) as gw:
            result = await gw.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 10})
    assert {e["node"]["source"]["id"] for e in result["data"]["slots"]["edges"]} == {"demo-rest"}
    assert [(e["extensions"]["code"], e["extensions"]["source"]) for e in result["errors"]] == [
        ("SOURCE_BAD_RESPONSE", "hostile-fhir")
    ]


async def test_busy_slots_sent_by_an_upstream_are_dropped(
    gateway_for: GatewayFactory, world: World, fhir_server: Any
) -> None:
    """A server that ignores status=free and sends busy slots too: only free ones come out.

    A proxy in front of the demo FHIR server strips every ``status`` parameter.
    """
    upstream = str(fhir_server.make_url("")).rstrip("/")
    stripped = 0

    async def proxy(request: web.Request) -> web.Response:
        nonlocal stripped
        query = [(k, v) for k, v in request.query.items() if k != "status"]
        form = [(k, v) for k, v in (await request.post()).items() if k != "status"]
        stripped += len(request.query) + len(await request.post()) - len(query) - len(form)
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, upstream + request.path, params=query, data=form or None
            ) as answer,
        ):
            body = await answer.read()
            # Point paging links back at the proxy.
            body = body.replace(upstream.encode(), str(request.url.origin()).encode())
            return web.Response(
                body=body, status=answer.status, content_type="application/fhir+json"
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    async with serve(app) as sloppy:
        async with gateway_for(fhir_definition(sloppy)) as gw:
            result = await gw.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 100})
    assert stripped > 0, "the proxy never saw a status parameter"
    keys = slot_keys(result)
    assert keys
    assert all(world_slot_is_free(world, k) for k in keys)


BAD_INPUTS = [
    ({"near": MONTREAL_DOWNTOWN, "radiusKm": 500}, "radiusKm must be between 0 and 200"),
    ({"radiusKm": 5}, "radiusKm needs near"),
    ({"near": {"latitude": 95, "longitude": 0}}, "near.latitude must be between -90 and 90"),
    ({"startsAfter": "2026-12-01T08:00:00"}, "has no UTC offset"),
    (
        {"startsAfter": "2026-12-01T08:00:00-05:00", "startsBefore": "2027-02-01T08:00:00-05:00"},
        "must not exceed 31 days",
    ),
    ({"clinicIds": ["not-an-id"]}, "is not a valid id"),
    ({"languages": ["français!"]}, "is not a language code"),
]


async def test_bad_input_gets_a_clear_error_that_says_what_to_fix(gateway: Gateway) -> None:
    for f, message in BAD_INPUTS:
        result = await gateway.query(SLOTS, {"f": f})
        assert result.get("data") is None or result["data"].get("slots") is None, f
        assert len(result["errors"]) == 1, result
        assert message in result["errors"][0]["message"], (f, result["errors"])


async def test_bad_arguments_have_the_bad_user_input_code(gateway: Gateway) -> None:
    for variables in ({"f": {}, "first": 1000}, {"f": {}, "after": "garbage"}):
        result = await gateway.query(SLOTS, variables)
        assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", result
    result = await gateway.query(SLOTS, {"f": {"clinicIds": ["not-an-id"]}})
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_sources_lists_the_registry_with_health(gateway: Gateway) -> None:
    await gateway.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 1})
    result = await gateway.query("{ sources { id name protocol status lastSuccessAt latencyMs } }")
    by_id = {s["id"]: s for s in result["data"]["sources"]}
    assert by_id["demo-fhir"]["protocol"] == "FHIR_R4"
    assert by_id["demo-rest"]["protocol"] == "REST_JSON"
    assert {s["status"] for s in by_id.values()} == {"UP"}
    assert all(s["lastSuccessAt"] and s["latencyMs"] > 0 for s in by_id.values())


async def test_a_fresh_fhir_source_whose_probe_answered_is_up_in_sources_and_extensions(
    gateway_for: GatewayFactory, fhir_server: Any
) -> None:
    # Its capabilities were probed at start: it has answered, before any search. The
    # request's snapshot (sources) and its calls (extensions.sources) agree.
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        result = await gw.query(
            "{ sources { id status lastSuccessAt } "
            "slots(filter: {region: MONTREAL}, first: 1) { edges { node { id } } } }"
        )
    [source] = result["data"]["sources"]
    assert (source["id"], source["status"]) == ("demo-fhir", "UP")
    assert source["lastSuccessAt"] is not None
    assert [(s["id"], s["status"]) for s in result["extensions"]["sources"]] == [
        ("demo-fhir", "UP")
    ]


async def test_a_source_added_to_the_registry_is_queried_within_five_seconds(
    gateway_for: GatewayFactory, fhir_server: Any, rest_server: Any
) -> None:
    async with gateway_for(fhir_definition(fhir_server), registry_poll_s=1.0) as gw:
        gw.store.add(rest_definition(rest_server))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        seen: set[str] = set()
        while loop.time() < deadline and "demo-rest" not in seen:
            result = await gw.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 100})
            seen = {e["node"]["source"]["id"] for e in result["data"]["slots"]["edges"]}
            await asyncio.sleep(0.2)
        assert "demo-rest" in seen
        gw.store.set_enabled("demo-fhir", False)
        await asyncio.sleep(1.5)
        status = await gw.query("{ sources { id status } }")
        assert {s["id"]: s["status"] for s in status["data"]["sources"]}["demo-fhir"] == "DISABLED"
        result = await gw.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 100})
        assert {e["node"]["source"]["id"] for e in result["data"]["slots"]["edges"]} == {
            "demo-rest"
        }


async def test_malformed_bodies_get_a_4xx_never_a_500(gateway: Gateway) -> None:
    bodies = [
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than any JSON parser allows
        b'{"query": "{ sources { id } }", "operationName": "\\ud800"}',  # lone surrogate
        b"\xff\xfe not utf-8",
        b'{"query": 12}',
    ]
    for body in bodies:
        async with gateway.session.post(
            gateway.url, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            assert 400 <= response.status < 500, (body[:40], response.status)


async def test_every_error_has_a_stable_code(gateway: Gateway) -> None:
    cases = [
        ("{ slots(", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", {}, "GRAPHQL_VALIDATION_FAILED"),
        (SLOTS, {"f": {"startsAfter": "tomorrow"}}, "BAD_USER_INPUT"),
        (SLOTS, {"f": {"region": "ATLANTIS"}}, "BAD_USER_INPUT"),
        ('{ node(id: "x") { id } }', {}, "BAD_USER_INPUT"),
    ]
    for query, variables, code in cases:
        result = (
            await gateway.query(query, variables)
            if not query.startswith("{ slots(")
            else (await _post(gateway, {"query": query}))
        )
        assert [e["extensions"]["code"] for e in result["errors"]] == [code], (query, result)


async def _post(gateway: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    async with gateway.session.post(gateway.url, json=body) as response:
        result: dict[str, Any] = await response.json()
        return result


async def test_extensions_sources_say_which_sources_answered_and_how_fresh(
    gateway_for: GatewayFactory, fhir_server: Any
) -> None:
    down = SourceConfig(
        id="demo-rest", protocol=SourceProtocol.REST_JSON, url="http://127.0.0.1:9/api/v1"
    )
    async with gateway_for(fhir_definition(fhir_server), down) as gw:
        result = await gw.query(SLOTS, {"f": {"region": "MONTREAL"}, "first": 5})
        plain = await gw.query("{ __typename }")
    assert result["extensions"]["sources"] == [
        {"id": "demo-fhir", "status": "UP", "fromCache": False, "ageSeconds": 0.0},
        {"id": "demo-rest", "status": "DEGRADED", "fromCache": False, "ageSeconds": 0.0},
    ]
    assert "sources" not in plain.get("extensions", {})  # no source was asked


ATLANTIC_SLOTS = """
query Atlantic($f: SlotFilter!) {
  slots(filter: $f, first: 100) {
    edges { node { start clinic { name timeZone address { city } sources { id } } } }
  }
}
"""


@pytest.mark.parametrize(
    ("city", "zone"),
    [("Cap-aux-Meules", "America/Halifax"), ("Blanc-Sablon", "America/Blanc-Sablon")],
)
async def test_a_clinic_on_atlantic_time_shows_its_zone_and_its_0900_as_0800_in_montreal(
    gateway: Gateway, world: World, city: str, zone: str
) -> None:
    """The demo world's first fortnight is in November: 09:00 local there is 08:00 EST,
    whether the FHIR server said it with its offset or the REST API as a local time."""
    clinic = next(c for c in world.clinics if c.city == city)
    begin = TEST_NOW
    end = datetime.combine(TEST_FIRST_DAY + timedelta(days=14), time(0), MONTREAL)
    here = {"latitude": clinic.latitude, "longitude": clinic.longitude}
    window = {"startsAfter": begin.isoformat(), "startsBefore": end.isoformat()}
    result = await gateway.query(ATLANTIC_SLOTS, {"f": {"near": here, "radiusKm": 5, **window}})
    assert "errors" not in result, result.get("errors")

    nodes = [e["node"] for e in result["data"]["slots"]["edges"]]
    assert {n["clinic"]["address"]["city"] for n in nodes} == {city}
    assert {n["clinic"]["timeZone"] for n in nodes} == {zone}
    assert {s["id"] for n in nodes for s in n["clinic"]["sources"]} == {"demo-fhir", "demo-rest"}
    truth = [s for s in world.slots_between(clinic.id, begin, end) if s.free]
    assert [n["start"] for n in nodes] == [s.start.astimezone(MONTREAL).isoformat() for s in truth]
    nine = [s.start for s in truth if (s.start.hour, s.start.minute) == (9, 0)]
    assert nine, "the world has a 09:00 local slot there"
    shown = {n["start"] for n in nodes}
    for start in nine:
        assert f"{start.date().isoformat()}T08:00:00-05:00" in shown
