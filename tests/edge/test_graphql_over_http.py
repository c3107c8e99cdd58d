"""GraphQL over HTTP, as audited by the ``graphql-http`` package (npm).

The audit runs in Node against a live gateway; every MUST and every SHOULD must
pass. ``npm ci`` installs the pinned audit the first time (tests/edge/http_audit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.operation import GRAPHQL_RESPONSE, response_media_type
from tests.conftest import Gateway
from tests.node_tools import npm_installed, run_node_json

AUDIT = Path(__file__).parent / "http_audit"


@pytest.fixture(scope="session")
def audit_installed() -> Path:
    return npm_installed(AUDIT, "graphql-http") / "audit.mjs"


async def test_every_must_and_should_of_the_graphql_over_http_audit_passes(
    gateway: Gateway, audit_installed: Path
) -> None:
    results: list[dict[str, Any]] = await run_node_json(audit_installed, gateway.url)
    assert len(results) > 50
    failed = [
        f"{r['name']}: {r['reason']}"
        for r in results
        if r["name"].startswith(("MUST", "SHOULD")) and r["status"] != "ok"
    ]
    assert failed == []


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json;q=0.5", "application/json"),
        ("application/graphql-response+json;q=0", "application/json"),
        ("text/html;q=bad, application/graphql-response+json", GRAPHQL_RESPONSE),
    ],
)
def test_the_response_media_type_follows_the_accept_header(
    accept: str | None, expected: str
) -> None:
    assert response_media_type(accept) == expected


async def test_source_failures_are_still_a_200_with_data_in_the_new_media_type(
    gateway: Gateway,
) -> None:
    headers = {"Accept": GRAPHQL_RESPONSE}
    body = {"query": "{ sources { id status } }"}
    async with gateway.session.post(gateway.url, json=body, headers=headers) as response:
        assert response.status == 200
        assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
        assert (await response.json(content_type=None))["data"]["sources"]
    bad = {"query": "{ sources { nope } }"}
    async with gateway.session.post(gateway.url, json=bad, headers=headers) as response:
        assert response.status == 400
        result = await response.json(content_type=None)
    assert "data" not in result
    assert result["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
