"""OpenTelemetry traces, off by default, exported over OTLP/HTTP ([README](README.md)).

Turned on by the standard ``OTEL_*`` variables (``config.tracing_wanted``); when they
leave it off, :func:`tracing_from` returns None and nothing of OpenTelemetry is
imported. When on, :class:`~edge.tracing.provider.Tracing` holds the app's tracer
provider (its own, never the process-wide one), the span per HTTP request
(``asgi``), the phases' and the source calls' spans and the outbound requests'
(``spans``), which carry ``traceparent`` upstream::

    tracing = tracing_from(os.environ)      # None: off
    if tracing is not None:
        schema = make_schema(tracer=tracing.phases)
        pool.tracer = tracing.sources
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from edge.tracing.config import tracing_wanted

if TYPE_CHECKING:
    from edge.tracing.provider import Tracing

__all__ = ["tracing_from", "tracing_wanted"]


def tracing_from(environ: Mapping[str, str]) -> Tracing | None:
    """The app's tracing when the ``OTEL_*`` variables turn it on, else None (and the
    SDK is not imported); ``ConfigError`` for a value that cannot be honoured."""
    if not tracing_wanted(environ):
        return None
    from edge.tracing.provider import Tracing

    return Tracing.from_environ(environ)
