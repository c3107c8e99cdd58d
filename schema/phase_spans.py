"""A span for each phase of an operation, parse, validate and execute, when tracing is on.

The schema knows only :class:`PhaseTracer`; the edge gives ``make_schema`` one
(``edge/tracing/``, OpenTelemetry) when tracing is on, and the extension is not
registered at all when it is off. The spans are named ``graphql.parse``,
``graphql.validate`` and ``graphql.execute`` and carry only the operation's type
(``query``, ``mutation``, ``subscription``): never its text, its variables nor the
message of an error (a syntax error quotes the document, coordinates included).

    schema = make_schema(tracer=tracing.phases)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from strawberry.extensions import SchemaExtension

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = ["PhaseSpans", "PhaseTracer"]


class PhaseTracer(Protocol):
    def phase(self, name: str, operation_type: str | None = None) -> AbstractContextManager[object]:
        """A span for the phase ``name``, current while it runs (the sources' calls made
        while executing are its children)."""

    def failed(self, span: object, error: Exception) -> None:
        """The phase's ``span`` (what ``phase`` gave) ends in error."""


class PhaseSpans(SchemaExtension):
    """Spans around strawberry's parse, validate and execute steps (no per-field hook:
    that would cost on every field resolved)."""

    def __init__(self, tracer: PhaseTracer) -> None:
        self.tracer = tracer

    def on_parse(self) -> Iterator[None]:
        with self.tracer.phase("graphql.parse") as span:
            yield
            # A syntax error is reported by strawberry's own step, which closes this
            # hook normally (schema.validation.CachedParse): it is in the context.
            errors = self.execution_context.pre_execution_errors
            if errors and self.execution_context.graphql_document is None:
                self.tracer.failed(span, errors[0])

    def on_validate(self) -> Iterator[None]:
        with self.tracer.phase("graphql.validate"):
            yield

    def on_execute(self) -> Iterator[None]:
        try:
            kind: str | None = self.execution_context.operation_type.value
        except Exception:  # no document, or no operation in it: not known
            kind = None
        with self.tracer.phase("graphql.execute", kind):
            yield
