"""A full load's free slots, clinic by clinic: ``by_clinic``.

``sources.smart_scheduling.load`` builds the index clinic by clinic
(``SlotIndexBuilder.close_clinic``), so that a load never holds a second copy of every
slot beside the files' columns: each file's rows are cut into *runs* of rows going to
one clinic (a publisher writes a clinic's slots together: a few runs a clinic; at worst
one a row, 12 bytes each), the runs are ordered by clinic, and each clinic's rows are
then read from the files' columns in arrival order (file by file, row by row), so the
first of several slots of one identity keeps its booking details, as before.
"""

from __future__ import annotations

from array import array
from itertools import compress, islice, pairwise
from operator import ne
from typing import TYPE_CHECKING

from sources.smart_scheduling.feed import KINDS, NAIVE_END, NAIVE_START
from sources.timeutil import placed_epoch

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from zoneinfo import ZoneInfo

    from sources.records import AppointmentType
    from sources.smart_scheduling.feed import FeedFile, SlotColumns

    # Where a schedule's slots go: (clinic local id, physician local id or None).
    Target = tuple[str, str | None]

# What the index is given of a slot: physician, start, end, type, link, phone, seats.
Row = tuple["str | None", int, int, "AppointmentType", "str | None", "str | None", int]

__all__ = ["Row", "by_clinic", "placed", "slots_of"]


def by_clinic(
    files: Sequence[FeedFile],
    targets: Mapping[str, Target],
    zones: Mapping[str, ZoneInfo],
    clinic_ids: Sequence[str],
) -> Iterator[tuple[str, Iterator[Row]]]:
    """Each clinic of ``clinic_ids`` with slots, and its rows (read lazily: take them
    before the next clinic). Rows whose schedule resolves to no clinic, or that end
    before they start once their wall times are placed, are counted in each file's
    ``unresolved_slots``."""
    numbers = {clinic_id: n for n, clinic_id in enumerate(clinic_ids)}
    physicians = [
        [None if t is None else t[1] for t in map(targets.get, file.slots.schedule_ids)]
        for file in files
    ]
    run_clinics, run_files, run_bounds = array("i"), array("I"), array("I")
    for f, file in enumerate(files):
        columns = file.slots
        mapped = [targets.get(schedule_id) for schedule_id in columns.schedule_ids]
        clinic_of_code = [-1 if t is None else numbers.get(t[0], -1) for t in mapped]
        clinic_of = array("i", map(clinic_of_code.__getitem__, columns.schedules))
        if not clinic_of:
            continue
        changes = compress(range(1, len(clinic_of)), map(ne, clinic_of, islice(clinic_of, 1, None)))
        cuts = [0, *changes, len(clinic_of)]
        for lo, hi in pairwise(cuts):
            clinic = clinic_of[lo]
            if clinic < 0:
                file.unresolved_slots += hi - lo
                continue
            run_clinics.append(clinic)
            run_files.append(f)
            run_bounds.extend((lo, hi))
        del clinic_of
    order = sorted(range(len(run_clinics)), key=run_clinics.__getitem__)  # stable
    at = 0
    while at < len(order):
        clinic = run_clinics[order[at]]
        stop = at
        while stop < len(order) and run_clinics[order[stop]] == clinic:
            stop += 1
        runs = [(run_files[r], run_bounds[2 * r], run_bounds[2 * r + 1]) for r in order[at:stop]]
        yield clinic_ids[clinic], _rows(files, physicians, runs, targets, zones)
        at = stop


def _rows(
    files: Sequence[FeedFile],
    physicians_of: list[list[str | None]],
    runs: list[tuple[int, int, int]],
    targets: Mapping[str, Target],
    zones: Mapping[str, ZoneInfo],
) -> Iterator[Row]:
    for f, lo, hi in runs:
        file = files[f]
        columns = file.slots
        physicians = physicians_of[f]
        phones, seats, naive = columns.phone_table, columns.seats, columns.naive
        rows = zip(
            range(lo, hi),
            columns.schedules[lo:hi],
            columns.starts[lo:hi],
            columns.ends[lo:hi],
            columns.kinds[lo:hi],
            columns.urls.items(lo, hi),
            columns.phone_ids[lo:hi],
            strict=True,
        )
        for row, schedule, start, end, kind, url, phone in rows:
            if naive and row in naive:
                target = targets[columns.schedule_ids[schedule]]
                start, end = placed(columns, row, zones[target[0]])
                if end <= start:
                    file.unresolved_slots += 1
                    continue
            capacity = seats.get(row, 1) if seats else 1
            yield physicians[schedule], start, end, KINDS[kind], url, phones[phone], capacity


def placed(columns: SlotColumns, row: int, zone: ZoneInfo) -> tuple[int, int]:
    """A row's start and end as POSIX times, its wall times read in ``zone``."""
    naive = columns.naive.get(row, 0)
    start, end = columns.starts[row], columns.ends[row]
    if naive & NAIVE_START:
        start = placed_epoch(start, zone)
    if naive & NAIVE_END:
        end = placed_epoch(end, zone)
    return start, end


def slots_of(file: FeedFile, schedule_ids: set[str]) -> int:
    """How many of the file's free slots belong to these schedules."""
    if not schedule_ids:
        return 0
    columns = file.slots
    codes = {n for n, sid in enumerate(columns.schedule_ids) if sid in schedule_ids}
    return sum(code in codes for code in columns.schedules) if codes else 0
