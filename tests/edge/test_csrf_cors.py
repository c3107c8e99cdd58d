"""CSRF prevention (as Apollo Router) and CORS from an allow-list of origins."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from edge.middleware.csrf import needs_preflight_proof
from tests.conftest import Gateway, GatewayFactory, fhir_definition

QUERY = '{"query": "{ sources { id } }"}'


async def post(gateway: Gateway, headers: dict[str, str], body: str = QUERY) -> tuple[int, Any]:
    async with gateway.session.post(gateway.url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "TEXT/PLAIN"],
)  # fmt: skip
async def test_a_post_a_browser_could_send_cross_site_is_refused(
    gateway: Gateway, content_type: str
) -> None:
    status, result = await post(gateway, {"Content-Type": content_type})
    assert status == 400
    error = result["errors"][0]
    assert error["extensions"]["code"] == "CSRF_PREVENTION"
    assert "apollo-require-preflight" in error["message"]


async def test_a_json_post_or_one_with_a_preflight_header_goes_through(gateway: Gateway) -> None:
    status, result = await post(gateway, {"Content-Type": "application/json"})
    assert status == 200 and result["data"]["sources"]
    for header in ("apollo-require-preflight", "x-apollo-operation-name"):
        headers = {"Content-Type": "text/plain", header: "true"}
        async with gateway.session.post(gateway.url, data=QUERY, headers=headers) as response:
            # Past the CSRF check: the GraphQL view itself refuses text/plain bodies.
            assert (response.status, await response.text()) == (400, "Unsupported content type")


def test_the_check_reads_only_the_headers_that_matter() -> None:
    assert needs_preflight_proof([])
    assert needs_preflight_proof([(b"content-type", b"text/plain")])
    assert not needs_preflight_proof([(b"content-type", b"application/json")])
    assert not needs_preflight_proof([(b"content-type", b"application/graphql-response+json")])
    assert not needs_preflight_proof([(b"apollo-require-preflight", b"1")])
    assert needs_preflight_proof([(b"apollo-require-preflight", b" ")])


async def test_cors_answers_only_the_configured_origins(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    allowed = "https://rendezvous.example"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with gateway_for(fhir_definition(fhir_server), cors_origins=(allowed,)) as gw:
        async with gw.session.options(gw.url, headers={"Origin": allowed, **preflight}) as r:
            assert r.status == 200
            assert r.headers["access-control-allow-origin"] == allowed
        async with gw.session.options(
            gw.url, headers={"Origin": "https://evil.example", **preflight}
        ) as r:
            assert r.status == 400
            assert "access-control-allow-origin" not in r.headers
        async with gw.session.post(
            gw.url, data=QUERY, headers={"Origin": allowed, "Content-Type": "application/json"}
        ) as r:
            assert r.headers["access-control-allow-origin"] == allowed


async def test_no_cors_header_without_configured_origins(gateway: Gateway) -> None:
    async with gateway.session.post(
        gateway.url,
        data=QUERY,
        headers={"Origin": "https://rendezvous.example", "Content-Type": "application/json"},
    ) as response:
        assert response.status == 200
        assert "access-control-allow-origin" not in response.headers
