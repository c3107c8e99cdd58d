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

import ctypes
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from sources.fhir.resources import physician_record, ref_id
from sources.slot_index.index import SlotChange, SlotIndex, SlotIndexBuilder
from sources.smart_scheduling.feed import KINDS, SlotPlace
from sources.smart_scheduling.rows import by_clinic, placed, slots_of
from sources.timeutil import zone_info

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sources.records import ClinicRecord, PhysicianRecord
    from sources.smart_scheduling.feed import FeedFile, Schedule

# Where a schedule's slots go: (clinic local id, physician local id or None).
Target = tuple[str, str | None]
Identity = tuple[str, str | None, int, int, Any]
# A slot an id holds: where it is, and what the index holds of it.
Held = tuple[SlotPlace, SlotChange]


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
    practitioners: dict[str, tuple[FeedFile, bytes]] = {}
    roles: dict[str, tuple[FeedFile, bytes]] = {}
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
    add, close = builder.add_slot, builder.close_clinic
    # Clinic by clinic: the builder never holds more than one clinic's copy of its slots.
    for clinic_id, rows in by_clinic(files, targets, zones, list(clinics)):
        for physician_id, start, end, kind, url, phone, capacity in rows:
            add(clinic_id, physician_id, start, end, kind, url, phone, capacity)
        close(clinic_id)
    for file in files:
        file.outside_slots = slots_of(file, abroad)
        file.unresolved_slots -= file.outside_slots  # counted as unresolved by by_clinic
        file.unresolved += file.unresolved_slots
    return Resolved(builder.build(), targets)


def apply_delta(
    index: SlotIndex,
    deltas: Sequence[FeedFile],
    base: Sequence[FeedFile],
    overlay: Mapping[int, tuple[Held, ...]],
    targets: Mapping[str, Target],
    repeated_ids: bool | None,
) -> tuple[SlotIndex, dict[int, tuple[Held, ...]], bool]:
    """``index`` with slot-only delta files applied (``slot_changes``), the overlay's
    updates, and whether the ``base`` files repeat ids (``ids_repeat``, when
    ``repeated_ids`` is None: once per full load)."""
    repeated = ids_repeat(base) if repeated_ids is None else repeated_ids
    added, removed, updates = slot_changes(deltas, base, overlay, targets, repeated_ids=repeated)
    return index.with_slot_changes(added, removed), updates, repeated


def ids_repeat(files: Sequence[FeedFile]) -> bool:
    """Whether an id names several free slots of the files (a publisher giving every slot
    of a store the store's id), against the specification's unique ids."""
    ids: set[int] = set()
    count = 0
    for file in files:
        ids.update(file.slots.ids)
        count += len(file.slots.ids)
    return len(ids) != count


def slot_changes(
    deltas: Sequence[FeedFile],
    base: Sequence[FeedFile],
    overlay: Mapping[int, tuple[Held, ...]],
    targets: Mapping[str, Target],
    *,
    repeated_ids: bool,
) -> tuple[list[SlotChange], list[SlotChange], dict[int, tuple[Held, ...]]]:
    """(added, removed, overlay updates) for slot-only delta files.

    A delta lists the slots changed since, each as it now is: a free one is put in, a
    busy one (or a DELETE of its id) taken out. The slots an id holds now are
    ``overlay``'s (what earlier deltas left) over the ``base`` files of the last full
    load. Where ids are unique, as the specification has them, a delta's slot replaces
    the slot of its id wherever it was (a slot moved). Where they are not
    (``repeated_ids``: the feed repeats some; or the delta, or what the id holds, has
    several slots of it), a delta's slot replaces only the slot of its id at its place
    (schedule, start, end), and a DELETE of the id takes every slot of it. The index
    serves slots sharing an identity as one, seats added: every slot of an identity the
    delta touches is put back with the changed ones, so each keeps its seats.
    """
    zones = _zones(base)  # the clinics' of the last full load, as targets are
    listed: dict[int, list[tuple[SlotPlace | None, SlotChange | None]]] = {}
    for file in deltas:
        file.unresolved = file.unresolved_slots = 0
        for slot_id, place in file.gone_slots:
            listed.setdefault(slot_id, []).append((place, None))
        for position, slot_id in enumerate(file.slots.ids):
            change = _change(file, targets, zones, position)
            if change is None:  # taken out, as a slot no longer free
                file.unresolved += 1
                file.unresolved_slots += 1
            listed.setdefault(slot_id, []).append((_place(file, position), change))

    held = {slot_id: list(overlay[slot_id]) for slot_id in listed if slot_id in overlay}
    wanted = {slot_id for slot_id in listed if slot_id not in overlay}
    for file in base if wanted else ():
        for position, slot_id in enumerate(file.slots.ids):
            if (
                slot_id in wanted
                and (change := _change(file, targets, zones, position)) is not None
            ):
                held.setdefault(slot_id, []).append((_place(file, position), change))
    updates: dict[int, tuple[Held, ...]] = {}
    for slot_id, changes in listed.items():
        now = held.get(slot_id, [])
        placed = repeated_ids or len(now) > 1 or sum(p is not None for p, _ in changes) > 1
        updates[slot_id] = _listed(now, changes) if placed else _latest(changes)

    removed = [change for now in held.values() for _, change in now]
    fresh = [change for now in updates.values() for _, change in now]
    touched = {_identity(change) for change in (*removed, *fresh)}
    starts = {change.start for change in (*removed, *fresh)}
    survivors: list[SlotChange] = []
    if touched:
        for file in base:
            survivors.extend(
                _same_identity(file, targets, zones, updates, overlay, starts, touched)
            )
        survivors.extend(
            change
            for slot_id, now in overlay.items()
            if slot_id not in updates
            for _, change in now
            if _identity(change) in touched
        )
    return [*survivors, *fresh], removed, updates


def _latest(changes: list[tuple[SlotPlace | None, SlotChange | None]]) -> tuple[Held, ...]:
    """What a unique id holds after a delta: its last version, when free."""
    place, change = changes[-1]
    return () if place is None or change is None else ((place, change),)


def _listed(
    now: list[Held], changes: list[tuple[SlotPlace | None, SlotChange | None]]
) -> tuple[Held, ...]:
    """What a repeated id holds after a delta: each change replaces the slot at its place."""
    for place, change in changes:
        now = [] if place is None else [h for h in now if h[0] != place]
        if place is not None and change is not None:
            now.append((place, change))
    return tuple(now)


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
    practitioners: Mapping[str, tuple[FeedFile, bytes]],
    roles: Mapping[str, tuple[FeedFile, bytes]],
) -> tuple[dict[str, PhysicianRecord], dict[str, str]]:
    """Physicians by Practitioner id, and the Practitioner id of every usable role.
    Resources are decoded one physician at a time: never all of them at once."""
    roles_of: dict[str, list[tuple[str, FeedFile, bytes]]] = {}
    for role_id, (file, role) in roles.items():
        practitioner_id = ref_id(orjson.loads(role).get("practitioner"), "Practitioner")
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
            source_id,
            practitioner_id,
            None if practitioner is None else orjson.loads(practitioner),
            [orjson.loads(r) for *_, r in its_roles],
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


def _place(file: FeedFile, position: int) -> SlotPlace:
    columns = file.slots
    schedule_id = columns.schedule_ids[columns.schedules[position]]
    return schedule_id, columns.starts[position], columns.ends[position]


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
        start, end = placed(columns, position, zones[target[0]])
        if end <= start:
            return None
    return SlotChange(
        target[0],
        target[1],
        start,
        end,
        KINDS[columns.kinds[position]],
        columns.url(position),
        columns.phone(position),
        columns.capacity(position),
    )


def _identity(change: SlotChange) -> Identity:
    return (
        change.clinic_local_id,
        change.physician_local_id,
        change.start,
        change.end,
        change.appointment_type,
    )


__all__ = [
    "Held",
    "Resolved",
    "Target",
    "apply_delta",
    "give_back_memory",
    "ids_repeat",
    "resolve",
    "slot_changes",
]


def give_back_memory() -> None:
    """Hand the memory a replaced copy freed back to the system (glibc's ``malloc_trim``):
    a copy is made of many small blocks, which the allocator otherwise keeps for itself,
    so the process's resident size would stay at its peak. Does nothing elsewhere."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim
