"""What a search makes of an answer's slots is made once per answer: the same answer
object (a source's cached answer) gives the same ``FoundSlot`` objects to every search
while their merged clinic, physician and distance stay the same, and a new one as soon
as one of them changes; the memo goes with the answer."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace

import aiohttp
import pytest

from sources.base import Source, SourceConfig, SourceContext
from sources.records import GeoPoint, SlotQuery, SlotResult, SourceProtocol
from sources.search import Federation
from sources.search import results as results_module
from tests.sources.search.test_federation import DOWNTOWN, WINDOW, ListSource, Pool, clinic, slot


class Cached(ListSource):
    """Answers every search with one answer object, as the source cache does."""

    answer: SlotResult | None = None

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        if self.answer is None:
            self.answer = await super().search_slots(replace(query, limit=100))
        return self.answer


@pytest.fixture
async def pool():
    async with aiohttp.ClientSession() as session:
        yield Pool(session)


async def install(pool: Pool, *specs):  # type: ignore[no-untyped-def]
    built = {}

    def factory(config: SourceConfig, context: SourceContext) -> Source:
        source = Cached(config, context)
        source.clinics, source.slots, source.calls = data[config.id][0], data[config.id][1], []
        built[config.id] = source
        return source

    data = {sid: (clinics, slots) for sid, clinics, slots in specs}
    pool._factory = factory
    await pool.sync([])
    await pool.sync(
        [
            SourceConfig(id=sid, protocol=SourceProtocol.REST_JSON, url=f"http://{sid}.test")
            for sid, _, _ in specs
        ]
    )
    return [built[sid] for sid, _, _ in specs]


def shown(page) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    return [
        (s.key, s.record.local_id, s.record.capacity, s.clinic.key, s.distance_km)
        for s in page.slots
    ]


async def test_the_same_answer_gives_the_same_found_slots(pool: Pool) -> None:
    await install(
        pool,
        (
            "a",
            [clinic("a", "1", "P-1", "X", km_east=1)],
            [slot("a", f"s{i}", "1", i) for i in range(5)],
        ),
    )
    near = replace(WINDOW, near=DOWNTOWN, radius_km=10)
    first = await Federation(pool).search_slots(near)
    again = await Federation(pool).search_slots(near)
    assert shown(first) == shown(again) and len(first.slots) == 5
    assert all(a is b for a, b in zip(first.slots, again.slots, strict=True))


async def test_another_distance_or_clinic_makes_them_anew(pool: Pool) -> None:
    (a,) = await install(
        pool, ("a", [clinic("a", "1", "P-1", "X", km_east=1)], [slot("a", "s1", "1", 0)])
    )
    here = await Federation(pool).search_slots(replace(WINDOW, near=DOWNTOWN))
    elsewhere = GeoPoint(DOWNTOWN.latitude, DOWNTOWN.longitude + 3 / 78.7)
    there = await Federation(pool).search_slots(replace(WINDOW, near=elsewhere))
    assert here.slots[0] is not there.slots[0]
    assert here.slots[0].distance_km != there.slots[0].distance_km
    fresh = await Federation(pool).search_slots(replace(WINDOW, near=elsewhere))
    assert fresh.slots[0].distance_km == there.slots[0].distance_km

    # Another source describes the same clinic: the merged clinic is another object,
    # with both sources; the slot's FoundSlot follows it.
    (a2, b) = await install(
        pool,
        ("a", [clinic("a", "1", "P-1", "X", km_east=1)], [slot("a", "s1", "1", 0)]),
        ("b", [clinic("b", "9", "P-1", "X", km_east=1)], []),
    )
    b.answer = None
    a2.answer = a.answer  # the same cached answer object of source a
    merged = await Federation(pool).search_slots(replace(WINDOW, near=DOWNTOWN))
    assert set(merged.slots[0].clinic.source_ids) == {"a", "b"}
    assert merged.slots[0].record is here.slots[0].record
    assert merged.slots[0] is not here.slots[0]


async def test_seats_added_are_never_added_again(pool: Pool) -> None:
    """Slots served as one make a new FoundSlot each search; what is kept is the first
    slot's own, so the seats stay those of the answer."""
    first = replace(slot("a", "s1", "1", 0), capacity=2)
    second = replace(slot("a", "s2", "1", 0), capacity=3)
    await install(pool, ("a", [clinic("a", "1", "P-1", "X")], [first, second]))
    for _ in range(3):
        page = await Federation(pool).search_slots(WINDOW)
        assert [(s.record.local_id, s.record.capacity) for s in page.slots] == [("s1", 5)]


async def test_the_memo_goes_with_the_answer(pool: Pool) -> None:
    (a,) = await install(pool, ("a", [clinic("a", "1", "P-1", "X")], [slot("a", "s1", "1", 0)]))
    await Federation(pool).search_slots(WINDOW)
    answer = a.answer
    assert answer is not None
    assert results_module._FOUND[id(answer)][0]() is answer
    gone = weakref.ref(answer)
    a.answer = None
    del answer
    await Federation(pool).search_slots(WINDOW)  # a new answer (the last one let go)
    gc.collect()
    assert gone() is None
    # No entry outlives its answer.
    assert all(ref() is not None for ref, _ in results_module._FOUND.values())
    await pool.aclose()
