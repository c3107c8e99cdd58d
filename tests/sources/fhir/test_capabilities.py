"""What the FHIR adapter learns of a server, and the plans it follows from it (issue 12)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from sources.base import SourceContext
from sources.fhir.adapter import FhirSource
from sources.fhir.capabilities import Capabilities, Claim, Support, statement_claims
from sources.kv import MemoryBackend
from sources.pool.cache import SourceCache
from sources.pool.reads import slots_read
from sources.records import SlotQuery
from tests.conftest import TEST_NOW, serve
from tests.sources.fhir.medplum.proxies import Leniency, lenient_proxy
from tests.sources.fhir.test_adapter import (
    HOSTILE_QUERY,
    bundle,
    fhir_json,
    make_source,
    serve_routes,
    slot,
)
from tests.sources.fhir.test_medplum import WINDOW_END

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

    from tests.sources.fhir.conftest import Engine


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _source(engine: Engine, session: aiohttp.ClientSession, url: str | None = None) -> FhirSource:
    logger = logging.getLogger("passerelle.sources.medplum")
    return FhirSource(engine.definition(url), SourceContext(session, logger))


def _codes(source: FhirSource) -> set[str]:
    return {p.code for p in source.problems}


async def test_medplum_is_learnt_as_the_issue_describes_it(medplum: Engine) -> None:
    async with aiohttp.ClientSession() as session:
        source = _source(medplum, session)
        learnt = await source.learn()
    assert (learnt.statement, learnt.next_links, learnt.offset_paging) == (False, False, True)
    assert (learnt.total, learnt.include) == (True, False)
    assert learnt.chained is Support.NOTHING and not learnt.chains
    assert learnt.near is Support.REFUSED
    assert learnt.unknown_parameters is Support.NOTHING
    # Text order is instant order while every time has the same offset.
    assert learnt.sorted_by_instant is (medplum.variant == "local")
    assert source.directory.locations is not None and len(source.directory.locations) == 20
    assert {"FHIR_WORKAROUNDS", "REQUEST_REFUSED"} <= _codes(source)
    assert ("FHIR_UNSORTED" in _codes(source)) is (medplum.variant == "utc")
    assert "FHIR_NO_NEXT_LINK" not in _codes(source)
    refused = next(p for p in source.problems if p.code == "REQUEST_REFUSED")
    assert refused.diagnostics and "Unrecognized search parameter type" in refused.diagnostics


async def test_the_demo_server_is_learnt_capable_with_no_problem(fhir_server: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        source = make_source(session, str(fhir_server.make_url("/fhir")))
        learnt = await source.learn()
    assert (learnt.next_links, learnt.include, learnt.sorted_by_instant) == (True, True, True)
    assert learnt.chained is Support.YES and learnt.near is Support.YES
    assert learnt.unknown_parameters is Support.REFUSED
    # Its CapabilityStatement claims what it does, and the probes agree.
    assert learnt.claims == {Claim.NEAR, Claim.INCLUDE} and learnt.contradictions() == []
    assert source.problems == ()


def test_a_capability_statement_claiming_what_the_server_does_not_do_is_a_warning() -> None:
    statement = {
        "resourceType": "CapabilityStatement",
        "rest": [
            {
                "mode": "server",
                "searchParam": [{"name": "_sort", "type": "string"}],
                "resource": [
                    {"type": "Location", "searchParam": [{"name": "near", "type": "special"}]},
                    {"type": "Slot", "searchInclude": ["Slot:schedule"]},
                ],
            }
        ],
    }
    claims = statement_claims(statement)
    assert claims == {Claim.NEAR, Claim.INCLUDE, Claim.SORT}
    # Medplum's engine, had it claimed all three: each claim is found untrue by a probe.
    probed = Capabilities(
        statement=True,
        claims=claims,
        include=False,
        sorted_by_instant=False,
        near=Support.REFUSED,
    )
    assert len(probed.contradictions()) == 3
    [wrong] = [p for p in probed.problems() if p.code == "FHIR_STATEMENT_WRONG"]
    assert wrong.severity.value == "WARNING" and "claims Location near" in wrong.message
    assert "(claims Location near, _include Slot:schedule, _sort on Slot)" in probed.lines()[0]
    truthful = Capabilities(statement=True, claims=claims, include=True, sorted_by_instant=True)
    assert truthful.contradictions() == []
    assert statement_claims({"resourceType": "CapabilityStatement", "rest": "junk"}) == set()


async def test_a_lenient_server_is_learnt_as_ignoring_what_it_ignores(
    medplum_local: Engine,
) -> None:
    leniency = Leniency(ignore_unknown=True, reorder=True)
    async with (
        serve(lenient_proxy(medplum_local.url, leniency)) as proxy,
        aiohttp.ClientSession() as session,
    ):
        learnt = await _source(medplum_local, session, str(proxy.make_url("/fhir"))).learn()
    assert learnt.chained is Support.IGNORED and learnt.near is Support.IGNORED
    assert learnt.unknown_parameters is Support.IGNORED
    assert learnt.sorted_by_instant is False


async def test_a_server_with_only_a_first_page_is_a_loss(medplum_local: Engine) -> None:
    async with (
        serve(lenient_proxy(medplum_local.url, Leniency(first_page_only=20))) as proxy,
        aiohttp.ClientSession() as session,
    ):
        source = _source(medplum_local, session, str(proxy.make_url("/fhir")))
        learnt = await source.learn()
        assert learnt.first_page_only
        problem = next(p for p in source.problems if p.code == "FHIR_NO_NEXT_LINK")
        assert problem.severity.value == "LOSS"
        result = await source.search_slots(SlotQuery(TEST_NOW, WINDOW_END, limit=500))
    assert not result.complete
    assert "INCOMPLETE_SEARCH" in _codes(source)


async def test_a_page_out_of_order_demotes_the_server_and_the_answer_is_redone(
    session: aiohttp.ClientSession,
) -> None:
    calls: list[str] = []

    async def search(request: web.Request) -> web.Response:
        form = await request.post()
        calls.append(str(form.get("_sort", "")))
        late, early = slot("late", hour=10), slot("early", hour=9)
        return fhir_json(bundle(late, early) if form.get("_sort") else bundle(early, late))

    server = await serve_routes(("POST", "/fhir/{type}/_search", search))
    try:
        source = make_source(session, str(server.make_url("/fhir")))
        query = SlotQuery(HOSTILE_QUERY.starts_after, HOSTILE_QUERY.starts_before, limit=1)
        result = await source.search_slots(query)
        again = await source.search_slots(query)
    finally:
        await server.close()
    assert [s.local_id for s in result.slots] == ["early", "late"] and result.complete
    assert calls == ["start", "", ""]  # sorted, redone unsorted, then unsorted at once
    assert again.slots == result.slots
    assert source.capabilities.sorted_by_instant is False
    assert "FHIR_UNSORTED" in _codes(source)


async def test_answers_cached_before_a_demotion_are_not_served_after(
    session: aiohttp.ClientSession,
) -> None:
    """The source cache keys on what the adapter learnt: once a server is found not to
    sort, an answer cached while it was trusted to is a miss, not a hit."""
    source = make_source(session, "http://127.0.0.1:9/fhir")
    before = source.cache_generation
    assert before == source.cache_generation  # stable while nothing is learnt
    source._demote("test")
    after = source.cache_generation
    assert after != before
    cache = SourceCache(MemoryBackend())
    read = slots_read(SlotQuery(TEST_NOW, WINDOW_END, limit=5))
    source._demoted = False
    source.capabilities = source.capabilities.merged(sorted_by_instant=None)
    key_before = cache.key(source, read)
    source._demote("test")
    assert cache.key(source, read) != key_before


async def test_a_refused_slot_search_falls_back_to_a_plainer_one(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async def search(request: web.Request) -> web.Response:
        form = await request.post()
        if "_include" in form:
            outcome: dict[str, Any] = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {"severity": "error", "code": "not-supported", "diagnostics": "no\x07 _include"}
                ],
            }
            return fhir_json(outcome, 400)
        return fhir_json(bundle(slot("a")))

    server = await serve_routes(("POST", "/fhir/{type}/_search", search))
    try:
        source = make_source(session, str(server.make_url("/fhir")))
        result = await source.search_slots(HOSTILE_QUERY)
    finally:
        await server.close()
    assert [s.local_id for s in result.slots] == ["a"] and result.complete
    refused = next(p for p in source.problems if p.code == "REQUEST_REFUSED")
    assert refused.severity.value == "WARNING" and refused.diagnostics == "no _include"
    assert "no _include" in caplog.text


async def test_a_refusal_is_logged_once_with_what_could_locate_a_person_masked(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """The server echoes what it refused; the log gets it once per kind of request,
    coordinates and postal codes masked; the problem keeps the words for operators."""
    echoed = "cannot search near=45.5017|-73.5673|25|km from H2X 1Y4"

    async def search(request: web.Request) -> web.Response:
        form = await request.post()
        if "_include" in form:
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-supported", "diagnostics": echoed}],
            }
            return fhir_json(outcome, 400)
        return fhir_json(bundle(slot("a")))

    server = await serve_routes(("POST", "/fhir/{type}/_search", search))
    try:
        source = make_source(session, str(server.make_url("/fhir")))
        for _ in range(5):
            source.capabilities = source.capabilities.merged(include=None)  # ask again
            await source.search_slots(HOSTILE_QUERY)
    finally:
        await server.close()
    refusals = [r for r in caplog.records if "the server refused" in r.getMessage()]
    assert len(refusals) == 1
    logged = refusals[0].getMessage()
    assert "45.5017" not in logged and "-73.5673" not in logged and "H2X 1Y4" not in logged
    assert "cannot search near=…|…|25|km from …" in logged
    refused = next(p for p in source.problems if p.code == "REQUEST_REFUSED")
    assert refused.diagnostics == echoed  # whole, for operators only
