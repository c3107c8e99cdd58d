"""SlotIndex against a brute-force reference on random small sources (fixed seeds)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from sources.geo import distance_km, normalize_postal_code
from sources.names import normalize_name
from sources.records import (
    Address,
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    Identifier,
    PhysicianQuery,
    PhysicianRecord,
    Region,
    SlotQuery,
    SlotRecord,
    SlotResult,
)
from sources.slot_index.index import SlotChange, SlotIndex, SlotIndexBuilder, slot_local_id

SOURCE = "smart-test"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
SMALL_T0 = 99_000 - 900 * 40  # slots end on both sides of 100,000 s
TYPES = list(AppointmentType)
LANGUAGES = ["fr", "en", "es"]
REGIONS = [Region.MONTREAL, Region.LAVAL, Region.ESTRIE]
# Ids that sort awkwardly once joined with "|": prefixes, separators, escapes, accents.
ID_PARTS = ["a", "b", "|", "%", "{", "~", "é", "7C", ""]
SYSTEM = "urn:test:ids"


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def random_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        local_id = "".join(rng.choice(ID_PARTS) for _ in range(rng.randint(1, 3)))
        if local_id and local_id not in taken:
            taken.add(local_id)
            return local_id


@dataclass
class World:
    """A random source and the reference list of its slots."""

    clinics: dict[str, ClinicRecord]
    physicians: dict[str, PhysicianRecord]
    slots: dict[tuple[str, str | None, int, int, AppointmentType], SlotChange]
    index: SlotIndex
    dropped: int
    base: int
    # How many slots each identity serves as one, where more than one.
    folds: dict[tuple[str, str | None, int, int, AppointmentType], int]

    @property
    def folded(self) -> int:
        return sum(self.folds.values()) - len(self.folds)

    def change(self, added: list[SlotChange], removed: list[SlotChange]) -> None:
        """What ``with_slot_changes`` must do: take ``removed`` out, then put ``added``
        in, those sharing an identity served as one, each identity replacing its slot."""
        for change in removed:
            self.slots.pop(identity(change), None)
            self.folds.pop(identity(change), None)
        batch: dict[tuple[str, str | None, int, int, AppointmentType], list[SlotChange]] = {}
        for change in added:
            if change.clinic_local_id in self.clinics:
                normalized = replace(change, physician_local_id=change.physician_local_id or None)
                batch.setdefault(identity(normalized), []).append(normalized)
        for key, group in batch.items():
            self.slots[key] = served_as_one(group)
            self.folds.pop(key, None)
            if len(group) > 1:
                self.folds[key] = len(group)


def random_world(
    seed: int,
    *,
    n_clinics: int = 6,
    n_slots: int = 150,
    n_physicians: int = 8,
    uniform: bool = False,
) -> World:
    """A random source; odd seeds use small epochs, so ends differ in digit count.

    ``uniform``: booking details follow the partition (URL by physician, phone
    by clinic, capacity by type), as many feeds give them.
    """
    rng = random.Random(seed)
    base = T0 if seed % 2 == 0 else SMALL_T0
    taken: set[str] = set()
    clinics: dict[str, ClinicRecord] = {}
    for _ in range(n_clinics):
        local_id = random_id(rng, taken)
        location = None
        if rng.random() < 0.8:
            location = GeoPoint(45.5 + rng.uniform(-0.3, 0.3), -73.6 + rng.uniform(-0.3, 0.3))
        clinics[local_id] = ClinicRecord(
            source_id=SOURCE,
            local_id=local_id,
            name=rng.choice(["Clinique St-Éloi", "CLINIQUE du Parc", "Groupe médical Nord"]),
            address=Address(
                city="Montréal",
                region=rng.choice(REGIONS),
                postal_code=rng.choice([None, "h2x 1y4", "H3A 2B2", "bad"]),
            ),
            location=location,
            languages=tuple(rng.sample(LANGUAGES, rng.randint(0, 2))),
            identifiers=tuple(
                Identifier(SYSTEM, f"c{rng.randint(0, 4)}") for _ in range(rng.randint(0, 2))
            ),
        )
    clinic_ids = list(clinics)
    taken = set()
    physician_ids = [random_id(rng, taken) for _ in range(n_physicians)]
    physicians: dict[str, PhysicianRecord] = {}
    for local_id in physician_ids[:-2]:  # the last two are unknown to the source
        physicians[local_id] = PhysicianRecord(
            source_id=SOURCE,
            local_id=local_id,
            display_name=f"Dr {local_id}",
            languages=tuple(rng.sample(LANGUAGES, rng.randint(0, 2))),
            identifiers=tuple(
                Identifier(SYSTEM, f"p{rng.randint(0, 4)}") for _ in range(rng.randint(0, 2))
            ),
            clinic_local_ids=tuple(rng.sample(clinic_ids, rng.randint(0, min(2, len(clinic_ids))))),
        )
    builder = SlotIndexBuilder(SOURCE)
    for clinic in clinics.values():
        builder.add_clinic(replace(clinic, name="an older name"))  # replaced just below
        builder.add_clinic(clinic)
    for physician in physicians.values():
        builder.add_physician(physician)
    slots: dict[tuple[str, str | None, int, int, AppointmentType], SlotChange] = {}
    folds: dict[tuple[str, str | None, int, int, AppointmentType], int] = {}
    dropped = 0
    starts = [base + 900 * rng.randint(0, 40) for _ in range(12)]  # few distinct: many ties
    for _ in range(n_slots):
        start = rng.choice(starts) + rng.choice([0, 0, 0, 1])
        change = SlotChange(
            clinic_local_id=rng.choice([*clinic_ids, "unknown-clinic"])
            if rng.random() < 0.1
            else rng.choice(clinic_ids),
            physician_local_id=rng.choice([None, *physician_ids]),
            start=start,
            end=start + rng.choice([600, 900, 900, 1800]),
            appointment_type=rng.choice(TYPES[:4]),
            booking_url=rng.choice([None, "https://book.example/a", "https://book.example/b"]),
            booking_phone=rng.choice([None, "514-555-0100"]),
            capacity=rng.choice([1, 1, 1, 3]),
        )
        if uniform:
            change = uniform_details(change)
        builder.add_slot(
            change.clinic_local_id,
            change.physician_local_id,
            change.start,
            change.end,
            change.appointment_type,
            change.booking_url,
            change.booking_phone,
            change.capacity,
        )
        if change.clinic_local_id in clinics:
            # Identical slots are served as one: the first, with the seats of all.
            key = identity(change)
            first = slots.get(key)
            slots[key] = change if first is None else served_as_one([first, change])
            if first is not None:
                folds[key] = folds.get(key, 1) + 1
        else:
            dropped += 1
    return World(clinics, physicians, slots, builder.build(), dropped, base, folds)


def served_as_one(group: list[SlotChange]) -> SlotChange:
    return replace(group[0], capacity=sum(c.capacity for c in group))


def uniform_details(change: SlotChange) -> SlotChange:
    return replace(
        change,
        booking_url=f"https://book.example/{change.physician_local_id}",
        booking_phone=f"514-555-{len(change.clinic_local_id):04d}",
        capacity=3 if change.appointment_type is AppointmentType.WALK_IN else 1,
    )


def identity(change: SlotChange) -> tuple[str, str | None, int, int, AppointmentType]:
    return (
        change.clinic_local_id,
        change.physician_local_id,
        change.start,
        change.end,
        change.appointment_type,
    )


def record_of(change: SlotChange) -> SlotRecord:
    return SlotRecord(
        source_id=SOURCE,
        local_id=slot_local_id(
            change.clinic_local_id,
            change.physician_local_id,
            change.start,
            change.end,
            change.appointment_type,
        ),
        start=at(change.start),
        end=at(change.end),
        appointment_type=change.appointment_type,
        clinic_local_id=change.clinic_local_id,
        physician_local_id=change.physician_local_id,
        booking_url=change.booking_url,
        booking_phone=change.booking_phone,
        capacity=change.capacity if change.capacity != 1 else None,
    )


def reference_slots(world: World, query: SlotQuery) -> SlotResult:
    """What search_slots must answer, by checking every slot (as the federation does)."""
    matches = []
    for change in world.slots.values():
        clinic = world.clinics[change.clinic_local_id]
        physician = world.physicians.get(change.physician_local_id or "")
        start = at(change.start)
        if not query.starts_after <= start < query.starts_before:
            continue
        if query.near is not None:
            if clinic.location is None:
                continue
            if query.radius_km is not None:
                if not distance_km(query.near, clinic.location) <= query.radius_km:
                    continue
        if query.region is not None and clinic.address.region != query.region:
            continue
        if query.appointment_types and change.appointment_type not in query.appointment_types:
            continue
        if query.languages:
            spoken = physician.languages if physician is not None else clinic.languages
            if query.languages.isdisjoint(spoken):
                continue
        if query.clinic_local_ids is not None:
            if change.clinic_local_id not in query.clinic_local_ids:
                continue
        if query.physician_local_ids is not None:
            if change.physician_local_id not in query.physician_local_ids:
                continue
        matches.append(record_of(change))
    near = query.near
    if near is not None:
        # Nearest first within a start; no tie group to complete.
        def distance(r: SlotRecord) -> float:
            location = world.clinics[r.clinic_local_id].location
            assert location is not None
            return distance_km(near, location)

        matches.sort(key=lambda r: (r.start, distance(r), r.local_id))
        page = matches[: max(query.limit, 0)]
        # A truncated answer carries the whole group of its last (start, distance).
        while (
            page
            and len(page) < len(matches)
            and (matches[len(page)].start, distance(matches[len(page)]))
            == (page[-1].start, distance(page[-1]))
        ):
            page.append(matches[len(page)])
        ties = True
    else:
        ties = True
        matches.sort(key=lambda r: (r.start, r.local_id))
        page = matches[: max(query.limit, 0)]
        # A truncated answer carries the whole tie group of its last start.
        while page and len(page) < len(matches) and matches[len(page)].start == page[-1].start:
            page.append(matches[len(page)])
    return SlotResult(
        tuple(page),
        complete=len(page) == len(matches),
        total=len(matches),
        ties_complete=ties,
        ordered_by_distance=near is not None,
        total_exact=True,  # the index counts every match itself
        clinics={r.clinic_local_id: world.clinics[r.clinic_local_id] for r in page},
        physicians={
            p: world.physicians[p]
            for r in page
            if (p := r.physician_local_id) is not None and p in world.physicians
        },
    )


def random_query(rng: random.Random, world: World) -> SlotQuery:
    clinic_ids = list(world.clinics)
    physician_ids = [*world.physicians, "unknown-physician"]
    lo = world.base + 900 * rng.randint(-2, 42) + rng.choice([0, 0, 1, -1])
    hi = lo + 900 * rng.randint(0, 30) + rng.choice([0, 1])
    microseconds = rng.choice([0, 0, 0, 250_000])
    query = SlotQuery(
        starts_after=at(lo) + timedelta(microseconds=microseconds),
        starts_before=at(hi),
        limit=rng.choice([0, 1, 3, 10, 1000]),
    )
    if rng.random() < 0.4:
        near = GeoPoint(45.5 + rng.uniform(-0.2, 0.2), -73.6 + rng.uniform(-0.2, 0.2))
        query = replace(query, near=near, radius_km=rng.choice([None, 0.0, 5.0, 15.0, 40.0]))
    if rng.random() < 0.3:
        query = replace(query, region=rng.choice(REGIONS))
    if rng.random() < 0.4:
        query = replace(query, appointment_types=frozenset(rng.sample(TYPES, rng.randint(0, 3))))
    if rng.random() < 0.4:
        query = replace(
            query, languages=frozenset(rng.sample([*LANGUAGES, "de"], rng.randint(0, 2)))
        )
    if rng.random() < 0.3:
        query = replace(
            query,
            clinic_local_ids=(
                *rng.sample(clinic_ids, rng.randint(0, min(3, len(clinic_ids)))),
                "zz",
            ),
        )
    if rng.random() < 0.05:
        query = replace(query, clinic_local_ids=())
    if rng.random() < 0.3:
        query = replace(
            query, physician_local_ids=tuple(rng.sample(physician_ids, rng.randint(0, 3)))
        )
    return query


def assert_same(index: SlotIndex, world: World, query: SlotQuery) -> None:
    assert index.search_slots(query) == reference_slots(world, query), query


@pytest.mark.parametrize("seed", range(40))
def test_random_queries_match_the_brute_force_reference(seed: int) -> None:
    world = random_world(seed)
    assert world.index.folded_slots == world.folded
    rng = random.Random(1000 + seed)
    for _ in range(60):
        assert_same(world.index, world, random_query(rng, world))


@pytest.mark.parametrize("seed", range(10))
def test_paging_by_moving_starts_after_visits_every_slot_once(seed: int) -> None:
    world = random_world(seed, n_slots=300)
    t0 = world.base
    query = SlotQuery(starts_after=at(t0 - 1), starts_before=at(t0 + 86_400), limit=7)
    seen: list[SlotRecord] = []
    while True:
        result = world.index.search_slots(query)
        assert result == reference_slots(world, query)
        fresh = [s for s in result.slots if s not in seen]
        seen += fresh
        if result.complete:
            break
        # The gateway's way: start again at the last start, skip what it has, and
        # widen the page when more slots share one start than a page holds.
        limit = query.limit if fresh else query.limit * 4
        query = replace(query, starts_after=result.slots[-1].start, limit=limit)
    expected = reference_slots(world, replace(query, starts_after=at(t0 - 1), limit=10_000))
    assert seen == list(expected.slots)


@pytest.mark.parametrize("t0", [T0, 99_000])
def test_ties_at_one_start_follow_local_id_order(t0: int) -> None:
    # At 99,000 s the ends 99,099 / 99,900 / 100,000 sort differently as strings.
    builder = SlotIndexBuilder(SOURCE)
    ids = ["a", "a|b", "a{", "a~", "é", "%7C", "b"]
    for clinic_id in ids:
        builder.add_clinic(clinic(clinic_id))
    for clinic_id in reversed(ids):
        for physician in ["x", "x|", None, "x%"]:
            for kind in [AppointmentType.URGENT, AppointmentType.ROUTINE]:
                for end in [t0 + 900, t0 + 99, t0 + 1000]:
                    builder.add_slot(clinic_id, physician, t0, end, kind)
    index = builder.build()
    result = index.search_slots(window(limit=1000, t0=t0))
    local_ids = [s.local_id for s in result.slots]
    assert local_ids == sorted(local_ids)
    assert len(set(local_ids)) == len(local_ids) == result.total == 7 * 4 * 2 * 3
    # Every slot shares one start: a truncated answer still carries the whole group.
    assert index.search_slots(window(limit=5, t0=t0)).slots == result.slots
    # Spliced in one by one, the same slots sort the same way.
    empty = SlotIndexBuilder(SOURCE)
    for clinic_id in ids:
        empty.add_clinic(clinic(clinic_id))
    spliced = empty.build()
    for slot in reversed(result.slots):
        spliced = spliced.with_slot_changes(added=[change_of(slot)], removed=[])
    assert spliced.search_slots(window(limit=1000, t0=t0)) == result


def test_window_bounds_include_start_and_exclude_end() -> None:
    builder = SlotIndexBuilder(SOURCE)
    builder.add_clinic(clinic("c"))
    for start in (T0 - 1, T0, T0 + 1, T0 + 60, T0 + 61):
        builder.add_slot("c", None, start, start + 300, AppointmentType.ROUTINE)
    index = builder.build()

    def starts(lo: datetime, hi: datetime) -> list[int]:
        result = index.search_slots(SlotQuery(starts_after=lo, starts_before=hi, limit=10))
        assert result.total == len(result.slots)
        return [int(s.start.timestamp()) for s in result.slots]

    assert starts(at(T0), at(T0 + 60)) == [T0, T0 + 1]
    assert starts(at(T0 + 0.5), at(T0 + 60.5)) == [T0 + 1, T0 + 60]
    assert starts(at(T0), at(T0)) == []
    assert starts(at(T0 + 61), at(T0)) == []


def test_limit_complete_and_total() -> None:
    world = random_world(7, n_slots=200)
    t0 = world.base
    everything = SlotQuery(starts_after=at(t0 - 10), starts_before=at(t0 + 99_999), limit=0)
    result = world.index.search_slots(everything)
    assert result.slots == () and result.total == len(world.slots) > 0
    assert not result.complete
    full = world.index.search_slots(replace(everything, limit=len(world.slots)))
    assert full.complete and len(full.slots) == full.total
    short = world.index.search_slots(replace(everything, limit=len(world.slots) - 1))
    last_start = full.slots[-2].start
    whole_ties = [s for s in full.slots[:-1]] + [
        s for s in full.slots[-1:] if s.start == last_start
    ]
    assert short.slots == tuple(whole_ties)
    assert short.complete == (len(whole_ties) == len(full.slots))
    negative = world.index.search_slots(replace(everything, limit=-3))
    assert negative.slots == () and negative.total == full.total


def test_empty_index_answers_nothing() -> None:
    index = SlotIndex.empty(SOURCE)
    assert (index.clinic_count, index.physician_count, index.slot_count) == (0, 0, 0)
    assert index.search_slots(window(near=GeoPoint(45.5, -73.6), radius_km=5)) == SlotResult(
        (), complete=True, total=0, ties_complete=True, ordered_by_distance=True, total_exact=True
    )
    assert index.search_clinics(ClinicQuery()) == []
    assert index.get_physicians(PhysicianQuery(local_ids=("x",))) == []
    assert SlotIndexBuilder(SOURCE).build().search_slots(window()).total == 0


def test_slots_of_unknown_clinics_are_dropped_and_counted() -> None:
    world = random_world(3)
    assert world.dropped > 0
    assert world.index.dropped_slots == world.dropped
    assert world.index.slot_count == len(world.slots)
    assert world.index.clinic_count == len(world.clinics)
    assert world.index.physician_count == len(world.physicians)


def test_invalid_slots_are_counted_not_indexed() -> None:
    builder = SlotIndexBuilder(SOURCE)
    builder.add_clinic(clinic("c"))
    builder.add_slot("c", None, T0, T0, AppointmentType.ROUTINE)
    builder.add_slot("c", None, T0, T0 - 5, AppointmentType.ROUTINE)
    builder.add_slot("c", None, T0, T0 + 5, AppointmentType.ROUTINE, capacity=0)
    builder.add_slot("c", "", T0, T0 + 5, AppointmentType.ROUTINE, capacity=2)
    index = builder.build()
    assert (index.slot_count, index.invalid_slots, index.dropped_slots) == (1, 3, 0)
    (slot,) = index.search_slots(window()).slots
    assert slot.physician_local_id is None and slot.capacity == 2


def test_slots_sharing_an_identity_are_served_as_one_with_their_seats_added() -> None:
    # Two Schedules of one place (a doctor each, without a role; or one per service):
    # their slots at one time are one slot to the API, with every seat of both.
    builder = SlotIndexBuilder(SOURCE)
    builder.add_clinic(clinic("c"))
    kind = AppointmentType.ROUTINE
    builder.add_slot("c", None, T0, T0 + 900, kind, "https://book.example/a", "514-555-0100")
    builder.add_slot("c", None, T0, T0 + 900, kind, "https://book.example/b", None)
    builder.add_slot("c", "dr-1", T0, T0 + 900, kind, capacity=3)
    builder.add_slot("c", "dr-1", T0, T0 + 900, kind, capacity=2)
    builder.add_slot("c", "dr-1", T0, T0 + 600, kind)  # ends sooner: another slot
    builder.add_slot("c", "dr-1", T0, T0 + 900, AppointmentType.URGENT)  # another type
    index = builder.build()

    assert (index.slot_count, index.folded_slots, index.invalid_slots) == (4, 2, 0)
    found = {
        (s.physician_local_id, s.end, s.appointment_type): s
        for s in index.search_slots(window()).slots
    }
    walk_in = found[(None, at(T0 + 900), kind)]
    assert walk_in.capacity == 2
    assert (walk_in.booking_url, walk_in.booking_phone) == (
        "https://book.example/a",
        "514-555-0100",
    )
    assert found[("dr-1", at(T0 + 900), kind)].capacity == 5
    assert found[("dr-1", at(T0 + 600), kind)].capacity is None
    assert found[("dr-1", at(T0 + 900), AppointmentType.URGENT)].capacity is None
    assert sorted((r.physician_local_id or "", n) for r, n in index.folds(10)) == [
        ("", 2),
        ("dr-1", 2),
    ]
    assert len(index.folds(1)) == 1


def test_changes_to_one_of_slots_served_as_one_keep_the_others_seats() -> None:
    builder = SlotIndexBuilder(SOURCE)
    builder.add_clinic(clinic("c"))
    builder.add_clinic(clinic("empty"))
    kind = AppointmentType.ROUTINE
    first = SlotChange("c", None, T0, T0 + 900, kind, "https://book.example/a", capacity=3)
    second = SlotChange("c", None, T0, T0 + 900, kind, "https://book.example/b", capacity=2)
    other = SlotChange("c", None, T0 + 900, T0 + 1800, kind)
    for change in (first, second, other):
        add(builder, change)
    index = builder.build()
    assert index.folded_slots == 1

    # The first is booked: the other is served alone, with its own seats and link.
    left = index.with_slot_changes(added=[second], removed=[first])
    (slot, _) = left.search_slots(window()).slots
    assert (slot.capacity, slot.booking_url, left.folded_slots) == (2, "https://book.example/b", 0)
    # Both again, in one change: one slot, seats added.
    both = left.with_slot_changes(added=[first, second], removed=[second])
    (slot, _) = both.search_slots(window()).slots
    assert (slot.capacity, slot.booking_url, both.folded_slots) == (5, "https://book.example/a", 1)
    # A clinic without slots so far gets two at once.
    moved = [replace(first, clinic_local_id="empty"), replace(second, clinic_local_id="empty")]
    there = both.with_slot_changes(added=moved, removed=[])
    assert there.folded_slots == 2 and there.slot_count == 3
    (slot,) = there.search_slots(window(clinic_local_ids=("empty",))).slots
    assert slot.capacity == 5
    # Removing the identity removes every seat of it.
    assert there.with_slot_changes(added=[], removed=[first]).folded_slots == 1


def add(builder: SlotIndexBuilder, change: SlotChange) -> None:
    builder.add_slot(
        change.clinic_local_id,
        change.physician_local_id,
        change.start,
        change.end,
        change.appointment_type,
        change.booking_url,
        change.booking_phone,
        change.capacity,
    )


def test_builder_builds_once() -> None:
    builder = SlotIndexBuilder(SOURCE)
    builder.build()
    with pytest.raises(RuntimeError):
        builder.add_slot("c", None, T0, T0 + 5, AppointmentType.ROUTINE)


@pytest.mark.parametrize("seed", range(12))
def test_slot_changes_match_a_rebuilt_reference_and_leave_the_old_index(seed: int) -> None:
    world = random_world(seed, n_slots=120)
    rng = random.Random(seed)
    before = [world.index.search_slots(random_query(rng, world)) for _ in range(5)]
    queries = [random_query(random.Random(seed), world) for _ in range(5)]
    old_index, old_count = world.index, world.index.slot_count
    existing = list(world.slots.values())
    removed = rng.sample(existing, min(len(existing), 15))
    removed.append(replace(existing[0], end=existing[0].end + 1))  # not a slot: ignored
    clinic_ids = list(world.clinics)
    added = [
        SlotChange(
            rng.choice(clinic_ids),
            rng.choice([None, *world.physicians, "new-physician"]),
            start := world.base + 900 * rng.randint(0, 40),
            start + 900,
            rng.choice(TYPES),
            booking_url=rng.choice([None, "https://book.example/new"]),
            capacity=rng.choice([1, 2]),
        )
        for _ in range(15)
    ]
    added += [replace(c, booking_url="https://book.example/updated") for c in existing[:3]]
    added.append(replace(added[0]))  # the same slot twice: one slot, seats added
    added.append(replace(added[0], clinic_local_id="unknown-clinic"))  # dropped, counted
    new_index = old_index.with_slot_changes(added=added, removed=removed)

    world.change(added, removed)
    world.index = new_index
    assert new_index.slot_count == len(world.slots)
    assert new_index.dropped_slots == old_index.dropped_slots + 1
    assert new_index.folded_slots == world.folded >= 1
    for _ in range(60):
        assert_same(new_index, world, random_query(rng, world))
    # The physician filter finds slots of a physician only the changes brought.
    assert_same(new_index, world, window(physician_local_ids=("new-physician",)))
    # The old index answers exactly as before.
    assert old_index.slot_count == old_count
    rng = random.Random(seed)
    assert [old_index.search_slots(random_query(rng, world)) for _ in range(5)] == before
    assert queries  # the reference world moved on; the old index did not


@pytest.mark.parametrize("uniform", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_successive_slot_changes_keep_matching_the_reference(seed: int, uniform: bool) -> None:
    world = random_world(seed, n_clinics=4, n_slots=80, uniform=uniform)
    rng = random.Random(seed)
    clinic_ids = list(world.clinics)
    for round_ in range(8):
        existing = list(world.slots.values())
        if round_ == 3 and existing:  # empty one clinic entirely
            removed = [c for c in existing if c.clinic_local_id == existing[0].clinic_local_id]
        else:
            removed = rng.sample(existing, min(len(existing), rng.randint(0, 12)))
        added = []
        for _ in range(rng.randint(0, 12)):
            start = world.base + 900 * rng.randint(0, 40) + rng.choice([0, 1])
            added.append(
                SlotChange(
                    rng.choice(clinic_ids),
                    rng.choice([None, "", *list(world.physicians)[:2], f"new-{round_}"]),
                    start,
                    start + rng.choice([99, 600, 900, 100_000]),
                    rng.choice(TYPES),
                    booking_url=rng.choice([None, f"https://book.example/{round_}"]),
                    booking_phone=rng.choice([None, "514-555-0199"]),
                    capacity=rng.choice([1, 1, 4]),
                )
            )
            if uniform and rng.random() < 0.8:
                added[-1] = uniform_details(added[-1])
        # Re-added slots: some removed in the same batch, some only updated.
        added += [replace(c, capacity=2) for c in rng.sample(existing, min(len(existing), 3))]
        added += removed[:2]
        world.index = world.index.with_slot_changes(added=added, removed=removed)
        world.change(added, removed)
        assert world.index.slot_count == len(world.slots)
        assert world.index.folded_slots == world.folded
        for _ in range(25):
            assert_same(world.index, world, random_query(rng, world))
        assert_same(world.index, world, window(limit=10_000, t0=world.base))


def test_a_clinic_with_more_than_256_partitions() -> None:
    world = random_world(2, n_clinics=1, n_slots=1500, n_physicians=120)
    (clinic_slots,) = world.index._slots
    assert clinic_slots is not None and clinic_slots.partition_count > 256
    rng = random.Random(2)
    for _ in range(100):
        assert_same(world.index, world, random_query(rng, world))


def test_partitions_outgrowing_one_byte_through_changes() -> None:
    builder = SlotIndexBuilder(SOURCE)
    builder.add_clinic(clinic("c"))
    for n in range(250):
        builder.add_slot("c", f"dr-{n:03d}", T0 + n, T0 + n + 900, AppointmentType.ROUTINE)
    index = builder.build()
    added = [
        SlotChange("c", f"dr-{n:03d}", T0 + 2 * n, T0 + 2 * n + 600, AppointmentType.URGENT)
        for n in range(240, 260)
    ]
    index = index.with_slot_changes(added=added, removed=[])
    assert index._slots[0] is not None and index._slots[0].partition_count == 270
    urgent = window(limit=5, appointment_types=frozenset({AppointmentType.URGENT}))
    result = index.search_slots(urgent)
    assert result.total == 20
    assert [s.physician_local_id for s in result.slots] == [f"dr-{n}" for n in range(240, 245)]
    everything = index.search_slots(window(limit=1000))
    assert list(everything.slots) == sorted(everything.slots, key=lambda s: (s.start, s.local_id))
    assert index.search_slots(window(limit=0)).total == 270


def test_slot_changes_are_idempotent_and_share_untouched_clinics() -> None:
    world = random_world(5, n_slots=200)
    change = next(iter(world.slots.values()))
    again = world.index.with_slot_changes(added=[change], removed=[])
    assert again.slot_count == world.index.slot_count
    assert again.search_slots(window(limit=1000)) == world.index.search_slots(window(limit=1000))
    gone = world.index.with_slot_changes(added=[], removed=[change, change])
    assert gone.slot_count == world.index.slot_count - 1
    assert gone.with_slot_changes(added=[], removed=[change]).slot_count == gone.slot_count
    back = gone.with_slot_changes(added=[change], removed=[])
    assert back.search_slots(window(limit=1000)) == world.index.search_slots(window(limit=1000))
    touched = list(world.clinics).index(change.clinic_local_id)
    for number, (old, new) in enumerate(zip(world.index._slots, gone._slots, strict=True)):
        assert (old is new) == (number != touched)
    nothing = world.index.with_slot_changes(added=[], removed=[])
    assert all(a is b for a, b in zip(nothing._slots, world.index._slots, strict=True))


def test_index_cannot_be_changed() -> None:
    world = random_world(1)
    with pytest.raises(AttributeError):
        world.index.slot_count = 0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del world.index.source_id
    with pytest.raises(AttributeError):
        world.index.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        SlotIndex()
    result = world.index.search_slots(window(limit=1000))
    result.clinics.clear()
    result.physicians.clear()
    assert world.index.search_slots(window(limit=1000)) == reference_slots(
        world, window(limit=1000)
    )
    clinics = world.index.search_clinics(ClinicQuery())
    clinics.clear()
    assert len(world.index.search_clinics(ClinicQuery())) == len(world.clinics)


def test_concurrent_readers_see_consistent_answers_during_swaps() -> None:
    world = random_world(11, n_slots=300)
    query = window(limit=1000)
    expected = world.index.search_slots(query)
    current = [world.index]
    errors: list[str] = []

    def read() -> None:
        for _ in range(200):
            result = current[0].search_slots(query)
            if result.total not in (expected.total, expected.total - 1):
                errors.append(f"total {result.total}")

    change = next(iter(world.slots.values()))
    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for _ in range(50):
        current[0] = current[0].with_slot_changes(added=[], removed=[change])
        current[0] = current[0].with_slot_changes(added=[change], removed=[])
    for reader in readers:
        reader.join()
    assert errors == []


# -- clinics and physicians ------------------------------------------------------------


def reference_clinics(world: World, query: ClinicQuery) -> list[ClinicRecord]:
    wanted = (
        normalize_name(query.name_contains or "") if (query.name_contains or "").strip() else ""
    )
    postal = (
        None
        if query.postal_codes is None
        else {normalize_postal_code(p) for p in query.postal_codes} - {None}
    )
    found = []
    for clinic in world.clinics.values():
        if query.near is not None:
            if clinic.location is None:
                continue
            if query.radius_km is not None:
                if not distance_km(query.near, clinic.location) <= query.radius_km:
                    continue
        if query.region is not None and clinic.address.region != query.region:
            continue
        if wanted and wanted not in normalize_name(clinic.name):
            continue
        if query.local_ids is not None and clinic.local_id not in query.local_ids:
            continue
        if query.identifiers is not None and not set(query.identifiers) & set(clinic.identifiers):
            continue
        if postal is not None and normalize_postal_code(clinic.address.postal_code) not in postal:
            continue
        found.append(clinic)
    return found


@pytest.mark.parametrize("seed", range(20))
def test_search_clinics_matches_the_reference(seed: int) -> None:
    world = random_world(seed, n_clinics=25, n_slots=30)
    rng = random.Random(seed)
    for _ in range(40):
        query = ClinicQuery()
        if rng.random() < 0.5:
            near = GeoPoint(45.5 + rng.uniform(-0.3, 0.3), -73.6 + rng.uniform(-0.3, 0.3))
            radius = rng.choice([None, 3.0, 10.0, 30.0])
            located = [c.location for c in world.clinics.values() if c.location is not None]
            if located and rng.random() < 0.3:  # exactly on a clinic: it is within
                radius = distance_km(near, rng.choice(located))
            query = replace(query, near=near, radius_km=radius)
        if rng.random() < 0.3:
            query = replace(query, region=rng.choice(REGIONS))
        if rng.random() < 0.4:
            query = replace(query, name_contains=rng.choice(["st eloi", "ÉLOI", "parc ", " ", "x"]))
        if rng.random() < 0.3:
            ids = rng.sample(list(world.clinics), rng.randint(0, 4))
            query = replace(query, local_ids=(*ids, "zz"))
        if rng.random() < 0.3:
            query = replace(
                query,
                identifiers=tuple(Identifier(SYSTEM, f"c{rng.randint(0, 6)}") for _ in range(2)),
            )
        if rng.random() < 0.3:
            query = replace(query, postal_codes=tuple(rng.sample(["H2X1Y4", "h3a 2b2", "?"], 2)))
        assert world.index.search_clinics(query) == reference_clinics(world, query), query


def test_radius_search_is_exact_at_the_antimeridian_and_near_the_pole() -> None:
    builder = SlotIndexBuilder(SOURCE)
    points = {
        "east": GeoPoint(10.0, 179.95),
        "west": GeoPoint(10.0, -179.95),
        "far": GeoPoint(10.0, 170.0),
        "pole-a": GeoPoint(89.95, 0.0),
        "pole-b": GeoPoint(89.95, 180.0),
    }
    for name, point in points.items():
        builder.add_clinic(replace(clinic(name), location=point))
    index = builder.build()
    for near, radius in [
        (GeoPoint(10.0, 180.0), 20.0),
        (GeoPoint(10.0, -179.99), 12.0),
        (GeoPoint(89.99, 90.0), 15.0),
        (GeoPoint(0.0, 0.0), 25_000.0),
        (GeoPoint(10.0, 179.95), 0.0),
    ]:
        expected = sorted(n for n, p in points.items() if distance_km(near, p) <= radius)
        found = index.search_clinics(ClinicQuery(near=near, radius_km=radius))
        assert sorted(c.local_id for c in found) == expected, (near, radius)


@pytest.mark.parametrize("seed", range(10))
def test_get_physicians_matches_any_criterion(seed: int) -> None:
    world = random_world(seed)
    rng = random.Random(seed)
    for _ in range(30):
        query = PhysicianQuery(
            local_ids=tuple(rng.sample([*world.physicians, "zz"], rng.randint(0, 2))),
            identifiers=tuple(Identifier(SYSTEM, f"p{rng.randint(0, 6)}") for _ in range(2))
            if rng.random() < 0.5
            else (),
            clinic_local_ids=tuple(rng.sample(list(world.clinics), rng.randint(0, 2))),
        )
        expected = [
            p
            for p in world.physicians.values()
            if p.local_id in query.local_ids
            or set(p.identifiers) & set(query.identifiers)
            or set(p.clinic_local_ids) & set(query.clinic_local_ids)
        ]
        assert world.index.get_physicians(query) == expected


# -- helpers -------------------------------------------------------------------------


def clinic(local_id: str) -> ClinicRecord:
    return ClinicRecord(
        source_id=SOURCE,
        local_id=local_id,
        name=f"Clinique {local_id}",
        address=Address(city="Montréal", region=Region.MONTREAL),
        location=GeoPoint(45.5, -73.6),
    )


def window(limit: int = 10, t0: int = T0, **criteria: object) -> SlotQuery:
    return SlotQuery(
        starts_after=at(t0 - 86_400),
        starts_before=at(t0 + 86_400),
        limit=limit,
        **criteria,  # type: ignore[arg-type]
    )


def change_of(slot: SlotRecord) -> SlotChange:
    return SlotChange(
        slot.clinic_local_id,
        slot.physician_local_id,
        int(slot.start.timestamp()),
        int(slot.end.timestamp()),
        slot.appointment_type,
        slot.booking_url,
        slot.booking_phone,
        slot.capacity or 1,
    )


def rebuilt(world: World, clinics: dict[str, ClinicRecord]) -> SlotIndex:
    """The world's slots, with ``clinics``, indexed anew (a full load), in another order."""
    builder = SlotIndexBuilder(SOURCE)
    for clinic in reversed(clinics.values()):
        builder.add_clinic(clinic)
    for physician in world.physicians.values():
        builder.add_physician(physician)
    for change in reversed(world.slots.values()):
        for _ in range(world.folds.get(identity(change), 1)):  # folded ones: each seat
            add(builder, replace(change, capacity=1) if identity(change) in world.folds else change)
    return builder.build()


def clinic_answers(index: SlotIndex, world: World, local_id: str) -> tuple[object, ...]:
    """What searches see of one clinic: its record and its slots, every field."""
    query = window(limit=10_000, t0=world.base, clinic_local_ids=(local_id,))
    query = replace(query, starts_after=at(0), starts_before=at(world.base + 10 * 86_400))
    result = index.search_slots(query)
    return (tuple(index.search_clinics(ClinicQuery(local_ids=(local_id,)))), result.slots)


def differences(old: SlotIndex, new: SlotIndex, world: World) -> dict[str, frozenset[int] | None]:
    """The test's own reading of what changed: each clinic searched in both indexes; the
    starts of the slots found in one and not the other, None when its record changed."""
    found: dict[str, frozenset[int] | None] = {}
    for local_id in world.clinics:
        (was, was_slots), (now, now_slots) = (
            clinic_answers(old, world, local_id),
            clinic_answers(new, world, local_id),
        )
        if was != now:
            found[local_id] = None
        elif set(was_slots) != set(now_slots):  # type: ignore[call-overload]
            changed = set(was_slots) ^ set(now_slots)  # type: ignore[call-overload]
            found[local_id] = frozenset(int(s.start.timestamp()) for s in changed)
    return found


@pytest.mark.parametrize("seed", range(10))
def test_what_changed_between_two_indexes_is_told_clinic_by_clinic_start_by_start(
    seed: int,
) -> None:
    world = random_world(seed, n_clinics=8, n_slots=120)
    rng = random.Random(seed)
    old = world.index
    assert old.changed_since(None) is None
    assert old.changed_since(old) == {}
    # The same feed loaded again: nothing changed.
    again = random_world(seed, n_clinics=8, n_slots=120).index
    assert again is not old and again.changed_since(old) == {}
    # An incremental update: exactly what the searches of both tell apart.
    existing = list(world.slots.values())
    removed = rng.sample(existing, 5)
    clinic_ids = sorted(world.clinics)
    added = [
        SlotChange(
            rng.choice(clinic_ids),
            None,
            start := world.base + 900 * rng.randint(0, 40),
            start + 900,
            rng.choice(TYPES),
        )
        for _ in range(3)
    ]
    new = old.with_slot_changes(added=added, removed=removed)
    expected = differences(old, new, world)
    assert expected and new.changed_since(old) == expected
    # A full load, in another order, with one clinic renamed and those slot changes:
    # the renamed clinic as a whole, the others start by start.
    world.change(added, removed)
    renamed = clinic_ids[0]
    records = dict(world.clinics)
    records[renamed] = replace(records[renamed], name="Clinique renommée")
    full = rebuilt(world, records)
    expected = differences(old, full, world)
    assert expected[renamed] is None
    assert full.changed_since(old) == expected
