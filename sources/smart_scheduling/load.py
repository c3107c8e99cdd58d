"""Resolving a SMART Scheduling Links load into a ``SlotIndex``, or a delta into slot changes.

Files come in any order, so references are resolved only once every file of a load is
read: Slot -> Schedule -> Location (the clinic) and PractitionerRole or Practitioner (the
physician). A slot's times without an offset are placed in its clinic's zone then. A
record that cannot be used (a slot ending before it starts, once placed), or that refers
to one that is missing or was skipped, is skipped and counted in ``FeedFile.unresolved``
of the file it came from.
Both functions are synchronous and touch only what they are given, so the source runs
them in a worker thread while queries go on reading the previous index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sources.fhir.resources import physician_record, ref_id
from sources.slot_index.index import SlotChange, SlotIndex, SlotIndexBuilder
from sources.smart_scheduling.feed import KINDS, NAIVE_END, NAIVE_START
from sources.timeutil import placed_epoch, zone_info

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sources.records import ClinicRecord, PhysicianRecord
    from sources.smart_scheduling.feed import FeedFile, Schedule, SlotColumns

# Where a schedule's slots go: (clinic local id, physician local id or None).
Target = tuple[str, str | None]
Identity = tuple[str, str | None, int, int, Any]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A full load resolved: the index, and where each schedule's slots go (for deltas)."""

    index: SlotIndex
    targets: dict[str, Target]


def resolve(source_id: str, files: Sequence[FeedFile]) -> Resolved:
    """Build the index of a full load; sets ``unresolved`` (and, of those,
    ``unresolved_slots``) on every file."""
    for file in files:
        file.unresolved = file.unresolved_slots = 0
    clinics: dict[str, ClinicRecord] = {}
    practitioners: dict[str, tuple[FeedFile, dict[str, Any]]] = {}
    roles: dict[str, tuple[FeedFile, dict[str, Any]]] = {}
    schedules: dict[str, tuple[FeedFile, Schedule]] = {}
    for file in files:  # a resource sent twice: the later file wins
        clinics.update(file.locations)
        practitioners.update((k, (file, v)) for k, v in file.practitioners.items())
        roles.update((k, (file, v)) for k, v in file.roles.items())
        schedules.update((k, (file, v)) for k, v in file.schedules.items())

    physicians, role_physician = _physicians(source_id, clinics, practitioners, roles)
    # Locations outside Quebec are not served: their schedules and slots are counted
    # apart (``FeedFile.outside_slots``), not as unresolved.
    outside = {lid for file in files for lid in file.outside if lid not in clinics}
    targets: dict[str, Target] = {}
    abroad: set[str] = set()
    for schedule_id, (file, schedule) in schedules.items():
        target = _target(schedule, clinics, physicians, role_physician)
        if target is not None:
            targets[schedule_id] = target
        elif any(lid in outside for lid in schedule.location_ids):
            abroad.add(schedule_id)
        else:
            file.unresolved += 1

    zones = _zones(files)
    builder = SlotIndexBuilder(source_id)
    for clinic in clinics.values():
        builder.add_clinic(clinic)
    for physician in physicians.values():
        builder.add_physician(physician)
    add = builder.add_slot
    for file in files:
        for target, start, end, kind, url, phone, capacity in _rows(file, targets, zones):
            if target is None:
                file.unresolved_slots += 1
            else:
                add(target[0], target[1], start, end, kind, url, phone, capacity)
        file.outside_slots = _slots_of(file, abroad)
        file.unresolved_slots -= file.outside_slots  # counted as unresolved just above
        file.unresolved += file.unresolved_slots
    return Resolved(builder.build(), targets)


def slot_changes(
    deltas: Sequence[FeedFile],
    base: Sequence[FeedFile],
    overlay: Mapping[int, SlotChange | None],
    targets: Mapping[str, Target],
) -> tuple[list[SlotChange], list[SlotChange], dict[int, SlotChange | None]]:
    """(added, removed, overlay updates) for slot-only delta files.

    The current state of a slot id is ``overlay`` (what earlier deltas left, None when
    gone) over the ``base`` files of the last full load. Every slot a delta names is
    taken out as it was and put back as the delta says, when it is free. The index keeps
    one slot per (clinic, physician, start, end, type): a still-free slot sharing such
    an identity with one taken out is put back.
    """
    zones = _zones(base)  # the clinics' of the last full load, as targets are
    updates: dict[int, SlotChange | None] = {}
    for file in deltas:
        file.unresolved = file.unresolved_slots = 0
        for slot_id in file.gone_slots:
            updates[slot_id] = None
        for slot_id, row in zip(file.slots.ids, _rows(file, targets, zones), strict=True):
            target, start, end, kind, url, phone, capacity = row
            if target is None:
                file.unresolved += 1
                file.unresolved_slots += 1
                updates.setdefault(slot_id, None)
            else:
                updates[slot_id] = SlotChange(*target, start, end, kind, url, phone, capacity)

    removed = [change for slot_id in updates if (change := overlay.get(slot_id)) is not None]
    wanted = {slot_id for slot_id in updates if slot_id not in overlay}
    if wanted:
        for file in base:
            removed.extend(_base_rows(file, targets, zones, wanted))
    gone = {_identity(change) for change in removed}
    gone_starts = {change.start for change in removed}
    survivors: list[SlotChange] = []
    if gone:
        for file in base:
            survivors.extend(
                _same_identity(file, targets, zones, updates, overlay, gone_starts, gone)
            )
        survivors.extend(
            c
            for slot_id, c in overlay.items()
            if c is not None and slot_id not in updates and _identity(c) in gone
        )
    added = [*survivors, *(c for c in updates.values() if c is not None)]
    return added, removed, updates


def _zones(files: Sequence[FeedFile]) -> dict[str, ZoneInfo]:
    """Each clinic's time zone, by local id (a Location sent twice: the later file's)."""
    return {
        clinic_id: zone_info(clinic.time_zone)
        for file in files
        for clinic_id, clinic in file.locations.items()
    }


def _physicians(
    source_id: str,
    clinics: Mapping[str, ClinicRecord],
    practitioners: Mapping[str, tuple[FeedFile, dict[str, Any]]],
    roles: Mapping[str, tuple[FeedFile, dict[str, Any]]],
) -> tuple[dict[str, PhysicianRecord], dict[str, str]]:
    """Physicians by Practitioner id, and the Practitioner id of every usable role."""
    roles_of: dict[str, list[tuple[str, FeedFile, dict[str, Any]]]] = {}
    for role_id, (file, role) in roles.items():
        practitioner_id = ref_id(role.get("practitioner"), "Practitioner")
        if practitioner_id is None:
            file.unresolved += 1
        else:
            roles_of.setdefault(practitioner_id, []).append((role_id, file, role))
    physicians: dict[str, PhysicianRecord] = {}
    role_physician: dict[str, str] = {}
    for practitioner_id in dict.fromkeys([*practitioners, *roles_of]):
        origin, practitioner = practitioners.get(practitioner_id, (None, None))
        its_roles = roles_of.get(practitioner_id, [])
        record = physician_record(
            source_id, practitioner_id, practitioner, [r for *_, r in its_roles]
        )
        if record is None:  # no name anywhere: the practitioner and its roles are unusable
            for origin_file in (origin, *(f for _, f, _ in its_roles)):
                if origin_file is not None:
                    origin_file.unresolved += 1
            continue
        known = tuple(c for c in record.clinic_local_ids if c in clinics)
        if known != record.clinic_local_ids:
            record = replace(record, clinic_local_ids=known)
        physicians[practitioner_id] = record
        role_physician.update((role_id, practitioner_id) for role_id, _, _ in its_roles)
    return physicians, role_physician


def _target(
    schedule: Schedule,
    clinics: Mapping[str, ClinicRecord],
    physicians: Mapping[str, PhysicianRecord],
    role_physician: Mapping[str, str],
) -> Target | None:
    """The schedule's first known Location, and its physician when it names one."""
    clinic = next((c for c in schedule.location_ids if c in clinics), None)
    if clinic is None:
        return None
    named = [role_physician.get(r) for r in schedule.role_ids]
    named += [p if p in physicians else None for p in schedule.practitioner_ids]
    if not named:
        return clinic, None
    physician = next((p for p in named if p is not None), None)
    return None if physician is None else (clinic, physician)


def _slots_of(file: FeedFile, schedule_ids: set[str]) -> int:
    """How many of the file's free slots belong to these schedules."""
    if not schedule_ids:
        return 0
    columns = file.slots
    codes = {n for n, sid in enumerate(columns.schedule_ids) if sid in schedule_ids}
    return sum(code in codes for code in columns.schedules) if codes else 0


Row = tuple[Target | None, int, int, Any, str | None, str | None, int]


def _rows(
    file: FeedFile, targets: Mapping[str, Target], zones: Mapping[str, ZoneInfo]
) -> Iterator[Row]:
    """The file's slots with their schedule resolved (None when it is not, or when the
    slot, its wall times placed, ends before it starts)."""
    columns = file.slots
    mapped = [targets.get(schedule_id) for schedule_id in columns.schedule_ids]
    rows = zip(
        columns.schedules,
        columns.starts,
        columns.ends,
        columns.kinds,
        columns.urls,
        columns.phones,
        columns.capacities,
        strict=True,
    )
    if not columns.naive:  # the usual feed: every time with its offset
        for schedule, start, end, kind, url, phone, capacity in rows:
            yield mapped[schedule], start, end, KINDS[kind], url, phone, capacity
        return
    for position, (schedule, start, end, kind, url, phone, capacity) in enumerate(rows):
        target = mapped[schedule]
        if target is not None and position in columns.naive:
            start, end = _placed(columns, position, zones[target[0]])
            if end <= start:
                target = None
        yield target, start, end, KINDS[kind], url, phone, capacity


def _placed(columns: SlotColumns, position: int, zone: ZoneInfo) -> tuple[int, int]:
    """A row's start and end as POSIX times, its wall times read in ``zone``."""
    naive = columns.naive.get(position, 0)
    start, end = columns.starts[position], columns.ends[position]
    if naive & NAIVE_START:
        start = placed_epoch(start, zone)
    if naive & NAIVE_END:
        end = placed_epoch(end, zone)
    return start, end


def _base_rows(
    file: FeedFile,
    targets: Mapping[str, Target],
    zones: Mapping[str, ZoneInfo],
    wanted: set[int],
) -> Iterator[SlotChange]:
    """The resolved slots of a base file whose id is in ``wanted``."""
    for position, slot_id in enumerate(file.slots.ids):
        if slot_id in wanted and (change := _change(file, targets, zones, position)) is not None:
            yield change


def _same_identity(
    file: FeedFile,
    targets: Mapping[str, Target],
    zones: Mapping[str, ZoneInfo],
    updates: Mapping[int, object],
    overlay: Mapping[int, object],
    starts: set[int],
    gone: set[Identity],
) -> Iterator[SlotChange]:
    columns = file.slots
    for position, start in enumerate(columns.starts):
        if start not in starts and position not in columns.naive:
            continue
        slot_id = columns.ids[position]
        if slot_id in updates or slot_id in overlay:
            continue
        change = _change(file, targets, zones, position)
        if change is not None and _identity(change) in gone:
            yield change


def _change(
    file: FeedFile, targets: Mapping[str, Target], zones: Mapping[str, ZoneInfo], position: int
) -> SlotChange | None:
    columns = file.slots
    target = targets.get(columns.schedule_ids[columns.schedules[position]])
    if target is None:
        return None
    start, end = columns.starts[position], columns.ends[position]
    if position in columns.naive:
        start, end = _placed(columns, position, zones[target[0]])
        if end <= start:
            return None
    return SlotChange(
        target[0],
        target[1],
        start,
        end,
        KINDS[columns.kinds[position]],
        columns.urls[position],
        columns.phones[position],
        columns.capacities[position],
    )


def _identity(change: SlotChange) -> Identity:
    return (
        change.clinic_local_id,
        change.physician_local_id,
        change.start,
        change.end,
        change.appointment_type,
    )


__all__ = ["Resolved", "Target", "resolve", "slot_changes"]
