"""Filters pushed to the FHIR server (issue 17, item 2): ROUTINE split in two where the
server answers ``appointment-type:missing`` (verified on its counts), the kept directory
standing for ``_include``, and language scopes sent only where they narrow."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

import sources.fhir.directory
from sources.base import SourceContext
from sources.fhir.adapter import FhirSource
from sources.fhir.capabilities import Support
from sources.fhir.directory import Directory, Staff
from sources.fhir.slots import merge_halves
from sources.records import AppointmentType, SlotQuery, SlotRecord, SlotResult
from sources.timeutil import MONTREAL
from tests.conftest import TEST_NOW, serve
from tests.sources.fhir.medplum.proxies import Leniency, lenient_proxy
from tests.sources.fhir.test_adapter import make_source, window
from tests.sources.fhir.test_medplum import WINDOW_END, assert_serves
from tests.sources.fhir.test_medplum import _resources as stored

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

    from examples.world import World
    from tests.conftest import GatewayFactory
    from tests.sources.fhir.conftest import Engine

ROUTINE = frozenset({AppointmentType.ROUTINE})
MISSING = ("appointment-type:missing", "true")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _slot_searches(leniency: Leniency) -> list[list[tuple[str, str]]]:
    return [params for path, params in leniency.requests if path == "Slot/_search"]


def _medplum(engine: Engine, session: aiohttp.ClientSession, url: str) -> FhirSource:
    logger = logging.getLogger("passerelle.sources.medplum")
    return FhirSource(engine.definition(url), SourceContext(session, logger))


def _same_served(one: SlotResult, other: SlotResult) -> None:
    """Two answers to one query serve the same slots, records and all, as far as both
    say they hold every slot (their answers may stop at different points); ``one``'s
    physicians may know more of their clinics."""
    bounds = [
        (r.slots[-1].start, r.ties_complete) for r in (one, other) if not r.complete and r.slots
    ]
    end = min(bounds, default=None)

    def settled(result: SlotResult) -> list[Any]:
        kept = [
            s
            for s in result.slots
            if end is None or s.start < end[0] or (end[1] and s.start == end[0])
        ]
        physicians = result.physicians
        return [
            (s, result.clinics[s.clinic_local_id], physicians.get(s.physician_local_id or ""))
            for s in kept
        ]

    now, before = settled(one), settled(other)
    assert [(s, c) for s, c, _ in now] == [(s, c) for s, c, _ in before]
    for (_, _, mine), (_, _, theirs) in zip(now, before, strict=True):
        # The directory brings a physician's every role: clinics the page did not name.
        assert (mine is None) is (theirs is None)
        if mine is not None and theirs is not None:
            assert replace(mine, clinic_local_ids=theirs.clinic_local_ids) == theirs
            assert set(theirs.clinic_local_ids) <= set(mine.clinic_local_ids)
    assert settled(one), "nothing to compare"


# -- the demo server ------------------------------------------------------------------


async def test_the_demo_server_gets_routine_split_and_no_include_and_serves_the_same(
    session: aiohttp.ClientSession, fhir_server: TestServer, world: World
) -> None:
    """The plan now (types pushed, ``:missing=true``, no ``_include``) serves exactly what
    the plan before did (ROUTINE checked here, ``_include``d records), page for page."""
    leniency = Leniency()
    async with serve(lenient_proxy(str(fhir_server.make_url("/fhir")), leniency)) as proxy:
        now = make_source(session, str(proxy.make_url("/fhir")))
        before = make_source(session, str(fhir_server.make_url("/fhir")))
        assert (await now.learn()).type_missing is Support.YES
        assert now.directory.whole
        await before.learn()
        # The plan before: ROUTINE filtered here, records from _include.
        before.capabilities = before.capabilities.merged(type_missing=Support.UNKNOWN)
        before.directory.staff = None
        for limit in (5, 40, 400):
            for languages in (None, frozenset({"fr"}), frozenset({"es"})):
                query = window(world, limit=limit, appointment_types=ROUTINE, languages=languages)
                leniency.requests.clear()
                served = await now.search_slots(query)
                _same_served(served, await before.search_slots(query))
                searches = _slot_searches(leniency)
                assert searches and all(
                    not name.startswith("_include") for p in searches for name, _ in p
                )
                assert [p for p in searches if MISSING in p], searches
                typed = [p for p in searches if MISSING not in p]
                assert typed and all(("appointment-type" in dict(p)) for p in typed)
                assert served.slots and all(
                    s.appointment_type is AppointmentType.ROUTINE for s in served.slots
                )
        # Without languages the server counts what is served: the count is exact.
        query = window(world, limit=5, appointment_types=ROUTINE)
        result = await now.search_slots(query)
        assert result.total_exact and result.total and result.total > len(result.slots)


# -- a third-party engine: Medplum answers :missing; servers that refuse or ignore it --


async def test_medplum_answers_missing_and_routine_serves_the_uncoded_slots(
    gateway_for: GatewayFactory, medplum_local: Engine, session: aiohttp.ClientSession
) -> None:
    leniency = Leniency()
    async with serve(lenient_proxy(medplum_local.url, leniency)) as proxy:
        url = str(proxy.make_url("/fhir"))
        learnt = await _medplum(medplum_local, session, url).learn()
        assert learnt.type_missing is Support.YES
        expected = medplum_local.data.free_slots(TEST_NOW, WINDOW_END, types={"ROUTINE"})
        uncoded = [
            r
            for r in stored(medplum_local)
            if r["resourceType"] == "Slot" and r["status"] == "free" and "appointmentType" not in r
        ]
        assert uncoded, "the data set holds free slots without appointmentType"
        leniency.requests.clear()
        async with gateway_for(medplum_local.definition(url)) as gateway:
            f = {"appointmentTypes": ["ROUTINE"], "startsBefore": WINDOW_END.isoformat()}
            await assert_serves(gateway, f, expected)
        assert any(MISSING in p for p in _slot_searches(leniency))


@pytest.mark.parametrize(
    ("how", "learnt"), [("refuse", Support.REFUSED), ("ignore", Support.IGNORED)]
)
async def test_a_server_refusing_or_ignoring_missing_still_serves_every_routine_slot(
    gateway_for: GatewayFactory,
    medplum_local: Engine,
    session: aiohttp.ClientSession,
    how: str,
    learnt: Support,
) -> None:
    leniency = Leniency(missing=how)
    async with serve(lenient_proxy(medplum_local.url, leniency)) as proxy:
        url = str(proxy.make_url("/fhir"))
        assert (await _medplum(medplum_local, session, url).learn()).type_missing is learnt
        expected = medplum_local.data.free_slots(TEST_NOW, WINDOW_END, types={"ROUTINE"})
        async with gateway_for(medplum_local.definition(url)) as gateway:
            leniency.requests.clear()
            f = {"appointmentTypes": ["ROUTINE"], "startsBefore": WINDOW_END.isoformat()}
            await assert_serves(gateway, f, expected)
        # The gateway never asked for what the probe found unanswered.
        assert not any(MISSING in p for p in _slot_searches(leniency))


async def test_a_refusal_of_missing_during_a_search_falls_back_and_is_learnt(
    medplum_local: Engine, session: aiohttp.ClientSession
) -> None:
    async with serve(lenient_proxy(medplum_local.url, Leniency(missing="refuse"))) as proxy:
        source = _medplum(medplum_local, session, str(proxy.make_url("/fhir")))
        await source.learn()
        # As if the probe had passed (a server changed since, or behind a new proxy).
        source.capabilities = source.capabilities.merged(type_missing=Support.YES)
        query = SlotQuery(
            starts_after=TEST_NOW, starts_before=WINDOW_END, limit=1000, appointment_types=ROUTINE
        )
        result = await source.search_slots(query)
    expected = medplum_local.data.free_slots(TEST_NOW, WINDOW_END, types={"ROUTINE"})
    assert result.complete and len(result.slots) == len(expected)
    assert source.capabilities.type_missing is Support.REFUSED
    assert "REQUEST_REFUSED" in {p.code for p in source.problems}


# -- the merge of the two halves -------------------------------------------------------

T0 = datetime(2027, 1, 4, 9, tzinfo=MONTREAL)


def _slots(*specs: tuple[str, int]) -> tuple[SlotRecord, ...]:
    return tuple(
        SlotRecord(
            source_id="f",
            local_id=sid,
            start=T0 + timedelta(minutes=minute),
            end=T0 + timedelta(minutes=minute + 15),
            appointment_type=AppointmentType.ROUTINE,
            clinic_local_id="L1",
        )
        for sid, minute in specs
    )


def test_two_complete_halves_are_one_complete_answer_in_order() -> None:
    coded = SlotResult(_slots(("a", 0), ("c", 30)), complete=True, total=2, total_exact=True)
    uncoded = SlotResult(_slots(("b", 15)), complete=True, total=1, total_exact=True)
    merged = merge_halves(coded, uncoded)
    assert [s.local_id for s in merged.slots] == ["a", "b", "c"]
    assert merged.complete and merged.total == 3 and merged.total_exact


def test_a_truncated_half_cuts_the_other_where_it_stops() -> None:
    coded = SlotResult(
        _slots(("a", 0), ("b", 30)), complete=False, total=9, ties_complete=True, total_exact=True
    )
    uncoded = SlotResult(_slots(("c", 15), ("d", 30), ("e", 45)), complete=True, total=3)
    merged = merge_halves(coded, uncoded)
    # e is past where the coded half stopped: what the coded half holds after b is unknown.
    assert [s.local_id for s in merged.slots] == ["a", "c", "b", "d"]
    assert not merged.complete and merged.ties_complete
    assert merged.total == 12 and not merged.total_exact  # the uncoded count is not exact


def test_both_truncated_stop_at_the_earlier_and_its_ties_decide() -> None:
    coded = SlotResult(_slots(("a", 0), ("b", 60)), complete=False, total=5, ties_complete=True)
    uncoded = SlotResult(_slots(("c", 15), ("d", 30)), complete=False, total=None)
    merged = merge_halves(coded, uncoded)
    assert [s.local_id for s in merged.slots] == ["a", "c", "d"]
    assert not merged.ties_complete and merged.total is None


def test_a_slot_in_both_halves_is_served_once_and_the_count_is_not_exact() -> None:
    # A server ignoring the modifier sends every slot in the second half too.
    coded = SlotResult(_slots(("a", 0)), complete=True, total=1, total_exact=True)
    uncoded = SlotResult(_slots(("a", 0), ("b", 5)), complete=True, total=2, total_exact=True)
    merged = merge_halves(coded, uncoded)
    assert [s.local_id for s in merged.slots] == ["a", "b"] and merged.total == 2
    assert not merged.total_exact


# -- which language scopes are sent ---------------------------------------------------------


def _directory(clinics: int, speakers: int, others: int) -> Directory:
    """``clinics`` Locations speaking French only, ``speakers`` physicians speaking
    Spanish and ``others`` speaking French, one role and Schedule each at clinic 0."""
    directory = Directory()
    directory.locations = {
        f"L{i}": {"resourceType": "Location", "id": f"L{i}"} for i in range(clinics)
    }
    directory._speaking = {"fr": set(directory.locations)}
    practitioners: dict[str, dict[str, Any]] = {}
    roles: dict[str, dict[str, Any]] = {}
    schedules: dict[str, dict[str, Any]] = {}
    for i in range(speakers + others):
        language = "es" if i < speakers else "fr"
        practitioners[f"P{i}"] = {
            "resourceType": "Practitioner",
            "id": f"P{i}",
            "communication": [{"coding": [{"system": "urn:ietf:bcp:47", "code": language}]}],
        }
        roles[f"R{i}"] = {
            "resourceType": "PractitionerRole",
            "id": f"R{i}",
            "practitioner": {"reference": f"Practitioner/P{i}"},
            "location": [{"reference": f"Location/L{i % clinics}"}],
        }
        actors = [{"reference": f"Location/L{i % clinics}"}]
        actors.append({"reference": f"PractitionerRole/R{i}"})
        schedules[f"S{i}"] = {"resourceType": "Schedule", "id": f"S{i}", "actor": actors}
    directory.staff = Staff(practitioners, roles, schedules)
    return directory


def test_a_short_language_scope_is_sent_and_a_long_one_only_where_it_narrows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sources.fhir.directory, "CHEAP_ACTORS", 10)
    # Spanish: 4 speakers of 40 physicians, no clinic speaks it: 8 actors, sent.
    few = _directory(clinics=2, speakers=4, others=36)
    assert few.actors_speaking(frozenset({"es"}), None) is not None
    # 30 speakers of 40: a long list (60 actors) holding 30 of 40 Schedules: not sent.
    many = _directory(clinics=2, speakers=30, others=10)
    assert many.actors_speaking(frozenset({"es"}), None) is None
    # 12 of 40: a long list (24 actors) narrowing to 30 % of the Schedules: sent.
    some = _directory(clinics=2, speakers=12, others=28)
    actors = some.actors_speaking(frozenset({"es"}), None)
    assert actors is not None and "PractitionerRole/R0" in actors
    # Within one clinic's scope the share is of that clinic's Schedules (6 of 20).
    assert some.actors_speaking(frozenset({"es"}), {"L0"}) is not None
    # French: every clinic speaks it, so its Schedules are all of them: not sent.
    assert some.actors_speaking(frozenset({"fr"}), None) is None


def test_the_directory_stands_for_include_only_when_it_keeps_every_schedule() -> None:
    directory = _directory(clinics=1, speakers=1, others=0)
    assert directory.whole
    assert directory.staff is not None
    directory.staff.schedules = None  # a server that would not list its Schedules whole
    assert not directory.whole
