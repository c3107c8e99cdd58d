"""A server span per HTTP request (:class:`TracedApp`), outermost of the app.

Its parent is the caller's W3C ``traceparent`` (and ``tracestate``) only when the
peer is a ``--trusted-proxy`` (as ``X-Request-Id`` in ``edge/middleware/request_log.py``);
from any other peer those headers are ignored and a new trace begins. The span is
named ``METHOD route`` and holds the route's template (never a path with a slot id,
nor a query string), the status, the request id, whether the response cache
answered, and the GraphQL operation as the metrics label it: a trusted document's
name, else ``anonymous`` (``other`` past the label's bound, ``batch`` for several).
No client address, header, variable or key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from edge.access_log import route_of
from edge.exchange import exchange_in
from edge.metrics import ANONYMOUS
from edge.middleware.rate_limit import peer_trusted
from edge.middleware.request_log import operation_type
from edge.tracing.spans import PROPAGATOR

if TYPE_CHECKING:
    import ipaddress

    from opentelemetry import trace
    from starlette.datastructures import State
    from starlette.types import Message, Receive, Scope, Send

    from edge.middleware.request_log import RequestLog

__all__ = ["TracedApp"]

_CARRIED = (b"traceparent", b"tracestate")


class TracedApp:
    """ASGI middleware: a server span around each HTTP request (WebSockets pass)."""

    def __init__(
        self,
        app: RequestLog,
        tracer: trace.Tracer,
        trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    ) -> None:
        self.app = app
        self.tracer = tracer
        self.trusted_proxies = trusted_proxies

    @property
    def state(self) -> State:
        """The app's state, where its lifespan keeps its services (``services_of``)."""
        return self.app.state

    def _parent(self, scope: Scope) -> Context:
        """The trusted proxy's trace, else an empty context: a new trace."""
        peer = scope.get("client")
        if peer is None or not peer_trusted(peer[0], self.trusted_proxies):
            return Context()
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _CARRIED
        }
        return PROPAGATOR.extract(carrier, context=Context()) if carrier else Context()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen: dict[str, Any] = {"status": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-request-id":
                        seen["request_id"] = value.decode("latin-1")
                    elif name == b"x-cache":
                        seen["cache"] = value.decode("latin-1").lower()
            await send(message)

        method = scope["method"]
        with self.tracer.start_as_current_span(
            method,
            context=self._parent(scope),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, sending)
            finally:
                status = seen["status"]
                route = _route(scope, status)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                for key in ("request_id", "cache"):
                    if key in seen:
                        span.set_attribute(f"passerelle.{key}", seen[key])
                for key, value in _operation(scope).items():
                    span.set_attribute(key, value)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def _route(scope: Scope, status: int) -> str:
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    return route_of(scope["path"]) if status != 404 else "(unmatched)"


def _operation(scope: Scope) -> dict[str, str]:
    """The operation as the metrics label it, and its type."""
    exchange = exchange_in(scope)
    if exchange is None or not exchange.ran:
        return {}
    if len(exchange.ran) > 1:
        return {"graphql.operation.name": "batch"}
    operation = exchange.ran[0]
    name = operation.trusted_name or ANONYMOUS
    metrics = exchange.services.metrics
    if metrics is not None:
        name = metrics.operations(name)
    return {"graphql.operation.name": name, "graphql.operation.type": operation_type(operation)}
