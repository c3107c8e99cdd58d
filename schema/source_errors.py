"""``SourceErrors``: the failures of booking sources, added to the response's errors.

A failed source never fails the query: resolvers answer with what the other
sources gave and report the failure on the request context; this extension
turns each into one GraphQL error with ``extensions.code`` (``SOURCE_TIMEOUT``,
``SOURCE_UNAVAILABLE``, ``SOURCE_BAD_RESPONSE``) and ``extensions.source``.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from resolvers.context import RequestContext
from resolvers.errors import source_error


class SourceErrors(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        result = self.execution_context.result
        if result is None or not isinstance(context, RequestContext) or not context.reported:
            return
        extra = [source_error(r.error, r.path) for r in context.reported]
        result.errors = [*(result.errors or []), *extra]
