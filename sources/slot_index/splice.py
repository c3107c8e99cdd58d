"""Applying an incremental update to one clinic's ``ClinicSlots``: a changed copy.

A feed's ``_since`` update touches a few slots per clinic; ``with_changes``
finds them by bisection and rebuilds each column as slices of the old one
around the edits (C-speed copies), never visiting slots one by one, so a
1,200-slot clinic takes a fraction of a millisecond. The old ``ClinicSlots``
is left as it was: indexes that share it keep answering from it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, overload

from sources.slot_index.build import SlotColumns, freeze
from sources.slot_index.columns import (
    NO_FOLDS,
    PARTITION_TABLES,
    Attribute,
    ClinicSlots,
    Folds,
    Identity,
    Languages,
    SlotChange,
    index_typecode,
    part_column,
    part_kind,
    partition_tables,
)
from sources.slot_index.texts import PackedTexts


def with_changes(
    old: ClinicSlots | None,
    clinic_local_id: str,
    removed: Iterable[Identity],
    added: Sequence[SlotChange],
    languages_of: Languages,
) -> ClinicSlots | None:
    """``old`` with ``removed`` taken out and ``added`` put in: added slots sharing an
    identity are served as one (the first one's booking details, their seats added),
    an identity already there is replaced. ``old`` itself when nothing changes; None
    when no slot is left.
    """
    if old is None:
        columns = SlotColumns()
        for change in added:
            physician, start, end, kind = change.identity
            url, phone, capacity = change.booking_url, change.booking_phone, change.capacity
            columns.append(physician, start, end, kind, url, phone, capacity)
        return freeze(clinic_local_id, columns, languages_of)
    by_identity: dict[Identity, SlotChange] = {}
    folds: dict[Identity, int] = {}  # how many slots each identity served for several holds
    for change in added:
        identity, size = change.identity, len(by_identity)
        first = by_identity.setdefault(identity, change)  # one hash in the common case
        if len(by_identity) == size:  # a slot of this identity came before
            by_identity[identity] = first.folded_with(change)
            folds[identity] = folds.get(identity, 1) + 1
    return _Splice(old, languages_of).apply(removed, by_identity, folds)


# An edit of a column: (position, 0 to insert before it | 1 to delete it, sort key, values).
_Edit = tuple[int, int, Any, tuple[int, ...]]


@overload
def _splice(old: array[int], edits: list[_Edit], field: int) -> array[int]: ...
@overload
def _splice(old: bytes | array[int], edits: list[_Edit], field: int) -> bytes | array[int]: ...
def _splice(old: bytes | array[int], edits: list[_Edit], field: int) -> bytes | array[int]:
    """``old`` with ``edits`` (sorted) applied, copying the untouched runs whole."""
    if isinstance(old, bytes):
        return bytes(_splice(array("B", old), edits, field))
    if old.typecode == "i" and any(
        not -(2**31) <= values[field] < 2**31 for _, op, _, values in edits if op == 0
    ):
        old = array("q", old)  # 32-bit starts, and a start past 2038 comes in
    out = array(old.typecode)
    at = 0
    for pos, op, _key, values in edits:
        if pos > at:
            out += old[at:pos]
            at = pos
        if op == 0:
            out.append(values[field])
        else:
            at = pos + 1
    out += old[at:]
    return out


class _Splice:
    """Applies one batch of changes to a ``ClinicSlots`` (see ``with_changes``)."""

    def __init__(self, old: ClinicSlots, languages_of: Languages) -> None:
        self.old = old
        self.languages_of = languages_of
        self.keys = list(old.part_ids)
        self.strings = list(old.strings)
        self.string_ids = {text: n for n, text in enumerate(self.strings)}

    def apply(
        self, removed: Iterable[Identity], added: Mapping[Identity, SlotChange], folds: Folds
    ) -> ClinicSlots | None:
        old = self.old
        removed = set(removed)
        deleted = sorted({p for i in removed if i not in added and (p := old.find(i)) is not None})
        replaced: dict[int, SlotChange] = {}
        inserted: list[SlotChange] = []
        for identity, change in added.items():
            pos = old.find(identity)
            if pos is None:
                inserted.append(change)
            else:
                replaced[pos] = change
        if not deleted and not inserted and not replaced:
            return old
        if len(deleted) == len(old) and not inserted:
            return None
        # Partitions are numbered for good: new ones come last, emptied ones stay.
        for change in inserted:
            key = (change.physician_local_id or None, change.appointment_type)
            if key not in self.keys:  # the old clinic's keys, and those added since
                self.keys.append(key)
        new = ClinicSlots()
        new.sort_key = old.sort_key
        kept = {i: n for i, n in old.folds.items() if i not in removed and i not in added}
        new.folds = {**kept, **folds} or NO_FOLDS
        if len(self.keys) == old.partition_count:
            for name in PARTITION_TABLES:
                setattr(new, name, getattr(old, name))
        else:
            partition_tables(new, self.keys, self.languages_of)
        edits: list[_Edit] = [(pos, 1, (), ()) for pos in deleted]
        for pos, change in replaced.items():
            order = (change.start, new.part_rank[old.part_of[pos]], str(change.end))
            edits += [(pos, 0, order, self._values(new, change)), (pos, 1, (), ())]
        for change in inserted:
            edits.append(self._insertion(new, change))
        edits.sort(key=lambda e: e[:3])
        self._clinic_order(new, edits)
        return new

    def _values(self, new: ClinicSlots, change: SlotChange) -> tuple[int, ...]:
        part = self.keys.index((change.physician_local_id or None, change.appointment_type))
        return (
            change.start,
            change.end - change.start,
            part,
            self._intern(change.booking_url),
            self._intern(change.booking_phone),
            change.capacity,
        )

    def _intern(self, text: str | None) -> int:
        sid = self.string_ids.get(text)
        if sid is None:
            sid = self.string_ids[text] = len(self.strings)
            self.strings.append(text)
        return sid

    def _insertion(self, new: ClinicSlots, change: SlotChange) -> _Edit:
        """Where a new slot goes in clinic order: after the slots its local id follows."""
        old, rank = self.old, new.part_rank
        values = self._values(new, change)
        start, end, part = change.start, change.end, values[2]
        key = (rank[part], str(end))
        at = bisect_left(old.starts, start)
        stop = bisect_right(old.starts, start, at)
        while at < stop:
            other = (rank[old.part_of[at]], str(start + old.durations[at]))
            if other > key:
                break
            at += 1
        return (at, 0, (start, *key), values)

    def _clinic_order(self, new: ClinicSlots, edits: list[_Edit]) -> None:
        old = self.old
        new.starts = _splice(old.starts, edits, 0)
        new.durations = _splice(old.durations, edits, 1)
        part_of = old.part_of
        kind = part_kind(len(self.keys))
        if kind != ("bytes" if isinstance(part_of, bytes) else part_of.typecode):
            part_of = part_column(part_of, len(self.keys))  # outgrew bytes (or 16 bits)
        new.part_of = _splice(part_of, edits, 2)
        new.strings = (
            self.old.strings
            if len(self.strings) == len(self.old.strings)
            else PackedTexts.of(self.strings)
        )
        typecode = index_typecode(len(self.strings))
        inserted = [e for e in edits if e[1] == 0]
        for name, field, code in (("url_ids", 3, typecode), ("phone_ids", 4, typecode)):
            setattr(new, name, self._attribute(getattr(old, name), edits, inserted, field, code))
        new.capacities = self._attribute(old.capacities, edits, inserted, 5, "I")

    def _attribute(
        self, old: Attribute, edits: list[_Edit], inserted: list[_Edit], field: int, code: str
    ) -> Attribute:
        """An attribute column with the edits: by partition while that still holds."""
        if isinstance(old, tuple):
            by_part: list[int | None] = [*old, *[None] * (len(self.keys) - len(old))]
            for _pos, _op, _key, values in inserted:
                part, value = values[2], values[field]
                if by_part[part] is None:
                    by_part[part] = value
                elif by_part[part] != value:
                    break
            else:
                return tuple(v or 0 for v in by_part)  # None: a partition left empty
            old = array(code, map(old.__getitem__, self.old.part_of))
        elif old.typecode != code:
            old = array(code, old)
        return _splice(old, edits, field)


def physicians_moved(
    held_before: Mapping[str, tuple[int, ...]],
    slots: Sequence[ClinicSlots | None],
    changed: Mapping[int, ClinicSlots | None],
) -> dict[str, tuple[int, ...]]:
    """A ``SlotIndex``'s clinics holding each physician's slots (``held_before``, by
    clinic number, over ``slots``) once these clinics ``changed`` (a copy)."""
    held = dict(held_before)
    now_at: dict[str, list[int]] = {}
    for number, new in changed.items():
        old = slots[number]
        for physician in old.by_physician if old is not None else ():
            now_at.setdefault(physician, [])
        for physician in new.by_physician if new is not None else ():
            now_at.setdefault(physician, []).append(number)
    for physician, at in now_at.items():
        at += [n for n in held.get(physician, ()) if n not in changed]
        if at:
            held[physician] = tuple(sorted(at))
        else:
            held.pop(physician, None)
    return held
