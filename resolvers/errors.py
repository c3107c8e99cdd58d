"""GraphQL errors the API returns on purpose, each with a stable ``extensions.code``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphql import GraphQLError

if TYPE_CHECKING:
    from sources.errors import SourceError

BAD_USER_INPUT = "BAD_USER_INPUT"


class UserInputError(GraphQLError):
    """An argument the client must fix; the message says how."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": BAD_USER_INPUT})


def source_error(error: SourceError, path: list[str | int] | None) -> GraphQLError:
    """The client-facing form of a source failure: what failed, never upstream internals."""
    return GraphQLError(
        f"Booking source {error.source_id!r} failed: {error.message}",
        path=path,
        extensions={"code": error.code, "source": error.source_id},
    )
