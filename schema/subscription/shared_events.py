"""Subscription events executed once for every subscriber that gets the same answer.

Every subscriber's event is, by the GraphQL specification, the subscription operation
executed again with the event as its root value. When thousands of subscribers of one
group hear one change, most of them run the same document with the same variables on
alike events (the watch gives subscribers with the same filter the same slot objects,
``sources.watch.Alert.same_as``): :class:`SharingExecutor` executes such an event once
and hands its result to each of them, as Apollo Router's subscription deduplication
does for identical subscriptions.

Two events share one execution only when all of this is equal: the schema, the
document's text and operation name, the variables, whether the context may see
operators' details (``operator_view``, which changes ``Source.problems``), and the
root value's ``same_as`` (None: never shared). What the execution reported on its
context (sources that failed during its lookups, which ``SourceErrors`` turns into
errors) is given to each sharer's context too, so each result carries the same errors.
Each sharer still gets its own ``ExecutionResult`` around the shared data, its own
extensions (``extensions.sources``) and its own error masking.

Results are kept for :data:`KEEP` events at most, the oldest dropped first; an entry
holds its root value, so the identities ``same_as`` is made of stay valid as long as
the entry.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Hashable
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

from graphql import ExecutionResult, GraphQLSchema
from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers.context import ReportedError, RequestContext

__all__ = ["KEEP", "SharingExecutor"]

# Executions kept for later sharers: the most recent ones (a change reaches every
# subscriber within a few seconds; older entries are not asked again).
KEEP = 2048


@dataclass(slots=True)
class _Shared:
    """One execution, done or under way, and what it reported."""

    root: Any  # keeps alive what ``same_as`` names by identity
    schema: GraphQLSchema
    outcome: asyncio.Future[ExecutionResult] | ExecutionResult
    reported: list[ReportedError] | None = None


_SHARED: OrderedDict[Hashable, _Shared] = OrderedDict()


class SharingExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor (graphql-core's), sharing subscription events' executions
    (see the module docstring)."""

    _operation_key: Hashable | None = None

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        if self._operation_key is None:
            self._operation_key = self._make_operation_key()
        return super().build_per_event_executor(payload)

    def _make_operation_key(self) -> Hashable:
        operation = self.operation
        source = operation.loc.source.body if operation.loc is not None else id(operation)
        name = operation.name.value if operation.name is not None else None
        values = self.variable_values
        coerced = values.coerced if hasattr(values, "coerced") else values
        variables = json.dumps(coerced, sort_keys=True, default=repr)
        return (id(self.schema), source, name, variables)

    def execute_operation(
        self, serially: bool | None = None
    ) -> Any:  # the base's result: a value or an awaitable
        key = self._event_key()
        if key is None:
            return super().execute_operation(serially)
        shared = _SHARED.get(key)
        if shared is not None:
            _SHARED.move_to_end(key)
            return self._reuse(shared)
        result = super().execute_operation(serially)
        if isinstance(result, ExecutionResult):
            _keep(key, _Shared(self.root_value, self.schema, result, self._reported()))
            return result
        if not isawaitable(result):
            return result  # incremental delivery: not something subscriptions send
        future: asyncio.Future[ExecutionResult] = asyncio.ensure_future(
            _awaited(result)  # type: ignore[arg-type]
        )
        shared = _Shared(self.root_value, self.schema, future)
        _keep(key, shared)
        return self._first(shared, future)

    def _event_key(self) -> Hashable | None:
        same_as = getattr(self.root_value, "same_as", None)
        if same_as is None or self._operation_key is None:
            return None
        context = self.context_value
        operator = context.operator_view if isinstance(context, RequestContext) else None
        return (self._operation_key, operator, same_as)

    def _reported(self) -> list[ReportedError] | None:
        context = self.context_value
        return list(context.reported) if isinstance(context, RequestContext) else None

    async def _first(
        self, shared: _Shared, future: asyncio.Future[ExecutionResult]
    ) -> ExecutionResult:
        try:
            # Shielded: the first subscriber leaving does not cancel the others' answer.
            result = await asyncio.shield(future)
        except BaseException:
            _forget(shared)
            raise
        shared.reported = self._reported()
        return result

    async def _reuse(self, shared: _Shared) -> ExecutionResult:
        outcome = shared.outcome
        result = await asyncio.shield(outcome) if isinstance(outcome, asyncio.Future) else outcome
        context = self.context_value
        if shared.reported and isinstance(context, RequestContext):
            context.reported = [*context.reported, *shared.reported]
        return ExecutionResult(result.data, result.errors)


async def _awaited(result: Awaitable[ExecutionResult]) -> ExecutionResult:
    return await result


def _keep(key: Hashable, shared: _Shared) -> None:
    _SHARED[key] = shared
    while len(_SHARED) > KEEP:
        _SHARED.popitem(last=False)


def _forget(shared: _Shared) -> None:
    """An execution that failed or was cancelled is not handed to anyone later."""
    for key, value in list(_SHARED.items()):
        if value is shared:
            del _SHARED[key]
