"""``SourceErrors``: the failures of booking sources, added to the response's errors.

A failed source never fails the query: resolvers answer with what the other
sources gave and report the failure on the request context; this extension
turns each into one GraphQL error with ``extensions.code`` (``SOURCE_TIMEOUT``,
``SOURCE_UNAVAILABLE``, ``SOURCE_BAD_RESPONSE``, from the catalogue) and
``extensions.source``. A subscription's event is resolved like a query of its own:
what its fields' lookups reported is added to that event's errors
(``on_stream_result``); its sources failing while watched are in the event itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType

from resolvers.context import RequestContext
from schema.error_codes import source_code
from sources.errors import SourceError


def source_error(error: SourceError, path: list[str | int] | None) -> GraphQLError:
    """The client-facing form of a source failure: what failed, never upstream internals."""
    return GraphQLError(
        f"Booking source {error.source_id!r} failed: {error.message}",
        path=path,
        extensions={"code": source_code(error).value, "source": error.source_id},
    )


class SourceErrors(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        result = self.execution_context.result
        if result is None or not isinstance(context, RequestContext) or not context.reported:
            return
        extra = [source_error(r.error, r.path) for r in context.reported]
        result.errors = [*(result.errors or []), *extra]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        context = self.execution_context.context
        if (
            isinstance(result, ExecutionResult)
            and isinstance(context, RequestContext)
            and context.reported
            and self.execution_context.operation_type is OperationType.SUBSCRIPTION
        ):
            extra = [source_error(r.error, r.path) for r in context.reported]
            result.errors = [*(result.errors or []), *extra]
            context.reported = []
        yield
