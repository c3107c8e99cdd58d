"""``sources check`` for the REST/JSON API: the demo passes, a missing key, pages that
overlap and a rate limit are told as such (issue 13); the report says it covers the demo's
API format only."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

import sources.rest_json.check
from examples import demo_rest
from sources.check import CheckReport, Outcome, run_check
from sources.rest_json.check import SCOPE
from sources.rest_json.tally import WINDOW
from tests.conftest import REST_KEY, TEST_NOW, rest_definition, serve

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

    from examples.world import World

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources.rest_json.check, "clock", lambda: TEST_NOW)


def keyed(server: TestServer) -> object:
    return replace(rest_definition(server), credentials=REST_KEY)


def details(report: CheckReport, name: str) -> str:
    return " | ".join(f"{c.detail} (fix: {c.fix})" for c in report.checks if c.name == name)


async def test_the_demo_passes_and_the_report_says_its_scope(
    rest_server: TestServer, world: World
) -> None:
    report = await run_check(keyed(rest_server))  # type: ignore[arg-type]
    assert report.exit_code == 0, report.text()
    assert {c.outcome for c in report.checks} == {Outcome.PASS}
    assert [c.name for c in report.checks] == [
        "reachable", "auth", "envelope", "limits", "paging", "fields", "slots", "429",
    ]  # fmt: skip
    free = sum(
        s.free
        for c in world.clinics_for("rest")
        for s in world.slots_between(c.id, TEST_NOW, TEST_NOW + WINDOW)
    )
    assert report.served == free > 100 and report.not_served == []
    assert SCOPE in report.notes and report.notes[0] == SCOPE
    assert "covers the demo's API format only" in report.text()
    assert "largest page: limite=500 honoured" in report.capabilities
    assert "429: not seen" in report.capabilities
    assert "not exercised further" in details(report, "429")
    assert report.plan[0].startswith("slots: GET /disponibilites")
    assert "and needed" in details(report, "auth")


async def test_without_its_key_the_api_fails_with_the_fix(rest_server: TestServer) -> None:
    report = await run_check(rest_definition(rest_server))
    [check] = report.checks
    assert (report.exit_code, check.name, check.outcome) == (1, "auth", Outcome.FAIL)
    assert "needs a key (HTTP 401: clé d'API absente" in check.detail
    assert check.fix == "give the key in --credentials-env NAME (sent in the X-Cle-Api header)"


@web.middleware
async def overlapping_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Each page after the first starts with the last item of the page before it."""
    page = int(request.query.get("page", "1"))
    response = await handler(request)
    if request.path != "/api/v1/disponibilites" or page == 1:
        return response
    before = await handler(request.clone(rel_url=request.rel_url.update_query(page=page - 1)))
    assert isinstance(response, web.Response) and isinstance(before, web.Response)
    body, previous = json.loads(response.body), json.loads(before.body)  # type: ignore[arg-type]
    if body["resultats"] and previous["resultats"]:
        body["resultats"] = [previous["resultats"][-1], *body["resultats"][:-1]]
    return web.json_response(body)


async def test_pages_that_repeat_slots_fail_the_paging_check(world: World) -> None:
    app = demo_rest.build_app(world, api_key=REST_KEY)
    app.middlewares.append(overlapping_pages)
    async with serve(app) as server:
        report = await run_check(keyed(server))  # type: ignore[arg-type]
    assert report.exit_code == 1
    [paging] = [c for c in report.checks if c.name == "paging"]
    assert paging.outcome is Outcome.FAIL
    assert "do not make up the page of 100: 1 repeated, 1 missing" in paging.detail
    assert paging.fix.startswith("order listings by a stable key")


async def test_a_rate_limit_is_seen_and_its_retry_after_honoured(world: World) -> None:
    app = demo_rest.build_app(world, api_key=REST_KEY, rate_limit_rps=100, rate_limit_burst=5)
    async with serve(app) as server:
        report = await run_check(keyed(server))  # type: ignore[arg-type]
    assert report.exit_code == 0, report.text()
    said = details(report, "429")
    assert "Retry-After 1 s; after waiting it, the next request was answered" in said
    assert "429: Retry-After 1 s, honoured" in report.capabilities


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>RDV</body></html>", content_type="text/html")


async def test_an_api_of_another_format_is_one_failed_check(rest_server: TestServer) -> None:
    app = web.Application()
    app.router.add_get("/{path:.*}", _html)
    async with serve(app) as server:
        report = await run_check(replace(rest_definition(server), credentials=REST_KEY))
    [check] = report.checks
    assert (report.exit_code, check.name, check.outcome) == (1, "reachable", Outcome.FAIL)
    assert "answered text/html that is not JSON, not the paging envelope" in check.detail
    assert "examples/demo_rest/server.py" in check.fix


def _unreadable(nameless: int, abroad: int) -> object:
    """Slots whose id ends in ``-0`` get a type no one knows; clinic ``nameless`` no name;
    clinic ``abroad`` moves to Ottawa."""

    @web.middleware
    async def rewrite(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if response.status != 200 or not request.path.startswith("/api/v1/"):
            return response
        assert isinstance(response, web.Response)
        body = json.loads(response.body)  # type: ignore[arg-type]
        for item in body["resultats"]:
            if str(item["id"]).endswith("-0"):
                item["type_rdv"] = "inconnu"
            if "adresse" not in item:
                continue
            if item["id"] == nameless:
                item["nom"] = None
            if item["id"] == abroad:
                item["adresse"] = {
                    "rue": "111 Wellington",
                    "ville": "Ottawa",
                    "code_postal": "K1A 0A9",
                }
                item["lat"], item["lng"] = 45.4236, -75.7009
        return web.json_response(body)

    return rewrite


async def test_free_slots_that_cannot_be_read_are_lost_and_those_abroad_not_served(
    world: World,
) -> None:
    nameless, abroad = world.clinics_for("rest")[:2]
    app = demo_rest.build_app(world, api_key=REST_KEY)
    ids = (demo_rest.clinic_api_id(nameless.id), demo_rest.clinic_api_id(abroad.id))
    app.middlewares.append(_unreadable(*ids))
    async with serve(app) as server:
        report = await run_check(keyed(server))  # type: ignore[arg-type]
    free = [
        s
        for c in world.clinics_for("rest")
        for s in world.slots_between(c.id, TEST_NOW, TEST_NOW + WINDOW)
        if s.free
    ]
    typeless = sum(s.id.endswith("-0") for s in free)
    of_nameless = sum(s.clinic_id == nameless.id and not s.id.endswith("-0") for s in free)
    of_abroad = sum(s.clinic_id == abroad.id and not s.id.endswith("-0") for s in free)
    assert typeless and of_nameless and of_abroad
    assert report.exit_code == 1
    by_reason = {n.reason: (n.slots, n.loss) for n in report.not_served}
    assert by_reason == {
        "MALFORMED_RECORDS": (typeless + of_nameless, True),
        "OUTSIDE_QUEBEC": (of_abroad, False),
    }
    [lost] = [n for n in report.not_served if n.loss]
    assert f"{typeless} unknown appointment type" in lost.detail
    assert f"{of_nameless} of a clinic that cannot be read (missing id or name)" in lost.detail
    assert report.served == len(free) - typeless - of_nameless - of_abroad
    assert "unknown appointment type" in details(report, "fields")
    assert [c.outcome for c in report.checks if c.name == "records"] == [Outcome.FAIL]
