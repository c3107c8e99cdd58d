"""Automatic persisted queries (Apollo's APQ), with raw requests and with the real
``@apollo/client`` persisted-queries link in Node (tests/edge/apollo)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from edge.documents.apq import is_sha256_digest
from tests.conftest import Gateway, GatewayFactory, fhir_definition, rest_definition
from tests.node_tools import npm_installed, run_node_json
from tests.ports import REDIS_URL

APOLLO = Path(__file__).parent / "apollo"
QUERY = "query Sources { sources { id status } }"
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()


def persisted(digest: str = DIGEST, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def post(gateway: Gateway, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    async with gateway.session.post(gateway.url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def get(gateway: Gateway, extensions: dict[str, Any], **params: str) -> tuple[int, Any]:
    query = {"extensions": json.dumps(extensions), **params}
    async with gateway.session.get(gateway.url, params=query) as response:
        return response.status, await response.json(content_type=None)


def code(result: dict[str, Any]) -> str:
    return str(result["errors"][0]["extensions"]["code"])


async def test_an_unknown_hash_is_not_found_with_a_200_then_registered(gateway: Gateway) -> None:
    status, result = await get(gateway, persisted())
    assert (status, code(result)) == (200, "PERSISTED_QUERY_NOT_FOUND")
    assert result["errors"][0]["message"] == "PersistedQueryNotFound"
    # Still a 200 when the client prefers the new media type (Apollo gives up on a 400).
    status, result = await post(
        gateway, {"extensions": persisted()}, Accept="application/graphql-response+json"
    )
    assert (status, code(result)) == (200, "PERSISTED_QUERY_NOT_FOUND")

    status, result = await post(gateway, {"query": QUERY, "extensions": persisted()})
    assert status == 200 and result["data"]["sources"]
    status, by_hash = await get(gateway, persisted())
    assert status == 200 and by_hash["data"] == result["data"]
    status, by_hash = await post(gateway, {"extensions": persisted()})
    assert status == 200 and by_hash["data"] == result["data"]


async def test_a_hash_that_does_not_match_its_query_is_refused(gateway: Gateway) -> None:
    status, result = await post(gateway, {"query": QUERY, "extensions": persisted("ab" * 32)})
    assert code(result) == "PERSISTED_QUERY_HASH_MISMATCH"
    assert (status, result.get("data")) == (200, None)  # not executed
    # Nothing was registered under the wrong hash.
    _, again = await get(gateway, persisted("ab" * 32))
    assert code(again) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        (persisted(version=2), "persistedQuery must be {version: 1, sha256Hash}"),
        (persisted(digest="not-a-hash"), "persistedQuery.sha256Hash must be 64 hexadecimal"),
        ({"persistedQuery": "yes"}, "persistedQuery must be {version: 1, sha256Hash}"),
    ],
)
async def test_a_malformed_persisted_query_extension_says_what_to_fix(
    gateway: Gateway, extensions: dict[str, Any], message: str
) -> None:
    status, result = await post(gateway, {"query": QUERY, "extensions": extensions})
    assert status == 200
    assert code(result) == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert result["errors"][0]["message"].startswith(message)


# Costs 5,650: over the default limit (5,000).
COSTLY = (
    "query Costly { clinics(first: 50) { edges { node { name physicians { displayName } "
    "nextSlots(first: 100) { start } } } } }"
)


async def test_queries_are_registered_within_the_configured_cost_limit(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    costly = persisted(hashlib.sha256(COSTLY.encode()).hexdigest())
    async with gateway_for(fhir_definition(fhir_server), max_cost=10_000) as gw:
        status, result = await post(gw, {"query": COSTLY, "extensions": costly})
        assert status == 200 and "errors" not in result
        status, by_hash = await get(gw, costly)  # registered: the gateway runs it
        assert status == 200 and by_hash["data"] == result["data"]
    async with gateway_for(max_cost=5) as gw:
        status, result = await post(gw, {"query": QUERY, "extensions": persisted()})
        assert code(result) == "COST_LIMIT_EXCEEDED"
        _, again = await get(gw, persisted())  # not kept: the gateway refuses it
        assert code(again) == "PERSISTED_QUERY_NOT_FOUND"


async def test_registered_hashes_are_shared_through_redis(
    gateway_for: GatewayFactory, fhir_server: TestServer, rest_server: TestServer
) -> None:
    redis = {"cache": "redis", "redis_url": REDIS_URL}
    text = f"query Shared{DIGEST[:8]} {{ sources {{ id }} }}"  # unique to this run
    digest = hashlib.sha256(text.encode()).hexdigest()
    definitions = (fhir_definition(fhir_server), rest_definition(rest_server))
    async with gateway_for(*definitions, **redis) as one, gateway_for(**redis) as two:
        status, _ = await post(one, {"query": text, "extensions": persisted(digest)})
        assert status == 200
        status, result = await get(two, persisted(digest))
    assert status == 200 and {s["id"] for s in result["data"]["sources"]} == {
        "demo-fhir",
        "demo-rest",
    }


@pytest.fixture(scope="session")
def apollo_installed() -> Path:
    return npm_installed(APOLLO, "@apollo/client") / "apq_check.mjs"


async def test_apollo_clients_persisted_query_link_works_unchanged_get_included(
    gateway: Gateway, apollo_installed: Path
) -> None:
    report = await run_node_json(apollo_installed, gateway.url, timeout_s=60)
    assert report["requests"] == [
        # The hash alone over GET: unknown yet, so the link sends the query with it...
        {"method": "GET", "status": 200, "sentQuery": False, "sentHash": True},
        {"method": "POST", "status": 200, "sentQuery": True, "sentHash": True},
        # ...and from then on the hash alone, over GET (CDN- and cache-friendly).
        {"method": "GET", "status": 200, "sentQuery": False, "sentHash": True},
    ]
    edges = report["first"]["slots"]["edges"]
    assert len(edges) == 3 and report["second"] == report["first"]


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        (hashlib.sha256(b"{ sources { id } }").hexdigest(), True),
        (hashlib.sha256(b"{ sources { id } }").hexdigest().upper(), True),
        ("a" * 63, False),
        ("a" * 65, False),
        ("g" * 64, False),
        ("sha256:" + "a" * 64, False),  # the prefix is the caller's to remove
    ],
)
def test_a_persisted_query_id_is_a_sha256_digest_in_either_case(text: str, digest: bool) -> None:
    # One definition for APQ hashes and partners' document ids alike.
    assert is_sha256_digest(text) is digest
