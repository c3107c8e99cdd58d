"""Slot searches: arguments in, one federated page out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from resolvers.ids import decode_slot_cursor, encode_slot_cursor
from resolvers.inputs import (
    MAX_WINDOW,
    check_first,
    check_ids,
    check_languages,
    check_point,
    check_radius,
    check_window,
)
from sources.federation import FoundSlot, SlotPage, SlotPosition, SlotSearch
from sources.merge import MergedClinic, SlotKey
from sources.records import AppointmentType, Region

if TYPE_CHECKING:
    from resolvers.context import NextSlotsKey, RequestContext


@dataclass(frozen=True, slots=True)
class SlotArguments:
    """The ``SlotFilter`` input, as plain values (``near`` as (lat, lon))."""

    near: tuple[float, float] | None = None
    radius_km: float | None = None
    region: Region | None = None
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    appointment_types: Sequence[AppointmentType] | None = None
    languages: Sequence[str] | None = None
    clinic_ids: Sequence[str] | None = None
    physician_ids: Sequence[str] | None = None


def build_search(ctx: RequestContext, args: SlotArguments) -> SlotSearch:
    near = check_point(*args.near) if args.near is not None else None
    lower, upper = check_window(ctx.now, args.starts_after, args.starts_before)
    return SlotSearch(
        starts_after=lower,
        starts_before=upper,
        near=near,
        radius_km=check_radius(near, args.radius_km),
        region=args.region,
        appointment_types=frozenset(args.appointment_types) if args.appointment_types else None,
        languages=check_languages(args.languages),
        clinic_keys=check_ids(args.clinic_ids, "Clinic", "clinicIds"),
        physician_keys=check_ids(args.physician_ids, "Physician", "physicianIds"),
    )


async def search_slots(
    ctx: RequestContext,
    args: SlotArguments,
    first: int | None,
    after: str | None,
    path: list[str | int],
) -> SlotPage:
    count = check_first(first, 20)
    position = decode_slot_cursor(after) if after else None
    search = build_search(ctx, args)
    page = await ctx.federation.search_slots(search, count, position)
    ctx.report(page.errors, path)
    return page


def slot_cursor(page: SlotPage, index: int) -> str:
    slot = page.slots[index]
    return encode_slot_cursor(
        SlotPosition(slot.record.start, slot.distance_km, slot.key, page.offset + index + 1)
    )


async def slot_by_key(ctx: RequestContext, key: str) -> FoundSlot | None:
    """A slot by its global key, if some source still lists it as free."""
    parts = SlotKey.decode(key)
    if parts is None:
        return None
    try:
        start = datetime.fromisoformat(parts.start)
    except ValueError:
        return None
    if start.tzinfo is None or start < ctx.now:
        return None
    search = SlotSearch(
        starts_after=start,
        starts_before=start + timedelta(seconds=1),
        clinic_keys=(parts.clinic_key,),
        physician_keys=(parts.physician_key,) if parts.physician_key else None,
    )
    page = await ctx.federation.search_slots(search, 50)
    ctx.report(page.errors)
    return next((s for s in page.slots if s.key == key), None)


async def batch_next_slots(
    ctx: RequestContext, keys: Sequence[NextSlotsKey]
) -> list[list[FoundSlot]]:
    """``nextSlots`` of many clinics/physicians with one search per source.

    Owners with the same ``first`` and types are searched together; an owner
    left short by a busier neighbour while more slots exist gets a search of
    its own, so every list is exactly the owner's next slots.
    """
    groups: dict[tuple[int, frozenset[AppointmentType] | None, bool], list[NextSlotsKey]] = {}
    for key in keys:
        is_clinic = isinstance(key.owner, MergedClinic)
        groups.setdefault((key.first, key.types, is_clinic), []).append(key)
    answers: dict[NextSlotsKey, list[FoundSlot]] = {}
    for (first, types, is_clinic), members in groups.items():
        owners = [m.owner for m in members]
        search = SlotSearch(
            starts_after=ctx.now,
            starts_before=ctx.now + MAX_WINDOW,
            appointment_types=types,
        )
        page = await ctx.federation.slots_of(search, owners, first * len(owners))
        ctx.report(page.errors)
        for member in members:
            mine = [s for s in page.slots if _owned_by(s, member.owner, is_clinic)][:first]
            if len(mine) < first and page.has_next and len(owners) > 1:
                own = await ctx.federation.slots_of(search, [member.owner], first)
                ctx.report(own.errors)
                mine = own.slots[:first]
            answers[member] = mine
    return [answers[k] for k in keys]


def _owned_by(slot: FoundSlot, owner: object, is_clinic: bool) -> bool:
    target = slot.clinic if is_clinic else slot.physician
    return target is not None and target.key == owner.key  # type: ignore[attr-defined]
