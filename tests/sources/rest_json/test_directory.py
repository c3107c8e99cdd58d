"""The REST adapter's directory: clinics and physicians read by id, kept ``directory_ttl_s``.

Same answers as asking every time (the demo API, both ways), fewer calls, an entry past
its TTL asked again, a new clinic asked at once, and what the API did not serve (unknown,
outside Quebec, malformed) kept shorter but counted on every search as when read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from examples.demo_rest import build_app
from examples.world import World
from sources.errors import ConfigError
from sources.places import PlaceKind
from sources.records import GeoPoint, Region, SlotQuery, SourceProtocol
from sources.registry.definition import parse_definition
from sources.rest_json.directory import UNKNOWN_TTL_S
from sources.rest_json.options import RestJsonOptions
from tests.sources.rest_json.test_adapter import (
    CLINIC,
    FIRST_DAY,
    KEY,
    MONTREAL_CENTER,
    PHYSICIAN,
    WEEK,
    as_json,
    envelope,
    local,
    make_source,
    request_count,
    serve,
    slot,
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def demo() -> AsyncIterator[TestServer]:
    world = World(scale=0.02, first_day=FIRST_DAY)
    server = await serve(build_app(world, api_key=KEY, rate_limit_rps=None))
    yield server
    await server.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the same answers, fewer calls, on the demo API --------------------------------------

QUERIES = [
    SlotQuery(local(2026, 10, 28, 9), local(2026, 10, 30, 17), limit=40),
    SlotQuery(local(2026, 10, 28, 9), local(2026, 10, 29, 9), limit=5),
    SlotQuery(*WEEK, limit=20, near=MONTREAL_CENTER, radius_km=15),
    SlotQuery(*WEEK, limit=30, region=Region.MONTREAL),
    SlotQuery(*WEEK, limit=10, near=GeoPoint(46.81, -71.21), radius_km=25),
]


async def pages_of(source: Any, query: SlotQuery, count: int) -> list[Any]:
    """``count`` pages of ``query``: each one from the last start of the one before."""
    results = []
    for _ in range(count):
        result = await source.search_slots(query)
        results.append(result)
        if not result.slots:
            break
        query = SlotQuery(
            result.slots[-1].start,
            query.starts_before,
            limit=query.limit,
            near=query.near,
            radius_km=query.radius_km,
            region=query.region,
        )
    return results


async def test_answers_with_the_directory_are_those_of_asking_every_time(
    session: aiohttp.ClientSession, demo: TestServer
) -> None:
    fresh = make_source(session, demo, directory_ttl_s=0, page_size=25)
    kept = make_source(session, demo, directory_ttl_s=300, page_size=25)
    assert fresh.directory is None and kept.directory is not None
    for _ in range(2):  # the second round from what the first one kept
        for query in QUERIES:
            expected = await pages_of(fresh, query, 3)
            got = await pages_of(kept, query, 3)
            assert got == expected
            assert sum(len(r.slots) for r in got) > 0
    assert len(kept.directory.clinics) > 0 and len(kept.directory.physicians) > 0


async def test_a_search_in_steady_state_is_one_call(
    session: aiohttp.ClientSession, demo: TestServer
) -> None:
    query = SlotQuery(*WEEK, limit=20, near=MONTREAL_CENTER, radius_km=15)
    fresh = make_source(session, demo, directory_ttl_s=0)
    kept = make_source(session, demo)  # the default: 300 s

    async def calls(source: Any) -> int:
        before = await request_count(session, demo)
        await source.search_slots(query)
        return await request_count(session, demo) - before

    assert [await calls(fresh) for _ in range(3)] == [3, 3, 3]
    assert [await calls(kept) for _ in range(3)] == [3, 1, 1]


# -- freshness, new clinics, what the API did not serve ----------------------------------

OTTAWA = {
    "id": 2001,
    "nom": "Clinique d'Ottawa",
    "adresse": {"ville": "Ottawa", "code_postal": "K1P 1J1"},
    "lat": 45.42,
    "lng": -75.69,
}
NAMELESS = {"id": 2002, "adresse": {"ville": "Montréal", "code_postal": "H2X 1Y4"}}
NO_POSITION = {
    "id": 2003,
    "nom": "Clinique perdue",
    "adresse": {"ville": "Lac-Perdu", "code_postal": "H2X 1Y4"},
}
DAY = "2026-10-28T"


class Api:
    """A REST API whose listings answer ``ids`` as the demo does, and record what is asked."""

    def __init__(self, slot_items: list[Any], clinics: list[Any], physicians: list[Any]):
        self.slots, self.clinics, self.physicians = slot_items, clinics, physicians
        self.asked: list[tuple[str, str]] = []  # (resource, ids)

    def app(self) -> web.Application:
        def by_ids(resource: str, records: Any) -> Any:
            async def view(request: web.Request) -> web.Response:
                wanted = request.query["ids"].split(",")
                self.asked.append((resource, request.query["ids"]))
                refused = await self.gate(resource)
                if refused is not None:
                    return refused
                # An item without id comes back with any answer, as a broken API's would.
                found = [r for r in records() if str(r.get("id", wanted[0])) in wanted]
                return web.json_response(envelope(found))

            return view

        async def slots(request: web.Request) -> web.Response:
            self.asked.append(("disponibilites", ""))
            return web.json_response(envelope(self.slots))

        app = web.Application()
        app.router.add_get("/api/v1/disponibilites", slots)
        app.router.add_get("/api/v1/cliniques", by_ids("cliniques", lambda: self.clinics))
        app.router.add_get("/api/v1/medecins", by_ids("medecins", lambda: self.physicians))
        return app

    async def gate(self, resource: str) -> web.Response | None:
        """Before a lookup is answered: an answer instead of it, or None."""
        return None

    def take(self) -> list[tuple[str, str]]:
        asked, self.asked = self.asked, []
        return asked


def slots_at(clinic_ids: list[int], physician: int = 50001) -> list[Any]:
    return [
        slot(
            f"{cid}-{n}",
            f"{DAY}{8 + n:02d}:00:00",
            f"{DAY}{8 + n:02d}:20:00",
            clinique_id=cid,
            medecin_id=physician,
        )
        for n, cid in enumerate(clinic_ids)
    ]


@pytest.fixture
async def api() -> Any:
    api = Api(slots_at([1001]), [CLINIC], [PHYSICIAN])
    server = await serve(api.app())
    api.server = server  # type: ignore[attr-defined]
    yield api
    await server.close()


def source_with_clock(session: aiohttp.ClientSession, api: Any, ttl: float) -> tuple[Any, Clock]:
    source = make_source(session, api.server, directory_ttl_s=ttl)
    clock = Clock()
    if source.directory is not None:
        source.directory.set_clock(clock)
    return source, clock


async def test_an_entry_past_its_ttl_is_asked_again(
    session: aiohttp.ClientSession, api: Any
) -> None:
    source, clock = source_with_clock(session, api, 300)
    query = SlotQuery(*WEEK, limit=10)
    first = await source.search_slots(query)
    assert first.clinics["1001"].name == "Clinique Test"
    assert [r for r, _ in api.take()] == ["disponibilites", "cliniques", "medecins"]

    api.clinics = [{**CLINIC, "nom": "Clinique Renommée"}]
    clock.now += 299
    assert (await source.search_slots(query)).clinics["1001"].name == "Clinique Test"
    assert api.take() == [("disponibilites", "")]
    clock.now += 2  # past 300 s: both asked again
    assert (await source.search_slots(query)).clinics["1001"].name == "Clinique Renommée"
    assert sorted(api.take()) == [
        ("cliniques", "1001"),
        ("disponibilites", ""),
        ("medecins", "50001"),
    ]


async def test_a_clinic_not_held_is_asked_at_once_and_alone(
    session: aiohttp.ClientSession, api: Any
) -> None:
    source, _ = source_with_clock(session, api, 300)
    await source.search_slots(SlotQuery(*WEEK, limit=10))
    api.take()
    api.clinics = [CLINIC, {**CLINIC, "id": 1002, "nom": "Clinique Nouvelle"}]
    api.slots = slots_at([1001, 1002])
    result = await source.search_slots(SlotQuery(*WEEK, limit=10))
    assert result.clinics["1002"].name == "Clinique Nouvelle"
    assert [s.clinic_local_id for s in result.slots] == ["1001", "1002"]
    assert api.take() == [("disponibilites", ""), ("cliniques", "1002")]


async def searches(source: Any, count: int, caplog: pytest.LogCaptureFixture) -> list[Any]:
    """``count`` searches, each with its log lines and the source's problems after it."""
    seen = []
    for _ in range(count):
        # The recent places aged past their window: the problems are this search's own.
        places = source._items.places
        for _ in range(2):
            places._since -= places.ttl_s + 1
            assert not places.current.kinds[PlaceKind.OUTSIDE_QUEBEC]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="test.rdvq"):
            result = await source.search_slots(SlotQuery(*WEEK, limit=50))
        seen.append((result, [r.getMessage() for r in caplog.records], source.problems))
    return seen


async def test_clinics_not_served_are_kept_shorter_and_counted_as_when_read(
    session: aiohttp.ClientSession, api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # 1001 served; 2001 outside Quebec (3 slots); 2002 malformed (no name); 1999 not
    # listed by the API; 2003 served without a position.
    api.clinics = [CLINIC, OTTAWA, NAMELESS, NO_POSITION]
    api.slots = slots_at([1001, 2001, 2001, 2001, 2002, 1999, 1999, 2003], physician=50001)
    fresh, _ = source_with_clock(session, api, 0)
    expected = await searches(fresh, 3, caplog)
    assert sum(r == "cliniques" for r, _ in api.take()) == 3
    source, clock = source_with_clock(session, api, 300)
    got = await searches(source, 3, caplog)

    assert got == expected
    result, logged, problems = got[-1]
    assert {s.clinic_local_id for s in result.slots} == {"1001", "2003"}
    assert logged == [
        "slot search: skipped 4 item(s): 1 missing id or name, 3 slot of an unknown clinic"
    ]
    by_code = {p.code: p for p in problems}
    assert by_code["OUTSIDE_QUEBEC"].count == 1 and "at least 3 free slots" in (
        by_code["OUTSIDE_QUEBEC"].message
    )
    assert by_code["NO_POSITION"].count == 1
    # Asked once: the next two searches were one call each.
    assert api.take() == [
        ("disponibilites", ""),
        ("cliniques", "1001,1999,2001,2002,2003"),
        ("medecins", "50001"),
        ("disponibilites", ""),
        ("disponibilites", ""),
    ]

    # What was not served is asked again after UNKNOWN_TTL_S, the others are still held.
    clock.now += UNKNOWN_TTL_S + 1
    api.clinics = [
        CLINIC,
        {
            **OTTAWA,
            "adresse": {"ville": "Gatineau", "code_postal": "J8X 1A1"},
            "lat": 45.43,
            "lng": -75.71,
        },
        NAMELESS,
        NO_POSITION,
    ]
    caplog.clear()
    result = await source.search_slots(SlotQuery(*WEEK, limit=50))
    assert api.take() == [("disponibilites", ""), ("cliniques", "1999,2001,2002")]
    assert {s.clinic_local_id for s in result.slots} == {"1001", "2001", "2003"}


async def test_an_item_that_cannot_be_told_apart_keeps_the_ids_not_listed_asked(
    session: aiohttp.ClientSession, api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The item without id may be the clinic asked for: not taken as "not listed"."""
    api.clinics = [CLINIC, {"nom": "Sans id"}]
    api.slots = slots_at([1001, 1999])
    fresh, _ = source_with_clock(session, api, 0)
    expected = await searches(fresh, 2, caplog)
    api.take()
    source, _ = source_with_clock(session, api, 300)
    assert await searches(source, 2, caplog) == expected
    assert expected[-1][1] == [
        "slot search: skipped 2 item(s): 1 missing id or name, 1 slot of an unknown clinic"
    ]
    assert [a for a in api.take() if a[0] == "cliniques"] == [
        ("cliniques", "1001,1999"),
        ("cliniques", "1999"),
    ]


async def test_an_answer_read_short_of_its_last_page_keeps_the_ids_not_listed_asked(
    session: aiohttp.ClientSession,
) -> None:
    asked: list[str] = []

    async def clinics(request: web.Request) -> web.Response:
        asked.append(request.query["ids"])
        # Announces a second page, and answers page 1 again when asked for it.
        return web.json_response(envelope([CLINIC], page=1, pages=2))

    app = web.Application()
    app.router.add_get("/api/v1/disponibilites", as_json(envelope(slots_at([1001, 1999]))))
    app.router.add_get("/api/v1/cliniques", clinics)
    app.router.add_get("/api/v1/medecins", as_json(envelope([PHYSICIAN])))
    server = await serve(app)
    try:
        source = make_source(session, server)
        for _ in range(2):
            result = await source.search_slots(SlotQuery(*WEEK, limit=10))
            assert [s.clinic_local_id for s in result.slots] == ["1001"]
    finally:
        await server.close()
    # 1999 may be on the page never read: asked again; 1001 was read, and is held.
    assert asked == ["1001,1999", "1001,1999", "1999", "1999"]


async def test_a_long_ttl_still_asks_again_what_was_not_served_within_a_minute(
    session: aiohttp.ClientSession, api: Any
) -> None:
    source, clock = source_with_clock(session, api, 3600)
    api.slots = slots_at([1999])
    await source.search_slots(SlotQuery(*WEEK, limit=10))
    clock.now += 30
    await source.search_slots(SlotQuery(*WEEK, limit=10))
    assert [r for r, _ in api.take()] == [
        "disponibilites",
        "cliniques",
        "medecins",
        "disponibilites",
    ]
    api.clinics = [CLINIC, {**CLINIC, "id": 1999}]
    clock.now += 31
    result = await source.search_slots(SlotQuery(*WEEK, limit=10))
    assert [s.clinic_local_id for s in result.slots] == ["1999"]


async def test_the_directory_is_bounded(session: aiohttp.ClientSession, api: Any) -> None:
    source, _ = source_with_clock(session, api, 300)
    assert source.directory is not None
    shelf = source.directory.clinics
    shelf.size = 2
    api.clinics = [{**CLINIC, "id": i} for i in (1001, 1002, 1003)]
    api.slots = slots_at([1001, 1002, 1003])
    await source.search_slots(SlotQuery(*WEEK, limit=10))
    assert len(shelf) == 2
    api.take()
    await source.search_slots(SlotQuery(*WEEK, limit=10))
    assert [a for a in api.take() if a[0] == "cliniques"] == [("cliniques", "1001")]


# -- the option ---------------------------------------------------------------------------


def test_the_option_defaults_to_300_s_and_0_turns_it_off() -> None:
    assert RestJsonOptions().directory_ttl_s == 300
    assert RestJsonOptions(directory_ttl_s=0).directory_ttl_s == 0


@pytest.mark.parametrize(
    ("value", "shown"),
    [(-1, "-1"), ("long", "'long'"), (86_401, "86401"), (True, "True")],
)
def test_a_bad_ttl_is_refused_in_one_line(value: object, shown: str) -> None:
    raw: dict[str, Any] = {
        "id": "x",
        "protocol": SourceProtocol.REST_JSON.value,
        "url": "https://api.example/v1",
        "options": {"directory_ttl_s": value},
    }
    with pytest.raises(ConfigError) as caught:
        parse_definition(raw, where="command line")
    assert str(caught.value).endswith(
        f"options.directory_ttl_s must be a number of seconds from 0 to 86400, got {shown}"
    )


# -- concurrent searches missing the same ids ----------------------------------------------


class GatedApi(Api):
    """:class:`Api` whose clinic lookups wait for ``release`` (``fail_first``: the first
    one then answers what is not JSON)."""

    def __init__(self, *args: Any, fail_first: bool = False) -> None:
        super().__init__(*args)
        self.release = asyncio.Event()
        self.fail_first = fail_first

    async def gate(self, resource: str) -> web.Response | None:
        if resource != "cliniques":
            return None
        await self.release.wait()
        if self.fail_first:
            self.fail_first = False
            return web.Response(body=b"{not json", content_type="application/json")
        return None


async def two_searches_at_once(source: Any, api: GatedApi) -> list[Any]:
    """Two identical searches, the clinic lookup held until both have their slots and
    the first lookup has arrived (and a moment more, for the second to reach its own)."""
    query = SlotQuery(*WEEK, limit=50)
    both = asyncio.gather(
        source.search_slots(query), source.search_slots(query), return_exceptions=True
    )
    for _ in range(500):
        asked = [r for r, _ in api.asked]
        if asked.count("disponibilites") == 2 and "cliniques" in asked:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    api.release.set()
    return list(await both)


async def test_searches_missing_the_same_clinics_ask_for_them_once(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    clinics = [CLINIC, OTTAWA, NAMELESS, NO_POSITION]
    slot_items = slots_at([1001, 2001, 2002, 1999, 2003])
    api = GatedApi(slot_items, clinics, [PHYSICIAN])
    api.server = await serve(api.app())  # type: ignore[attr-defined]
    try:
        api.release.set()
        fresh, _ = source_with_clock(session, api, 0)
        with caplog.at_level(logging.WARNING, logger="test.rdvq"):
            expected = await fresh.search_slots(SlotQuery(*WEEK, limit=50))
        expected_log = [r.getMessage() for r in caplog.records]
        assert expected_log, "the malformed clinic and the unlisted one are logged"
        api.release.clear()
        api.take()
        caplog.clear()

        source, _ = source_with_clock(session, api, 300)
        with caplog.at_level(logging.WARNING, logger="test.rdvq"):
            got = await two_searches_at_once(source, api)
        assert [r for r, _ in api.take() if r == "cliniques"] == ["cliniques"]
        for result in got:
            assert not isinstance(result, BaseException), result
            assert result.slots == expected.slots
            assert result.clinics == expected.clinics
        # Each search counted what it skipped, as one asking alone does.
        assert [r.getMessage() for r in caplog.records] == expected_log * 2
    finally:
        await api.server.close()  # type: ignore[attr-defined]


async def test_a_search_waiting_on_a_failed_lookup_asks_itself(
    session: aiohttp.ClientSession,
) -> None:
    api = GatedApi(slots_at([1001]), [CLINIC], [PHYSICIAN], fail_first=True)
    api.server = await serve(api.app())  # type: ignore[attr-defined]
    try:
        source, _ = source_with_clock(session, api, 300)
        got = await two_searches_at_once(source, api)
        failed = [r for r in got if isinstance(r, BaseException)]
        answered = [r for r in got if not isinstance(r, BaseException)]
        assert len(failed) == 1 and len(answered) == 1, got
        assert answered[0].clinics["1001"].name == "Clinique Test"
        assert [i for r, i in api.take() if r == "cliniques"] == ["1001", "1001"]
    finally:
        await api.server.close()  # type: ignore[attr-defined]
