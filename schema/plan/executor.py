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
from schema.plan.records import RECORD_TYPES, SlotRecords
from schema.subscription.shared_events import SharingExecutor

if TYPE_CHECKING:
    from collections.abc import Hashable

    from graphql import (
        GraphQLObjectType,
        GraphQLOutputType,
        GraphQLResolveInfo,
        SelectionSetNode,
    )
    from graphql.execution.collect_fields import FieldDetails
    from graphql.pyutils import Path

__all__ = ["KEEP", "STATS", "PlannedExecutor", "plan_of"]

logger = logging.getLogger("passerelle.plan")

# Plans kept (root field nodes of documents, by variables of their directives).
KEEP = 512
# How root fields were completed since start: "planned" (of which "records": read
# from records), "bailed" (a value the plan handed to graphql-core), "unsupported"
# (no plan for the selection).
STATS: Counter[str] = Counter()


@dataclass(frozen=True, slots=True)
class _Plan:
    complete: Completer
    records: bool  # reads SlotRecords (schema/plan/records.py), not strawberry objects


@dataclass(slots=True)
class _Entry:
    """The plans of one root field node: by the values of its directives' variables."""

    schema: Any  # held, so that the ids of the key stay theirs
    node: FieldNode
    variables: tuple[str, ...]
    plans: dict[Hashable, _Plan | str] = field(default_factory=dict)


_PLANS: OrderedDict[tuple[int, int], _Entry] = OrderedDict()


def plan_of(schema: Any, node: FieldNode) -> dict[Hashable, _Plan | str] | None:
    """The plans compiled so far for a root field node (a reason where unsupported)."""
    entry = _PLANS.get((id(schema), id(node)))
    return entry.plans if entry is not None and entry.node is node else None


class PlannedExecutor(SharingExecutor):
    """Strawberry's executor (with subscription events shared), root fields of queries
    completed by their compiled plans (see the module docstring)."""

    _planning: bool | None = None
    _root_plans: dict[str, _Plan | None] | None = None

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: list[FieldDetails],
        path: Path,
        position_context: Any,
    ) -> Any:
        if path.prev is None and self._plans_allowed():
            # Found before the resolver runs: a plan that reads records asks it for them.
            plan = self._plan(parent_type, field_details_list)
            if self._root_plans is None:
                self._root_plans = {}
            self._root_plans[str(path.key)] = plan
            roots = getattr(self.context_value, "record_roots", None)
            if roots is not None:  # a batch's operations share one context
                if plan is not None and plan.records:
                    roots.add(path.key)
                else:
                    roots.discard(path.key)
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: list[FieldDetails],
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if path.prev is None and self._root_plans is not None:
            plan = self._root_plans.pop(str(path.key), None)
            if plan is None:
                STATS["unsupported"] += 1
            else:
                try:
                    completed = plan.complete(result, self.context_value)
                except Exception:
                    STATS["bailed"] += 1
                else:
                    STATS["planned"] += 1
                    STATS["records"] += plan.records
                    return completed
        if path.prev is None and type(result) is SlotRecords:
            result = result.materialize()
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plans_allowed(self) -> bool:
        if self._planning is None:
            owner = getattr(self.schema, "_strawberry_schema", None)
            self._planning = bool(
                getattr(owner, "compiled_plan", False)
                and self.operation.operation is OperationType.QUERY
                # An extension with a per-field ``resolve`` hook: every field through it.
                and not (self.middleware_manager and self.middleware_manager.middlewares)
            )
        return self._planning

    def _plan(
        self, parent_type: GraphQLObjectType, field_details_list: list[FieldDetails]
    ) -> _Plan | None:
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
            plan = entry.plans[values] = self._compile(parent_type, field_details_list)
        return None if isinstance(plan, str) else plan

    def _compile(
        self, parent_type: GraphQLObjectType, field_details_list: list[FieldDetails]
    ) -> _Plan | str:
        node = field_details_list[0].node
        root_field = parent_type.fields.get(node.name.value)
        if root_field is None:
            return "not planned: not a field of the root type"
        if parent_type is self.schema.query_type and node.name.value == "slots":
            try:
                return _Plan(
                    compile_field(self, root_field.type, field_details_list, RECORD_TYPES), True
                )
            except Unsupported as unsupported:
                logger.debug("slots not read from records: %s", unsupported)
        try:
            return _Plan(compile_field(self, root_field.type, field_details_list), False)
        except Unsupported as unsupported:
            logger.debug("%s not planned: %s", node.name.value, unsupported)
            return f"not planned: {unsupported}"

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
