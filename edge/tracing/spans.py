"""The spans below the request's: its GraphQL phases (``PhaseTracing``, for
``schema/phase_spans.py``), each read of a source (``SourceCalls``, for
``sources/pool/tracing.py``) and each request sent upstream (``outbound_middleware``,
an aiohttp client middleware that also sends the W3C ``traceparent``).

Only spans inside a traced request are made: a read or an upstream request of
background work (a bulk feed's poll, the watch's calls) has no current span, and
makes none. No span holds a query string, a body, a variable, a key or a token, nor
an error's message (upstream messages and syntax errors may quote them): an
upstream URL is its scheme, host, port and path; an error is its code or type.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from schema.error_codes import source_code
from sources.errors import SourceError

if TYPE_CHECKING:
    from contextvars import Token

    from aiohttp import ClientRequest, ClientResponse
    from aiohttp.client_middlewares import ClientHandlerType, ClientMiddlewareType
    from opentelemetry.context import Context

    from sources.pool.tracing import SourceCallSpan
    from sources.transport.retry import CallStats

__all__ = ["PROPAGATOR", "PhaseSpans", "SourceCalls", "outbound_middleware", "upstream_url"]

# W3C Trace Context only (traceparent, tracestate), whatever OTEL_PROPAGATORS says.
PROPAGATOR = TraceContextTextMapPropagator()


def _in_trace() -> bool:
    return trace.get_current_span().get_span_context().is_valid


class PhaseSpans:
    """``schema.phase_spans.PhaseTracer``: a span per GraphQL phase."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def failed(self, span: object, error: Exception) -> None:
        """``span`` (a phase's) ends in error: ``error``'s type only (a syntax error's
        message quotes the document)."""
        if isinstance(span, trace.Span):
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))

    @contextlib.contextmanager
    def phase(self, name: str, operation_type: str | None = None) -> Iterator[object]:
        if not _in_trace():  # a WebSocket's subscription: no request span to be part of
            yield None
            return
        attributes = {"graphql.operation.type": operation_type} if operation_type else {}
        span = self.tracer.start_span(name, attributes=attributes)
        token: Token[Context] | None = context.attach(trace.set_span_in_context(span))
        try:
            yield span
        except GeneratorExit:
            # Strawberry dropped the hook unclosed (an extension after it failed as it
            # entered; the parse cache no longer does, schema.validation.CachedParse):
            # closed later, maybe from another context, where detaching would fail.
            token = None
            span.set_status(Status(StatusCode.ERROR, "the phase did not complete"))
            raise
        except Exception as exc:
            # Its type only: a syntax error's message quotes the document.
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            if token is not None:
                context.detach(token)
            span.end()


class _CallSpan:
    __slots__ = ("span",)

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def finish(self, cache: str, outcome: object, stats: CallStats | None) -> None:
        span = self.span
        span.set_attribute("passerelle.source.cache", cache)
        if stats is not None:
            span.set_attribute("passerelle.source.retries", stats.retries)
            if stats.status is not None:
                span.set_attribute("http.response.status_code", stats.status)
        if isinstance(outcome, SourceError):
            code = str(source_code(outcome))
            span.set_attribute("passerelle.source.outcome", code)
            span.set_attribute("error.type", code)
            span.set_status(Status(StatusCode.ERROR, code))
        else:
            span.set_attribute("passerelle.source.outcome", "ok")


class _Untraced:
    __slots__ = ()

    def finish(self, cache: str, outcome: object, stats: CallStats | None) -> None:
        pass


_UNTRACED = _Untraced()


class SourceCalls:
    """``sources.pool.tracing.SourceCallTracer``: a client span per read of a source."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    @contextlib.contextmanager
    def source_call(self, source_id: str, protocol: str, kind: str) -> Iterator[SourceCallSpan]:
        if not _in_trace():
            yield _UNTRACED
            return
        attributes = {
            "passerelle.source.id": source_id,
            "passerelle.source.protocol": protocol,
            "passerelle.source.read": kind,
        }
        with self.tracer.start_as_current_span(
            f"source {kind}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield _CallSpan(span)


def upstream_url(request: ClientRequest) -> str:
    """Scheme, host, port and path: no user, password, query string or fragment."""
    url = request.url
    host = f"[{url.host}]" if url.host and ":" in url.host else url.host
    return f"{url.scheme}://{host}:{url.port}{url.path}"


def outbound_middleware(tracer: trace.Tracer) -> ClientMiddlewareType:
    """A client span per upstream request made inside a traced one, its context sent
    upstream as ``traceparent``; requests of background work go out untouched."""

    async def traced(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        if not _in_trace():
            return await handler(request)
        attributes: dict[str, str | int] = {
            "http.request.method": request.method,
            "url.full": upstream_url(request),
            "server.address": request.url.host or "",
            "server.port": request.url.port or 0,
        }
        with tracer.start_as_current_span(
            request.method,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            PROPAGATOR.inject(request.headers)
            try:
                response = await handler(request)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 400:
                span.set_attribute("error.type", str(response.status))
                span.set_status(Status(StatusCode.ERROR))
            return response

    return traced
