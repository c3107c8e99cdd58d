"""Identical concurrent queries share one execution (inbound deduplication).

When a query arrives while the same query is being executed for another request, it
waits for that execution and answers with its result, rather than doing the same work
again: as Hive Gateway's inbound in-flight deduplication does. Each request still goes
through its own steps before (rate limits, admission, persisted queries, the
deadline) and after (its error masking, media type, status, headers, response cache,
request log): only the execution is shared.

Two operations are identical when all of this is equal: the document's text, the
operation name, the variables and the extensions as sent, the ``Authorization`` header
(a partner key: its permissions; none: anonymous), the trusted document admission
found, and what the context lets it see (its client, ``operator_view``,
``allow_introspection``). Only queries are shared, never a mutation nor a
subscription; an operation that is not one known query (a syntax error, an unknown
operation name) runs on its own.

An execution that charges its client's rate budget (a slot checked at its source,
``resolvers/checks.py``) is not shared: as soon as it charges, each waiting request runs
its own, and is charged its own (their upstream reads, under way together, are still
merged by the checks themselves). Nor is one that failed with an exception (each
request then fails on its own, with its own answer). A sharer's context is given what
the execution left on the first one's (the source failures it reported, the
federation's sources and what it asked them), which the source errors, the response
cache and the request log read.

The execution runs as a task of its own: a request that gives up (its client left, its
deadline) leaves it running for the others. Its spans are the first request's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING

import orjson
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from strawberry.types.execution import ExecutionResult

from resolvers.context import RequestContext

if TYPE_CHECKING:
    from edge.operation import Operation

__all__ = ["SharedOperations", "is_query"]


@dataclasses.dataclass(slots=True)
class _Running:
    """One execution under way, on the context of the request that started it."""

    task: asyncio.Future[ExecutionResult]
    context: RequestContext
    # Done once the execution charged its client's rate budget: its sharers run their own.
    charged: asyncio.Future[None]


class SharedOperations:
    """The executions under way, by what makes two operations identical."""

    def __init__(self) -> None:
        self._running: dict[Hashable, _Running] = {}
        # Requests answered by another's execution, since start.
        self.shared = 0

    def key_of(self, operation: Operation, context: object) -> Hashable | None:
        """What two identical operations share; None: this one is never shared."""
        query = operation.query
        if not query or not isinstance(context, RequestContext):
            return None
        if not is_query(query, operation.operation_name):
            return None
        try:
            sent = orjson.dumps(
                (operation.variables, operation.extensions), option=orjson.OPT_SORT_KEYS
            )
        except TypeError:
            return None
        return (
            query,
            operation.operation_name,
            sent,
            operation.authorization,
            operation.trusted,
            context.client_id,
            context.operator_view,
            context.allow_introspection,
        )

    async def run(
        self,
        operation: Operation,
        context: object,
        execute: Callable[[], Awaitable[ExecutionResult]],
    ) -> ExecutionResult:
        """``execute()``'s result, or that of the identical execution under way."""
        key = self.key_of(operation, context)
        if key is None or not isinstance(context, RequestContext):
            return await execute()
        running = self._running.get(key)
        if running is None:
            running = self._start(key, context, execute)
            return _own(await asyncio.shield(running.task))
        # Neither future is cancelled if this request gives up waiting.
        await asyncio.wait((running.task, running.charged), return_when=asyncio.FIRST_COMPLETED)
        if running.charged.done():
            # It charged its client: each is charged its own, and runs at once (the
            # checks under way still share their upstream reads).
            return await execute()
        try:
            result = running.task.result()
        except Exception:
            # Its failure is its own (an HTTP 400, say): this request finds its own.
            return await execute()
        self.shared += 1
        context.reported = list(running.context.reported)
        context.federation = running.context.federation
        return _own(result)

    def _start(
        self,
        key: Hashable,
        context: RequestContext,
        execute: Callable[[], Awaitable[ExecutionResult]],
    ) -> _Running:
        charge, charged = context.charge, asyncio.get_running_loop().create_future()
        if charge is not None:

            async def charging(cost: float) -> str | None:
                if not charged.done():
                    charged.set_result(None)
                return await charge(cost)

            context.charge = charging
        # Not started before the next turn of the loop: the charge is wrapped first.
        task = asyncio.ensure_future(execute())
        running = self._running[key] = _Running(task, context, charged)

        def done(finished: asyncio.Future[ExecutionResult]) -> None:
            if self._running.get(key) is running:
                del self._running[key]
            if not finished.cancelled():
                # Each waiter gets its failure; none left (they gave up): not an error.
                finished.exception()

        task.add_done_callback(done)
        return running


def _own(result: ExecutionResult) -> ExecutionResult:
    """A result of its own for one request: the view masks its errors, the response
    cache and the extensions hooks may change its lists and maps, never the others'."""
    return dataclasses.replace(
        result,
        errors=list(result.errors) if result.errors is not None else None,
        extensions=dict(result.extensions) if result.extensions is not None else None,
    )


@functools.lru_cache(maxsize=512)
def is_query(query: str, operation_name: str | None) -> bool:
    """Whether the document's operation of that name (or its only one) is a query."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        chosen = operations if len(operations) == 1 else []
    else:
        chosen = [o for o in operations if o.name is not None and o.name.value == operation_name]
    return len(chosen) == 1 and chosen[0].operation is OperationType.QUERY
