"""``PlannedExecutor``: graphql-core's execution, each root field of a query completed by
its compiled plan (``schema/plan/compiler.py``) when it has one.

Everything before and around the completion is unchanged: parsing, validation, the
limits, the cost, the extensions and their spans run as always; the root field's
resolver runs as graphql-core calls it (its ``Info``, its arguments, its errors).
Only the completion of the value it returns changes: a compiled function writes the
same dict graphql-core would. A plan is compiled once per root field node of a
document (the parser cache gives every request of one text the same nodes, so a
plain ``POST`` query, an APQ hash and a trusted document alike get one), and once
more per value of the variables its ``@skip``/``@include`` read; at most
:data:`KEEP` are kept. A selection the plan does not support is completed by
graphql-core each time (its reason kept, :func:`plan_of`), and so is any value the
plan bails on (a null in a non-null field, an error): graphql-core then reports it as
it always does. ``GatewaySchema.compiled_plan = False`` (``--no-compiled-plan``)
turns it off.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationType, VariableNode

from schema.plan.compiler import Completer, Unsupported, compile_field
from schema.subscription.shared_events import SharingExecutor

if TYPE_CHECKING:
    from collections.abc import Hashable

    from graphql import GraphQLOutputType, GraphQLResolveInfo, SelectionSetNode
    from graphql.execution.collect_fields import FieldDetails
    from graphql.pyutils import Path

__all__ = ["KEEP", "STATS", "PlannedExecutor", "plan_of"]

logger = logging.getLogger("passerelle.plan")

# Plans kept (root field nodes of documents, by variables of their directives).
KEEP = 512
# How root fields were completed since start: "planned", "bailed" (a value the plan
# handed to graphql-core), "unsupported" (no plan for the selection).
STATS: Counter[str] = Counter()


@dataclass(slots=True)
class _Entry:
    """The plans of one root field node: by the values of its directives' variables."""

    schema: Any  # held, so that the ids of the key stay theirs
    node: FieldNode
    variables: tuple[str, ...]
    plans: dict[Hashable, Completer | str] = field(default_factory=dict)


_PLANS: OrderedDict[tuple[int, int], _Entry] = OrderedDict()


def plan_of(schema: Any, node: FieldNode) -> dict[Hashable, Completer | str] | None:
    """The plans compiled so far for a root field node (a reason where unsupported)."""
    entry = _PLANS.get((id(schema), id(node)))
    return entry.plans if entry is not None and entry.node is node else None


class PlannedExecutor(SharingExecutor):
    """Strawberry's executor (with subscription events shared), root fields of queries
    completed by their compiled plans (see the module docstring)."""

    _planning: bool | None = None

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: list[FieldDetails],
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if path.prev is None and self._plans_allowed():
            plan = self._plan(return_type, field_details_list)
            if plan is None:
                STATS["unsupported"] += 1
            else:
                try:
                    completed = plan(result, self.context_value)
                except Exception:
                    STATS["bailed"] += 1
                else:
                    STATS["planned"] += 1
                    return completed
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plans_allowed(self) -> bool:
        if self._planning is None:
            owner = getattr(self.schema, "_strawberry_schema", None)
            self._planning = (
                getattr(owner, "compiled_plan", False)
                and self.operation.operation is OperationType.QUERY
                # An extension with a per-field ``resolve`` hook: every field through it.
                and not (self.middleware_manager and self.middleware_manager.middlewares)
            )
        return self._planning

    def _plan(
        self, return_type: GraphQLOutputType, field_details_list: list[FieldDetails]
    ) -> Completer | None:
        if len(field_details_list) != 1:
            return None  # one root field selected twice under one key: rare, not planned
        node = field_details_list[0].node
        key = (id(self.schema), id(node))
        entry = _PLANS.get(key)
        if entry is None or entry.node is not node:
            entry = _PLANS[key] = _Entry(self.schema, node, self._directive_variables(node))
            while len(_PLANS) > KEEP:
                _PLANS.popitem(last=False)
        else:
            _PLANS.move_to_end(key)
        coerced = self.variable_values.coerced
        values = tuple(coerced.get(name) for name in entry.variables)
        plan = entry.plans.get(values)
        if plan is None:
            try:
                plan = compile_field(self, return_type, field_details_list)
            except Unsupported as unsupported:
                plan = f"not planned: {unsupported}"
                logger.debug("%s (%s)", plan, node.name.value)
            entry.plans[values] = plan
        return None if isinstance(plan, str) else plan

    def _directive_variables(self, node: FieldNode) -> tuple[str, ...]:
        """The variables that ``@skip``/``@include`` read below ``node``, sorted."""
        names: set[str] = set()
        seen: set[str] = set()

        def visit(selection_set: SelectionSetNode | None) -> None:
            for selection in selection_set.selections if selection_set else ():
                for directive in selection.directives or ():
                    for argument in directive.arguments or ():
                        if isinstance(argument.value, VariableNode):
                            names.add(argument.value.name.value)
                if isinstance(selection, FieldNode | InlineFragmentNode):
                    visit(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragment_definitions.get(name)
                    if fragment is not None and name not in seen:
                        seen.add(name)
                        visit(fragment.selection_set)

        visit(node.selection_set)
        return tuple(sorted(names))
