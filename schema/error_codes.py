"""The catalogue of error codes: every ``extensions.code`` the gateway sends, declared once.

Each ``ErrorCode`` carries its HTTP status and its meaning; the README's table
of error codes is checked against this one (tests/schema/test_error_codes.py).
Everything that answers with an error builds it here:

- ``graphql_error(code, message)``: one error of a GraphQL result;
- ``error_result(code, message)``: a result holding only that error, for the steps
  of the HTTP view that refuse a request before GraphQL runs (partners, APQ);
- ``envelope(code, message)``: the ``{"errors": [...]}`` body of an HTTP answer
  written by a middleware (CSRF, body limit, rate limits).

Errors that lower layers raise do not know their code (``sources/`` knows
nothing of GraphQL, ``resolvers/`` sits below this package): ``code_of`` maps
them, and ``with_code`` gives every error of a response its code, once
(``schema.GatewaySchema.execute``). Parse and validation errors get Apollo's
names; anything unexpected has its message, which may hold internals, replaced
by a generic one with an error id that the server log repeats next to the
traceback.

    >>> ErrorCode.RATE_LIMITED.status
    429
    >>> envelope(ErrorCode.RATE_LIMITED, "slow down", retryAfter=2)
    b'{"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED","retryAfter":2}}]}'
"""

from __future__ import annotations

import logging
import secrets
from enum import StrEnum
from typing import Any

import orjson
from graphql import GraphQLError
from strawberry.types.execution import ExecutionResult

from resolvers.errors import (
    CallbackRefusedError,
    NotFound,
    RateLimitedError,
    Unauthenticated,
    UserInputError,
    WebhookLimitError,
    WebhooksUnavailable,
)
from sources.errors import SourceBadResponse, SourceError, SourceTimeout, SourceUnavailable

__all__ = [
    "REQUEST_ERROR",
    "ErrorCode",
    "code_of",
    "envelope",
    "error_result",
    "graphql_error",
    "source_code",
    "with_code",
]

logger = logging.getLogger("passerelle.errors")

REQUEST_ERROR = None
"""The status of a request that could not run at all: 200 with ``application/json``,
400 (without ``data``) with ``application/graphql-response+json``."""


class ErrorCode(StrEnum):
    """An ``extensions.code``, with its HTTP ``status`` (``REQUEST_ERROR``: see there)
    and its ``meaning``."""

    status: int | None
    meaning: str

    def __new__(cls, code: str, status: int | None, meaning: str) -> ErrorCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.meaning = meaning
        return member

    @property
    def http_status(self) -> int:
        """The status of a code that always has one (an HTTP middleware's refusal)."""
        if self.status is REQUEST_ERROR:
            raise ValueError(f"{self}: a request error's status depends on the media type")
        return self.status

    # The document and its variables, before execution.
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED", REQUEST_ERROR, "the document does not parse"
    GRAPHQL_VALIDATION_FAILED = (
        "GRAPHQL_VALIDATION_FAILED", REQUEST_ERROR, "the document does not fit the schema"
    )  # fmt: skip
    BAD_USER_INPUT = (
        "BAD_USER_INPUT", REQUEST_ERROR,
        "a variable or an argument is wrong; the message says what to fix "
        "(200 with data when raised during execution)",
    )  # fmt: skip
    # Operation limits (schema/limits.py, schema/cost.py, schema/introspection.py).
    TOKEN_LIMIT_EXCEEDED = "TOKEN_LIMIT_EXCEEDED", REQUEST_ERROR, "more tokens than the limit"
    DEPTH_LIMIT_EXCEEDED = "DEPTH_LIMIT_EXCEEDED", REQUEST_ERROR, "nesting deeper than the limit"
    ALIAS_LIMIT_EXCEEDED = "ALIAS_LIMIT_EXCEEDED", REQUEST_ERROR, "more aliases than the limit"
    DIRECTIVE_LIMIT_EXCEEDED = (
        "DIRECTIVE_LIMIT_EXCEEDED", REQUEST_ERROR,
        "more directives than the limit, or a directive repeated where it may not be",
    )  # fmt: skip
    ROOT_FIELD_LIMIT_EXCEEDED = (
        "ROOT_FIELD_LIMIT_EXCEEDED", REQUEST_ERROR, "more root fields than the limit"
    )  # fmt: skip
    COST_LIMIT_EXCEEDED = (
        "COST_LIMIT_EXCEEDED", REQUEST_ERROR, "the operation costs more than --max-cost"
    )  # fmt: skip
    INTROSPECTION_DISABLED = (
        "INTROSPECTION_DISABLED", REQUEST_ERROR,
        "introspection in production, by a client not allowed it",
    )  # fmt: skip
    # Persisted queries and partners (edge/documents/apq.py, edge/documents/partners.py).
    PERSISTED_QUERY_NOT_FOUND = (
        "PERSISTED_QUERY_NOT_FOUND", 200,
        "an APQ hash or document id the gateway does not know "
        "(a 200: Apollo Client then resends the query)",
    )  # fmt: skip
    PERSISTED_QUERY_HASH_MISMATCH = (
        "PERSISTED_QUERY_HASH_MISMATCH", REQUEST_ERROR, "a hash that is not the query's SHA-256"
    )  # fmt: skip
    PERSISTED_QUERY_NOT_SUPPORTED = (
        "PERSISTED_QUERY_NOT_SUPPORTED", REQUEST_ERROR, "a malformed extensions.persistedQuery"
    )  # fmt: skip
    PERSISTED_QUERY_REQUIRED = (
        "PERSISTED_QUERY_REQUIRED", REQUEST_ERROR,
        "a persisted-only partner sent a query that is not one of its documents",
    )  # fmt: skip
    UNAUTHENTICATED = (
        "UNAUTHENTICATED", 401,
        "an unknown or revoked key, or an Authorization that is not Bearer (a request error "
        "when an operation for partners only is asked without a key)",
    )  # fmt: skip
    # HTTP middleware (edge/).
    CSRF_PREVENTION = (
        "CSRF_PREVENTION", 400, "a POST a browser could send cross-site without a preflight"
    )  # fmt: skip
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE", 413, "a request body over the limit"
    RATE_LIMITED = "RATE_LIMITED", 429, "a key or an anonymous IP over its rate"
    OPERATION_TIMEOUT = "OPERATION_TIMEOUT", 504, "the operation ran too long; it is cancelled"
    # Subscriptions (edge/subscriptions/).
    SUBSCRIPTION_LIMIT = (
        "SUBSCRIPTION_LIMIT", 429,
        "one subscription too many open: on one connection, of one key, or of one IP "
        "without a key; the message says which",
    )  # fmt: skip
    # Webhook alerts of partners (resolvers/webhooks.py).
    NOT_FOUND = "NOT_FOUND", 200, "no such object of yours (a webhook alert, another partner's)"
    CALLBACK_REFUSED = (
        "CALLBACK_REFUSED", 200,
        "a webhook callback URL that is not https, too long, or on a private, loopback, "
        "link-local or CGNAT address",
    )  # fmt: skip
    WEBHOOK_LIMIT = "WEBHOOK_LIMIT", 200, "one webhook alert too many for a partner (100)"
    WEBHOOKS_UNAVAILABLE = (
        "WEBHOOKS_UNAVAILABLE", 200, "this gateway delivers no webhooks (production, no key)"
    )  # fmt: skip
    # Booking sources: the query still answers with what the others gave.
    SOURCE_TIMEOUT = "SOURCE_TIMEOUT", 200, "a booking source did not answer in time"
    SOURCE_UNAVAILABLE = (
        "SOURCE_UNAVAILABLE", 200,
        "a booking source could not be reached, refused, or has its circuit open",
    )  # fmt: skip
    SOURCE_BAD_RESPONSE = (
        "SOURCE_BAD_RESPONSE", 200,
        "a booking source answered something its adapter cannot read, or refused the "
        "request as unsupported (a 400/422 OperationOutcome, not counted by its breaker)",
    )  # fmt: skip
    INTERNAL_SERVER_ERROR = (
        "INTERNAL_SERVER_ERROR", 200,
        "anything unexpected; the message is generic, extensions.errorId is in the server log",
    )  # fmt: skip


def graphql_error(code: ErrorCode, message: str, **extensions: Any) -> GraphQLError:
    """One error of a GraphQL result, with its code (and any other ``extensions``)."""
    return GraphQLError(message, extensions={"code": code.value, **extensions})


def error_result(code: ErrorCode, message: str, **extensions: Any) -> ExecutionResult:
    """A result without data, holding only that error."""
    return ExecutionResult(data=None, errors=[graphql_error(code, message, **extensions)])


def envelope(code: ErrorCode, message: str, **extensions: Any) -> bytes:
    """The JSON body ``{"errors": [...]}`` of an answer that holds only that error."""
    return orjson.dumps({"errors": [graphql_error(code, message, **extensions).formatted]})


# The codes of the exceptions lower layers raise, most specific class first.
_RAISED: tuple[tuple[type[Exception], ErrorCode], ...] = (
    (UserInputError, ErrorCode.BAD_USER_INPUT),
    (RateLimitedError, ErrorCode.RATE_LIMITED),
    (Unauthenticated, ErrorCode.UNAUTHENTICATED),
    (NotFound, ErrorCode.NOT_FOUND),
    (CallbackRefusedError, ErrorCode.CALLBACK_REFUSED),
    (WebhookLimitError, ErrorCode.WEBHOOK_LIMIT),
    (WebhooksUnavailable, ErrorCode.WEBHOOKS_UNAVAILABLE),
    (SourceTimeout, ErrorCode.SOURCE_TIMEOUT),
    (SourceBadResponse, ErrorCode.SOURCE_BAD_RESPONSE),
    # The base class too: a source failure of no finer kind left the source unusable.
    (SourceUnavailable, ErrorCode.SOURCE_UNAVAILABLE),
    (SourceError, ErrorCode.SOURCE_UNAVAILABLE),
)


def source_code(error: SourceError | type[SourceError]) -> ErrorCode:
    """The code of a booking source's failure (or of that kind of failure)."""
    failed = error if isinstance(error, type) else type(error)
    return next(code for kind, code in _RAISED if issubclass(failed, kind))


def code_of(error: GraphQLError) -> ErrorCode:
    """The code an error is sent with: its own, that of the exception it wraps, or the
    one its moment says (before execution: the client's document or variables)."""
    given = (error.extensions or {}).get("code")
    if given is not None:
        # Every code is built from the catalogue; anything else would be a bug here.
        return ErrorCode.__members__.get(given, ErrorCode.INTERNAL_SERVER_ERROR)
    for candidate in (error, error.original_error):
        for kind, code in _RAISED:
            if isinstance(candidate, kind):
                return code
    if error.path is None:
        if error.message.startswith("Variable "):
            # Missing, or refused by its type (then original_error is the scalar's).
            return ErrorCode.BAD_USER_INPUT
        if error.original_error is None:  # graphql-core's own: the document is wrong
            if "tokens. Parsing aborted" in error.message:
                return ErrorCode.TOKEN_LIMIT_EXCEEDED
            if error.message.startswith("Syntax Error"):
                return ErrorCode.GRAPHQL_PARSE_FAILED
            return ErrorCode.GRAPHQL_VALIDATION_FAILED
    return ErrorCode.INTERNAL_SERVER_ERROR


def with_code(error: GraphQLError) -> GraphQLError:
    """The error itself when it has a code, else an equivalent one that has."""
    extensions = error.extensions or {}
    if "code" in extensions:
        return error
    code = code_of(error)
    if code is ErrorCode.INTERNAL_SERVER_ERROR:
        error_id = secrets.token_hex(6)
        logger.error(
            "unexpected error %s at %s",
            error_id,
            error.path,
            exc_info=error.original_error or True,
        )
        return GraphQLError(
            f"Internal server error (error id {error_id})",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": code.value, "errorId": error_id},
        )
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**extensions, "code": code.value},
    )
