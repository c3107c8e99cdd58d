"""Introspection is refused, before execution, to a request not allowed it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from schema import schema

PROBES = [
    "{ __schema { queryType { name } } }",
    '{ __type(name: "Slot") { fields { name } } }',
    "query { ...F } fragment F on Query { __schema { types { name } } }",
    '{ ... on Query { __type(name: "Clinic") { name } } }',
]
# The circular introspection probe of security scanners.
CIRCULAR = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"


@pytest.mark.parametrize("document", PROBES)
async def test_introspection_is_refused_when_not_allowed(document: str) -> None:
    result = await schema.execute(
        document, context_value=SimpleNamespace(allow_introspection=False)
    )
    assert result.data is None
    assert result.errors is not None and len(result.errors) == 1
    assert result.errors[0].extensions == {"code": "INTROSPECTION_DISABLED"}


@pytest.mark.parametrize("document", PROBES[:2])
async def test_introspection_is_answered_when_allowed(document: str) -> None:
    result = await schema.execute(document, context_value=SimpleNamespace(allow_introspection=True))
    assert result.errors is None and result.data


async def test_typename_is_not_introspection_and_the_validation_cache_stays_clean() -> None:
    refused = SimpleNamespace(allow_introspection=False)
    result = await schema.execute("{ __typename }", context_value=refused)
    assert result.errors is None and result.data == {"__typename": "Query"}
    # The same document refused, then allowed: the refusal was not cached with it.
    document = "{ __schema { queryType { name } } }"
    assert (await schema.execute(document, context_value=refused)).errors
    allowed = SimpleNamespace(allow_introspection=True)
    assert (await schema.execute(document, context_value=allowed)).errors is None


async def test_circular_introspection_is_refused_even_when_allowed() -> None:
    allowed = SimpleNamespace(allow_introspection=True)
    result = await schema.execute(CIRCULAR, context_value=allowed)
    assert result.data is None and result.errors is not None
    assert result.errors[0].message == "Maximum introspection depth exceeded"
