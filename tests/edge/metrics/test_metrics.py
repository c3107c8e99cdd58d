"""``/metrics``: Prometheus' text format, moving as a scripted run goes (a failing
source's failures and breaker, the response cache), open in development, behind an
operator key in production, and without any id, address or key in its labels."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from edge.documents.trusted import parse_manifest
from sources.pool.breaker import SourceBreakers
from sources.registry.partners import PartnerStore
from tests.conftest import Gateway, GatewayFactory, fhir_definition, serve

QUERY = """query Near($first: Int!, $near: GeoPointInput) {
  slots(filter: {near: $near, radiusKm: 30}, first: $first) {
    edges { node { id start clinic { id name } physician { id } } }
  }
}"""
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()
PERSISTED = {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}
NEAR = {"latitude": 45.5017, "longitude": -73.5673}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def failing_server() -> AsyncIterator[TestServer]:
    """A FHIR server that is always down (503)."""

    async def down(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", down)
    async with serve(app) as server:
        yield server


def metrics_url(gateway: Gateway) -> str:
    return gateway.url.replace("/graphql", "/metrics")


async def scrape(gateway: Gateway, **headers: str) -> tuple[str, Samples]:
    async with gateway.session.get(metrics_url(gateway), headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["content-type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def cached_get(gateway: Gateway) -> str:
    params = {
        "extensions": json.dumps(PERSISTED),
        "variables": json.dumps({"first": 3, "near": NEAR}),
    }
    async with gateway.session.get(gateway.url, params=params) as response:
        assert response.status == 200
        await response.read()
        return response.headers.get("X-Cache", "")


async def test_a_scripted_run_moves_the_failing_source_the_breaker_and_the_cache(
    gateway_for: GatewayFactory, fhir_server: TestServer, failing_server: TestServer
) -> None:
    down = fhir_definition(failing_server, "down-fhir")
    async with gateway_for(fhir_definition(fhir_server), down) as gw:
        _, before = await scrape(gw)
        assert value(before, "passerelle_source_breaker_state", source="down-fhir") == 0
        seen: list[dict[str, Any]] = []
        for first in range(1, SourceBreakers.THRESHOLD + 2):
            result = await gw.query(QUERY, {"first": first, "near": NEAR})
            codes = {error["extensions"]["code"] for error in result["errors"]}
            assert codes <= {"SOURCE_UNAVAILABLE"}
            seen.extend(edge["node"] for edge in result["data"]["slots"]["edges"])
        text, after = await scrape(gw)

    failures = value(
        after, "passerelle_source_failures_total", source="down-fhir", code="SOURCE_UNAVAILABLE"
    )
    assert failures >= SourceBreakers.THRESHOLD
    assert value(after, "passerelle_source_calls_total", source="down-fhir") >= failures
    assert value(after, "passerelle_source_breaker_state", source="down-fhir") == 2  # open
    assert value(after, "passerelle_source_status", source="down-fhir", status="DOWN") == 1
    assert value(after, "passerelle_source_breaker_state", source="demo-fhir") == 0
    assert value(after, "passerelle_source_calls_total", source="demo-fhir") >= 1
    assert (
        value(
            after, "passerelle_source_failures_total", source="demo-fhir", code="SOURCE_UNAVAILABLE"
        )
        == 0
    )
    assert value(after, "passerelle_source_data_age_seconds", source="demo-fhir") >= 0
    # The outcome: the first error's code (the answer has data from the other source).
    outcome = value(
        after, "passerelle_requests_total", operation="anonymous", outcome="SOURCE_UNAVAILABLE"
    )
    assert outcome == SourceBreakers.THRESHOLD + 1
    requests = sum(v for (name, _), v in after.items() if name == "passerelle_requests_total")
    assert requests >= SourceBreakers.THRESHOLD + 1
    assert any(
        name == "passerelle_request_duration_seconds_count"
        and dict(labels)["operation"] == "anonymous"
        for (name, labels) in after
    )
    # No clinic, slot or physician id, nor the client's address, in any label.
    ids = {node["id"] for node in seen} | {node["clinic"]["id"] for node in seen}
    ids |= {node["physician"]["id"] for node in seen if node["physician"]}
    assert seen and ids
    labels = {v for (_, pairs) in after for (_, v) in pairs}
    assert not ids & labels
    assert all(i not in text for i in ids)
    assert "127.0.0.1" not in text


async def test_in_production_metrics_need_an_operator_key(
    gateway_for: GatewayFactory, fhir_server: TestServer, registry_url: str
) -> None:
    with PartnerStore(registry_url) as store:
        _, operator = store.create_client("ops", operator=True)
        _, partner = store.create_client("partner")
    async with gateway_for(fhir_definition(fhir_server), env="production") as gw:
        url = metrics_url(gw)
        async with gw.session.get(url) as response:
            assert response.status == 401
        async with gw.session.get(url, headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401
        async with gw.session.get(url, headers={"Authorization": f"Bearer {partner}"}) as response:
            assert response.status == 403
        text, _ = await scrape(gw, Authorization=f"Bearer {operator}")
    assert "passerelle_source_calls_total" in text
    assert operator not in text and partner not in text


async def test_in_development_metrics_are_open_and_count_cache_hits(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        await gw.query(QUERY, {"first": 2, "near": NEAR})
        # A persisted query (APQ registers it), then asked twice by hash alone.
        await gw.query(QUERY, {"first": 3, "near": NEAR}, extensions=PERSISTED)
        assert [await cached_get(gw), await cached_get(gw)] == ["MISS", "HIT"]
        _, samples = await scrape(gw)
    assert value(samples, "passerelle_requests_total", operation="anonymous", outcome="ok") == 3
    assert value(samples, "passerelle_response_cache_lookups_total", result="hit") == 1
    assert value(samples, "passerelle_response_cache_lookups_total", result="miss") == 1
    assert value(samples, "passerelle_apq_lookups_total", result="hit") == 1
    cache = {
        r: value(samples, "passerelle_source_cache_lookups_total", source="demo-fhir", result=r)
        for r in ("fresh", "miss")
    }
    assert cache["miss"] >= 1 and cache["fresh"] >= 1
    assert value(samples, "passerelle_rate_limit_refusals_total", client="anonymous") == 0


SOURCES = "query SourcesStatus { sources { id status } }"


async def test_a_trusted_document_is_counted_under_its_name_and_refusals_by_kind(
    gateway_for: GatewayFactory, fhir_server: TestServer, registry_url: str
) -> None:
    document_id = hashlib.sha256(SOURCES.encode()).hexdigest()
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": document_id, "name": "SourcesStatus", "type": "query", "body": SOURCES}
        ],
    }
    with PartnerStore(registry_url) as store:
        _, key = store.create_client("clinic-finder", rate_limit_rps=1)
        store.push_documents("clinic-finder", parse_manifest(json.dumps(manifest)))
    headers = {"Authorization": f"Bearer {key}"}
    async with gateway_for(fhir_definition(fhir_server)) as gw:
        statuses = []
        for _ in range(4):  # a burst of 2 allowed, then 429s
            async with gw.session.post(
                gw.url, json={"documentId": document_id}, headers=headers
            ) as response:
                statuses.append(response.status)
        await gw.query("{ sources { id } }", operationName=None)
        text, samples = await scrape(gw)
    assert statuses[:2] == [200, 200] and 429 in statuses
    assert value(samples, "passerelle_requests_total", operation="SourcesStatus", outcome="ok") == 2
    assert value(samples, "passerelle_requests_total", operation="anonymous", outcome="ok") == 1
    assert value(
        samples, "passerelle_rate_limit_refusals_total", client="partner"
    ) == statuses.count(429)
    assert key not in text and "clinic-finder" not in text
    assert value(samples, "passerelle_source_status", source="demo-fhir", status="UP") == 1
