"""A real OTLP/HTTP trace receiver on loopback: ``POST /v1/traces`` bodies decoded as
``ExportTraceServiceRequest`` (opentelemetry-proto), kept raw and decoded."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import serve


@dataclass
class Received:
    """What the receiver was sent: each body as it came, and every span decoded."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)

    def spans(self) -> list[Span]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def resource_attributes(self) -> list[dict[str, Any]]:
        return [attributes(r.resource.attributes) for q in self.requests for r in q.resource_spans]

    @property
    def raw(self) -> bytes:
        return b"".join(self.bodies)


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind is not None else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in pairs}


def strings_in(span: Span) -> Iterator[str]:
    """Every text of a span: its name, its attributes' keys and values, its events'."""
    yield span.name
    yield span.status.message
    for kv in span.attributes:
        yield kv.key
        yield str(value_of(kv.value))
    for event in span.events:
        yield event.name
        for kv in event.attributes:
            yield kv.key
            yield str(value_of(kv.value))


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Received]:
    received = Received()

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert request.content_type == "application/x-protobuf"
        decoded = ExportTraceServiceRequest()
        decoded.ParseFromString(body)
        received.bodies.append(body)
        received.requests.append(decoded)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    async with serve(app) as server:
        received.url = str(server.make_url("")).rstrip("/")
        yield received


@contextlib.asynccontextmanager
async def traced_to_receiver(monkeypatch: Any) -> AsyncIterator[Received]:
    """A receiver, and the ``OTEL_*`` variables that turn tracing on towards it (any
    other ``OTEL_*`` of the environment removed), for a gateway started inside."""
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    async with otlp_receiver() as received:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", received.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        yield received
