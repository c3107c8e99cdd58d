"""The compiled plan leaves the traces as they were: the same spans, in the same tree,
for a request completed by its plan and for the same request completed by
graphql-core (tracing on, a real OTLP/HTTP receiver on loopback)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from schema.plan import STATS
from tests.conftest import GatewayFactory, fhir_definition, rest_definition
from tests.edge.tracing.receiver import Received, attributes, traced_to_receiver
from tests.examples.test_queries import QUERIES
from tests.schema.test_compiled_plan import DOCUMENTS, POINTS, Both


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Received]:
    async with traced_to_receiver(monkeypatch) as received:
        yield received


def _shape(request: Span, spans: list[Span]) -> Counter[tuple[str, str, int]]:
    """The spans of a request's trace: each one's name, its parent's and its kind."""
    trace = [s for s in spans if s.trace_id == request.trace_id]
    names = {s.span_id: s.name for s in trace}
    return Counter((s.name, names.get(s.parent_span_id, ""), s.kind) for s in trace)


async def test_a_planned_request_has_the_spans_of_one_completed_by_graphql_core(
    gateway_for: GatewayFactory,
    fhir_server: TestServer,
    rest_server: TestServer,
    receiver: Received,
) -> None:
    bodies: list[dict[str, Any]] = [
        {"query": DOCUMENTS["NearMe"], "variables": {"near": POINTS[0]}},
        {"query": QUERIES["example_query"]},
    ]
    ids: list[tuple[str, str]] = []
    planned = STATS["planned"]
    definitions = (fhir_definition(fhir_server), rest_definition(rest_server))
    async with gateway_for(*definitions, cache="off") as gw:
        both = Both(gw)
        for body in bodies:
            await both.same(body)  # the same bytes with tracing on too
            pair = []
            for plan in (True, False):
                both.schema.compiled_plan = plan  # type: ignore[attr-defined]
                try:
                    async with gw.session.post(gw.url, json=body) as response:
                        assert response.status == 200
                        pair.append(response.headers["X-Request-Id"])
                finally:
                    both.schema.compiled_plan = True  # type: ignore[attr-defined]
            ids.append((pair[0], pair[1]))
    assert STATS["planned"] - planned >= 3 * len(bodies)  # tracing leaves the plan on
    spans = receiver.spans()
    requests = {
        attributes(s.attributes).get("passerelle.request_id"): s
        for s in spans
        if s.kind == Span.SpanKind.SPAN_KIND_SERVER and s.name == "POST /graphql"
    }
    for with_plan, without in ids:
        shape = _shape(requests[with_plan], spans)
        assert ("graphql.execute", "POST /graphql", Span.SpanKind.SPAN_KIND_INTERNAL) in shape
        assert any(name.startswith("source ") for name, _, _ in shape)
        assert shape == _shape(requests[without], spans)
