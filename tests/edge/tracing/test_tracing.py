"""OpenTelemetry traces of a live gateway, received by a real OTLP/HTTP receiver on
loopback: a near-me query's request, phases and source calls in one trace, with no
coordinate, key or token in any span; ``traceparent`` sent upstream, and taken from a
trusted proxy only."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from edge.documents.trusted import parse_manifest
from examples import demo_fhir
from examples.world import World
from sources.registry.partners import PartnerStore
from sources.transport.retry import ATTEMPTS
from tests.conftest import REST_KEY, GatewayFactory, fhir_definition, rest_definition, serve
from tests.edge.tracing.receiver import Received, attributes, strings_in, traced_to_receiver

LATITUDE, LONGITUDE = 45.5017, -73.5673
NEAR = {"latitude": LATITUDE, "longitude": LONGITUDE}
NEAR_ME = """query NearMe($near: GeoPointInput) {
  slots(filter: {near: $near, radiusKm: 30}, first: 5) {
    edges { node { id start clinic { id name } } }
  }
}"""
INLINE = """{ slots(filter: {near: {latitude: 45.5017, longitude: -73.5673}, radiusKm: 25},
  first: 2) { edges { node { id } } } }"""
BROKEN = "{ slots(filter: {near: {latitude: 45.5017, longitude: -73.5673"
# The coordinates as any layer could have written them, and the words around them.
NEEDLES = ("45.5017", "45.50", "45,50", "-73.56", "73.5673", "73,56", "latitude", "longitude")
TRACEPARENTS = web.AppKey("traceparents", list[str])
SERVER, CLIENT = Span.SpanKind.SPAN_KIND_SERVER, Span.SpanKind.SPAN_KIND_CLIENT


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Received]:
    """The receiver, and the variables that turn tracing on towards it."""
    async with traced_to_receiver(monkeypatch) as received:
        yield received


@pytest.fixture
async def traced_fhir(world: World) -> AsyncIterator[TestServer]:
    """The demo FHIR server, keeping the ``traceparent`` of each request it gets."""
    seen: list[str] = []

    @web.middleware
    async def keep(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen.append(request.headers.get("traceparent", ""))
        return await handler(request)

    app = demo_fhir.build_app(world)
    app[TRACEPARENTS] = seen
    app.middlewares.append(keep)
    async with serve(app) as server:
        yield server


def by_id(spans: list[Span]) -> dict[bytes, Span]:
    return {span.span_id: span for span in spans}


def ancestors(span: Span, index: dict[bytes, Span]) -> Iterator[Span]:
    while span.parent_span_id in index:
        span = index[span.parent_span_id]
        yield span


def requests_of(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s.kind == SERVER and s.name == "POST /graphql"]


async def post(gw: Any, body: dict[str, Any], **headers: str) -> tuple[dict[str, Any], str]:
    async with gw.session.post(gw.url, json=body, headers=headers) as response:
        return await response.json(), response.headers["X-Request-Id"]


async def test_a_near_me_query_is_one_trace_of_its_phases_and_source_calls_without_whereabouts(
    gateway_for: GatewayFactory,
    traced_fhir: TestServer,
    rest_server: TestServer,
    registry_url: str,
    receiver: Received,
) -> None:
    document_id = hashlib.sha256(NEAR_ME.encode()).hexdigest()
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": document_id, "name": "NearMe", "type": "query", "body": NEAR_ME}],
    }
    with PartnerStore(registry_url) as partners:
        _, key = partners.create_client("rdv-app")
        partners.push_documents("rdv-app", parse_manifest(json.dumps(manifest)))
    async with gateway_for(fhir_definition(traced_fhir), rest_definition(rest_server)) as gw:
        found, first_id = await post(gw, {"query": NEAR_ME, "variables": {"near": NEAR}})
        assert "errors" not in found and found["data"]["slots"]["edges"], found
        inline, _ = await post(gw, {"query": INLINE})
        assert "errors" not in inline, inline
        broken, broken_id = await post(gw, {"query": BROKEN})
        assert broken["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
        trusted, trusted_id = await post(
            gw,
            {"documentId": f"sha256:{document_id}", "variables": {"near": NEAR}},
            Authorization=f"Bearer {key}",
        )
        assert "errors" not in trusted, trusted
    # The gateway has stopped: what was batched has been flushed to the receiver.
    spans = receiver.spans()
    index = by_id(spans)
    # Spans arrive as they end, not as their requests were sent: found by request id.
    requests = requests_of(spans)
    assert len(requests) == 4
    by_request = {attributes(r.attributes)["passerelle.request_id"]: r for r in requests}
    assert {"service.name": "passerelle"}.items() <= receiver.resource_attributes()[0].items()

    request = by_request[first_id]
    seen = attributes(request.attributes)
    assert seen["http.route"] == "/graphql" and seen["http.response.status_code"] == 200
    assert seen["graphql.operation.name"] == "anonymous"
    assert seen["graphql.operation.type"] == "query"
    assert seen["passerelle.request_id"] == first_id
    assert request.parent_span_id == b""  # a new trace: no one gave it a parent
    trace = [s for s in spans if s.trace_id == request.trace_id]
    phases = {s.name: s for s in trace if s.parent_span_id == request.span_id}
    assert set(phases) == {"graphql.parse", "graphql.validate", "graphql.execute"}
    assert attributes(phases["graphql.execute"].attributes) == {"graphql.operation.type": "query"}
    calls = [s for s in trace if s.name.startswith("source ")]
    assert {attributes(c.attributes)["passerelle.source.id"] for c in calls} == {
        "demo-fhir",
        "demo-rest",
    }
    for call in calls:
        assert call.kind == CLIENT
        assert phases["graphql.execute"] in list(ancestors(call, index))
        facts = attributes(call.attributes)
        assert facts["passerelle.source.protocol"] in ("FHIR_R4", "REST_JSON")
        assert facts["passerelle.source.cache"] == "miss"
        assert facts["passerelle.source.retries"] == 0
        assert facts["passerelle.source.outcome"] == "ok"
        assert facts["http.response.status_code"] == 200
    # Each upstream request: a child of its source call, its URL without query string.
    upstream = [s for s in trace if s.kind == CLIENT and not s.name.startswith("source ")]
    assert upstream
    for http in upstream:
        url = attributes(http.attributes)["url.full"]
        assert url.startswith("http://127.0.0.1:") and "?" not in url
        assert any(a.name.startswith("source ") for a in ancestors(http, index))

    # The syntax error: its parse span failed, with its type only (no quoted document).
    parse = next(
        s
        for s in spans
        if s.name == "graphql.parse" and s.trace_id == by_request[broken_id].trace_id
    )
    assert parse.status.code == parse.status.STATUS_CODE_ERROR
    assert parse.status.message == "GraphQLSyntaxError"  # its type only
    # The trusted document: under its name, as the metrics label it.
    assert attributes(by_request[trusted_id].attributes)["graphql.operation.name"] == "NearMe"

    # No coordinate, key or token anywhere: in the bytes sent, nor in any decoded text.
    raw = receiver.raw
    secrets = (*NEEDLES, REST_KEY, key, key.split(".")[-1])
    for needle in secrets:
        assert needle.encode() not in raw, needle
    texts = [text for span in spans for text in strings_in(span)]
    assert not [t for t in texts if any(n in t for n in secrets)]
    for number in (LATITUDE, LONGITUDE):
        assert struct.pack("<d", number) not in raw
        assert struct.pack("<f", number) not in raw


async def test_upstreams_receive_the_traceparent_of_the_request_s_trace(
    gateway_for: GatewayFactory, traced_fhir: TestServer, receiver: Received
) -> None:
    async with gateway_for(fhir_definition(traced_fhir)) as gw:
        started = len(traced_fhir.app[TRACEPARENTS])  # the adapter's start: no trace
        await post(gw, {"query": NEAR_ME, "variables": {"near": NEAR}})
    sent = traced_fhir.app[TRACEPARENTS][started:]
    assert sent and all(sent)
    spans = receiver.spans()
    (request,) = requests_of(spans)
    upstream_ids = {s.span_id.hex() for s in spans if "url.full" in attributes(s.attributes)}
    for header in sent:
        version, trace_id, parent_id, flags = header.split("-")
        assert version == "00" and int(flags, 16) & 1  # sampled
        assert trace_id == request.trace_id.hex()
        assert parent_id in upstream_ids
    # Background work outside any request carried none.
    assert not any(traced_fhir.app[TRACEPARENTS][:started])


GIVEN_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GIVEN_PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "other-peer"])
async def test_an_inbound_traceparent_is_followed_only_from_a_trusted_proxy(
    gateway_for: GatewayFactory, traced_fhir: TestServer, receiver: Received, trusted: bool
) -> None:
    proxies = ("127.0.0.1/32",) if trusted else ("10.0.0.0/8",)
    async with gateway_for(
        fhir_definition(traced_fhir),
        trusted_proxies=tuple(ipaddress.ip_network(p) for p in proxies),
    ) as gw:
        started = len(traced_fhir.app[TRACEPARENTS])
        await post(
            gw,
            {"query": NEAR_ME, "variables": {"near": NEAR}},
            traceparent=f"00-{GIVEN_TRACE}-{GIVEN_PARENT}-01",
        )
    (request,) = requests_of(receiver.spans())
    upstream = {h.split("-")[1] for h in traced_fhir.app[TRACEPARENTS][started:]}
    if trusted:
        assert request.trace_id.hex() == GIVEN_TRACE
        assert request.parent_span_id.hex() == GIVEN_PARENT
        assert upstream == {GIVEN_TRACE}
    else:
        assert request.trace_id.hex() != GIVEN_TRACE
        assert request.parent_span_id == b""
        assert upstream == {request.trace_id.hex()}


async def test_a_failing_source_s_span_holds_its_retries_status_and_code(
    gateway_for: GatewayFactory, receiver: Received
) -> None:
    async def down(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", down)
    async with serve(app) as failing, gateway_for(fhir_definition(failing, "down")) as gw:
        answer, _ = await post(gw, {"query": NEAR_ME, "variables": {"near": NEAR}})
    assert answer["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    spans = receiver.spans()
    (request,) = requests_of(spans)
    (call,) = [s for s in spans if s.name == "source slots"]
    assert call.trace_id == request.trace_id
    facts = attributes(call.attributes)
    assert facts["passerelle.source.outcome"] == "SOURCE_UNAVAILABLE"
    assert facts["error.type"] == "SOURCE_UNAVAILABLE"
    assert facts["http.response.status_code"] == 503
    assert facts["passerelle.source.retries"] == ATTEMPTS - 1
    assert call.status.code == call.status.STATUS_CODE_ERROR
    tries = [s for s in spans if "url.full" in attributes(s.attributes)]
    assert len(tries) == ATTEMPTS
    assert all(attributes(t.attributes)["http.response.status_code"] == 503 for t in tries)


async def test_a_cached_hit_is_one_span_without_phases_or_source_calls(
    gateway_for: GatewayFactory, traced_fhir: TestServer, receiver: Received
) -> None:
    digest = hashlib.sha256(NEAR_ME.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    params = {"extensions": json.dumps(persisted), "variables": json.dumps({"near": NEAR})}
    async with gateway_for(fhir_definition(traced_fhir)) as gw:
        await post(gw, {"query": NEAR_ME, "variables": {"near": NEAR}, "extensions": persisted})
        caches = []
        for _ in range(2):
            async with gw.session.get(gw.url, params=params) as response:
                assert response.status == 200
                caches.append(response.headers["X-Cache"])
    assert caches == ["MISS", "HIT"]
    spans = receiver.spans()
    gets = [s for s in spans if s.kind == SERVER and s.name == "GET /graphql"]
    assert [attributes(g.attributes)["passerelle.cache"] for g in gets] == ["miss", "hit"]
    hit = gets[1]
    assert [s for s in spans if s.trace_id == hit.trace_id] == [hit]
    # Its span says nothing of the variables the URL carried.
    assert not [t for t in strings_in(hit) if any(n in t for n in NEEDLES)]
