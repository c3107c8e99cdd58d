"""Compiling a root field's selection into one function that completes its value.

graphql-core completes a resolved value field by field: for each field of each object
it builds a resolve info, calls strawberry's resolver wrapper, then completes the
result through its generic ``complete_value``. For a selection made only of what this
module supports, :func:`compile_field` builds once, from the same collected fields
(graphql-core's own ``collect_subfields``, so fragments, aliases, ``@skip`` and
``@include`` mean what they mean there), a tree of small closures that turns the root
resolver's value into the same dict::

    completer = compile_field(executor, return_type, field_details_list)
    data = completer(value, context)  # raises Bail where graphql-core would not
                                      # complete it silently: the caller falls back

Supported: object types (checked by exact class, as strawberry's ``is_type_of`` would
accept), lists, non-null, every scalar and enum (through the type's own
``coerce_output_value``, with exact fast paths for ``str``, ``int``, ``bool`` and
``float``), ``__typename``, strawberry's plain fields (no resolver), and the few
synchronous resolvers of :data:`PURE_RESOLVERS` (they only read their object and the
request's context). Anything else makes the field unsupported (:class:`Unsupported`,
with the reason): an argument on a nested field, an asynchronous resolver, an
interface or union, ``@defer``/``@stream``, a directive of another name.

For the root field ``slots``, the executor first asks for a plan that reads the
search's records themselves (``record_types``: ``schema/plan/records.py``), and its
resolver then returns them rather than strawberry objects.

A completer never has side effects: whenever a value is not what the plan expects (a
null where the schema says non-null, an exception, a value of another class), it
raises :class:`Bail` and the caller completes the same value with graphql-core,
which then reports the error exactly as it always does.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter

if TYPE_CHECKING:
    from graphql.execution.collect_fields import FieldDetails
    from graphql.execution.executor import Executor

    from schema.plan.records import RecordType

__all__ = ["PURE_RESOLVERS", "Bail", "Completer", "Unsupported", "compile_field"]

Completer = Callable[[Any, Any], Any]  # (value, request context) -> completed value

_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# Resolvers the plan calls itself, as strawberry would: (type, field) in the schema's
# names. Each is synchronous, takes ``self`` (and ``info``, of which it reads only
# ``info.context``), and has no side effect, so a bail may call it again.
PURE_RESOLVERS = frozenset(
    {
        ("SlotEdge", "cursor"),
        ("Slot", "source"),
        ("Clinic", "sources"),
        ("Source", "problems"),
        ("Source", "phantomSlots"),
    }
)


class Bail(Exception):
    """A value the plan does not complete: graphql-core completes it instead."""


class Unsupported(Exception):
    """A selection the plan cannot compile; the message says what."""


@dataclass(frozen=True, slots=True)
class _Info:
    """What a pure resolver reads of strawberry's ``Info``: the request's context."""

    context: Any


def compile_field(
    executor: Executor[Any],
    return_type: Any,
    field_details_list: list[FieldDetails],
    record_types: Mapping[str, RecordType] | None = None,
) -> Completer:
    """The completer of a field of ``return_type`` selected by ``field_details_list``
    (the value's own type, non-null and lists included), or :class:`Unsupported`.

    ``record_types``: the value is made of records, not strawberry objects; each type
    reached is read by its readers there (``schema/plan/records.py``), and a type or a
    field they do not cover makes the selection unsupported."""
    return _Compiler(executor, record_types or {}).value(
        return_type, field_details_list, record_types is not None
    )


class _Compiler:
    def __init__(self, executor: Executor[Any], record_types: Mapping[str, RecordType]) -> None:
        self.executor = executor
        self.record_types = record_types

    def value(self, type_: Any, fields: list[FieldDetails], records: bool) -> Completer:
        if isinstance(type_, GraphQLNonNull):
            return _non_null(self.value(type_.of_type, fields, records))
        if isinstance(type_, GraphQLList):
            return _list(self.value(type_.of_type, fields, records))
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            return _leaf(type_)
        if isinstance(type_, GraphQLObjectType):
            return self.object(type_, fields, records)
        raise Unsupported(f"a field of abstract type {type_}")

    def object(
        self, type_: GraphQLObjectType, fields: list[FieldDetails], records: bool
    ) -> Completer:
        record_type = self.record_types.get(type_.name) if records else None
        if records and record_type is None:
            raise Unsupported(f"records of {type_.name}")
        collected = self.executor.collect_subfields(type_, fields)
        if collected.new_defer_usages:
            raise Unsupported("@defer")
        entries: list[tuple[str, Completer]] = []
        for key, details in collected.grouped_field_set.items():
            entries.append((key, self.entry(type_, details, record_type)))
        origin = record_type.origin if record_type is not None else _origin(type_)
        return _object(origin, tuple(entries))

    def entry(
        self, parent: GraphQLObjectType, details: list[FieldDetails], record: RecordType | None
    ) -> Completer:
        node = details[0].node
        name = node.name.value
        if any(d.fragment_variable_values is not None for d in details):
            raise Unsupported("fragment arguments")
        for detail in details:
            for directive in detail.node.directives or ():
                if directive.name.value not in ("skip", "include"):
                    raise Unsupported(f"@{directive.name.value} on {parent.name}.{name}")
        if name == "__typename":
            type_name = parent.name
            return lambda _value, _context: type_name
        field = parent.fields.get(name)
        if field is None:
            raise Unsupported(f"{parent.name}.{name}: no such field")
        if field.args or node.arguments:
            raise Unsupported(f"{parent.name}.{name}: a field with arguments")
        definition = (field.extensions or {}).get(_BACKREF)
        if definition is None:
            raise Unsupported(f"{parent.name}.{name}: not a strawberry field")
        basic = getattr(field.resolve, "_is_default", False)
        if record is not None:
            reader = record.readers.get(name)
            if reader is not None:
                complete = self.value(field.type, details, name not in record.objects)
                return _read(reader, complete)
            if basic:
                return _attribute(definition.python_name, self.value(field.type, details, True))
            raise Unsupported(f"{parent.name}.{name}: no reader of its records")
        complete = self.value(field.type, details, False)
        if basic:
            return _attribute(definition.python_name, complete)
        if (parent.name, name) in PURE_RESOLVERS and not definition.is_async:
            return _resolved(definition, complete)
        raise Unsupported(f"{parent.name}.{name}: its resolver")


def _origin(type_: GraphQLObjectType) -> type:
    definition = (type_.extensions or {}).get(_BACKREF)
    origin = getattr(definition, "origin", None)
    if not isinstance(origin, type):
        raise Unsupported(f"{type_.name}: not a strawberry type")
    return origin


def _object(origin: type, entries: tuple[tuple[str, Completer], ...]) -> Completer:
    def complete(value: Any, context: Any) -> Any:
        if value is None:
            return None
        if type(value) is not origin:
            raise Bail  # graphql-core's is_type_of decides (a cast, an error)
        return {key: entry(value, context) for key, entry in entries}

    return complete


def _read(reader: Callable[[Any, Any], Any], complete: Completer) -> Completer:
    def entry(value: Any, context: Any) -> Any:
        return complete(reader(value, context), context)

    return entry


def _attribute(name: str, complete: Completer) -> Completer:
    def entry(value: Any, context: Any) -> Any:
        return complete(getattr(value, name), context)

    return entry


def _resolved(definition: Any, complete: Completer) -> Completer:
    func = definition.base_resolver.wrapped_func
    params = list(inspect.signature(func).parameters)
    if params == ["self"]:
        return lambda value, context: complete(func(value), context)
    if params == ["self", "info"]:
        return lambda value, context: complete(func(value, _Info(context)), context)
    raise Unsupported(f"{definition.python_name}: resolver parameters {params}")


def _non_null(inner: Completer) -> Completer:
    def complete(value: Any, context: Any) -> Any:
        completed = inner(value, context)
        if completed is None:
            raise Bail  # graphql-core's "Cannot return null for non-nullable field"
        return completed

    return complete


def _list(item: Completer) -> Completer:
    def complete(value: Any, context: Any) -> Any:
        if value is None:
            return None
        if type(value) is not list and type(value) is not tuple:
            raise Bail
        return [item(v, context) for v in value]

    return complete


def _leaf(type_: GraphQLScalarType | GraphQLEnumType) -> Completer:
    coerce = type_.coerce_output_value
    kind = "" if isinstance(type_, GraphQLEnumType) else type_.name

    def slow(value: Any) -> Any:
        if isinstance(value, BaseException):
            raise Bail
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise Bail  # graphql-core's TypeError: a non-nullable value expected
        return coerced

    if kind == "Int":

        def complete_int(value: Any, _context: Any) -> Any:
            if value is None:
                return None
            if type(value) is int and _INT_MIN <= value <= _INT_MAX:
                return value
            return slow(value)

        return complete_int
    if kind == "Float":

        def complete_float(value: Any, _context: Any) -> Any:
            if value is None:
                return None
            if type(value) is float and math.isfinite(value):
                return value
            return slow(value)

        return complete_float
    exact = {"String": str, "ID": str, "Boolean": bool}.get(kind)
    if exact is not None:

        def complete_exact(value: Any, _context: Any) -> Any:
            if value is None:
                return None
            if type(value) is exact:
                return value
            return slow(value)

        return complete_exact

    def complete(value: Any, _context: Any) -> Any:
        if value is None:
            return None
        return slow(value)

    return complete
