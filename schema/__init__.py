"""GraphQL types and the Schema. No I/O here: fields delegate to ``resolvers``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StreamResult
from strawberry.tools import merge_types
from strawberry.types.execution import ExecutionContext, ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from schema.cost import DEFAULT_MAX_COST, CostLimit
from schema.error_codes import with_code
from schema.introspection import IntrospectionGuard
from schema.limits import OperationLimits
from schema.plan import PlannedExecutor
from schema.query import Query as BaseQuery
from schema.scalars import SCALAR_MAP
from schema.source_errors import SourceErrors
from schema.source_freshness import SourceFreshness
from schema.subscription import Subscription
from schema.types import Clinic, Physician, Slot
from schema.validation import CachedParse, Validation
from schema.webhooks import Mutation, WebhookQuery
from schema.webhooks.guard import PartnerGuard

if TYPE_CHECKING:
    from schema.phase_spans import PhaseTracer

# The root Query: the API's queries, and partners' webhook alerts (schema/webhooks.py).
Query = merge_types("Query", (BaseQuery, WebhookQuery))

# Cross-cutting behaviour, in the order it applies. Parsing and validating the
# same document again costs more than executing it: both are cached (by text;
# the LRU caches live at module level, shared by the per-request instances).
EXTENSIONS: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
    CachedParse,
    Validation,
    # After validation (inside its hook), before execution:
    OperationLimits,
    IntrospectionGuard,
    PartnerGuard,
    SourceErrors,
    SourceFreshness,
]


class GatewaySchema(strawberry.Schema):
    """Every error of a result gets its ``extensions.code`` here, once
    (``schema/error_codes.py``), whatever produced it: parsing, validation, a limit,
    a resolver, an extension that failed.

    Only unexpected errors are logged, once each, by ``with_code``, with the error id
    the client sees: a client's bad input or a failed booking source is an expected
    answer, not a server error (strawberry's default would log each with a traceback).
    ``max_cost`` is the cost over which it refuses an operation (``None``: it only
    measures), for what checks documents ahead of time (edge/documents/apq.py).
    ``compiled_plan``: queries' root fields completed by their compiled plans
    (``schema/plan/``); False completes every field through graphql-core.
    """

    max_cost: int | None = DEFAULT_MAX_COST
    compiled_plan: bool = True

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        _give_codes(result)
        return result

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        """Strawberry's ``stream`` (which ``subscribe`` and the streaming transports use),
        every result's errors given their codes as ``execute`` gives them."""
        results = await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )
        return _coded(results)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logs nothing: ``with_code`` logs the unexpected errors with their error id."""


def _give_codes(result: ExecutionResult) -> None:
    if result.errors:
        result.errors = [with_code(e) for e in result.errors]


async def _coded(results: StreamResult) -> StreamResult:
    async with aclosing(results):
        try:
            async for result in results:
                if isinstance(result, ExecutionResult):
                    _give_codes(result)
                yield result
        except GraphQLError as error:
            # A syntax error escapes strawberry's stream (raised in the parser cache's
            # hook, outside its own catch): a pre-execution error, as execute makes it.
            failed = PreExecutionError(data=None, errors=[error])
            _give_codes(failed)
            yield failed


# A JSON array of operations in one request, when batching is enabled.
MAX_BATCH = 10


def make_schema(
    *,
    batching: bool = False,
    max_cost: int = DEFAULT_MAX_COST,
    measure_cost: bool = False,
    tracer: PhaseTracer | None = None,
    compiled_plan: bool = True,
) -> GatewaySchema:
    """The schema; ``batching`` accepts arrays of at most ``MAX_BATCH`` operations;
    operations costing over ``max_cost`` are refused (``measure_cost``: only reported);
    with a ``tracer`` (tracing on), a span per phase (``schema/phase_spans.py``);
    ``compiled_plan``: see ``GatewaySchema``."""
    extensions = list(EXTENSIONS)
    extensions.insert(
        extensions.index(OperationLimits) + 1,
        lambda: CostLimit(max_cost, measure=measure_cost),
    )
    if tracer is not None:
        from schema.phase_spans import PhaseSpans

        # First: outermost, its spans hold the whole of each phase, the others' hooks too.
        extensions.insert(0, lambda: PhaseSpans(tracer))
    gateway_schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Clinic, Physician, Slot],
        extensions=extensions,
        execution_context_class=PlannedExecutor,
        config=StrawberryConfig(
            auto_camel_case=True,
            scalar_map=SCALAR_MAP,
            batching_config={"max_operations": MAX_BATCH} if batching else None,
        ),
    )
    gateway_schema.max_cost = None if measure_cost else max_cost
    gateway_schema.compiled_plan = compiled_plan
    return gateway_schema


schema = make_schema()

__all__ = ["EXTENSIONS", "MAX_BATCH", "make_schema", "schema", "with_code"]
