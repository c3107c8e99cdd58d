"""Demand control: what an operation may cost, computed before it runs.

Every field that returns an object costs 1, a leaf (scalar, enum) costs 0. A
field taking ``first`` returns up to that many items: its sub-selection counts
that many times (``first`` from the literal, the variables, or the argument's
default; outside 0 to ``MAX_FIRST`` is a ``BAD_USER_INPUT`` right away). A list
the API bounds counts its bound (``BOUNDED_LISTS``: a slot alert's ``opened``, at
most 100, so that a subscription costs what a ``slots(first: 100)`` query with the
same selection costs). Other lists of objects count ``LIST_SIZE`` times, except a
connection's ``edges``, already counted by the connection's ``first``. Every
operation type is costed from its own root (a subscription from ``Subscription``).

Over ``max_cost`` the operation is refused with ``COST_LIMIT_EXCEEDED`` and the
computed cost; in measure mode it runs and ``extensions.cost`` says
``{requested, limit}``, for tuning the limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from resolvers.alerts import MAX_OPENED
from resolvers.inputs import first_problem
from schema.error_codes import ErrorCode, graphql_error

# The default limit: the example queries cost 10 to 135 (a test keeps them under a
# tenth of it); 100 slots with their clinic and physician cost about 300.
DEFAULT_MAX_COST = 5000
LIST_SIZE = 10
# Lists whose length the API bounds ("Type.field" -> the bound).
BOUNDED_LISTS = {"SlotAlert.opened": MAX_OPENED}


class FirstTooLarge(ValueError):
    """``first`` out of its range somewhere in the operation (over ``MAX_FIRST``, or
    negative); the message is ``resolvers.inputs.first_problem``'s."""


def _unwrap(kind: GraphQLType) -> tuple[GraphQLType, bool]:
    """The named type under non-null/list wrappers, and whether a list was among them."""
    is_list = False
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(kind, GraphQLList)
        kind = kind.of_type
    return kind, is_list


class _Costing:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        # A fragment's cost, computed once: spread many times (even in a chain that
        # doubles at every step) it costs one walk, never an exponential one.
        self.memo: dict[str, int] = {}

    def selection(self, node: SelectionSetNode, parent: GraphQLType, seen: frozenset[str]) -> int:
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection(selection.selection_set, target or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue  # unknown or cyclic: validation says so
                if name not in self.memo:
                    target = self.schema.get_type(fragment.type_condition.name.value)
                    self.memo[name] = self.selection(
                        fragment.selection_set, target or parent, seen | {name}
                    )
                total += self.memo[name]
        return total

    def field(self, node: FieldNode, parent: GraphQLType, seen: frozenset[str]) -> int:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0  # __typename and other meta fields
        kind, is_list = _unwrap(definition.type)
        if not isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        inner = 1 + (self.selection(node.selection_set, kind, seen) if node.selection_set else 0)
        if "first" in definition.args:
            return self.first(node, definition.args["first"].default_value) * inner
        bound = BOUNDED_LISTS.get(f"{parent.name}.{node.name.value}")
        if bound is not None:
            return bound * inner
        if is_list and node.name.value != "edges":
            return LIST_SIZE * inner
        return inner

    def first(self, node: FieldNode, default: Any) -> int:
        value: Any = default if isinstance(default, int) else LIST_SIZE
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                found = self.variables.get(argument.value.name.value)
                value = found if isinstance(found, int) else value
        count = int(value)
        problem = first_problem(count, node.name.value)
        if problem is not None:
            raise FirstTooLarge(problem)
        return count


def operation_cost(
    schema: GraphQLSchema,
    document: Any,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> int:
    """The cost of the operation to run (the named one, else every operation's most)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    roots = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }
    costs = [
        _Costing(schema, fragments, {**_defaults(d), **(variables or {})}).selection(
            d.selection_set, root, frozenset()
        )
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
        and (root := roots.get(d.operation)) is not None
    ]
    return max(costs, default=0)


def _defaults(operation: OperationDefinitionNode) -> dict[str, Any]:
    """The operation's own variable defaults (``$n: Int = 100``), for variables not sent."""
    return {
        d.variable.name.value: int(d.default_value.value)
        for d in operation.variable_definitions or ()
        if isinstance(d.default_value, IntValueNode)
    }


class CostLimit(SchemaExtension):
    """Refuses operations over ``max_cost`` (or, ``measure=True``, only reports their cost)."""

    def __init__(self, max_cost: int = DEFAULT_MAX_COST, *, measure: bool = False) -> None:
        super().__init__()
        self.max_cost = max_cost
        self.measure = measure
        self.cost: int | None = None

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.pre_execution_errors:
            try:
                self.cost = operation_cost(
                    context.schema._schema, document, context.variables, context.operation_name
                )
            except FirstTooLarge as exc:
                context.pre_execution_errors = [graphql_error(ErrorCode.BAD_USER_INPUT, str(exc))]
            else:
                if self.cost > self.max_cost and not self.measure:
                    context.pre_execution_errors = [
                        graphql_error(
                            ErrorCode.COST_LIMIT_EXCEEDED,
                            f"The operation would cost {self.cost}, over the limit of "
                            f"{self.max_cost}; ask for fewer items (first) or fewer fields",
                            cost=self.cost,
                            limit=self.max_cost,
                        )
                    ]
        yield

    def get_results(self) -> dict[str, Any]:
        if self.measure and self.cost is not None:
            return {"cost": {"requested": self.cost, "limit": self.max_cost}}
        return {}
