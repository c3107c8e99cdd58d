"""Fan-out, merge, de-duplication and keyset pagination, over in-process sources.

These sources implement the real ``Source`` contract from lists of records, so
the federation's algorithms can be driven into every corner (truncated pages,
ties, duplicates, failures) that live servers reach only by chance. The same
behaviours are checked end to end against the demo servers in tests/test_app.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import aiohttp
import pytest

from sources.base import Source, SourceConfig, SourceContext
from sources.errors import SourceUnavailable
from sources.pool.fanout import SourcePool
from sources.records import (
    Address,
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    Identifier,
    PhysicianQuery,
    PhysicianRecord,
    ProblemSeverity,
    Region,
    SlotQuery,
    SlotRecord,
    SlotResult,
    SourceProtocol,
    SourceStatus,
)
from sources.search import CountKind, Federation, SlotCount
from sources.timeutil import MONTREAL

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=MONTREAL)
PERMIT = "urn:test:permit"
DOWNTOWN = GeoPoint(45.5017, -73.5673)


class ListSource(Source):
    """A source answering from lists, honouring ``limit`` like a paging upstream."""

    protocol = SourceProtocol.REST_JSON
    clinics: list[ClinicRecord]
    slots: list[SlotRecord]
    calls: list[SlotQuery]
    behaviour: str = "ok"

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        self.calls.append(query)
        if self.behaviour == "fail":
            raise SourceUnavailable(self.id, "upstream answered HTTP 503")
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if self.behaviour == "bug":
            raise KeyError("oops")
        ids = set(query.clinic_local_ids) if query.clinic_local_ids is not None else None
        matching = sorted(
            (
                s
                for s in self.slots
                if query.starts_after <= s.start < query.starts_before
                and (ids is None or s.clinic_local_id in ids)
            ),
            key=lambda s: (s.start, s.local_id),
        )
        # "capped": an upstream that cannot go past a first page of 10 (no next link).
        page = matching[: min(query.limit, 10) if self.behaviour == "capped" else query.limit]
        return SlotResult(
            slots=tuple(page),
            complete=len(page) == len(matching),
            total=len(matching),
            clinics={c.local_id: c for c in self.clinics},
            total_exact=True,  # it counts exactly the matches it would send
        )

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        out = self.clinics
        if query.identifiers is not None:
            out = [c for c in out if set(c.identifiers) & set(query.identifiers)]
        if query.local_ids is not None:
            out = [c for c in out if c.local_id in query.local_ids]
        return out

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        return []


def clinic(
    source: str,
    local: str,
    permit: str | None,
    name: str,
    km_east: float = 0.0,
    postal: str = "H2X 1Y4",
) -> ClinicRecord:
    return ClinicRecord(
        source_id=source,
        local_id=local,
        name=name,
        address=Address(city="Montréal", region=Region.MONTREAL, postal_code=postal),
        location=GeoPoint(DOWNTOWN.latitude, DOWNTOWN.longitude + km_east / 78.7),
        identifiers=(Identifier(PERMIT, permit),) if permit else (),
    )


def slot(
    source: str,
    local: str,
    clinic_id: str,
    minutes: int,
    kind: AppointmentType = AppointmentType.ROUTINE,
) -> SlotRecord:
    start = T0 + timedelta(minutes=minutes)
    return SlotRecord(source, local, start, start + timedelta(minutes=15), kind, clinic_id)


class Pool(SourcePool):
    """A pool whose sources are ListSources built from (id, clinics, slots) specs."""

    async def install(
        self, *specs: tuple[str, list[ClinicRecord], list[SlotRecord]], timeout_s: float = 2.0
    ) -> list[ListSource]:
        built: dict[str, ListSource] = {}

        def factory(config: SourceConfig, context: SourceContext) -> Source:
            source = ListSource(config, context)
            source.clinics, source.slots, source.calls = data[config.id][0], data[config.id][1], []
            built[config.id] = source
            return source

        data = {sid: (clinics, slots) for sid, clinics, slots in specs}
        self._factory = factory
        await self.sync([])
        await self.sync(
            [
                SourceConfig(
                    id=sid,
                    protocol=SourceProtocol.REST_JSON,
                    url=f"http://{sid}.test",
                    timeout_s=timeout_s,
                )
                for sid, _, _ in specs
            ]
        )
        return [built[sid] for sid, _, _ in specs]


@pytest.fixture
async def pool():
    async with aiohttp.ClientSession() as session:
        yield Pool(session)


WINDOW = SlotQuery(
    starts_after=T0 - timedelta(hours=1), starts_before=T0 + timedelta(days=7), limit=10
)


async def test_same_clinic_in_two_sources_is_one_clinic_with_both_sources(pool):
    await pool.install(
        ("a", [clinic("a", "1", "P-1", "Clinique du Parc")], [slot("a", "s1", "1", 0)]),
        ("b", [clinic("b", "x", "P-1", "CLINIQUE DU PARC inc")], [slot("b", "t1", "x", 30)]),
    )
    page = await Federation(pool).search_slots(WINDOW)
    assert [s.clinic.key for s in page.slots] == ["i:urn:test:permit|P-1"] * 2
    merged = page.slots[0].clinic
    assert merged.source_ids == ("a", "b")
    assert merged.name == "Clinique du Parc"  # the first source in registry order wins


async def test_clinics_without_shared_identifier_match_on_name_and_postal_code(pool):
    await pool.install(
        ("a", [clinic("a", "1", None, "Clinique Saint-Éloi")], [slot("a", "s1", "1", 0)]),
        ("b", [clinic("b", "9", None, "clinique  st-eloi", postal="h2x1y4")], []),
    )
    clinics = await Federation(pool).search_clinics(ClinicQuery())
    assert len(clinics.value) == 2  # "st" is not "saint": no fuzzy matching
    await pool.install(
        ("a", [clinic("a", "1", None, "Clinique Saint-Éloi")], []),
        ("b", [clinic("b", "9", None, "clinique  saint eloi", postal="h2x1y4")], []),
    )
    clinics = await Federation(pool).search_clinics(ClinicQuery())
    assert len(clinics.value) == 1
    assert clinics.value[0].clinic.source_ids == ("a", "b")


async def test_merged_clinic_key_is_stable_whichever_sources_answer(pool):
    both = [
        ("a", [clinic("a", "1", "P-1", "X")], [slot("a", "s", "1", 0)]),
        ("b", [clinic("b", "2", "P-1", "X")], [slot("b", "t", "2", 0)]),
    ]
    keys = []
    for specs in (both, both[:1], both[1:]):
        await pool.install(*specs)
        page = await Federation(pool).search_slots(WINDOW)
        keys.append({s.clinic.key for s in page.slots})
    assert keys[0] == keys[1] == keys[2] == {"i:urn:test:permit|P-1"}


async def test_identical_slots_from_two_sources_are_one(pool):
    await pool.install(
        ("a", [clinic("a", "1", "P-1", "X")], [slot("a", "s1", "1", 0), slot("a", "s2", "1", 15)]),
        ("b", [clinic("b", "2", "P-1", "X")], [slot("b", "t1", "2", 0)]),
    )
    page = await Federation(pool).search_slots(WINDOW)
    assert [(s.record.source_id, s.record.local_id) for s in page.slots] == [
        ("a", "s1"),
        ("a", "s2"),
    ]
    assert page.total == 2


async def test_slots_are_ordered_by_start_then_distance_then_id(pool):
    near = replace(WINDOW, near=DOWNTOWN, radius_km=50)
    await pool.install(
        ("a", [clinic("a", "far", "P-far", "Far", km_east=10)], [slot("a", "1", "far", 0)]),
        (
            "b",
            [clinic("b", "near", "P-near", "Near", km_east=1)],
            [slot("b", "2", "near", 0), slot("b", "3", "near", -10)],
        ),
    )
    page = await Federation(pool).search_slots(near)
    assert [s.record.local_id for s in page.slots] == ["3", "2", "1"]
    assert page.slots[1].distance_km == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("first", [1, 2, 3, 7, 50])
async def test_walking_the_pages_gives_every_slot_once(pool, first):
    a_clinics = [clinic("a", f"a{i}", f"P-{i}", f"A{i}", km_east=i) for i in range(4)]
    b_clinics = [clinic("b", f"b{i}", f"P-{i + 2}", f"B{i}", km_east=i + 2) for i in range(4)]
    # Many slots share a start time, and sources overlap on clinics P-2 and P-3.
    a_slots = [slot("a", f"a-{i}", f"a{i % 4}", (i // 3) * 15) for i in range(30)]
    b_slots = [slot("b", f"b-{i}", f"b{i % 4}", (i // 5) * 15) for i in range(30)]
    await pool.install(("a", a_clinics, a_slots), ("b", b_clinics, b_slots))
    federation = Federation(pool)
    everything = (await federation.search_slots(replace(WINDOW, limit=100))).slots
    assert len(everything) == len({s.key for s in everything})
    walked, after, pages = [], None, 0
    while True:
        page = await federation.search_slots(replace(WINDOW, limit=first), after)
        walked += page.slots
        pages += 1
        if not page.has_next:
            break
        last = page.slots[-1]
        after = last.position(len(walked))
        assert pages < 200
    assert [s.key for s in walked] == [s.key for s in everything]


async def test_a_failing_source_leaves_the_others_answering(pool):
    _, bad = await pool.install(
        ("good", [clinic("good", "1", "P-1", "X")], [slot("good", "s", "1", 0)]),
        ("bad", [clinic("bad", "2", "P-2", "Y")], [slot("bad", "t", "2", 0)]),
    )
    bad.behaviour = "fail"
    page = await Federation(pool).search_slots(WINDOW)
    assert [s.record.source_id for s in page.slots] == ["good"]
    assert [(type(e).__name__, e.source_id) for e in page.errors] == [("SourceUnavailable", "bad")]


async def test_a_hanging_source_times_out_and_the_others_answer(pool):
    _, slow = await pool.install(
        ("good", [clinic("good", "1", "P-1", "X")], [slot("good", "s", "1", 0)]),
        ("slow", [clinic("slow", "2", "P-2", "Y")], [slot("slow", "t", "2", 0)]),
        timeout_s=0.2,
    )
    slow.behaviour = "hang"
    started = asyncio.get_running_loop().time()
    page = await Federation(pool).search_slots(WINDOW)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert [s.record.source_id for s in page.slots] == ["good"]
    assert [(type(e).__name__, e.source_id) for e in page.errors] == [("SourceTimeout", "slow")]
    (slow_view,) = (v for v in pool.views() if v.id == "slow")
    assert slow_view.status is SourceStatus.DEGRADED  # one failure: not yet DOWN


async def test_an_adapter_bug_becomes_a_bad_response_error(pool):
    _, buggy = await pool.install(
        ("good", [clinic("good", "1", "P-1", "X")], [slot("good", "s", "1", 0)]),
        ("buggy", [clinic("buggy", "2", "P-2", "Y")], []),
    )
    buggy.behaviour = "bug"
    page = await Federation(pool).search_slots(WINDOW)
    assert [s.record.source_id for s in page.slots] == ["good"]
    assert [(type(e).__name__, e.source_id) for e in page.errors] == [
        ("SourceBadResponse", "buggy")
    ]


async def test_clinic_ids_only_ask_the_sources_that_know_the_clinic(pool):
    a, b = await pool.install(
        ("a", [clinic("a", "1", "P-1", "X")], [slot("a", "s", "1", 0)]),
        ("b", [clinic("b", "2", "P-2", "Y")], [slot("b", "t", "2", 0)]),
    )
    query = replace(WINDOW, near=DOWNTOWN, radius_km=5, clinic_keys=("i:urn:test:permit|P-1",))
    page = await Federation(pool).search_slots(query)
    assert [s.record.local_id for s in page.slots] == ["s"]
    assert len(a.calls) == 1 and b.calls == []
    # The source is asked the search itself, projected: the key resolved to its own id.
    assert a.calls[0] == replace(query, clinic_keys=None, clinic_local_ids=("1",), limit=25)


async def test_slots_outside_the_asked_window_or_types_are_dropped_even_if_a_source_sends_them(
    pool,
):
    (src,) = await pool.install(("a", [clinic("a", "1", "P-1", "X")], []))
    inside = slot("a", "in", "1", 0)
    outside = slot("a", "out", "1", 60 * 24 * 30)
    urgent = slot("a", "urgent", "1", 5, AppointmentType.URGENT)

    async def sloppy(query: SlotQuery) -> SlotResult:
        return SlotResult((inside, urgent, outside), True, 3, {c.local_id: c for c in src.clinics})

    src.search_slots = sloppy  # type: ignore[method-assign]
    search = replace(WINDOW, appointment_types=frozenset({AppointmentType.ROUTINE}))
    page = await Federation(pool).search_slots(search)
    assert [s.record.local_id for s in page.slots] == ["in"]


async def test_same_name_and_postal_code_with_different_permits_are_two_clinics(pool):
    await pool.install(
        ("a", [clinic("a", "1", "P-111", "Clinique du Parc")], [slot("a", "s", "1", 0)]),
        ("b", [clinic("b", "2", "P-222", "Clinique du Parc")], [slot("b", "t", "2", 0)]),
        ("c", [clinic("c", "3", None, "Clinique du Parc")], []),
    )
    clinics = await Federation(pool).search_clinics(ClinicQuery())
    keys = sorted(c.clinic.key for c in clinics.value)
    # c has no permit: it joins one of them (the first), never both.
    assert keys == ["i:urn:test:permit|P-111", "i:urn:test:permit|P-222"]


async def test_a_source_failing_in_a_later_round_no_longer_holds_the_page_back(pool):
    """Round 1: 'flaky' answers a truncated page; round 2 it fails: its partial
    answer is dropped, the page fills from the healthy source, one error only. (Its
    slots do not match, so that its answer holds the page back and it is asked again.)"""
    flaky_slots = [slot("flaky", f"f{i}", "2", i, AppointmentType.URGENT) for i in range(60)]
    good, flaky = await pool.install(
        (
            "good",
            [clinic("good", "1", "P-1", "X")],
            [slot("good", f"g{i}", "1", 5 * i) for i in range(200)],
        ),
        ("flaky", [clinic("flaky", "2", "P-2", "Y")], flaky_slots),
    )
    original = flaky.search_slots

    async def once_then_fail(query: SlotQuery) -> SlotResult:
        if flaky.calls:
            flaky.calls.append(query)
            raise SourceUnavailable("flaky", "upstream answered HTTP 503")
        return await original(query)

    flaky.search_slots = once_then_fail  # type: ignore[method-assign]
    # A filter only the gateway applies forces a second round.
    search = replace(WINDOW, appointment_types=frozenset({AppointmentType.ROUTINE}), limit=3)
    for s in good.slots[:190]:
        object.__setattr__(s, "appointment_type", AppointmentType.URGENT)
    page = await Federation(pool).search_slots(search)
    assert [s.record.source_id for s in page.slots] == ["good"] * 3
    assert [(type(e).__name__, e.source_id) for e in page.errors] == [
        ("SourceUnavailable", "flaky")
    ]


async def test_a_truncated_source_that_holds_the_page_already_is_not_asked_again(pool):
    """Round 1: 'late' answers slots far ahead, truncated; 'early' answers slots the gateway
    filters out, truncated too. Only 'early' holds the page back: only it is asked wider,
    and the page is what re-asking both would have given."""
    early, late = await pool.install(
        (
            "early",
            [clinic("early", "1", "P-1", "X")],
            [slot("early", f"e{i:03d}", "1", i, AppointmentType.URGENT) for i in range(60)]
            + [slot("early", f"m{i:03d}", "1", 100 + i) for i in range(10)],
        ),
        (
            "late",
            [clinic("late", "2", "P-2", "Y")],
            [slot("late", f"l{i:03d}", "2", 500 + i) for i in range(60)],
        ),
    )
    search = replace(WINDOW, appointment_types=frozenset({AppointmentType.ROUTINE}), limit=3)
    page = await Federation(pool).search_slots(search)
    assert [s.record.local_id for s in page.slots] == ["m000", "m001", "m002"]
    assert page.has_next and not page.errors
    assert [q.limit for q in early.calls] == [25, 100]
    assert [q.limit for q in late.calls] == [25]


async def test_an_empty_page_that_has_more_gives_a_cursor_to_resume_from(pool):
    # 6000 slots that the gateway filters out, then one that matches: the search
    # stops widening at the cap and must hand back a position past what it read.
    skipped = [slot("a", f"u{i:05d}", "1", i // 10, AppointmentType.URGENT) for i in range(6000)]
    wanted = slot("a", "zz", "1", 700)
    await pool.install(("a", [clinic("a", "1", "P-1", "X")], [*skipped, wanted]))
    search = replace(WINDOW, appointment_types=frozenset({AppointmentType.ROUTINE}), limit=5)
    federation = Federation(pool)
    page = await federation.search_slots(search)
    found: list[str] = [s.record.local_id for s in page.slots]
    for _ in range(10):
        if not page.has_next:
            break
        after = page.slots[-1].position(len(found)) if page.slots else page.resume
        assert after is not None
        page = await federation.search_slots(search, after)
        found += [s.record.local_id for s in page.slots]
    assert found == ["zz"]


async def test_a_languages_search_on_a_truncated_source_counts_at_least_the_slots_found(pool):
    french = replace(clinic("a", "1", "P-1", "X"), languages=("fr",))
    await pool.install(("a", [french], [slot("a", f"s{i}", "1", i) for i in range(200)]))
    plain = await Federation(pool).search_slots(replace(WINDOW, limit=5))
    # One source holds every match and counts them exactly: its count is the count.
    assert plain.count == SlotCount(200, CountKind.EXACT)
    with_languages = replace(WINDOW, languages=frozenset({"fr"}), limit=5)
    page = await Federation(pool).search_slots(with_languages)
    # No source counts languages: a lower bound of what was read, never null.
    assert page.count.kind is CountKind.AT_LEAST
    assert len(page.slots) <= (page.total or 0) <= 200


async def test_the_count_is_exact_when_every_source_answered_completely(pool):
    await pool.install(
        ("a", [clinic("a", "1", "P-1", "X")], [slot("a", f"s{i}", "1", i) for i in range(30)]),
        ("b", [clinic("b", "2", "P-1", "X")], [slot("b", f"t{i}", "2", i) for i in range(10)]),
    )
    page = await Federation(pool).search_slots(replace(WINDOW, limit=40))
    assert page.count == SlotCount(30, CountKind.EXACT)  # b's 10 are a's first 10
    # A first page that left a source truncated counts what that source says it has.
    first = await Federation(pool).search_slots(replace(WINDOW, limit=5))
    assert first.count == SlotCount(30, CountKind.AT_LEAST)


async def test_a_source_stuck_on_its_first_page_gives_a_lower_bound_and_more_to_come(pool):
    """Two sources list the same 100 slots and neither can go past its first 10: the
    count is a bound that never counts a slot twice, and the page says more may come."""
    await pool.install(
        ("a", [clinic("a", "1", "P-1", "X")], [slot("a", f"s{i}", "1", i) for i in range(100)]),
        ("b", [clinic("b", "2", "P-1", "X")], [slot("b", f"t{i}", "2", i) for i in range(100)]),
    )
    for source in pool.enabled:
        source.behaviour = "capped"  # type: ignore[attr-defined]
    page = await Federation(pool).search_slots(replace(WINDOW, limit=20))
    assert page.has_next
    assert page.count == SlotCount(100, CountKind.AT_LEAST)


async def test_a_failed_source_makes_the_count_a_lower_bound(pool):
    sources = await pool.install(
        ("a", [clinic("a", "1", "P-1", "X")], [slot("a", f"s{i}", "1", i) for i in range(3)]),
        ("b", [clinic("b", "2", "P-2", "Y")], [slot("b", f"t{i}", "2", i) for i in range(4)]),
    )
    sources[1].behaviour = "fail"
    page = await Federation(pool).search_slots(WINDOW)
    assert page.count == SlotCount(3, CountKind.AT_LEAST) and page.errors
    sources[0].behaviour = "fail"
    assert (await Federation(pool).search_slots(WINDOW)).count == SlotCount(None, None)


async def test_a_source_whose_adapter_fails_to_start_is_skipped_and_the_rest_load(pool):
    started: list[str] = []

    class Fussy(ListSource):
        async def start(self) -> None:
            started.append(self.id)
            if self.id == "bad":
                raise RuntimeError("cannot start")

    def factory(config: SourceConfig, context: SourceContext) -> Source:
        source = Fussy(config, context)
        source.clinics, source.slots, source.calls = [], [], []
        return source

    pool._factory = factory
    configs = [
        SourceConfig(id=sid, protocol=SourceProtocol.REST_JSON, url=f"http://{sid}.test")
        for sid in ("a", "bad", "c")
    ]
    await pool.sync(configs)
    assert [s.id for s in pool.enabled] == ["a", "c"]
    await pool.sync(configs)  # unchanged configs: the good ones are not rebuilt
    assert started.count("a") == 1 and started.count("c") == 1


async def test_the_fan_out_deadline_bounds_a_whole_request_whatever_the_source_timeouts(pool):
    """Clinic ids make two fan-outs in a row (lookup, then slots): with a hanging
    source whose own timeout is 10 s, the request still ends at its deadline."""
    _, slow = await pool.install(
        ("good", [clinic("good", "1", "P-1", "X")], [slot("good", "s", "1", 0)]),
        ("slow", [clinic("slow", "2", "P-1", "Y")], [slot("slow", "t", "2", 0)]),
        timeout_s=10.0,
    )
    slow.behaviour = "hang"
    loop = asyncio.get_running_loop()
    started = loop.time()
    federation = Federation(pool, deadline_s=0.4)
    page = await federation.search_slots(replace(WINDOW, clinic_keys=("i:urn:test:permit|P-1",)))
    assert loop.time() - started < 1.0
    assert [s.record.source_id for s in page.slots] == ["good"]
    assert {(type(e).__name__, e.source_id) for e in page.errors} == {("SourceTimeout", "slow")}
    assert list(federation.asked) == ["good", "slow"]


async def test_a_bulkhead_caps_the_calls_in_flight_to_one_source(pool):
    (src,) = await pool.install(("a", [clinic("a", "1", "P-1", "X")], []))
    in_flight = peak = 0

    async def slow_search(query: SlotQuery) -> SlotResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return SlotResult((), True, 0)

    src.search_slots = slow_search  # type: ignore[method-assign]
    # Thirty different searches (identical ones would be collapsed into one call).
    await asyncio.gather(
        *(Federation(pool).search_slots(replace(WINDOW, limit=60 + i)) for i in range(30))
    )
    assert peak == 10  # the default max_concurrency


def test_max_concurrency_is_validated_and_kept_in_the_options() -> None:
    from sources.errors import ConfigError
    from sources.registry.definition import definition_table, parse_definition

    raw = {"id": "a", "protocol": "FHIR_R4", "url": "http://h/fhir", "max_concurrency": 4}
    assert parse_definition(raw).max_concurrency == 4
    assert definition_table(parse_definition(raw))["options"] == {"max_concurrency": 4}
    with pytest.raises(ConfigError, match="max_concurrency must be a whole number"):
        parse_definition({**raw, "max_concurrency": 0})


async def test_an_upstream_count_that_may_include_what_its_adapter_drops_never_raises_the_bound(
    pool,
):
    """A truncated source whose count is the upstream's raw one (``total_exact`` false:
    it may count busy, malformed or unknown-clinic slots the adapter drops) gives a
    bound of the slots found, never its count: an AT_LEAST must not over-count."""
    await pool.install(
        ("a", [clinic("a", "1", "P-1", "X")], [slot("a", f"s{i}", "1", i) for i in range(60)])
    )
    (source,) = pool.enabled
    real = source.search_slots

    async def raw_count(query):
        result = await real(query)
        return replace(result, total=result.total + 40, total_exact=False)

    source.search_slots = raw_count  # type: ignore[method-assign]
    page = await Federation(pool).search_slots(replace(WINDOW, limit=5))
    assert page.count.kind is CountKind.AT_LEAST
    assert len(page.slots) <= (page.count.value or 0) <= 60


async def test_same_time_slots_of_one_source_are_one_slot_with_their_seats_added(pool):
    """Two slots of one source, one clinic and physician (or none), type and time are
    distinct seats the API cannot tell apart: one slot, seats added, the first one's
    booking link, and a SAME_TIME_SLOTS warning on that source. The same slot from
    two sources is still one slot, seats not added."""
    first = replace(slot("a", "s1", "1", 0), booking_url="https://book.example/s1")
    second = replace(slot("a", "s2", "1", 0), booking_url="https://book.example/s2", capacity=3)
    await pool.install(
        ("a", [clinic("a", "1", "P-1", "X")], [first, second, slot("a", "s3", "1", 15)]),
        ("b", [clinic("b", "2", "P-1", "X")], [slot("b", "t1", "2", 0)]),
    )
    page = await Federation(pool).search_slots(WINDOW)
    assert [(s.record.local_id, s.record.capacity) for s in page.slots] == [("s1", 4), ("s3", None)]
    assert page.slots[0].record.booking_url == "https://book.example/s1"
    assert (page.count.value, page.count.kind) == (2, CountKind.EXACT)
    views = {v.id: v for v in pool.views()}
    (same_time,) = [p for p in views["a"].problems if p.code == "SAME_TIME_SLOTS"]
    assert (same_time.severity, same_time.count) == (ProblemSeverity.WARNING, 1)
    assert "served as one slot" in same_time.message
    assert views["a"].status is SourceStatus.UP
    assert not [p for p in views["b"].problems if p.code == "SAME_TIME_SLOTS"]

    # Page by page: the slot and its seats once, then the next.
    one = await Federation(pool).search_slots(replace(WINDOW, limit=1))
    assert [(s.record.local_id, s.record.capacity) for s in one.slots] == [("s1", 4)]
    end = one.end()
    assert end is not None
    rest = await Federation(pool).search_slots(replace(WINDOW, limit=1), end)
    assert [s.record.local_id for s in rest.slots] == ["s3"]


async def test_a_truncated_source_serving_same_time_slots_as_one_never_claims_its_count(pool):
    """Its count is of slots, not of what the gateway serves once they are added up."""
    pairs = [slot("a", f"s{i}", "1", (i // 2) * 15) for i in range(60)]
    await pool.install(("a", [clinic("a", "1", "P-1", "X")], pairs))
    page = await Federation(pool).search_slots(replace(WINDOW, limit=5))
    assert [s.record.capacity for s in page.slots] == [2] * 5
    assert page.count.kind is CountKind.AT_LEAST
    assert 5 <= (page.count.value or 0) <= 30
