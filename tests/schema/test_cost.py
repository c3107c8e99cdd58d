"""Demand control: costs computed before execution, refused over the limit, or measured."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from graphql import parse

from resolvers.context import RequestContext
from schema import make_schema, schema
from schema.cost import DEFAULT_MAX_COST, operation_cost
from sources.pool.fanout import SourcePool
from tests.examples.test_queries import EXAMPLE_QUERIES

EXAMPLES = EXAMPLE_QUERIES
CONTEXT = SimpleNamespace(allow_introspection=True)
GREEDY = """query Greedy($n: Int) {
  clinics(first: $n) { edges { node { name physicians { displayName }
    nextSlots(first: 100) { start clinic { name } physician { displayName } } } } }
}"""


def cost(document: str, variables: dict[str, Any] | None = None) -> int:
    return operation_cost(schema._schema, parse(document), variables)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_query_costs_under_a_tenth_of_the_default_limit(path: Path) -> None:
    assert 0 < cost(path.read_text(encoding="utf-8")) < DEFAULT_MAX_COST / 10


def test_lists_multiply_by_first_from_literals_variables_or_defaults() -> None:
    slots = (
        "{ slots(filter: {region: LAVAL}, first: 10) { edges { node { start clinic { name } } } } }"
    )
    # slots: 10 x (1 connection + 1 edge + 1 node + 1 clinic); PageInfo not asked.
    assert cost(slots) == 40
    assert cost(slots.replace("first: 10", "first: 20")) == 80
    with_variable = "query($n: Int) { clinics(first: $n) { edges { node { name } } } }"
    assert cost(with_variable, {"n": 3}) == 3 * 3
    assert cost(with_variable, {}) == 20 * 3  # the argument's default


async def test_an_operation_over_the_limit_is_refused_with_its_cost() -> None:
    assert cost(GREEDY, {"n": 50}) > DEFAULT_MAX_COST
    result = await schema.execute(GREEDY, variable_values={"n": 50}, context_value=CONTEXT)
    assert result.data is None and result.errors
    error = result.errors[0]
    assert error.extensions == {
        "code": "COST_LIMIT_EXCEEDED",
        "cost": cost(GREEDY, {"n": 50}),
        "limit": DEFAULT_MAX_COST,
    }
    assert "ask for fewer items (first) or fewer fields" in error.message


async def test_first_over_100_is_bad_user_input_before_execution() -> None:
    document = "{ slots(filter: {region: LAVAL}, first: 500) { edges { node { start } } } }"
    result = await schema.execute(document, context_value=CONTEXT)
    assert result.data is None and result.errors
    assert result.errors[0].extensions == {"code": "BAD_USER_INPUT"}
    assert result.errors[0].message == "first must be between 0 and 100, got 500 (on slots)"


@pytest.mark.parametrize("first", [-1, 101])
@pytest.mark.parametrize("field", ["slots", "clinics"])
async def test_first_out_of_range_is_worded_one_way_before_execution(
    field: str, first: int
) -> None:
    selection = "edges { node { id } }"
    document = (
        f"query($n: Int) {{ {field}(filter: {{region: LAVAL}}, first: $n) {{ {selection} }} }}"
    )
    result = await schema.execute(document, {"n": first}, context_value=CONTEXT)
    assert result.data is None and result.errors  # refused before execution
    assert [e.message for e in result.errors] == [
        f"first must be between 0 and 100, got {first} (on {field})"
    ]


async def test_measure_mode_reports_the_cost_without_refusing() -> None:
    measuring = make_schema(max_cost=10, measure_cost=True)
    async with aiohttp.ClientSession() as session:
        context = RequestContext(pool=SourcePool(session))  # no sources: nothing to call
        result = await measuring.execute("{ sources { id status } }", context_value=context)
        over = await measuring.execute(
            "{ sources { id } s2: sources { id } }", context_value=context
        )
    assert result.errors is None
    assert result.extensions == {"cost": {"requested": 10, "limit": 10}}
    assert over.errors is None and over.extensions == {"cost": {"requested": 20, "limit": 10}}


def test_a_variable_default_counts_when_the_variable_is_not_sent() -> None:
    document = "query Q($n: Int = 100) { clinics(first: $n) { edges { node { name } } } }"
    assert cost(document) == 100 * 3
    assert cost(document, {"n": 2}) == 2 * 3
