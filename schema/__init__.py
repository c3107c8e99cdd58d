"""GraphQL types and the Schema. No I/O here: fields delegate to ``resolvers``."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext

from schema.cost import DEFAULT_MAX_COST, CostLimit
from schema.error_codes import ErrorCodes, with_code
from schema.introspection import IntrospectionGuard
from schema.limits import OperationLimits
from schema.query import Query
from schema.scalars import SCALAR_MAP
from schema.source_errors import SourceErrors
from schema.source_freshness import SourceFreshness
from schema.types import Clinic, Physician, Slot

# Cross-cutting behaviour, in the order it applies. Parsing and validating the
# same document again costs more than executing it: both are cached (by text;
# the LRU caches live at module level, shared by the per-request instances).
EXTENSIONS: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
    lambda: ParserCache(maxsize=512),
    lambda: ValidationCache(maxsize=512),
    # After validation (inside the cache's hook), before execution:
    OperationLimits,
    IntrospectionGuard,
    SourceErrors,
    SourceFreshness,
    ErrorCodes,
]


class GatewaySchema(strawberry.Schema):
    """Logs only the errors worth an operator's attention.

    A client's bad input or a failed booking source is an expected answer, not a
    server error: strawberry's default would log each with a traceback.
    ``max_cost`` is the cost over which it refuses an operation (``None``: it only
    measures), for what checks documents ahead of time (edge/persisted.py).
    """

    max_cost: int | None = DEFAULT_MAX_COST

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = [
            e for e in errors if e.path is not None and (e.extensions or {}).get("code") is None
        ]
        if unexpected:
            super().process_errors(unexpected, execution_context)


# A JSON array of operations in one request, when batching is enabled.
MAX_BATCH = 10


def make_schema(
    *, batching: bool = False, max_cost: int = DEFAULT_MAX_COST, measure_cost: bool = False
) -> GatewaySchema:
    """The schema; ``batching`` accepts arrays of at most ``MAX_BATCH`` operations;
    operations costing over ``max_cost`` are refused (``measure_cost``: only reported)."""
    extensions = list(EXTENSIONS)
    extensions.insert(
        extensions.index(OperationLimits) + 1,
        lambda: CostLimit(max_cost, measure=measure_cost),
    )
    gateway_schema = GatewaySchema(
        query=Query,
        types=[Clinic, Physician, Slot],
        extensions=extensions,
        config=StrawberryConfig(
            auto_camel_case=True,
            scalar_map=SCALAR_MAP,
            batching_config={"max_operations": MAX_BATCH} if batching else None,
        ),
    )
    gateway_schema.max_cost = None if measure_cost else max_cost
    return gateway_schema


schema = make_schema()

__all__ = ["EXTENSIONS", "MAX_BATCH", "make_schema", "schema", "with_code"]
