"""Operation limits: hostile documents are refused before execution, cheaply.

``check_directives(document, limits, repeatable)`` runs before validation, so that
a document stuffed with directives (``@aa@aa@aa...``, graphql-cop's "directive
overloading") costs one cheap walk and one error, not a full validation and an
error per directive: it refuses a directive that is not repeatable used twice at
one location, and more than ``limits.directives`` directives in the document.

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

from collections import Counter, OrderedDict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from schema.error_codes import ErrorCode, graphql_error


@dataclass(frozen=True, slots=True)
class Limits:
    # GraphQL Armor's default depth is 6, but ordinary queries of the contract nest 6.
    depth: int = 10
    aliases: int = 15
    tokens: int = 1000
    directives: int = 50
    root_fields: int = 20


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class _Counts:
    """What a selection set holds, fragments expanded: how deep its fields nest,
    and how many aliases and directives it uses."""

    depth: int = 0
    aliases: int = 0
    directives: int = 0

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.directives + other.directives,
        )


_Fragments = Mapping[str, FragmentDefinitionNode]


def _counts(
    selection_set: SelectionSetNode,
    fragments: _Fragments,
    memo: dict[str, _Counts],
    seen: frozenset[str],
) -> _Counts:
    """Counted once per fragment (``memo``): a fragment spread many times, even in
    a chain that doubles at every step, costs one walk, never an exponential one."""
    total = _Counts()
    for selection in selection_set.selections:
        here = _Counts(directives=len(selection.directives or ()))
        if isinstance(selection, FieldNode):
            name = selection.name.value
            depth = 0 if name == "__typename" else 1
            # Introspection nests deep by design (type { ofType { ofType ... } }):
            # graphql-core's own rule bounds it, not these limits.
            if selection.selection_set is not None and not name.startswith("__"):
                inner = _counts(selection.selection_set, fragments, memo, seen)
                depth = 1 + inner.depth
                here = here + _Counts(0, inner.aliases, inner.directives)
            here = here + _Counts(depth, int(selection.alias is not None), 0)
        elif isinstance(selection, InlineFragmentNode):
            here = here + _counts(selection.selection_set, fragments, memo, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue  # unknown or cyclic: validation says so
            if name not in memo:
                inner = _counts(fragment.selection_set, fragments, memo, seen | {name})
                memo[name] = inner + _Counts(directives=len(fragment.directives or ()))
            here = here + memo[name]
        total = total + here
    return total


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: _Fragments,
    memo: dict[str, int],
    seen: frozenset[str] = frozenset(),
) -> int:
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += selection.name.value != "__typename"
        elif isinstance(selection, InlineFragmentNode):
            count += _root_fields(selection.selection_set, fragments, memo, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue
            if name not in memo:
                memo[name] = _root_fields(fragment.selection_set, fragments, memo, seen | {name})
            count += memo[name]
    return count


def _directive_lists(document: DocumentNode) -> Iterator[tuple[DirectiveNode, ...]]:
    """The directives of every location of the document, one tuple per location."""
    stack: list[Node] = [document]
    while stack:
        node = stack.pop()
        for key in node.keys:
            value = getattr(node, key, None)
            if isinstance(value, Node):
                stack.append(value)
            elif isinstance(value, tuple | list):
                stack.extend(item for item in value if isinstance(item, Node))
        directives = getattr(node, "directives", None)
        if directives:
            yield tuple(directives)


def check_directives(
    document: DocumentNode, limits: Limits = DEFAULT_LIMITS, repeatable: Collection[str] = ()
) -> GraphQLError | None:
    """One ``DIRECTIVE_LIMIT_EXCEEDED`` error when a directive not in ``repeatable``
    (unknown ones included) appears twice at one location, or when the document holds
    more than ``limits.directives`` directives; None otherwise. Syntax only: no schema."""
    total = 0
    for directives in _directive_lists(document):
        total += len(directives)
        counts = Counter(d.name.value for d in directives)
        repeated = sorted(name for name, n in counts.items() if n > 1 and name not in repeatable)
        if repeated:
            return graphql_error(
                ErrorCode.DIRECTIVE_LIMIT_EXCEEDED,
                f"The directive @{repeated[0]} is used {counts[repeated[0]]} times at one "
                "location; it may appear there once",
                directive=repeated[0],
            )
    if total > limits.directives:
        return graphql_error(
            ErrorCode.DIRECTIVE_LIMIT_EXCEEDED,
            f"The operation uses {total} directives; at most {limits.directives} are allowed",
            found=total,
            limit=limits.directives,
        )
    return None


def check_limits(document: DocumentNode, limits: Limits = DEFAULT_LIMITS) -> list[GraphQLError]:
    """The limits the document exceeds, one error each (none when it is within them)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    memo: dict[str, _Counts] = {}
    root_memo: dict[str, int] = {}
    counts = _Counts()
    root_fields = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            counts = (
                counts
                + _counts(definition.selection_set, fragments, memo, frozenset())
                + _Counts(directives=len(definition.directives or ()))
            )
            root_fields = max(
                root_fields, _root_fields(definition.selection_set, fragments, root_memo)
            )
    c = ErrorCode
    checks = [
        (c.DEPTH_LIMIT_EXCEEDED, counts.depth, limits.depth, "nests fields {n} levels deep"),
        (c.ALIAS_LIMIT_EXCEEDED, counts.aliases, limits.aliases, "uses {n} aliases"),
        (c.DIRECTIVE_LIMIT_EXCEEDED, counts.directives, limits.directives, "uses {n} directives"),
        (c.ROOT_FIELD_LIMIT_EXCEEDED, root_fields, limits.root_fields, "asks {n} root fields"),
    ]  # fmt: skip
    return [
        graphql_error(
            exceeded,
            f"The operation {what.format(n=found)}; at most {limit} are allowed",
            found=found,
            limit=limit,
        )
        for exceeded, found, limit, what in checks
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
            key = (id(document), self.limits)
            if _WITHIN.get(key) is not document:
                errors = check_limits(document, self.limits)
                if errors:
                    context.pre_execution_errors = errors
                else:
                    _within(key, document)
        yield


# Documents found within their limits: the parser cache gives every request of one
# text the same document, which need not be walked again (the latest ones, held so
# that their ids stay theirs).
_WITHIN: OrderedDict[tuple[int, Limits], DocumentNode] = OrderedDict()
_KEEP_WITHIN = 512


def _within(key: tuple[int, Limits], document: DocumentNode) -> None:
    _WITHIN[key] = document
    while len(_WITHIN) > _KEEP_WITHIN:
        _WITHIN.popitem(last=False)
