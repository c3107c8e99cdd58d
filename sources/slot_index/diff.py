"""What changed between two versions of one source's ``SlotIndex``: ``changed_since``.

It reads the indexes' own fields: it belongs with ``index.py``, which it would make
too long. A bulk feed's load tells it to whoever watches the source (``sources.watch``), which
then reads again only that: by clinic, the starts of the slots added, taken out or
changed, or the whole clinic when its record or one of its physicians' changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sources.slot_index.columns import ClinicSlots
    from sources.slot_index.index import SlotIndex

__all__ = ["changed_since"]


def changed_since(new: SlotIndex, old: SlotIndex | None) -> dict[str, frozenset[int] | None] | None:
    """What may differ between ``old`` and ``new``, as searches see it: by clinic
    local id, the starts (UTC epoch seconds) of the slots added, taken out or
    changed there, or None when any of its slots may differ (its record or one of
    its physicians' changed); None as a whole when anything may (no ``old``, or
    another source's).

    Never misses a change. Clinics an incremental update did not touch are shared
    by both indexes and skipped at once; others are compared slot by slot.
    """

    if old is None or old.source_id != new.source_id:
        return None
    if old is new:
        return {}
    new_dir, old_dir = new._directory, old._directory
    same_directory = new_dir is old_dir
    changed: dict[str, frozenset[int] | None] = {}
    if not same_directory:
        changed.update(dict.fromkeys(old_dir.numbers.keys() - new_dir.numbers.keys()))
        moved = {
            pid
            for pid in old_dir.physicians.keys() | new_dir.physicians.keys()
            if old_dir.physicians.get(pid) != new_dir.physicians.get(pid)
        }
        for pid in moved:  # a physician's languages decide which slots a filter keeps
            for at, directory in ((new, new_dir), (old, old_dir)):
                for n in at._physician_clinics.get(pid, ()):
                    changed[directory.clinics[n].local_id] = None
    for number, clinic in enumerate(new_dir.clinics):
        if clinic.local_id in changed:
            continue
        slots = new._slots[number]
        if same_directory:
            before = old._slots[number]
        else:
            old_number = old_dir.numbers.get(clinic.local_id)
            if old_number is None or old_dir.clinics[old_number] != clinic:
                changed[clinic.local_id] = None
                continue
            before = old._slots[old_number]
        if slots is not before:
            starts = _changed_starts(slots, before)
            if starts:
                changed[clinic.local_id] = starts
    return changed


def _changed_starts(a: ClinicSlots | None, b: ClinicSlots | None) -> frozenset[int]:
    """The starts of the slots that differ between two versions of a clinic's slots."""
    facts_a = a.facts() if a is not None else frozenset()
    facts_b = b.facts() if b is not None else frozenset()
    return frozenset(fact[0] for fact in facts_a ^ facts_b)
