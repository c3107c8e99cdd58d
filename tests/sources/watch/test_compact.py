"""Held slots packed (``sources.watch.compact``): exact, and a group compares with them
exactly as it did with ``SlotIdentity`` objects (the old ``compare`` kept here as the
reference, run side by side on random reads)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sources.records import AppointmentType, SlotRecord
from sources.search import FoundSlot, MergedClinic, SlotIdentity
from sources.timeutil import MONTREAL
from sources.watch import compact
from sources.watch.changes import GoneSlot
from sources.watch.compact import pack, start_of, unpack
from sources.watch.held import Watched, compare, decode_held, encode_held
from sources.watch.scope import Coverage, Scope
from tests.sources.watch.fakes import LIMOILOU, NOW, PLATEAU, clinic

TYPES = list(AppointmentType)


def identity(rng: random.Random) -> SlotIdentity:
    start = NOW + timedelta(minutes=15 * rng.randrange(-40, 400))
    if rng.random() < 0.1:
        start += timedelta(microseconds=rng.randrange(1, 10**6))
    length = timedelta(minutes=rng.choice((15, 30, 0, -15)))
    if rng.random() < 0.05:
        length = timedelta(days=rng.choice((26, 400, -30)))  # does not fit: kept as is
    return SlotIdentity(
        f"clinic-{rng.randrange(6)}",
        None if rng.random() < 0.3 else f"md-{rng.randrange(5)}",
        start.astimezone(UTC),
        (start + length).astimezone(UTC),
        rng.choice(TYPES),
    )


def test_a_packed_identity_unpacks_to_itself_and_only_equal_ones_pack_alike() -> None:
    rng = random.Random(7)
    extremes = [
        SlotIdentity("k", None, datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
                     AppointmentType.WALK_IN),
        SlotIdentity("k", "p", datetime(1960, 5, 1, 0, 0, 0, 1, tzinfo=UTC),
                     datetime(1960, 5, 1, tzinfo=UTC), AppointmentType.NEW_PATIENT),
        SlotIdentity("é", "", datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
                     datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), TYPES[1]),
    ]  # fmt: skip
    identities = extremes + [identity(rng) for _ in range(3000)]
    packed: dict[object, SlotIdentity] = {}
    for one in identities:
        key = pack(one)
        assert unpack(key) == one
        assert unpack(key).encode() == one.encode()  # the same id as before
        assert start_of(key) == one.start
        assert packed.setdefault(key, one) == one  # no two identities share a key
    assert len(packed) == len(set(identities))
    assert any(isinstance(k, int) for k in packed)
    assert any(isinstance(k, SlotIdentity) for k in packed)  # 26 days and more


def test_keys_past_the_tables_limit_stay_identities(monkeypatch: pytest.MonkeyPatch) -> None:
    names = compact._Names(2)  # three names at most
    monkeypatch.setattr(compact, "_clinics", names)
    start = NOW.astimezone(UTC)
    kept = [SlotIdentity(f"c{n}", None, start, start, AppointmentType.ROUTINE) for n in range(5)]
    keys = [pack(one) for one in kept]
    assert [isinstance(k, int) for k in keys] == [True, True, True, False, False]
    assert [unpack(k) for k in keys] == kept
    assert pack(kept[1]) == keys[1]


# -- the old compare, with SlotIdentity keys: the reference -----------------------------


def old_compare(
    watched: Any,  # a Watched with SlotIdentity keys, as it was
    others: list[dict[SlotIdentity, MergedClinic]],
    found: dict[SlotIdentity, FoundSlot],
    coverage: Coverage,
    now: datetime,
    scope: Scope | None = None,
) -> tuple[list[FoundSlot], list[GoneSlot]]:
    before, covered = watched.held, watched.coverage
    if scope is None or before is None:
        held, by_clinic, compared = {}, {}, before
    else:
        held, by_clinic, compared = before, watched.by_clinic, {}
        starts = scope.starts
        for local_id in scope.clinics:
            listed = by_clinic.pop(local_id, ())
            if starts is not None:
                if stay := [i for i in listed if i.start not in starts]:
                    by_clinic[local_id] = stay
                listed = [i for i in listed if i.start in starts]
            for one in listed:
                merged = held.pop(one, None)
                if merged is not None:
                    compared[one] = merged
    for one, slot in found.items():
        held[one] = slot.clinic
        by_clinic.setdefault(slot.record.clinic_local_id, []).append(one)
    watched.held, watched.by_clinic, watched.coverage = held, by_clinic, coverage
    if compared is None or covered is None:
        return [], []
    opened = [
        slot
        for one, slot in found.items()
        if one not in compared
        and covered.covers(one.start, slot.clinic.location)
        and not any(one in h for h in others)
    ]
    gone = [
        GoneSlot(one.encode(), one.start, merged.location)
        for one, merged in compared.items()
        if one not in found
        and one.start > now
        and coverage.covers(one.start, merged.location)
        and not any(one in h for h in others)
    ]
    return opened, gone


def found_slot(one: SlotIdentity, source_id: str) -> FoundSlot:
    number = int(one.clinic_key.split("-")[1])
    at = PLATEAU if number % 3 else LIMOILOU  # some clinics outside every coverage
    local_id = f"{source_id}{number}"
    merged = MergedClinic(one.clinic_key, (clinic(source_id, local_id, at),))
    record = SlotRecord(source_id, one.encode(), one.start, one.end, one.appointment_type, local_id)
    return FoundSlot(one, record, merged, None, 1.0)


def unpacked(watched: Watched) -> tuple[object, ...]:
    held = None if watched.held is None else {unpack(k): v for k, v in watched.held.items()}
    by_clinic = {c: [unpack(k) for k in ks] for c, ks in watched.by_clinic.items()}
    return held, by_clinic, watched.coverage


@pytest.mark.parametrize("seed", range(12))
def test_compare_tells_what_the_old_compare_told_on_random_reads(seed: int) -> None:
    rng = random.Random(seed)
    universe = list({identity(rng) for _ in range(400)})
    old, new = Watched(), Watched()
    old_other: dict[SlotIdentity, MergedClinic] = {}
    new_other: dict[object, MergedClinic] = {}
    told = 0
    for read in range(25):
        now = NOW + timedelta(hours=rng.randrange(0, 48))
        lower = now + timedelta(hours=rng.choice((0, 0, 5)))
        coverage = Coverage(
            lower, lower + timedelta(days=rng.choice((2, 3, 7))), PLATEAU, rng.choice((5.0, 50.0))
        )
        found = {one: found_slot(one, "a") for one in rng.sample(universe, rng.randrange(150))}
        scope = None
        if read and rng.random() < 0.6:
            clinics = frozenset(f"a{n}" for n in rng.sample(range(6), rng.randrange(1, 4)))
            starts = None
            if rng.random() < 0.5:
                picked = rng.sample(universe, 30)
                starts = frozenset(i.start.astimezone(MONTREAL) for i in picked)  # any offset
            scope = Scope(clinics, starts)
            found = {
                i: s
                for i, s in found.items()
                if s.record.clinic_local_id in clinics and (starts is None or i.start in starts)
            }
        if rng.random() < 0.5:
            other = rng.sample(universe, 60)
            old_other = {i: found_slot(i, "b").clinic for i in other}
            new_other = {pack(i): c for i, c in old_other.items()}
        expected = old_compare(old, [old_other], found, coverage, now, scope)
        got = compare(new, [new_other], found, coverage, now, scope)  # type: ignore[list-item]
        assert got == expected
        assert unpacked(new) == unpacked(old)
        told += len(expected[0]) + len(expected[1])
    assert told  # the reads did open and close slots


def test_the_state_in_redis_is_what_it_was_and_comes_back_packed() -> None:
    rng = random.Random(3)
    watched = Watched()
    found = {one: found_slot(one, "a") for one in {identity(rng) for _ in range(200)}}
    coverage = Coverage(NOW, NOW + timedelta(days=3), PLATEAU, 10.0)
    compare(watched, [], found, coverage, NOW)
    data = encode_held(watched)
    reference = Watched()
    old_compare(reference, [], found, coverage, NOW)
    assert data == encode_held_old(reference)  # the same bytes as before packing
    back = decode_held(data)
    assert unpacked(back) == unpacked(watched)
    assert all(isinstance(k, int | SlotIdentity) for k in back.held or ())
    assert back.held is not None and any(isinstance(k, int) for k in back.held)


def encode_held_old(watched: Any) -> bytes:
    """``encode_held`` before packing: slots as ``SlotIdentity`` keys."""
    from sources.watch.held import _ENCODER, _Held

    clinics: dict[int, int] = {}
    listed: list[MergedClinic] = []
    slots: list[Any] = []
    index: dict[SlotIdentity, int] = {}
    for one, merged in (watched.held or {}).items():
        at = clinics.get(id(merged))
        if at is None:
            at = clinics[id(merged)] = len(listed)
            listed.append(merged)
        index[one] = len(slots)
        slots.append((one, at))
    by_clinic = {c: [index[i] for i in ids if i in index] for c, ids in watched.by_clinic.items()}
    held = _Held(listed, slots, by_clinic, watched.coverage, watched.failing, watched.capped)
    return _ENCODER.encode(held)


def test_a_packed_slot_is_far_smaller_than_an_identity() -> None:
    import sys

    start = NOW.astimezone(UTC)
    one = SlotIdentity("i:urn:x|1", "i:urn:md|2", start, start + timedelta(minutes=15), TYPES[3])
    key = pack(one)
    assert isinstance(key, int)
    whole = sys.getsizeof(one) + sys.getsizeof(one.start) + sys.getsizeof(one.end)
    assert sys.getsizeof(key) <= 52 < whole
