"""The seam through which the pool's source calls are traced, without importing a tracer.

The pool knows only these two protocols; the edge gives it an implementation
(``edge/tracing/``, OpenTelemetry) when tracing is on, and nothing when it is off:
then each read pays one ``is None`` test, and no tracing library is imported.

    with tracer.source_call(source.id, "FHIR_R4", "slots") as span:
        outcome = ...                       # the read: from the cache, or a call
        span.finish("miss", outcome, stats)

A span holds the source's registry id, its protocol, what was read, how the cache
served it, the retries and the last HTTP status of its call, and its outcome (``ok``
or an error's code): never a query's values, an URL's query string, a key or a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sources.transport.retry import CallStats

__all__ = ["CACHE_BYPASS", "CACHE_NONE", "SourceCallSpan", "SourceCallTracer"]

# How a read was served besides fresh | stale | miss: by a source not cached (a bulk
# feed answers from its own copy), or a call made around the cache (a slot check).
CACHE_NONE = "none"
CACHE_BYPASS = "bypass"


class SourceCallSpan(Protocol):
    def finish(self, cache: str, outcome: object, stats: CallStats | None) -> None:
        """The read is over: ``cache`` (fresh, stale, miss, none, bypass), ``outcome``
        (the answer, or the ``SourceError`` it failed with), ``stats`` (its call's, or
        None when no call was made for it)."""


class SourceCallTracer(Protocol):
    def source_call(
        self, source_id: str, protocol: str, kind: str
    ) -> AbstractContextManager[SourceCallSpan]:
        """A span around one read of one source, current while it runs (so that the
        HTTP requests of its call are its children, and carry its trace upstream)."""
