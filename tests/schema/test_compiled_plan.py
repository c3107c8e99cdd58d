"""The compiled plan (schema/plan/) answers byte for byte what graphql-core answers.

One live gateway over the demo FHIR and REST systems (the source cache off, so that
every request asks its sources live and ``extensions.sources`` says the same each
time), its schema's ``compiled_plan`` switched between two requests that are alike in
everything else: every example query (examples/queries/ and GraphiQL's) and every
registered document of ``plan_documents.json`` (an Apollo manifest, checked as
partners' documents are), at several points and variables, bad variables, a failing
source; each answer's status, headers that matter and bytes compared. The plan's
counts show it was used where it should be.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from edge.documents.trusted import check_document, parse_manifest
from edge.graphql_view import GatewayGraphQL
from schema.plan import STATS
from sources.records import SourceProtocol
from sources.registry.definition import SourceConfig
from tests.conftest import Gateway, GatewayFactory, fhir_definition, rest_definition
from tests.examples.test_queries import QUERIES

MANIFEST = Path(__file__).with_name("plan_documents.json")
DOCUMENTS = {d.operation_name: d.body for d in parse_manifest(MANIFEST.read_text())}
POINTS = [
    {"latitude": 45.5017, "longitude": -73.5673},
    {"latitude": 45.53, "longitude": -73.62},
    {"latitude": 45.47, "longitude": -73.52},
    {"latitude": 48.45, "longitude": -68.52},  # Rimouski: nothing within 10 km here
]
HEADERS = {"Content-Type": "application/json", "Accept": "application/graphql-response+json"}


def _view(app: Any) -> GatewayGraphQL:
    """The app's GraphQL view, under whatever middleware wraps the Starlette app."""
    while not hasattr(app, "routes"):
        app = app.app
    for route in app.routes:
        if isinstance(getattr(route, "endpoint", None), GatewayGraphQL):
            return route.endpoint  # type: ignore[no-any-return]
    raise LookupError("no GraphQL route")


class Both:
    """Sends one request with the plan on, then off, and compares what came back."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.schema = _view(gateway.app).schema

    async def send(self, body: Any, plan: bool) -> tuple[int, str, bytes]:
        self.schema.compiled_plan = plan  # type: ignore[attr-defined]
        try:
            async with self.gateway.session.post(
                self.gateway.url, data=orjson.dumps(body), headers=HEADERS
            ) as response:
                return response.status, response.headers["content-type"], await response.read()
        finally:
            self.schema.compiled_plan = True  # type: ignore[attr-defined]

    async def same(self, body: Any) -> Any:
        """The answer, after checking that both ways gave the same bytes (plan on, off,
        then on again: the answer does not depend on which came first). A request
        before them settles what a source's first call changes (its status)."""
        await self.send(body, False)
        planned = await self.send(body, True)
        plain = await self.send(body, False)
        again = await self.send(body, True)
        assert planned == plain, (body, planned[2][:600], plain[2][:600])
        assert again == plain
        return orjson.loads(planned[2])


@pytest.fixture
async def both(
    gateway_for: GatewayFactory, fhir_server: TestServer, rest_server: TestServer
) -> AsyncIterator[Both]:
    definitions = (fhir_definition(fhir_server), rest_definition(rest_server))
    async with gateway_for(*definitions, cache="off") as gw:
        yield Both(gw)


def test_every_plan_document_is_one_a_partner_may_register() -> None:
    assert set(DOCUMENTS) == {"NearMe", "EverySlotField", "Shaped", "ClinicsNear", "NodeById"}
    for text in DOCUMENTS.values():
        assert check_document(text) is None


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_example_queries_answer_the_same_bytes_planned_or_not(both: Both, name: str) -> None:
    answer = await both.same({"query": QUERIES[name]})
    assert "errors" not in answer, answer


async def test_slot_documents_answer_the_same_bytes_at_every_point(both: Both) -> None:
    before, records = STATS["planned"], STATS["records"]
    for near in POINTS:
        await both.same({"query": DOCUMENTS["NearMe"], "variables": {"near": near}})
        for first in (1, 7, 30):
            answer = await both.same(
                {"query": DOCUMENTS["EverySlotField"], "variables": {"near": near, "first": first}}
            )
            cursor = answer["data"]["slots"]["pageInfo"]["endCursor"]
            if cursor is not None:  # the next page too
                variables = {"near": near, "first": first, "after": cursor}
                await both.same({"query": DOCUMENTS["EverySlotField"], "variables": variables})
    # Each of these requests completed its root field by the plan, from the records
    # themselves, the bytes the same.
    assert STATS["planned"] - before >= 2 * len(POINTS) * 4
    assert STATS["records"] - records >= 2 * len(POINTS) * 4


async def test_what_the_plan_does_not_support_is_completed_by_graphql_core(both: Both) -> None:
    counts = dict(STATS)
    await both.same({"query": QUERIES["clinics_in_laval"]})  # Clinic.physicians: async
    await both.same({"query": DOCUMENTS["NodeById"], "variables": {"id": "x"}})  # interface
    assert STATS["unsupported"] - counts.get("unsupported", 0) == 2 * 2
    assert STATS["planned"] == counts.get("planned", 0)
    await both.same({"query": DOCUMENTS["ClinicsNear"], "variables": {"near": POINTS[0]}})
    assert STATS["planned"] - counts.get("planned", 0) == 2  # the two with the plan on
    assert STATS["records"] == counts.get("records", 0)  # clinics: strawberry objects


async def test_fragments_aliases_typename_and_directives_follow_the_variables(
    both: Both,
) -> None:
    for near in POINTS[:2]:
        for with_physician in (True, False):
            for lean in (True, False):
                variables = {"near": near, "withPhysician": with_physician, "lean": lean}
                answer = await both.same({"query": DOCUMENTS["Shaped"], "variables": variables})
                nodes = [e["node"] for e in answer["data"]["first"]["edges"]]
                assert nodes and all(("physician" in n) is with_physician for n in nodes)
                assert all(("clinic" in n) is not lean for n in nodes)
                assert answer["data"]["later"]["kind"] == "SlotConnection"


async def test_clinics_and_nodes_answer_the_same_bytes(both: Both) -> None:
    for near in (None, *POINTS[:2]):
        for first in (2, 20):
            variables = {"near": near, "first": first}
            answer = await both.same({"query": DOCUMENTS["ClinicsNear"], "variables": variables})
            if near is not None:
                edges = answer["data"]["clinics"]["edges"]
    assert edges
    for node_id in (edges[0]["node"]["id"], "Q2xpbmljOm5vcGU=", "not an id"):
        await both.same({"query": DOCUMENTS["NodeById"], "variables": {"id": node_id}})


async def test_bad_variables_and_bad_documents_answer_the_same_bytes(both: Both) -> None:
    bad = [
        {"query": DOCUMENTS["NearMe"], "variables": {"near": {"latitude": "north"}}},
        {"query": DOCUMENTS["NearMe"], "variables": {}},
        {"query": DOCUMENTS["EverySlotField"], "variables": {"near": POINTS[0], "first": -1}},
        {"query": DOCUMENTS["EverySlotField"], "variables": {"near": POINTS[0], "after": "zz"}},
        {"query": "{ slots(filter: {}) { edges { node { nope } } } }"},
        {"query": "{ slots(filter: {near: {latitude: 91, longitude: 0}}) { totalCount } }"},
    ]
    for body in bad:
        answer = await both.same(body)
        assert answer["errors"], body


async def test_an_apq_hash_answers_the_same_bytes(both: Both) -> None:
    text = DOCUMENTS["NearMe"]
    digest = hashlib.sha256(text.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    variables = {"near": POINTS[1]}
    await both.same({"query": text, "variables": variables, "extensions": persisted})
    answer = await both.same({"variables": variables, "extensions": persisted})
    assert answer["data"]["slots"]["edges"]


async def test_a_failing_source_answers_the_same_bytes(
    gateway_for: GatewayFactory, fhir_server: TestServer, rest_server: TestServer
) -> None:
    broken = SourceConfig(
        id="broken-fhir",
        name="Broken FHIR",
        protocol=SourceProtocol.FHIR_R4,
        url=str(fhir_server.make_url("/nowhere")),
    )
    definitions = (fhir_definition(fhir_server), rest_definition(rest_server), broken)
    async with gateway_for(*definitions, cache="off") as gw:
        both = Both(gw)
        body = {"query": DOCUMENTS["NearMe"], "variables": {"near": POINTS[0]}}
        for _ in range(6):  # until the broken source's health settles
            await both.send(body, True)
        answer = await both.same(body)
        assert answer["data"]["slots"]["edges"]
        codes = {e["extensions"]["code"] for e in answer["errors"]}
        assert codes, answer
        sources = {s["id"]: s for s in answer["extensions"]["sources"]}
        assert sources["broken-fhir"]["status"] != "UP"
        assert json.dumps(answer).count("broken-fhir") >= 2


async def test_a_batch_answers_the_same_bytes_whichever_of_its_operations_is_planned(
    gateway_for: GatewayFactory, fhir_server: TestServer, rest_server: TestServer
) -> None:
    # One context for the batch's operations: the first one's slots read from records,
    # the second's (a nested asynchronous resolver: not planned) built as objects.
    unplanned = """query Physicians($near: GeoPointInput!) {
      slots(filter: {near: $near, radiusKm: 10}, first: 3) {
        edges { node { start clinic { physicians { displayName } } } }
      }
    }"""
    near = {"near": POINTS[0]}
    definitions = (fhir_definition(fhir_server), rest_definition(rest_server))
    async with gateway_for(*definitions, cache="off", batching=True) as gw:
        both = Both(gw)
        batch = [
            {"query": DOCUMENTS["NearMe"], "variables": near},
            {"query": unplanned, "variables": near},
            {"query": DOCUMENTS["NearMe"], "variables": near},
        ]
        answers = await both.same(batch)
    assert [bool(a["data"]["slots"]["edges"]) for a in answers] == [True, True, True]
    assert all("errors" not in a for a in answers), answers


@pytest.mark.parametrize(("flags", "planned"), [((), True), (("--no-compiled-plan",), False)])
def test_the_command_line_turns_the_plan_off(
    flags: tuple[str, ...], planned: bool, registry_url: str
) -> None:
    from app import create_app
    from edge.cli.parser import build_parser
    from edge.settings import Settings

    assert build_parser().parse_args([*flags]).no_compiled_plan is not planned
    app = create_app(Settings(database_url=registry_url, compiled_plan=planned))
    assert _view(app).schema.compiled_plan is planned  # type: ignore[attr-defined]
