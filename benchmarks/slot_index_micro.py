"""Micro-benchmark of ``sources.slot_index.index`` on a synthetic province, in process.

    python benchmarks/slot_index_micro.py              # Quebec scale (about a minute)
    python benchmarks/slot_index_micro.py --scale 0.1  # a tenth (seconds)

The province: 1,300 clinics (35 % within 0.15 degrees of downtown Montreal, the
rest spread over southern Quebec), 10,000 physicians (15 % at two clinics),
14 days of two daily sessions of 15-minute slots, about half of them free,
plus evening walk-in slots without physician at 40 % of clinics: about 1.5
million free slots. Everything is generated first; then the index is built
through ``SlotIndexBuilder.add_slot`` (timed), measured with tracemalloc in a
second build, and queried. Every query's ``total`` is checked against a count
over all slots. Figures go to stdout as one table.

With ``--slot-links`` each physician's slot has a booking link of its own (as the
province feed's), else every slot of a clinic shares one.

The generated province is 1.5 million tuples, which an adapter streaming a
feed never holds at once: it is frozen out of the garbage collector
(``gc.freeze``) so that full collections over it do not land in the timings.
The index itself holds no Python object per slot.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sources.geo import distance_km, region_for_position
from sources.records import (
    Address,
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    PhysicianQuery,
    PhysicianRecord,
    Region,
    SlotQuery,
    SlotResult,
)
from sources.slot_index.index import SlotChange, SlotIndex, SlotIndexBuilder

SOURCE = "smart-bench"
DOWNTOWN = GeoPoint(45.5017, -73.5673)
T0 = int(datetime(2026, 1, 5, 5, 0, tzinfo=UTC).timestamp())  # Monday 00:00 in Montreal
DAY = 86_400
T = AppointmentType
PHYSICIAN_TYPES = [T.ROUTINE, T.FOLLOW_UP, T.URGENT, T.CHECKUP, T.NEW_PATIENT, T.PRIORITY]
TYPE_WEIGHTS = [30, 25, 12, 12, 8, 8]
EXTRA_LANGUAGES = [("en", 0.45), ("es", 0.05), ("ar", 0.03), ("zh", 0.02)]

Slot = tuple[str, str | None, int, int, AppointmentType, str | None, str | None, int]


@dataclass
class Province:
    clinics: list[ClinicRecord]
    physicians: list[PhysicianRecord]
    slots: list[Slot]


def generate(scale: float, seed: int = 20261125, slot_links: bool = False) -> Province:
    rng = random.Random(seed)
    n_clinics, n_physicians = round(1300 * scale), round(10_000 * scale)
    clinics = []
    for i in range(n_clinics):
        if i < n_clinics * 0.35:
            lat, lon = 45.50 + rng.uniform(-0.15, 0.15), -73.57 + rng.uniform(-0.15, 0.15)
        else:
            lat, lon = rng.uniform(45.0, 49.0), rng.uniform(-79.0, -64.5)
        location = GeoPoint(lat, lon)
        clinics.append(
            ClinicRecord(
                source_id=SOURCE,
                local_id=f"loc-{i:05d}",
                name=f"Clinique médicale {i}",
                address=Address(city="Ville", region=region_for_position(location)),
                location=location,
                phone=f"514-555-{i % 10_000:04d}",
                languages=("fr", "en") if rng.random() < 0.4 else ("fr",),
            )
        )
    physicians = []
    for i in range(n_physicians):
        homes = [rng.randrange(n_clinics)]
        if rng.random() < 0.15:
            homes.append(rng.randrange(n_clinics))
        languages = ["fr"] if rng.random() < 0.95 else []
        languages += [lang for lang, share in EXTRA_LANGUAGES if rng.random() < share]
        physicians.append(
            PhysicianRecord(
                source_id=SOURCE,
                local_id=f"pr-{i:05d}",
                display_name=f"Dr {i}",
                languages=tuple(languages),
                clinic_local_ids=tuple(clinics[h].local_id for h in dict.fromkeys(homes)),
            )
        )
    slots: list[Slot] = []
    for physician in physicians:
        types = list(dict.fromkeys(rng.choices(PHYSICIAN_TYPES, TYPE_WEIGHTS, k=rng.randint(2, 4))))
        for day in range(14):
            if day % 7 == 6 or rng.random() < 0.3:
                continue  # Sundays and days off
            clinic_id = rng.choice(physician.clinic_local_ids)
            for session_start in (8 * 3600, 13 * 3600):
                base = T0 + day * DAY + session_start
                for k in range(16):
                    if rng.random() < 0.55:
                        start = base + k * 900
                        slots.append(
                            (
                                clinic_id,
                                physician.local_id,
                                start,
                                start + 900,
                                rng.choice(types),
                                f"https://rdv.example/book?slot={clinic_id}-{start}-{k}"
                                if slot_links
                                else f"https://rdv.example/{clinic_id}",
                                None,
                                1,
                            )
                        )
    for clinic in clinics:
        if rng.random() < 0.4:
            for day in range(14):
                base = T0 + day * DAY + 18 * 3600
                for k in range(12):
                    start = base + k * 600
                    slots.append(
                        (
                            clinic.local_id,
                            None,
                            start,
                            start + 600,
                            T.WALK_IN,
                            None,
                            clinic.phone,
                            3,
                        )
                    )
    rng.shuffle(slots)  # a feed lists slots in no useful order
    return Province(clinics, physicians, slots)  # no duplicates: brute_total relies on it


def build(province: Province) -> tuple[SlotIndex, float, float]:
    builder = SlotIndexBuilder(SOURCE)
    began = time.perf_counter()
    for clinic in province.clinics:
        builder.add_clinic(clinic)
    for physician in province.physicians:
        builder.add_physician(physician)
    add_slot = builder.add_slot
    for slot in province.slots:
        add_slot(*slot)
    added = time.perf_counter()
    index = builder.build()
    return index, added - began, time.perf_counter() - added


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def brute_total(province: Province, query: SlotQuery) -> int:
    """Matches counted over every slot, to check ``total``."""
    clinics = {c.local_id: c for c in province.clinics}
    physicians = {p.local_id: p for p in province.physicians}
    lo, hi = query.starts_after.timestamp(), query.starts_before.timestamp()
    ok_clinic = {}
    for local_id, clinic in clinics.items():
        ok = query.region is None or clinic.address.region == query.region
        if query.near is not None and query.radius_km is not None:
            location = clinic.location
            ok = (
                ok and location is not None and distance_km(query.near, location) <= query.radius_km
            )
        ok_clinic[local_id] = ok
    count = 0
    for clinic_id, physician_id, start, _end, kind, _url, _phone, _cap in province.slots:
        if not (ok_clinic[clinic_id] and lo <= start < hi):
            continue
        if query.appointment_types and kind not in query.appointment_types:
            continue
        if query.physician_local_ids is not None and physician_id not in query.physician_local_ids:
            continue
        if query.languages:
            spoken = (
                physicians[physician_id].languages if physician_id else clinics[clinic_id].languages
            )
            if query.languages.isdisjoint(spoken):
                continue
        count += 1
    return count


Times = tuple[list[float], list[float]]


def timed(runs: int, call: Callable[[int], object]) -> tuple[Times, object]:
    """Wall-clock and thread CPU milliseconds of each call (CPU time leaves out the
    time other processes of a shared machine hold the core)."""
    wall, cpu, last = [], [], None
    for i in range(runs):
        began, began_cpu = time.perf_counter(), time.thread_time()
        last = call(i)
        cpu.append((time.thread_time() - began_cpu) * 1000)
        wall.append((time.perf_counter() - began) * 1000)
    return (wall, cpu), last


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def row(name: str, times: Times, detail: str = "") -> str:
    wall, cpu = sorted(times[0]), sorted(times[1])
    return (
        f"| {name:<44} | {statistics.median(wall):8.3f} | {_p99(wall):8.3f} | {wall[-1]:8.3f} "
        f"| {statistics.median(cpu):8.3f} | {_p99(cpu):8.3f} | {detail}"
    )


def measure_build(province: Province) -> tuple[SlotIndex, list[str]]:
    """Build twice: timed (and RSS), then under tracemalloc for the bytes held."""
    gc.collect()
    rss_before = rss_kib()
    index, add_s, build_s = build(province)
    gc.collect()
    rss_delta = (rss_kib() - rss_before) * 1024
    n = index.slot_count
    del index
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    index, _, _ = build(province)
    gc.collect()
    held, peak = (m - baseline for m in tracemalloc.get_traced_memory())
    tracemalloc.stop()
    columns = column_bytes(index)
    mib = 2**20
    return index, [
        f"| {n:,} slots indexed ({index.clinic_count} clinics, {index.physician_count} physicians)",
        f"| add_slot x {len(province.slots):,}: {add_s:.2f} s; build(): {build_s:.2f} s; "
        f"total {add_s + build_s:.2f} s",
        f"| held by the index (tracemalloc): {held / mib:.1f} MiB = {held / n:.1f} bytes/slot "
        f"(slot columns {columns / n:.1f}); build peak {peak / mib:.1f} MiB",
        f"| RSS growth over the untraced build: {rss_delta / mib:.1f} MiB "
        f"= {rss_delta / n:.1f} bytes/slot",
    ]


def column_bytes(index: SlotIndex) -> int:
    """Bytes of the per-slot columns (arrays and bytes) of every clinic."""
    total = 0
    for clinic in index._slots:
        if clinic is not None:
            for column in (clinic.starts, clinic.durations, clinic.part_of, clinic.url_ids):
                total += sys.getsizeof(column)
            for column in (clinic.phone_ids, clinic.capacities):
                total += sys.getsizeof(column)
    return total


def query_kinds(province: Province) -> list[tuple[str, Callable[[int], SlotQuery]]]:
    physician_ids = [p.local_id for p in province.physicians]

    def slots(days: float, limit: int = 20, **criteria: Any) -> Callable[[int], SlotQuery]:
        def query(i: int) -> SlotQuery:
            picker = random.Random(i)
            start = T0 + picker.randrange(0, 7 * DAY, 60)  # "now" somewhere in the first week
            fields = dict(criteria)
            if fields.get("physician_local_ids") == "random":
                fields["physician_local_ids"] = tuple(picker.sample(physician_ids, 3))
            return SlotQuery(
                starts_after=datetime.fromtimestamp(start, UTC),
                starts_before=datetime.fromtimestamp(start + days * DAY, UTC),
                limit=limit,
                **fields,
            )

        return query

    near: dict[str, Any] = {"near": DOWNTOWN, "radius_km": 10.0}
    en, es = frozenset({"en"}), frozenset({"es"})
    return [
        ("next 20 within 10 km, 3 days", slots(3, **near)),
        ("next 20 in region MONTREAL, 3 days", slots(3, region=Region.MONTREAL)),
        ("next 20 URGENT within 10 km, 3 days", slots(3, appointment_types={T.URGENT}, **near)),
        ("next 20 of 3 physicians, 14 days", slots(14, physician_local_ids="random")),
        ("next 20 speaking en within 10 km, 3 days", slots(3, languages=en, **near)),
        ("next 20 speaking es within 10 km, 3 days", slots(3, languages=es, **near)),
        (
            "next 20 CHECKUP + es in MONTREAL, 14 days",
            slots(14, region=Region.MONTREAL, appointment_types={T.CHECKUP}, languages=es),
        ),
        ("next 20 anywhere, 3 days", slots(3)),
        ("next 500 within 10 km, 3 days", slots(3, limit=500, **near)),
    ]


def measure_queries(index: SlotIndex, province: Province, runs: int, check: int) -> list[str]:
    rng = random.Random(7)
    lines = [
        "| measure                                      | wall p50 | wall p99 | wall max "
        "|  CPU p50 |  CPU p99 | detail",
        "|----------------------------------------------|----------|----------|----------"
        "|----------|----------|-------",
    ]
    for name, make in query_kinds(province):

        def search(i: int, make: Callable[[int], SlotQuery] = make) -> SlotResult:
            return index.search_slots(make(i))

        times, result = timed(runs, search)
        for i in rng.sample(range(runs), check):
            query = make(i)
            expected = brute_total(province, query)
            got = index.search_slots(query)
            assert got.total == expected, (name, got.total, expected)
            # At least the page asked (the Source contract), more when slots starting
            # together are kept whole, never more than match.
            assert min(query.limit, expected) <= len(got.slots) <= expected
            assert [s.start for s in got.slots] == sorted(s.start for s in got.slots)
        assert isinstance(result, SlotResult)
        lines.append(row(name, times, f"total={result.total} (checked)"))

    near = ClinicQuery(near=DOWNTOWN, radius_km=10.0)
    times, found = timed(runs, lambda i: index.search_clinics(near))
    assert isinstance(found, list)
    lines.append(row("search_clinics within 10 km", times, f"{len(found)} clinics"))
    n = len(province.clinics)
    times, _ = timed(
        runs,
        lambda i: index.get_physicians(PhysicianQuery(clinic_local_ids=(f"loc-{i % n:05d}",))),
    )
    lines.append(row("get_physicians of one clinic", times))

    def changes(i: int) -> SlotIndex:
        picker = random.Random(i)
        removed = [SlotChange(*s) for s in picker.sample(province.slots, 500)]
        added = [replace(c, start=c.start + 300, end=c.end + 300) for c in removed]
        return index.with_slot_changes(added=added, removed=removed)

    times, updated = timed(10, changes)
    assert isinstance(updated, SlotIndex) and updated.slot_count == index.slot_count
    lines.append(row("with_slot_changes (500 added, 500 removed)", times, "10 runs"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--check", type=int, default=3, help="totals checked by brute force")
    parser.add_argument(
        "--slot-links", action="store_true", help="a booking link per slot (else per clinic)"
    )
    args = parser.parse_args()

    began = time.perf_counter()
    province = generate(args.scale, slot_links=args.slot_links)
    print(
        f"province: {len(province.clinics)} clinics, {len(province.physicians)} physicians, "
        f"{len(province.slots):,} slots fed (generated in {time.perf_counter() - began:.1f} s)"
    )
    gc.collect()
    gc.freeze()
    index, build_lines = measure_build(province)
    query_lines = measure_queries(index, province, args.runs, args.check)
    print("\n".join(["", *build_lines, "", *query_lines]))


if __name__ == "__main__":
    main()
