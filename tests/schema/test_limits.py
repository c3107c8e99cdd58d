"""Operation limits: each refused before execution with its code; ordinary queries pass."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import parse

import schema.validation as schema_validation
from schema import schema, with_code
from schema.cost import operation_cost
from schema.limits import DEFAULT_LIMITS, check_directives, check_limits
from tests.examples.test_queries import EXAMPLE_QUERIES

EXAMPLES = EXAMPLE_QUERIES
CONTEXT = SimpleNamespace(allow_introspection=True)


async def run(document: str) -> Any:
    return await schema.execute(document, context_value=CONTEXT)


def nested(levels: int) -> str:
    """A valid document ``levels`` deep: clinic -> physicians -> clinics -> ... -> name."""
    inner = "name"
    for n in range(levels - 1):
        inner = f"physicians {{ clinics {{ {inner} }} }}" if n % 2 == 0 else inner
    return f'{{ node(id: "x") {{ ... on Clinic {{ {inner} }} }} }}'


@pytest.mark.parametrize(
    ("document", "code", "message"),
    [
        (
            "{ " + " ".join(f"a{i}: sources {{ id }}" for i in range(16)) + " }",
            "ALIAS_LIMIT_EXCEEDED",
            "The operation uses 16 aliases; at most 15 are allowed",
        ),
        (
            # The alias-overloading probe of security scanners: 101 aliases.
            "{ " + " ".join(f"a{i}: __typename" for i in range(101)) + " }",
            "ALIAS_LIMIT_EXCEEDED",
            "The operation uses 101 aliases; at most 15 are allowed",
        ),
        (
            "{ " + "__typename @include(if: true) " * 51 + "}",
            "DIRECTIVE_LIMIT_EXCEEDED",
            "The operation uses 51 directives; at most 50 are allowed",
        ),
        (
            "{ " + " ".join("sources { id }" for _ in range(21)) + " }",
            "ROOT_FIELD_LIMIT_EXCEEDED",
            "The operation asks 21 root fields; at most 20 are allowed",
        ),
        (
            "{ " + "sources { id } " * 300 + "}",
            "TOKEN_LIMIT_EXCEEDED",
            "Syntax Error: Document contains more than 1000 tokens. Parsing aborted.",
        ),
    ],
)
async def test_each_limit_is_refused_before_execution_with_its_code(
    document: str, code: str, message: str
) -> None:
    result = await run(document)
    assert result.data is None and result.errors
    error = with_code(result.errors[0])
    assert error.extensions is not None and error.extensions["code"] == code
    assert error.message == message


def test_depth_counts_every_level_through_fragments() -> None:
    document = parse(
        "query { slots(first: 1) { ...E } } "
        "fragment E on SlotConnection { edges { node { clinic { address { city } } } } }"
    )
    assert check_limits(document) == []  # 6 levels, as the contract's ordinary queries
    deep = parse(
        "{ a { b { c { d { e { f { g { h { i { j { k } } } } } } } } } } }"
    )  # 11 levels: syntax only, check_limits needs no schema
    (error,) = check_limits(deep)
    assert error.extensions == {"code": "DEPTH_LIMIT_EXCEEDED", "found": 11, "limit": 10}
    assert error.message == "The operation nests fields 11 levels deep; at most 10 are allowed"


def test_a_fragment_cycle_does_not_hang_the_count() -> None:
    cyclic = parse("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    assert check_limits(cyclic) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_query_is_well_within_the_limits(path: Path) -> None:
    document = parse(path.read_text(encoding="utf-8"))
    assert check_limits(document) == []
    tight = type(DEFAULT_LIMITS)(depth=7, aliases=5, tokens=500, directives=10, root_fields=5)
    assert check_limits(document, tight) == []  # room to spare


def _fragment_chain(levels: int) -> str:
    """F0 spreads F1 twice, F1 spreads F2 twice...: 2**levels paths, a few hundred tokens."""
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return f"{{ ...F0 }} {chain} fragment F{levels} on Query {{ sources {{ id }} }}"


async def test_a_fragment_chain_that_doubles_at_every_step_is_counted_at_once() -> None:
    document = _fragment_chain(40)  # 2**40 paths: an exponential walk would never end
    started = time.monotonic()
    check_limits(parse(document))
    operation_cost(schema._schema, parse(document))
    result = await run(document)
    assert time.monotonic() - started < 1.0
    assert result.data is None and result.errors  # 2**40 root fields, and as costly


# -- directive overloading (graphql-cop) and the cap on validation errors ----------------


def codes(result: Any) -> list[str]:
    return [with_code(e).extensions["code"] for e in result.errors or []]


async def test_ten_repeated_unknown_directives_are_one_error() -> None:
    result = await run("{ __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }")  # graphql-cop's probe
    assert result.data is None
    assert codes(result) == ["DIRECTIVE_LIMIT_EXCEEDED"]
    assert result.errors[0].message == (
        "The directive @aa is used 10 times at one location; it may appear there once"
    )


async def test_a_hundred_skips_on_one_field_are_refused_before_validation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: object, **kwargs: object) -> list[Any]:
        raise AssertionError("the validator ran")

    monkeypatch.setattr("schema.validation.validate", never)
    schema_validation.validate_document.cache_clear()
    started = time.perf_counter()
    result = await run("{ __typename" + " @skip(if: true)" * 100 + " }")
    elapsed = time.perf_counter() - started
    assert codes(result) == ["DIRECTIVE_LIMIT_EXCEEDED"]
    assert elapsed < 0.05  # generous: refused in well under 5 ms on this machine


async def test_too_many_directives_on_separate_fields_are_refused_before_validation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("schema.validation.validate", None)  # calling it would fail
    schema_validation.validate_document.cache_clear()
    result = await run("{ " + "__typename @skip(if: false) " * 51 + "}")
    assert codes(result) == ["DIRECTIVE_LIMIT_EXCEEDED"]
    assert result.errors[0].extensions == {
        "code": "DIRECTIVE_LIMIT_EXCEEDED",
        "found": 51,
        "limit": 50,
    }


async def test_a_thousand_skips_are_refused_by_the_token_limit() -> None:
    result = await run("{ __typename" + " @skip(if: true)" * 1000 + " }")
    assert codes(result) == ["TOKEN_LIMIT_EXCEEDED"]


async def test_validation_stops_after_five_errors() -> None:
    result = await run("{ " + " ".join(f"missing{i}" for i in range(10)) + " }")
    assert codes(result) == ["GRAPHQL_VALIDATION_FAILED"] * 5
    assert result.errors[-1].message == (
        "Too many validation errors, error limit reached. Validation aborted."
    )


def test_only_repeatable_directives_may_repeat_at_one_location() -> None:
    document = parse("{ a @tag @tag b @skip(if: true) c @skip(if: true) }")
    assert check_directives(document, DEFAULT_LIMITS, repeatable={"tag"}) is None
    refused = check_directives(parse("{ a @skip(if: true) @skip(if: false) }"))
    assert refused is not None and refused.extensions == {
        "code": "DIRECTIVE_LIMIT_EXCEEDED",
        "directive": "skip",
    }


async def test_a_document_within_its_limits_is_walked_once_and_one_over_them_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import schema.limits as limits_module

    walked: list[int] = []

    def counting(document: Any, limits: Any) -> Any:
        walked.append(1)
        return check_limits(document, limits)

    monkeypatch.setattr(limits_module, "check_limits", counting)
    within = "{ walkedOnce: __typename }"  # a text no other test parses
    for _ in range(3):
        result = await run(within)
        assert not result.errors
    assert len(walked) == 1  # the parser cache's one document, found within once
    deep = nested(12)
    for _ in range(2):
        refused = await run(deep)
        assert [with_code(e).extensions["code"] for e in refused.errors or []] == [
            "DEPTH_LIMIT_EXCEEDED"
        ]
    assert len(walked) == 3
