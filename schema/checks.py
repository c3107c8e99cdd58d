"""``slotCheck``: one slot checked against its booking source now, at the moment a
patient picks it (``resolvers/checks.py``), and what else the clinic has when it is gone.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

import schema.enums  # noqa: F401  (registers SlotState as a GraphQL enum)
from resolvers import checks as check_resolvers
from resolvers.ids import to_global_id
from resolvers.inputs import check_first
from schema.types import Context, Slot
from sources.records import SlotState


@strawberry.type(description="A slot checked against its booking source now, never from a cache.")
class SlotCheck:
    id: strawberry.ID
    state: SlotState
    checked_at: datetime = strawberry.field(description="When the source was asked.")
    as_of: datetime | None = strawberry.field(
        description="When the state held at the source: now for a source asked live, the "
        "feed's own time for a bulk feed; null when unknown."
    )
    slot: Slot | None = strawberry.field(
        description="The slot as a booking source lists it; null when none lists it free."
    )
    checked: strawberry.Private[check_resolvers.Checked]

    @strawberry.field(
        description="When the slot is not FREE: the next free slots of its clinic (the "
        "slot itself left out); empty when it is FREE."
    )
    async def next_slots(self, info: Context, first: int | None = 5) -> list[Slot]:
        count = check_first(first, 5, "nextSlots")
        found = await check_resolvers.instead(info.context, self.checked, count)
        return Slot.many(found)

    @classmethod
    def of(cls, checked: check_resolvers.Checked) -> SlotCheck:
        found = checked.found
        return cls(
            id=strawberry.ID(to_slot_id(checked.key)),
            state=checked.state,
            checked_at=checked.checked_at,
            as_of=checked.as_of,
            slot=Slot.from_found(found) if found is not None else None,
            checked=checked,
        )


def to_slot_id(key: str) -> str:
    return to_global_id("Slot", key)
