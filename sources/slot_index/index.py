"""An in-process, immutable, compact index of one source's clinics, physicians and free slots.

Adapters that serve from a local copy (the SMART Scheduling Links bulk feed)
load the copy into a ``SlotIndexBuilder``, ``build()`` a ``SlotIndex`` and
answer ``search_slots``/``search_clinics``/``get_physicians`` from it, exactly
as ``sources.base.Source`` asks. An incremental update makes a new index with
``with_slot_changes``, sharing every clinic it does not touch, and the adapter
swaps the reference: readers never see a half-applied change.

    builder = SlotIndexBuilder("smart-qc")
    builder.add_clinic(clinic)
    builder.add_slot("loc-1", "dr-7", 1_767_000_000, 1_767_000_900, AppointmentType.ROUTINE)
    index = builder.build()
    result = index.search_slots(query)

Clinics are found by region, by a grid over their positions (``near``) or by
id (``sources.slot_index.records``); each clinic's slots sit in time-sorted
compact columns, 9 bytes a slot (``sources.slot_index.columns``), so a query
costs two bisections per candidate clinic and a heap merge of ``limit`` slots
(``sources.slot_index.query``), never a scan of all slots, and its ``total``
is exact. Only returned slots become ``SlotRecord`` objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

from sources.records import (
    ClinicQuery,
    ClinicRecord,
    PhysicianQuery,
    PhysicianRecord,
    SlotQuery,
    SlotRecord,
    SlotResult,
)
from sources.slot_index.build import FLUSH, SlotColumns, freeze
from sources.slot_index.columns import (
    MAX_CAPACITY,
    MAX_DURATION_S,
    ClinicSlots,
    Identity,
    SlotChange,
    slot_local_id,
)
from sources.slot_index.diff import changed_since
from sources.slot_index.query import SlotSearch, measuring
from sources.slot_index.records import Directory, languages_for
from sources.slot_index.splice import physicians_moved, with_changes

if TYPE_CHECKING:
    from sources.records import AppointmentType

__all__ = ["SlotChange", "SlotIndex", "SlotIndexBuilder", "slot_local_id"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


class SlotIndexBuilder:
    """Gathers one source's records and slots; ``build()`` once to get the ``SlotIndex``.

    ``start``/``end`` are UTC epoch seconds. A slot ending at or before its start,
    or with a capacity below 1, is not a free slot: it is dropped and counted in
    ``invalid_slots``. An empty physician id means no physician. Slots of one
    clinic with the same physician, start, end and type are served as one slot, the
    first added with the sum of their capacities, and counted in ``folded_slots``.
    """

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self._clinics: dict[str, ClinicRecord] = {}
        self._physicians: dict[str, PhysicianRecord] = {}
        self._slots: dict[str, SlotColumns] = {}
        self._frozen: dict[str, ClinicSlots | None] = {}  # clinics closed early
        self._invalid = 0
        self._dropped_early = 0
        self._built = False

    @property
    def invalid_slots(self) -> int:
        return self._invalid

    def add_clinic(self, record: ClinicRecord) -> None:
        """Add a clinic; a second record with the same local id replaces the first."""
        self._check_open(records=True)
        self._clinics[record.local_id] = record

    def add_physician(self, record: PhysicianRecord) -> None:
        """Add a physician; a second record with the same local id replaces the first."""
        self._check_open(records=True)
        self._physicians[record.local_id] = record

    def close_clinic(self, clinic_local_id: str) -> None:
        """Freeze this clinic's slots now, not at ``build()``: a load adding clinic by
        clinic holds the builder's copy of one clinic only. Every clinic and physician
        comes first (their languages are frozen in); adding a slot after is an error."""
        self._check_open()
        columns, clinic = self._slots.pop(clinic_local_id, None), self._clinics.get(clinic_local_id)
        if clinic_local_id in self._frozen:
            raise RuntimeError(f"clinic {clinic_local_id!r} was already closed")
        if columns is not None and clinic is None:
            self._dropped_early += len(columns)
        self._frozen[clinic_local_id] = (
            freeze(clinic_local_id, columns, languages_for(clinic, self._physicians))
            if columns is not None and clinic is not None
            else None
        )

    def add_slot(
        self,
        clinic_local_id: str,
        physician_local_id: str | None,
        start: int,
        end: int,
        appointment_type: AppointmentType,
        booking_url: str | None = None,
        booking_phone: str | None = None,
        capacity: int = 1,
    ) -> None:
        """Add a free slot; the same (clinic, physician, start, end, type) again is served
        with it as one slot, seats added."""
        if self._built:
            self._check_open()
        if not 0 < end - start <= MAX_DURATION_S or not 1 <= capacity <= MAX_CAPACITY:
            self._invalid += 1
            return
        columns = self._slots.get(clinic_local_id)
        if columns is None:
            if clinic_local_id in self._frozen:
                raise RuntimeError(f"clinic {clinic_local_id!r} is closed: no slot can be added")
            columns = self._slots[clinic_local_id] = SlotColumns()
        # SlotColumns.append, inlined: this runs for every slot of a whole feed.
        key = (physician_local_id or None, appointment_type._value_)
        part = columns.part_keys.get(key)
        if part is None:
            part = columns.part_keys[key] = len(columns.part_keys)
        string_ids = columns.string_ids
        url = string_ids.get(booking_url)
        if url is None:
            url = columns.intern(booking_url)
        phone = string_ids.get(booking_phone)
        if phone is None:
            phone = columns.intern(booking_phone)
        if capacity != 1:
            columns.capacities[len(columns)] = capacity
        pending = columns.pending
        pending += (start, end, part, url, phone)
        if len(pending) >= FLUSH:
            columns.flush()

    def build(self) -> SlotIndex:
        """The index; slots of clinics never added are dropped and counted."""
        self._check_open()
        self._built = True
        directory = Directory(self._clinics, self._physicians)
        dropped = sum(len(c) for cid, c in self._slots.items() if cid not in directory.numbers)
        dropped += self._dropped_early
        slots: list[ClinicSlots | None] = []
        for number, clinic in enumerate(directory.clinics):
            # Freeze clinic by clinic, letting each builder column go at once.
            columns = self._slots.pop(clinic.local_id, None)
            frozen = self._frozen.pop(clinic.local_id, None)
            if columns is not None:
                frozen = freeze(clinic.local_id, columns, directory.languages_of(number))
            slots.append(frozen)
        self._frozen.clear()
        self._slots.clear()
        return SlotIndex._create(self.source_id, directory, slots, dropped, self._invalid)

    def _check_open(self, *, records: bool = False) -> None:
        if self._built:
            raise RuntimeError("SlotIndexBuilder.build() was already called; use a new builder")
        if records and self._frozen:
            raise RuntimeError("clinics and physicians come before close_clinic()")


def _epoch_ceil(value: datetime) -> int:
    """The smallest whole epoch second at or after ``value``."""
    seconds, rest = divmod(value - _EPOCH, _ONE_SECOND)
    return int(seconds) + (1 if rest else 0)


class SlotIndex:
    """One source's clinics, physicians and free slots, immutable once built.

    Safe to share between concurrent readers: queries never change it, and
    ``with_slot_changes`` returns a new index.

        index = builder.build()
        result = index.search_slots(query)
        index = index.with_slot_changes(added=[change], removed=[])  # swap the reference
    """

    __slots__ = (
        "_directory",
        "_physician_clinics",
        "_slots",
        "clinic_count",
        "dropped_slots",
        "folded_slots",
        "invalid_slots",
        "physician_count",
        "slot_count",
        "source_id",
    )

    source_id: str
    clinic_count: int
    physician_count: int
    slot_count: int
    dropped_slots: int  # slots of clinics the source did not describe
    invalid_slots: int  # slots ending at or before their start, or without a seat
    folded_slots: int  # slots served as part of another of the same identity, seats added
    _directory: Directory
    _slots: tuple[ClinicSlots | None, ...]  # by clinic number
    _physician_clinics: dict[str, tuple[int, ...]]  # clinics holding a physician's slots

    def __init__(self) -> None:
        raise TypeError("build a SlotIndex with SlotIndexBuilder, or SlotIndex.empty()")

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"SlotIndex is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"SlotIndex is immutable; cannot delete {name!r}")

    def __repr__(self) -> str:
        counts = f"{self.clinic_count} clinics, {self.physician_count} physicians"
        return f"<SlotIndex {self.source_id!r}: {counts}, {self.slot_count} slots>"

    @classmethod
    def empty(cls, source_id: str) -> SlotIndex:
        return cls._create(source_id, Directory({}, {}), (), 0, 0)

    @classmethod
    def _create(
        cls,
        source_id: str,
        directory: Directory,
        slots: Sequence[ClinicSlots | None],
        dropped: int,
        invalid: int,
        physician_clinics: dict[str, tuple[int, ...]] | None = None,
    ) -> SlotIndex:
        if physician_clinics is None:  # every clinic as if changed from none
            physician_clinics = physicians_moved({}, [None] * len(slots), dict(enumerate(slots)))
        index = object.__new__(cls)
        fields = {
            "source_id": source_id,
            "clinic_count": len(directory.clinics),
            "physician_count": len(directory.physicians),
            "slot_count": sum(len(s) for s in slots if s is not None),
            "dropped_slots": dropped,
            "folded_slots": sum(s.folded for s in slots if s is not None and s.folds),
            "invalid_slots": invalid,
            "_directory": directory,
            "_slots": tuple(slots),
            "_physician_clinics": physician_clinics,
        }
        for name, value in fields.items():
            object.__setattr__(index, name, value)
        return index

    # -- slots ---------------------------------------------------------------------

    def search_slots(self, query: SlotQuery) -> SlotResult:
        """Every slot matching all of ``query``'s criteria, ordered by (start, local id).

        At most ``query.limit`` slots; ``total`` is the exact number of matches.
        """
        after, before = _epoch_ceil(query.starts_after), _epoch_ceil(query.starts_before)
        if before <= after or query.physician_local_ids == ():
            return SlotResult(
                (),
                complete=True,
                total=0,
                ties_complete=True,
                ordered_by_distance=query.near is not None,
                total_exact=True,
            )
        near = query.near
        measured: dict[int, float] = {}
        numbers = self._directory.slot_clinics(
            query, self._physician_clinics, None if near is None else measured
        )
        distances = None if near is None else measuring(near, self._directory.points, measured)
        search = SlotSearch(
            after,
            before,
            query.appointment_types or None,  # empty: no constraint, as the federation reads it
            query.languages or None,
            query.physician_local_ids,
            distances,
        )
        search.add_all(self._slots, numbers)
        limit = max(query.limit, 0)
        found = search.first(self._slots, limit) if limit else []
        result = self._result(found, search.total, ties=not search.ties_cut)
        if near is not None:
            result = replace(result, ordered_by_distance=True)
        return result

    def _result(self, found: list[tuple[int, int]], total: int, *, ties: bool) -> SlotResult:
        source_id, records = self.source_id, self._directory
        slots: list[SlotRecord] = []
        clinics: dict[str, ClinicRecord] = {}
        physicians: dict[str, PhysicianRecord] = {}
        for number, pos in found:
            clinic = records.clinics[number]
            record = self._slots[number].record(pos, source_id, clinic.local_id)  # type: ignore[union-attr]
            slots.append(record)
            clinics[clinic.local_id] = clinic
            if record.physician_local_id is not None:
                physician = records.physicians.get(record.physician_local_id)
                if physician is not None:
                    physicians[physician.local_id] = physician
        return SlotResult(
            tuple(slots),
            len(slots) == total,
            total,
            clinics,
            physicians,
            ties_complete=ties,
            total_exact=True,  # counted on the index itself, every criterion applied
        )

    def folds(self, limit: int) -> list[tuple[SlotRecord, int]]:
        """Up to ``limit`` slots served for several (``folded_slots``), each with how
        many slots it holds, in clinic order: samples for an operator."""
        found: list[tuple[SlotRecord, int]] = []
        for number, held in enumerate(self._slots):
            if held is not None and held.folds and len(found) < limit:
                local_id = self._directory.clinics[number].local_id
                found += held.folded_records(self.source_id, local_id)
        return found[:limit]

    # -- clinics and physicians ---------------------------------------------------

    def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        """Every clinic meeting all of ``query``'s criteria, in the order they were added."""
        return self._directory.search_clinics(query)

    def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        """Physicians by local id, by identifier, or listing one of the clinics (any match)."""
        return self._directory.get_physicians(query)

    # -- changes ------------------------------------------------------------------------

    def changed_since(self, old: SlotIndex | None) -> dict[str, frozenset[int] | None] | None:
        """What may differ since ``old`` (``sources.slot_index.diff``)."""
        return changed_since(self, old)

    def with_slot_changes(
        self, added: Iterable[SlotChange], removed: Iterable[SlotChange]
    ) -> SlotIndex:
        """A new index with ``removed`` taken out, then ``added`` put in.

        Removal matches on (clinic, physician, start, end, type). Added slots sharing
        one are served as one, as a build does (``folded_slots``); an identity added
        again replaces its slot, so a caller changing one of several slots of an
        identity adds them all. Clinics no change touches are shared with this index,
        which stays as it was. Added slots of unknown clinics are dropped and counted
        in ``dropped_slots``, invalid ones in ``invalid_slots``.
        """
        removals: dict[int, set[Identity]] = {}
        additions: dict[int, list[SlotChange]] = {}
        dropped, invalid = self.dropped_slots, self.invalid_slots
        directory = self._directory
        for change in removed:
            number = directory.numbers.get(change.clinic_local_id)
            if number is not None:
                removals.setdefault(number, set()).add(change.identity)
        for change in added:
            number = directory.numbers.get(change.clinic_local_id)
            if number is None:
                dropped += 1
            elif not change.valid:
                invalid += 1
            else:
                additions.setdefault(number, []).append(change)
        slots = list(self._slots)
        changed: dict[int, ClinicSlots | None] = {}
        for number in sorted(removals.keys() | additions.keys()):
            old, local_id = self._slots[number], directory.clinics[number].local_id
            gone, new_slots = removals.get(number, set()), additions.get(number, [])
            new = with_changes(old, local_id, gone, new_slots, directory.languages_of(number))
            if new is not old:
                slots[number] = changed[number] = new
        held = physicians_moved(self._physician_clinics, self._slots, changed)
        return SlotIndex._create(self.source_id, directory, slots, dropped, invalid, held)
