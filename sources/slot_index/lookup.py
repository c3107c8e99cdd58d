"""One slot looked up in a ``SlotIndex``: ``holds(index, slot)``, whether the index still
serves that slot as free (its clinic, physician, start, end and type), for a bulk
feed's answer to a check of one slot (``Source.check_slot``). It reads the index's own
fields: it belongs with ``index.py``, which it would make too long.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sources.records import SlotRecord
    from sources.slot_index.index import SlotIndex

__all__ = ["holds"]


def holds(index: SlotIndex, slot: SlotRecord) -> bool:
    """Whether ``index`` serves ``slot`` (matched on its identity, not its local id)."""
    number = index._directory.numbers.get(slot.clinic_local_id)
    if number is None:
        return False
    slots = index._slots[number]
    if slots is None:
        return False
    start, end = int(slot.start.timestamp()), int(slot.end.timestamp())
    identity = (slot.physician_local_id or None, start, end, slot.appointment_type)
    return slots.find(identity) is not None
