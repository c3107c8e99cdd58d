"""``Validation``: the document checked against the schema, once per text, cheaply refused
when hostile.

It stands where strawberry's ``ValidationCache`` would (and caches the same way,
in one LRU shared by every request), and adds two guards graphql-cop's
"directive overloading" probe asks for:

- before validation, ``check_directives`` (``schema/limits.py``): a directive
  repeated where it may not be, or more than the limit in the document, is one
  ``DIRECTIVE_LIMIT_EXCEEDED`` error, and the validator never runs;
- validation stops after ``MAX_VALIDATION_ERRORS`` errors (the last one saying it
  stopped), so an invalid document cannot buy a long answer.

``validate_document`` is the same check for documents registered ahead of time
(trusted documents, APQ).

``CachedParse`` stands where strawberry's ``ParserCache`` would (one LRU of parsed
documents by text, shared by every request: a text's requests get the same nodes, which
the compiled plan keys on), but never raises from its hook: a syntax error leaves the
document unset, and strawberry parses it again inside its parsing step, where it reports
the error and every hook entered before (the phase spans) is closed at once. Raised from
the hook, it left them to the garbage collector, and a trace could end without its
failed ``graphql.parse`` span.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from graphql.validation import ASTValidationRule, specified_rules
from strawberry.extensions import SchemaExtension

# Not exported by strawberry.extensions: the two rules its own validate_document adds
# to the specified ones (strawberry/schema/schema.py), which takes no max_errors.
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from schema.limits import DEFAULT_LIMITS, check_directives

__all__ = ["MAX_VALIDATION_ERRORS", "CachedParse", "Validation", "validate_document"]

# Errors in a refused document's answer, graphql-core's "Validation aborted" included.
MAX_VALIDATION_ERRORS = 5
_CACHED_DOCUMENTS = 512
_STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


@lru_cache(maxsize=_CACHED_DOCUMENTS)
def _parsed(query: str, max_tokens: int | None) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


class CachedParse(SchemaExtension):
    """The document parsed once per text (see the module's docstring)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            try:
                max_tokens = context.parse_options.get("max_tokens")
                context.graphql_document = _parsed(context.query, max_tokens)
            except GraphQLError:
                pass  # strawberry parses it again in its step, and reports it there
        yield


@lru_cache(maxsize=8)
def _repeatable(schema: GraphQLSchema) -> frozenset[str]:
    return frozenset(d.name for d in schema.directives if d.is_repeatable)


@lru_cache(maxsize=_CACHED_DOCUMENTS)
def validate_document(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...] = tuple(specified_rules),
) -> list[GraphQLError]:
    """The document's errors: one for its directives, else at most
    ``MAX_VALIDATION_ERRORS`` from validation ([] when it is valid)."""
    refused = check_directives(document, DEFAULT_LIMITS, _repeatable(schema))
    if refused is not None:
        return [refused]
    # graphql-core adds one error, "Validation aborted", past max_errors.
    return validate(
        schema,
        document,
        (*rules, *_STRAWBERRY_RULES),
        max_errors=MAX_VALIDATION_ERRORS - 1,
    )


class Validation(SchemaExtension):
    """Replaces strawberry's validation step: it sets ``pre_execution_errors``, which
    makes strawberry skip its own (the documented contract of ``ValidationCache``)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            context.pre_execution_errors = validate_document(
                context.schema._schema,
                context.graphql_document,
                tuple(context.validation_rules),
            )
        yield
