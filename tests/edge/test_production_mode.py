"""Production mode: no GraphiQL, no introspection, no field suggestions; and its CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sources.registry.partners import PartnerStore
from tests.conftest import GatewayFactory, fhir_definition, serve

ROOT = Path(__file__).resolve().parents[2]
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPO = "{ sourcez { id } }"


async def _answers(gateway_for: GatewayFactory, server: TestServer, env: str) -> dict[str, Any]:
    async with gateway_for(fhir_definition(server), env=env) as gw:
        async with gw.session.get(gw.url, headers={"Accept": "text/html"}) as page:
            ide = (page.status, page.headers.get("content-type", ""))
        return {
            "ide": ide,
            "introspection": await gw.query(INTROSPECTION),
            "typo": await gw.query(TYPO),
            "sources": await gw.query("{ sources { id status } }"),
        }


async def test_production_hides_graphiql_introspection_and_suggestions(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    answers = await _answers(gateway_for, fhir_server, "production")
    assert answers["ide"][0] == 404
    refused = answers["introspection"]
    assert refused.get("data") is None
    assert refused["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
    typo = answers["typo"]["errors"][0]
    assert typo["message"] == "Cannot query field 'sourcez' on type 'Query'."
    assert typo["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert answers["sources"]["data"]["sources"]  # ordinary queries are answered


async def test_development_shows_them(gateway_for: GatewayFactory, fhir_server: TestServer) -> None:
    answers = await _answers(gateway_for, fhir_server, "development")
    assert answers["ide"][0] == 200 and answers["ide"][1].startswith("text/html")
    assert answers["introspection"]["data"]["__schema"]["queryType"]["name"] == "Query"
    assert "Did you mean 'sources'?" in answers["typo"]["errors"][0]["message"]


def _refusing_fhir() -> web.Application:
    """A FHIR server that refuses every search it is sent, saying why."""

    async def refuse(request: web.Request) -> web.Response:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "no near"}],
        }
        return web.json_response(outcome, status=400)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    return app


PROBLEMS = "{ sources { id status problems { code severity count samples diagnostics } } }"
NEAR_ME = "{ slots(filter: {near: {latitude: 45.5, longitude: -73.57}}) { totalCount } }"


@pytest.mark.parametrize("env", ["production", "development"])
async def test_source_problems_show_upstream_diagnostics_only_in_development(
    gateway_for: GatewayFactory, env: str
) -> None:
    async with (
        serve(_refusing_fhir()) as server,
        gateway_for(fhir_definition(server), env=env) as gw,
    ):
        refused = await gw.query(NEAR_ME)
        assert refused["errors"][0]["extensions"]["code"] == "SOURCE_BAD_RESPONSE"
        assert "no near" not in str(refused)  # the upstream's words are never a client's
        [source] = (await gw.query(PROBLEMS))["data"]["sources"]
    assert source["status"] == "UP"  # a refusal is a WARNING: the server answers
    [problem] = source["problems"]
    assert problem["code"] == "REQUEST_REFUSED" and problem["severity"] == "WARNING"
    assert problem["count"] >= 1
    if env == "production":
        assert problem["samples"] is None and problem["diagnostics"] is None
    else:
        assert problem["samples"] == [] and problem["diagnostics"] == "no near"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--env", "prod"), {}, "passerelle: --env: invalid choice: 'prod'"),
        (
            (),
            {"PASSERELLE_ENV": "staging"},
            "PASSERELLE_ENV must be one of development, production",
        ),
        (("--cors-origin", "https://a.example/app"), {}, "--cors-origin: expected an origin"),
        ((), {"PASSERELLE_CORS_ORIGINS": "rendezvous.example"}, "--cors-origin: expected"),
    ],
)
def test_bad_mode_or_origin_is_refused_in_one_line(
    args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    done = _cli("--no-demo", *args, env=env)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert expected in done.stderr.strip().splitlines()[-1]


async def test_in_production_only_an_operator_key_sees_problem_diagnostics(
    gateway_for: GatewayFactory, registry_url: str
) -> None:
    with PartnerStore(registry_url) as partners:
        _, operator = partners.create_client("ops-console", operator=True)
        _, partner = partners.create_client("rendezvous-app")
        assert partners.client("ops-console").flags == ("operator",)
    async with (
        serve(_refusing_fhir()) as server,
        gateway_for(fhir_definition(server), env="production") as gw,
    ):
        await gw.query(NEAR_ME)

        async def problem_seen_with(key: str | None) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            async with gw.session.post(gw.url, json={"query": PROBLEMS}, headers=headers) as r:
                assert r.status == 200, await r.text()
                [source] = (await r.json())["data"]["sources"]
            [problem] = source["problems"]
            return dict(problem)

        assert (await problem_seen_with(operator))["diagnostics"] == "no near"
        for other in (partner, None):
            seen = await problem_seen_with(other)
            assert seen["samples"] is None and seen["diagnostics"] is None
