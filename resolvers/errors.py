"""``UserInputError``: an argument the client must fix.

Its ``extensions.code`` (``BAD_USER_INPUT``) is declared in the catalogue,
``schema/error_codes.py``, which maps this class to it.
"""

from __future__ import annotations

from graphql import GraphQLError


class UserInputError(GraphQLError):
    """An argument the client must fix; the message says how.

    A ``GraphQLError`` so that graphql-core keeps its message as it is, wherever it is
    raised (a resolver, a scalar's parser).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class Unauthenticated(GraphQLError):
    """An operation for partners only, asked without a partner's key."""

    def __init__(self, message: str = "This operation needs a partner's key") -> None:
        super().__init__(message)


class NotFound(GraphQLError):
    """No such object for this caller (another partner's is not found either)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CallbackRefusedError(GraphQLError):
    """A webhook callback URL the gateway will not call; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class WebhookLimitError(GraphQLError):
    """One webhook alert too many for a partner."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class WebhooksUnavailable(GraphQLError):
    """This gateway delivers no webhooks (production without its key)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RateLimitedError(GraphQLError):
    """A field the client's rate budget cannot pay for now; the message says when to
    come back (``RATE_LIMITED``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
