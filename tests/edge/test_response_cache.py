"""The response cache: persisted operations answered again without running GraphQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from dataclasses import replace
from typing import Any

from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tests.conftest import Gateway, GatewayFactory, fhir_definition
from tests.ports import REDIS_URL

QUERY = """query Near($first: Int!, $near: GeoPointInput) {
  slots(filter: {near: $near, radiusKm: 30}, first: $first) {
    edges { node { id start clinic { name } } }
  }
}"""
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()
VARIABLES = {"first": 5, "near": {"latitude": 45.5017, "longitude": -73.5673}}
PERSISTED = {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}


async def calls(gateway: Gateway, server: TestServer) -> int:
    async with gateway.session.get(server.make_url("/_stats")) as response:
        count: int = (await response.json())["requests"]
        return count


async def get(
    gateway: Gateway, variables: Any = VARIABLES, **headers: str
) -> tuple[int, CIMultiDict[str], Any]:
    params = {"extensions": json.dumps(PERSISTED), "variables": json.dumps(variables)}
    async with gateway.session.get(gateway.url, params=params, headers=headers) as response:
        body = await response.json(content_type=None) if response.status != 304 else None
        return response.status, CIMultiDict(response.headers), body


async def register(gateway: Gateway, *, clean: bool = True) -> None:
    """Send the query with its hash once (APQ registers it)."""
    result = await gateway.query(QUERY, VARIABLES, extensions=PERSISTED)
    assert result["data"]["slots"]["edges"]
    assert ("errors" not in result) or not clean


async def test_a_persisted_operation_is_answered_again_without_running_graphql(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        await register(gw)
        status, headers, first = await get(gw)  # executed, and stored
        await asyncio.sleep(0.2)
        before = await calls(gw, fhir_server)
        status2, headers2, second = await get(gw)  # from the response cache
        after = await calls(gw, fhir_server)
    assert status == status2 == 200
    assert (headers["X-Cache"], headers2["X-Cache"]) == ("MISS", "HIT")
    assert after == before
    assert second["data"] == first["data"]  # exactly the data of the executed one
    cached = second["extensions"]["sources"][0]
    assert cached["id"] == "demo-fhir" and cached["fromCache"] is True
    # The answer aged by the 0.2 s waited: ages are given to a tenth of a second, each
    # rounded, so the difference of two is within 0.1 of the true one (and in floats).
    aged = cached["ageSeconds"] - first["extensions"]["sources"][0]["ageSeconds"]
    assert aged >= 0.1 - 1e-9
    assert headers["Cache-Control"].startswith("public, max-age=")
    assert headers2["ETag"] == headers["ETag"]


async def test_if_none_match_gets_a_304(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        await register(gw)
        _, headers, _ = await get(gw)
        status, headers2, body = await get(gw, **{"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, None)
    assert headers2["ETag"] == headers["ETag"]


async def test_variables_in_another_order_are_the_same_entry_and_others_are_not(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        await register(gw)
        await get(gw)
        reordered = {"near": {"longitude": -73.5673, "latitude": 45.5017}, "first": 5}
        _, same, _ = await get(gw, reordered)
        _, other, body = await get(gw, {**VARIABLES, "first": 6})
    assert same["X-Cache"] == "HIT"
    assert other["X-Cache"] == "MISS" and len(body["data"]["slots"]["edges"]) == 6


async def test_a_source_that_must_not_be_cached_makes_the_response_uncacheable(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    uncached = replace(fhir_definition(fhir_server), cache_ttl_s=0.0)
    async with gateway_for(uncached) as gw:
        await register(gw)
        _, first, _ = await get(gw)
        _, second, _ = await get(gw)
    assert first["X-Cache"] == second["X-Cache"] == "BYPASS"
    assert first["Cache-Control"] == "no-store"


async def test_a_response_is_not_served_past_the_ttl_of_its_sources(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    short = replace(fhir_definition(fhir_server), cache_ttl_s=1.0, cache_stale_s=0.0)
    async with gateway_for(short) as gw:
        await register(gw)
        await asyncio.sleep(1.05)  # the registration's source answers have expired
        _, stored, _ = await get(gw)
        _, hit, _ = await get(gw)
        await asyncio.sleep(1.05)
        _, expired, fresh = await get(gw)
    assert (stored["X-Cache"], hit["X-Cache"], expired["X-Cache"]) == ("MISS", "HIT", "MISS")
    assert stored["Cache-Control"] == "public, max-age=1"
    assert fresh["extensions"]["sources"][0]["fromCache"] is False


async def test_a_response_with_errors_is_never_cached(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    down = replace(fhir_definition(fhir_server), id="down", url="http://127.0.0.1:9/fhir")
    async with gateway_for(fhir_definition(fhir_server), down) as gw:
        await register(gw, clean=False)
        status, first_headers, first = await get(gw)
        _, second_headers, second = await get(gw)
    assert status == 200 and first["errors"][0]["extensions"]["source"] == "down"
    assert first_headers["Cache-Control"] == "no-store"
    assert second_headers["X-Cache"] == "BYPASS" and second["errors"]


async def test_post_hits_too_and_requests_with_a_key_bypass_the_cache(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        await register(gw)
        await get(gw)
        body = {"extensions": PERSISTED, "variables": VARIABLES}
        async with gw.session.post(gw.url, json=body) as response:
            posted = response.headers["X-Cache"]
        _, keyed, _ = await get(gw, Authorization="Bearer some-partner-key")
    assert posted == "HIT"
    assert keyed.get("X-Cache") != "HIT"


async def test_with_redis_every_instance_serves_the_stored_response(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    redis = {"cache": "redis", "redis_url": REDIS_URL}
    async with gateway_for(fhir_definition(fhir_server), **redis) as one:
        await register(one)
        # An entry of this run's own: Redis outlives test runs.
        near = {"latitude": 45.5 + random.random() / 1000, "longitude": -73.5673}
        variables = {**VARIABLES, "near": near}
        _, stored, first = await get(one, variables)
        async with gateway_for(**redis) as two:
            _, hit, second = await get(two, variables)
    assert (stored["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    assert second["data"] == first["data"]


async def test_cached_answers_still_count_against_the_rate_limit(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    async with gateway_for(fhir_definition(fhir_server), anonymous_rate=1.0) as gw:
        await register(gw)  # one token of the burst of 2
        statuses = [(await get(gw))[0] for _ in range(3)]
    assert statuses[0] == 200 and statuses[-1] == 429


async def test_a_request_naming_two_documents_is_never_cached_under_either(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    other = "query Near($first: Int!, $near: GeoPointInput) { sources { id } }"
    other_hash = hashlib.sha256(other.encode()).hexdigest()
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        await register(gw)
        await gw.query(
            other,
            VARIABLES,
            extensions={"persistedQuery": {"version": 1, "sha256Hash": other_hash}},
        )
        # The other document's hash, with this one's id beside it: whichever runs,
        # its answer must not be stored under this one's id.
        mixed = {"persistedQuery": {"version": 1, "sha256Hash": other_hash}}
        params = {
            "extensions": json.dumps(mixed),
            "variables": json.dumps(VARIABLES),
            "documentId": DIGEST,
        }
        async with gw.session.get(gw.url, params=params) as response:
            assert "X-Cache" not in response.headers
        _, headers, body = await get(gw)
    assert headers["X-Cache"] == "MISS"
    assert body["data"]["slots"]["edges"]  # this document's own answer


async def test_an_empty_authorization_header_is_refused_not_answered_from_the_cache(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        await register(gw)
        await get(gw)
        status, headers, _ = await get(gw, Authorization="")
    assert status == 401 and headers.get("X-Cache") != "HIT"
