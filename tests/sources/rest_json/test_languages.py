"""The REST adapter's languages parameter (``slot_languages_param``): sent to the demo
API, which keeps the slots of physicians speaking one of them; dropped, and the search
asked again, when an API refuses it; not sent when the option is not set.

The slots expected are read from the demo world itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, time, timedelta

import aiohttp
import pytest
from aiohttp import web

from examples.demo_rest import build_app
from examples.world import World, WorldSlot
from sources.base import SourceConfig, SourceContext
from sources.records import SlotQuery, SourceProtocol
from sources.rest_json.adapter import RestJsonSource
from sources.rest_json.options import RestJsonOptions
from sources.timeutil import MONTREAL
from tests.conftest import TEST_FIRST_DAY, serve

KEY = "k"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(scope="module")
def world() -> World:
    return World(scale=0.02, first_day=TEST_FIRST_DAY)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class Demo:
    """The demo REST API, each slot listing's query noted; ``refuse``: a parameter it
    answers 400 to, as an API that does not know it does."""

    def __init__(self, world: World, refuse: str | None = None) -> None:
        self.asked: list[dict[str, str]] = []
        self.refuse = refuse
        self.app = build_app(world, api_key=KEY, rate_limit_rps=None)
        self.app.middlewares.insert(0, self._middleware)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.endswith("/disponibilites"):
            self.asked.append(dict(request.query))
            if self.refuse is not None and self.refuse in request.query:
                return web.json_response({"erreur": "paramètre inconnu"}, status=400)
        return await handler(request)


def source(
    session: aiohttp.ClientSession, url: str, param: str | None = "langues"
) -> RestJsonSource:
    config = SourceConfig(
        id="rdvq",
        name="RDV Québec",
        protocol=SourceProtocol.REST_JSON,
        url=url,
        credentials=KEY,
        options=RestJsonOptions(page_size=100, slot_languages_param=param),
    )
    return RestJsonSource(config, SourceContext(session, logging.getLogger("test.rdvq")))


def window(world: World, languages: frozenset[str] | None, limit: int = 1000) -> SlotQuery:
    start = datetime.combine(world.first_day, time(0), MONTREAL)
    return SlotQuery(
        starts_after=start,
        starts_before=start + timedelta(days=7),
        limit=limit,
        languages=languages,
    )


def world_slots(world: World, query: SlotQuery, language: str | None) -> list[WorldSlot]:
    """The free REST slots of the window (whose physician speaks ``language``)."""
    out = [
        slot
        for clinic in world.clinics_for("rest")
        for slot in world.slots_for_clinic(clinic.id)
        if slot.free
        and query.starts_after <= slot.start <= query.starts_before
        and (language is None or language in world.physicians_by_id[slot.physician_id].languages)
    ]
    return sorted(out, key=lambda s: (s.start, s.id))


def a_rare_language(world: World) -> str:
    rest = {c.id for c in world.clinics_for("rest")}
    spoken = [
        code
        for p in world.physicians
        if set(p.clinic_ids) & rest
        for code in p.languages
        if code not in ("fr", "en")
    ]
    assert spoken, "the demo world has REST physicians speaking a rarer language"
    return max(set(spoken), key=spoken.count)


async def test_the_languages_parameter_is_sent_and_every_match_comes_back(
    session: aiohttp.ClientSession, world: World
) -> None:
    demo = Demo(world)
    language = a_rare_language(world)
    async with serve(demo.app) as server:
        rest = source(session, str(server.make_url("/api/v1")))
        query = window(world, frozenset({language.upper()}))  # codes are case-blind
        result = await rest.search_slots(query)

    assert [a.get("langues") for a in demo.asked] == [language] * len(demo.asked)
    expected = world_slots(world, query, language)
    assert expected
    assert sorted(s.local_id.removeprefix("dispo-") for s in result.slots) == sorted(
        s.id for s in expected
    )
    assert result.complete


async def test_an_api_refusing_the_parameter_is_asked_again_without_it_and_no_more(
    session: aiohttp.ClientSession, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    demo = Demo(world, refuse="langues")
    language = a_rare_language(world)
    async with serve(demo.app) as server:
        rest = source(session, str(server.make_url("/api/v1")))
        query = window(world, frozenset({language}), limit=30)
        with caplog.at_level(logging.WARNING, "test.rdvq"):
            first = await rest.search_slots(query)
            again = await rest.search_slots(query)

    # Today's behaviour: the slots unfiltered here (the gateway filters languages).
    unfiltered = [s.id for s in world_slots(world, query, None)]
    for result in (first, again):
        ids = [s.local_id.removeprefix("dispo-") for s in result.slots]
        assert len(ids) >= 30
        assert ids == unfiltered[: len(ids)]
    assert "langues" in demo.asked[0]
    assert all("langues" not in a for a in demo.asked[1:])
    assert sum("refused the languages parameter" in r.message for r in caplog.records) == 1


async def test_no_parameter_is_sent_when_the_api_has_none(
    session: aiohttp.ClientSession, world: World
) -> None:
    demo = Demo(world)
    async with serve(demo.app) as server:
        rest = source(session, str(server.make_url("/api/v1")), param=None)
        await rest.search_slots(window(world, frozenset({"es"}), limit=10))

    assert demo.asked and all("langues" not in a for a in demo.asked)
