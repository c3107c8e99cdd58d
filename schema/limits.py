"""Operation limits: hostile documents are refused before execution, cheaply.

``check_limits(document, limits)`` counts, over the operations and the
fragments they use: how deep fields nest (leaf fields included: the contract's
``slots { edges { node { clinic { address { city } } } } }`` is 6 deep), aliases,
directives and root fields; introspection's subtrees are left to graphql-core's
own introspection depth rule. Tokens are bounded by the parser itself (it stops
at ``tokens``). Each excess is one error with a stable code and a message that
says the limit. ``OperationLimits`` applies them to every request, after
validation; trusted documents are checked with the same function when they are
registered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension


@dataclass(frozen=True, slots=True)
class Limits:
    # GraphQL Armor's default depth is 6, but ordinary queries of the contract nest 6.
    depth: int = 10
    aliases: int = 15
    tokens: int = 1000
    directives: int = 50
    root_fields: int = 20


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class _Counts:
    depth: int = 0
    aliases: int = 0
    directives: int = 0
    root_fields: int = 0


def _walk(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    level: int,
    counts: _Counts,
    seen: frozenset[str],
) -> Iterator[FieldNode]:
    """Every field under ``selection_set`` (fragments expanded once per path), counting."""
    for selection in selection_set.selections:
        counts.directives += len(selection.directives or ())
        if isinstance(selection, FieldNode):
            if selection.alias is not None:
                counts.aliases += 1
            if selection.name.value != "__typename":
                counts.depth = max(counts.depth, level)
            yield selection
            # Introspection nests deep by design (type { ofType { ofType ... } }):
            # graphql-core's own rule bounds it, not these limits.
            if selection.selection_set is not None and not selection.name.value.startswith("__"):
                yield from _walk(selection.selection_set, fragments, level + 1, counts, seen)
        elif isinstance(selection, InlineFragmentNode):
            yield from _walk(selection.selection_set, fragments, level, counts, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                counts.directives += len(fragment.directives or ())
                yield from _walk(fragment.selection_set, fragments, level, counts, seen | {name})


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> int:
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += selection.name.value != "__typename"
        elif isinstance(selection, InlineFragmentNode):
            count += _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                count += _root_fields(fragment.selection_set, fragments, seen | {name})
    return count


def check_limits(document: DocumentNode, limits: Limits = DEFAULT_LIMITS) -> list[GraphQLError]:
    """The limits the document exceeds, one error each (none when it is within them)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    counts = _Counts()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            counts.directives += len(definition.directives or ())
            for _ in _walk(definition.selection_set, fragments, 1, counts, frozenset()):
                pass
            counts.root_fields = max(
                counts.root_fields, _root_fields(definition.selection_set, fragments)
            )
    checks = [
        ("DEPTH_LIMIT_EXCEEDED", counts.depth, limits.depth, "nests fields {n} levels deep"),
        ("ALIAS_LIMIT_EXCEEDED", counts.aliases, limits.aliases, "uses {n} aliases"),
        ("DIRECTIVE_LIMIT_EXCEEDED", counts.directives, limits.directives, "uses {n} directives"),
        ("ROOT_FIELD_LIMIT_EXCEEDED", counts.root_fields, limits.root_fields,
         "asks {n} root fields"),
    ]  # fmt: skip
    return [
        GraphQLError(
            f"The operation {what.format(n=found)}; at most {limit} are allowed",
            extensions={"code": code, "found": found, "limit": limit},
        )
        for code, found, limit, what in checks
        if found > limit
    ]


class OperationLimits(SchemaExtension):
    """Applies ``Limits`` to every operation (tokens while parsing, the rest after
    validation, before execution)."""

    limits = DEFAULT_LIMITS

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.limits.tokens
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.pre_execution_errors:
            errors = check_limits(document, self.limits)
            if errors:
                context.pre_execution_errors = errors
        yield
