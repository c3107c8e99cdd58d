"""``ErrorCodes``: every error in a response carries a stable ``extensions.code``.

Errors raised on purpose already have one (``BAD_USER_INPUT``, ``SOURCE_*``).
The rest get one here: parse and validation errors (``GRAPHQL_PARSE_FAILED``,
``GRAPHQL_VALIDATION_FAILED``, as Apollo names them), variables that do not fit
their type (``BAD_USER_INPUT``), and anything unexpected during execution,
whose message is replaced, since it may hold internals, by a generic one with
an error id that the server log repeats next to the traceback.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

logger = logging.getLogger("passerelle.errors")

INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
TOKEN_LIMIT_EXCEEDED = "TOKEN_LIMIT_EXCEEDED"


def with_code(error: GraphQLError) -> GraphQLError:
    """The error itself when it has a code, else an equivalent one that has."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if error.path is None:
        # Raised before execution: the client's document or variables are wrong.
        if "tokens. Parsing aborted" in error.message:
            code = TOKEN_LIMIT_EXCEEDED
        elif error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        elif error.message.startswith("Variable "):
            code = "BAD_USER_INPUT"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            extensions={**(error.extensions or {}), "code": code},
        )
    if isinstance(original, GraphQLError) and original.extensions:
        return GraphQLError(
            error.message, nodes=error.nodes, path=error.path, extensions=original.extensions
        )
    error_id = secrets.token_hex(6)
    logger.error("unexpected error %s at %s", error_id, error.path, exc_info=original or True)
    return GraphQLError(
        f"Internal server error (error id {error_id})",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": INTERNAL_SERVER_ERROR, "errorId": error_id},
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [with_code(e) for e in result.errors]
