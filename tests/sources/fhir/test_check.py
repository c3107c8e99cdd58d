"""``sources check`` for FHIR R4 servers: the demo passes and is described, servers that
lie, lose pages, need a key or are no FHIR server at all are told apart (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

import sources.fhir.check
import sources.transport.body
from examples import demo_fhir
from sources.check import CheckReport, Outcome, run_check
from sources.fhir.options import FhirOptions
from sources.fhir.tally import WINDOW
from tests.conftest import TEST_NOW, fhir_definition, serve

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

    from examples.world import World
    from tests.sources.fhir.conftest import Engine

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN = "s3cret-not-a-secret"


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources.fhir.check, "clock", lambda: TEST_NOW)


def free_slots(world: World) -> int:
    """The demo's free slots in the window the check counts, from the world itself."""
    end = TEST_NOW + WINDOW
    return sum(
        s.free for c in world.clinics_for("fhir") for s in world.slots_between(c.id, TEST_NOW, end)
    )


def outcomes(report: CheckReport) -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for check in report.checks:
        by.setdefault(check.name, []).append(check.outcome.value)
    return {name: sorted(set(found)) for name, found in by.items()}


def details(report: CheckReport, name: str) -> str:
    return " | ".join(f"{c.detail} (fix: {c.fix})" for c in report.checks if c.name == name)


def demo_with(world: World, *middlewares: Any) -> web.Application:
    app = demo_fhir.build_app(world)
    app.middlewares.extend(middlewares)
    return app


async def test_the_demo_passes_and_the_report_says_what_it_does_and_plans(
    fhir_server: TestServer, world: World
) -> None:
    report = await run_check(fhir_definition(fhir_server))
    assert report.exit_code == 0, report.text()
    assert {c.outcome for c in report.checks} == {Outcome.PASS}
    assert report.served == free_slots(world) > 100 and report.not_served == []
    assert "paging: by next links" in report.capabilities
    assert "_sort=start: by instant" in report.capabilities
    assert "chained search (schedule.actor): answered" in report.capabilities
    plan = {line.split(":", 1)[0]: line.split(": ", 1)[1] for line in report.plan}
    assert plan["near a clinic (10 km)"].startswith("sorted by the server, read up to the page")
    assert "the gateway's copy of the " in plan["near a clinic (10 km)"]
    assert "narrowed by schedule.actor chains" in plan["a clinic's slots"]
    assert "filtered here" in plan["languages (fr)"]
    searched = [c for c in report.checks if c.name.startswith("search: ")]
    assert len(searched) == 6 and all("none missed, none wrong" in c.detail for c in searched[:5])
    text = report.text()
    assert "  pass  metadata" in text and "a CapabilityStatement of FHIR 4.0.1" in text
    assert f"  free slots the gateway would serve: {report.served}\n" in text
    assert "latency of the " in text and text.endswith("0 warnings, 0 failed)")
    data = json.loads(report.dumps())
    assert data["result"] == "pass" and data["latencyMs"]["requests"] == len(report.latencies_ms)
    assert data["plan"] == report.plan and data["capabilities"] == report.capabilities


async def test_a_key_the_server_does_not_need_is_noted(fhir_server: TestServer) -> None:
    config = replace(fhir_definition(fhir_server), credentials_env="KEY", credentials=TOKEN)
    report = await run_check(config)
    assert report.exit_code == 0
    assert "answers without it too" in details(report, "auth")
    assert any("without credentials" in note for note in report.notes)


@web.middleware
async def needs_a_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path != "/fhir/metadata" and request.headers.get("Authorization") != (
        f"Bearer {TOKEN}"
    ):
        return web.json_response({"resourceType": "OperationOutcome"}, status=401)
    return await handler(request)


async def test_a_server_needing_a_key_fails_without_it_and_passes_with_it(
    world: World,
) -> None:
    async with serve(demo_with(world, needs_a_token)) as server:
        bare = await run_check(fhir_definition(server))
        keyed = await run_check(
            replace(fhir_definition(server), credentials_env="FHIR_KEY", credentials=TOKEN)
        )
        wrong = await run_check(
            replace(fhir_definition(server), credentials_env="FHIR_KEY", credentials="nope")
        )
    [check] = bare.checks
    assert (bare.exit_code, check.name, check.outcome) == (1, "auth", Outcome.FAIL)
    assert "needs credentials (HTTP 401)" in check.detail
    assert check.fix.startswith("give the key in --credentials-env")
    assert "$FHIR_KEY" in wrong.checks[0].detail and wrong.exit_code == 1
    assert keyed.exit_code == 0, keyed.text()
    assert "sent and accepted, and needed" in details(keyed, "auth")


@web.middleware
async def lies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Claims near and _include (the demo's statement), then refuses near and drops every
    included resource."""
    form = await request.post() if request.method == "POST" else {}
    if request.path == "/fhir/Location/_search" and "near" in form:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "no near"}],
        }
        return web.json_response(outcome, status=400)
    response = await handler(request)
    assert isinstance(response, web.Response) and response.body is not None
    body = json.loads(response.body)  # type: ignore[arg-type]
    if body.get("resourceType") == "Bundle":
        mode = lambda e: e.get("search", {}).get("mode")  # noqa: E731
        body["entry"] = [e for e in body.get("entry", []) if mode(e) != "include"]
        return web.json_response(body, content_type="application/fhir+json")
    return response


async def test_a_capability_statement_that_lies_is_told_and_the_slots_still_served(
    world: World,
) -> None:
    async with serve(demo_with(world, lies)) as server:
        report = await run_check(fhir_definition(server))
    assert report.exit_code == 0, report.text()  # warnings: nothing is lost
    claims = details(report, "claims")
    assert "claims Location near but a near search was not answered" in claims
    assert "claims _include Slot:schedule but _include came back without" in claims
    assert "correct your CapabilityStatement, or support _include as it says" in claims
    assert outcomes(report)["include"] == ["warn"]
    assert "refused (400/422) (no near): not needed" in details(report, "near")
    assert report.served == free_slots(world)
    assert "references read by _id" in report.plan[0]


@web.middleware
async def no_next_links(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    assert isinstance(response, web.Response) and response.body is not None
    body = json.loads(response.body)  # type: ignore[arg-type]
    if body.get("resourceType") != "Bundle":
        return response
    body.pop("link", None)
    return web.json_response(body, content_type="application/fhir+json")


async def test_a_server_without_next_links_loses_what_its_first_pages_hide(
    world: World,
) -> None:
    async with serve(demo_with(world, no_next_links)) as server:
        # The demo refuses _offset: only each search's first page can be read.
        config = replace(fhir_definition(server), options=FhirOptions(page_size=50))
        report = await run_check(config)
    assert report.exit_code == 1
    assert "no next link and _offset ignored" in details(report, "paging")
    assert outcomes(report)["paging"] == ["fail"]
    assert "paging: first page only (no next links, _offset ignored)" in report.capabilities
    [lost] = report.not_served
    assert (lost.reason, lost.loss) == ("FHIR_NO_NEXT_LINK", True)
    assert 0 < report.served <= WINDOW.days * 50  # a first page a day
    assert report.served + lost.slots == free_slots(world)
    assert f"free slots lost: {lost.slots}, FHIR_NO_NEXT_LINK" in report.text()


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>Clinique</body></html>", content_type="text/html")


async def _huge(request: web.Request) -> web.Response:
    return web.json_response({"resourceType": "Bundle", "entry": [], "pad": "x" * 5000})


@pytest.mark.parametrize(
    ("handler", "said"),
    [
        (None, "cannot reach upstream"),
        (_html, "answered text/html that is not JSON, not a FHIR Bundle"),
        (_huge, "upstream answer too large (over 1000 bytes)"),
    ],
    ids=["unreachable", "html", "huge"],
)
async def test_bad_input_is_one_failed_check(
    handler: Handler | None, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources.transport.body, "MAX_BODY_BYTES", 1000)
    app = web.Application()
    if handler is not None:
        app.router.add_route("*", "/{path:.*}", handler)
    async with serve(app) as server:
        url = "http://127.0.0.1:1/fhir" if handler is None else str(server.make_url("/fhir"))
        report = await run_check(replace(fhir_definition(server), url=url))
    [check] = report.checks
    assert (report.exit_code, check.name, check.outcome) == (1, "reachable", Outcome.FAIL)
    assert said in check.detail and check.fix
    assert report.text().endswith("result: FAIL (0 passed, 0 warnings, 1 failed)")


async def test_medplum_is_described_from_its_known_behaviour(medplum: Engine) -> None:
    """The engine as tests/sources/fhir/test_medplum.py knows it: no CapabilityStatement,
    _offset paging, _include ignored, chains match nothing, near refused, unknown
    parameters match nothing; slots in UTC are not sorted by instant. Nothing is lost."""
    report = await run_check(medplum.definition())
    assert report.exit_code == 0, report.text()
    found = outcomes(report)
    assert found["metadata"] == ["warn"] and "claims" not in found
    assert "pages are read by _offset" in details(report, "paging")
    assert found["include"] == found["chains"] == found["unknown params"] == ["warn"]
    assert "Slot?schedule.actor=Location/ID matches nothing" in details(report, "chains")
    assert "refused (400/422) (Unrecognized search parameter" in details(report, "near")
    assert found["sort"] == (["pass"] if medplum.variant == "local" else ["warn"])
    expected = medplum.data.free_slots(TEST_NOW, TEST_NOW + timedelta(days=7))
    assert report.served == len(expected) > 100 and report.not_served == []
    searched = [c for c in report.checks if c.name.startswith("search: ")]
    assert {c.outcome for c in searched} == {Outcome.PASS}, report.text()
    assert "Schedules by actor, then Slot?schedule=" in report.plan[2]


def _outside_and_unreadable(outside: str, unplaced: str) -> Any:
    """Moves the Location ``outside`` to Ottawa, takes ``unplaced``'s position away and
    codes the type of every slot whose id ends in ``-0`` in a system no one knows."""
    ottawa = {"line": ["111 Wellington St"], "city": "Ottawa", "state": "ON",
              "postalCode": "K1A 0A9", "country": "CA"}  # fmt: skip

    @web.middleware
    async def rewrite(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        assert isinstance(response, web.Response) and response.body is not None
        body = json.loads(response.body)  # type: ignore[arg-type]
        if body.get("resourceType") != "Bundle":
            return response
        for entry in body.get("entry", []):
            resource = entry["resource"]
            if resource["resourceType"] == "Location" and resource["id"] == outside:
                resource["address"] = ottawa
                resource["position"] = {"latitude": 45.4236, "longitude": -75.7009}
            if resource["resourceType"] == "Location" and resource["id"] == unplaced:
                resource.pop("position", None)
            if resource["resourceType"] == "Slot" and resource["id"].endswith("-0"):
                resource["appointmentType"] = {"coding": [{"system": "urn:x", "code": "y"}]}
        return web.json_response(body, content_type="application/fhir+json")

    return rewrite


async def test_slots_outside_quebec_are_not_served_and_unreadable_ones_are_lost(
    world: World,
) -> None:
    outside, unplaced = (c.id for c in world.clinics_for("fhir")[1:3])
    async with serve(demo_with(world, _outside_and_unreadable(outside, unplaced))) as server:
        report = await run_check(fhir_definition(server))
    free = [
        s
        for c in world.clinics_for("fhir")
        for s in world.slots_between(c.id, TEST_NOW, TEST_NOW + WINDOW)
        if s.free
    ]
    abroad = sum(s.clinic_id == outside for s in free)
    unreadable = sum(s.clinic_id != outside and s.id.endswith("-0") for s in free)
    assert abroad and unreadable
    assert report.exit_code == 1
    by_reason = {n.reason: (n.slots, n.loss) for n in report.not_served}
    assert by_reason == {
        "OUTSIDE_QUEBEC": (abroad, False),
        "MALFORMED_RECORDS": (unreadable, True),
    }
    assert report.served == len(free) - abroad - unreadable
    assert f"{unreadable} appointmentType (coded in a system" in details(report, "records")
    clinics = details(report, "clinics")
    assert "1 outside Quebec (not served); without a position: 1 placed at their city" in clinics
    assert "give every Location a position" in clinics
    searched = [c for c in report.checks if c.name.startswith("search: ")]
    assert {c.outcome for c in searched} == {Outcome.PASS}, report.text()


@web.middleware
async def no_slots(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/fhir/Slot"):
        return web.json_response(
            {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []},
            content_type="application/fhir+json",
        )
    return await handler(request)


async def test_what_no_free_slot_lets_exercise_is_said_not_passed(world: World) -> None:
    async with serve(demo_with(world, no_slots)) as server:
        report = await run_check(fhir_definition(server))
    assert report.exit_code == 0 and report.served == 0
    [untold] = [c for c in report.checks if c.name == "exercised"]
    assert untold.outcome is Outcome.WARN
    assert "paging" in untold.detail and "_sort" in untold.detail
    assert "chains (no clinic with free slots)" in untold.detail
    assert not {"paging", "sort", "include", "chains"} & set(outcomes(report))
