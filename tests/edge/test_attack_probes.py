"""The probes of public GraphQL security scanners (graphql-cop, InQL, Escape...) against
a production gateway: each is refused or finds nothing to see."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import Gateway, GatewayFactory, fhir_definition

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def production(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> AsyncIterator[Gateway]:
    async with gateway_for(fhir_definition(fhir_server), env="production") as gw:
        yield gw


async def post(gw: Gateway, body: Any, headers: dict[str, str] = JSON) -> tuple[int, str]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with gw.session.post(gw.url, data=data, headers=headers) as response:
        return response.status, await response.text()


def codes(text: str) -> list[str]:
    return [e["extensions"]["code"] for e in json.loads(text).get("errors", [])]


async def test_alias_overloading_is_refused(production: Gateway) -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(101))
    status, text = await post(production, {"query": f"{{ {aliases} }}"})
    assert status == 200 and codes(text) == ["ALIAS_LIMIT_EXCEEDED"]


async def test_array_batching_is_refused(production: Gateway) -> None:
    status, text = await post(production, [{"query": "{ __typename }"}] * 10)
    assert (status, text) == (400, "Batching is not enabled")


async def test_directive_overloading_is_refused(production: Gateway) -> None:
    many = "__typename @include(if: true) " * 60
    status, text = await post(production, {"query": f"{{ {many} }}"})
    assert status == 200 and codes(text) == ["DIRECTIVE_LIMIT_EXCEEDED"]
    repeated = "{ __typename " + "@skip(if: false) " * 60 + "}"  # graphql-cop's variant
    _, text = await post(production, {"query": repeated})
    assert set(codes(text)) <= {"GRAPHQL_VALIDATION_FAILED", "DIRECTIVE_LIMIT_EXCEEDED"}
    assert codes(text)


async def test_introspection_and_circular_introspection_are_refused(production: Gateway) -> None:
    _, text = await post(production, {"query": "{ __schema { types { name } } }"})
    assert codes(text) == ["INTROSPECTION_DISABLED"]
    circular = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    _, text = await post(production, {"query": circular})
    assert codes(text) and json.loads(text).get("data") is None


async def test_field_suggestions_are_hidden(production: Gateway) -> None:
    _, text = await post(production, {"query": "{ slot { id } }"})
    message = json.loads(text)["errors"][0]["message"]
    assert "Did you mean" not in message and message == "Cannot query field 'slot' on type 'Query'."


async def test_graphiql_is_not_served_to_a_browser(production: Gateway) -> None:
    async with production.session.get(production.url, headers={"Accept": "text/html"}) as page:
        assert page.status == 404
        assert "graphiql" not in (await page.text()).lower()


async def test_a_mutation_over_get_finds_nothing_to_run(production: Gateway) -> None:
    # The schema has no mutation at all; a GET may carry only queries (APQ needs them).
    params = {"query": "mutation { __typename }"}
    async with production.session.get(production.url, params=params) as response:
        assert response.status in (400, 405)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
)
async def test_posts_a_browser_could_forge_are_refused(
    production: Gateway, content_type: str
) -> None:
    status, text = await post(
        production, {"query": "{ __typename }"}, {"Content-Type": content_type}
    )
    assert status == 400 and codes(text) == ["CSRF_PREVENTION"]


async def test_no_tracing_nor_internals_in_the_answer(production: Gateway) -> None:
    status, text = await post(production, {"query": "{ sources { id status } }"})
    assert status == 200
    answer = json.loads(text)
    assert set(answer) <= {"data", "extensions"}
    assert "tracing" not in answer.get("extensions", {})
    assert set(answer.get("extensions", {})) <= {"sources"}


async def test_an_unhandled_error_is_masked_with_an_id(production: Gateway) -> None:
    # A cursor that decodes to garbage exercises the resolvers' error handling; any
    # unexpected failure must come back masked, never as a traceback.
    status, text = await post(
        production,
        {"query": '{ slots(filter: {region: LAVAL}, after: "\\u0000\\u0001") { totalCount } }'},
    )
    assert status == 200 and "Traceback" not in text and 'File "' not in text
    for error in json.loads(text).get("errors", []):
        assert error["extensions"]["code"] in {"BAD_USER_INPUT", "INTERNAL_SERVER_ERROR"}
        if error["extensions"]["code"] == "INTERNAL_SERVER_ERROR":
            assert error["extensions"]["errorId"]
