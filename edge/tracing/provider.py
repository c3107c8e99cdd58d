"""The app's tracing: its own tracer provider, exporter and spans (``edge/tracing/``).

Imported only when tracing is on. The provider is the app's, never the process-wide
one (several apps live in one test process, each exporting to its own receiver); its
sampler, resource and exporter read the standard variables themselves
(``OTEL_TRACES_SAMPLER``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, the
``OTEL_EXPORTER_OTLP_*`` endpoint, headers, timeout and compression, the
``OTEL_BSP_*`` batch schedule). Spans are batched and sent by the SDK's worker
thread, off the event loop; :meth:`Tracing.aclose` flushes them when the app stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from edge.tracing.asgi import TracedApp
from edge.tracing.spans import PhaseSpans, SourceCalls, outbound_middleware

if TYPE_CHECKING:
    import ipaddress

    from aiohttp.client_middlewares import ClientMiddlewareType

    from edge.middleware.request_log import RequestLog

__all__ = ["DEFAULT_SERVICE_NAME", "Tracing"]

DEFAULT_SERVICE_NAME = "passerelle"
_SCOPE = "passerelle"


class Tracing:
    """What traces one app: ``phases`` for the schema, ``sources`` for the pool,
    :meth:`client_middlewares` for the sources' aiohttp session, :meth:`wrap` for the
    app, :meth:`start` and :meth:`aclose` in its lifespan."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        tracer = provider.get_tracer(_SCOPE)
        self.tracer = tracer
        self.phases = PhaseSpans(tracer)
        self.sources = SourceCalls(tracer)
        self._processor: BatchSpanProcessor | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Tracing:
        """Checked by ``config.tracing_wanted(environ)`` first; the SDK's parts read the
        process's own environment (``os.environ``) as they are built."""
        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES named the service.
            resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
        # The sampler from OTEL_TRACES_SAMPLER (parentbased_always_on by default).
        return cls(TracerProvider(resource=resource, shutdown_on_exit=False))

    def start(self) -> None:
        """Export from now on (the batch processor's worker thread starts here)."""
        if self._processor is None:
            self._processor = BatchSpanProcessor(OTLPSpanExporter())
            self.provider.add_span_processor(self._processor)

    async def aclose(self) -> None:
        """Flush what is batched and stop exporting; in a thread: the export is a
        blocking HTTP request, and its receiver may be served by this very loop."""
        await asyncio.to_thread(self.provider.shutdown)

    def client_middlewares(self) -> tuple[ClientMiddlewareType, ...]:
        """For the sources' session: a span per upstream request inside a traced one,
        and its ``traceparent`` header."""
        return (outbound_middleware(self.tracer),)

    def wrap(
        self,
        app: RequestLog,
        trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    ) -> TracedApp:
        """The app with a span per HTTP request around it (outermost)."""
        return TracedApp(app, self.tracer, trusted_proxies)
