"""``node(id:)``: any global id back to its object, or null when no source has it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resolvers.ids import from_global_id
from resolvers.slots import slot_by_key

if TYPE_CHECKING:
    from resolvers.context import RequestContext
    from sources.search import FoundSlot, MergedClinic, MergedPhysician


async def resolve_node(
    ctx: RequestContext, global_id: str
) -> MergedClinic | MergedPhysician | FoundSlot | None:
    type_name, key = from_global_id(global_id)
    if type_name == "Clinic":
        found: MergedClinic | None = await ctx.clinic_loader.load(key)
        return found
    if type_name == "Physician":
        doctor: MergedPhysician | None = await ctx.physician_loader.load(key)
        return doctor
    return await slot_by_key(ctx, key)
