"""How a subscription starts, whatever carries it: :func:`open_subscription`.

Its place under the caps first (``SUBSCRIPTION_LIMIT`` when there is none), then the
schema's stream of results, not yet read: a pre-execution error (parse, validation,
limits, a filter refused) comes as its first result, as strawberry gives it, and the
place is given back by whoever reads the stream, when it ends.

    opened = await open_subscription(hub, schema, operation, context, address=ip,
                                     client=None, allowed=(OperationType.SUBSCRIPTION,))
    if isinstance(opened, ExecutionResult): ...  # refused
    async with aclosing(opened.stream): ...; opened.lease.release()
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strawberry.types.execution import ExecutionResult

from schema.error_codes import ErrorCode, error_result

if TYPE_CHECKING:
    from strawberry.schema.base import BaseSchema
    from strawberry.types.graphql import OperationType

    from edge.operation import Operation
    from edge.subscriptions.hub import Subscriptions
    from edge.subscriptions.limits import Lease
    from resolvers.context import RequestContext
    from sources.registry.partners import Client

__all__ = ["Opened", "open_subscription"]


@dataclass(frozen=True, slots=True)
class Opened:
    """A subscription started: its place under the caps, and its results to read."""

    lease: Lease
    stream: AsyncGenerator[Any, None]


async def open_subscription(
    hub: Subscriptions,
    schema: BaseSchema,
    operation: Operation,
    context: RequestContext,
    *,
    address: str,
    client: Client | None,
    allowed: Iterable[OperationType],
    root_value: Any = None,
) -> Opened | ExecutionResult:
    """Claim a place for ``operation`` (admitted: its document found) of ``client`` (None:
    anonymous, from ``address``) and start its stream; or the refusal."""
    lease = hub.claim(
        address=address,
        key=client.name if client is not None else None,
        key_limit=client.max_subscriptions if client is not None else None,
    )
    if isinstance(lease, str):
        return error_result(ErrorCode.SUBSCRIPTION_LIMIT, lease)
    try:
        stream = await schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=context,
            root_value=root_value,
            operation_name=operation.operation_name,
            operation_extensions=operation.extensions,
            allowed_operation_types=allowed,
        )
    except BaseException:
        lease.release()
        raise
    return Opened(lease, stream)
