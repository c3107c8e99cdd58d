"""``IntrospectionGuard``: introspection only for those allowed it.

In development every client may introspect; in production only a client whose
key allows it (``RequestContext.allow_introspection``). A refused document gets
one error, ``INTROSPECTION_DISABLED``, before execution. It runs after
validation (and its cache), and puts its error in a new list, never in the
cached one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
)
from strawberry.extensions import SchemaExtension

from schema.error_codes import ErrorCode, graphql_error

_META_FIELDS = frozenset({"__schema", "__type"})


def _selections(selections: Iterable[SelectionNode]) -> Iterator[FieldNode]:
    for selection in selections:
        if isinstance(selection, FieldNode):
            yield selection
            if selection.selection_set is not None:
                yield from _selections(selection.selection_set.selections)
        elif isinstance(selection, InlineFragmentNode):
            yield from _selections(selection.selection_set.selections)


def introspects(document: DocumentNode) -> bool:
    """Whether any operation or fragment of the document asks ``__schema`` or ``__type``."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            for field in _selections(definition.selection_set.selections):
                if field.name.value in _META_FIELDS:
                    return True
    return False


class IntrospectionGuard(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        # Listed after Validation, this runs once validation has run, and
        # before the schema looks at the errors.
        self._check()
        yield

    def _check(self) -> None:
        context = self.execution_context
        document = context.graphql_document
        allowed = getattr(context.context, "allow_introspection", True)
        if allowed or document is None or context.pre_execution_errors:
            return
        if introspects(document):
            context.pre_execution_errors = [
                graphql_error(
                    ErrorCode.INTROSPECTION_DISABLED,
                    "Introspection is disabled in production; use the published schema "
                    "(or a key that allows introspection)",
                )
            ]
