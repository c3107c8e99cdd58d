"""Slot searches: arguments in, one federated page out."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson

from resolvers.ids import decode_slot_cursor, encode_slot_cursor, slot_cursor_count
from resolvers.inputs import (
    MAX_HORIZON,
    MAX_WINDOW,
    check_first,
    check_ids,
    check_languages,
    check_point,
    check_radius,
    check_window,
)
from sources.records import AppointmentType, GeoPoint, Region, SlotQuery
from sources.search import (
    FoundSlot,
    MergedClinic,
    MergedPhysician,
    SlotIdentity,
    SlotPage,
    SlotPosition,
)

if TYPE_CHECKING:
    from resolvers.context import NextSlotsKey, RequestContext


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """A client's slot search: the query it runs, and the fingerprint of its filter
    that its cursors carry, so that a cursor is refused by a search with other
    filters (it would skip or repeat slots there)."""

    query: SlotQuery
    fingerprint: str

    def position(self, after: str | None) -> SlotPosition | None:
        """Where ``after`` resumes this search; ``UserInputError`` unless it is its cursor."""
        return decode_slot_cursor(after, self.fingerprint) if after else None

    def cursor(self, page: SlotPage, index: int) -> str:
        position = page.slots[index].position(page.offset + index + 1)
        return encode_slot_cursor(position, self.fingerprint, page.count)

    def end_cursor(self, page: SlotPage) -> str | None:
        """The cursor after the page's last slot, or where a page that settled no
        slot but has more to come resumes."""
        if page.slots:
            return self.cursor(page, len(page.slots) - 1)
        if page.resume is None:
            return None
        return encode_slot_cursor(page.resume, self.fingerprint, page.count)


def slot_request(
    now: datetime,
    first: int | None,
    *,
    near: GeoPoint | None,
    radius_km: float | None,
    region: Region | None,
    starts_after: datetime | None,
    starts_before: datetime | None,
    appointment_types: Sequence[AppointmentType] | None,
    languages: Sequence[str] | None,
    clinic_ids: Sequence[str] | None,
    physician_ids: Sequence[str] | None,
) -> SlotRequest:
    """The slot search a client asked for (the ``SlotFilter`` input and ``first``),
    checked, with its defaults applied: the one value the search runs on."""
    point = check_point(near) if near is not None else None
    lower, upper = check_window(now, starts_after, starts_before)
    query = SlotQuery(
        starts_after=lower,
        starts_before=upper,
        limit=check_first(first, 20, "slots"),
        near=point,
        radius_km=check_radius(point, radius_km),
        region=region,
        appointment_types=frozenset(appointment_types) if appointment_types else None,
        languages=check_languages(languages),
        clinic_keys=check_ids(clinic_ids, "Clinic", "clinicIds"),
        physician_keys=check_ids(physician_ids, "Physician", "physicianIds"),
    )
    return SlotRequest(query, _fingerprint(query, starts_after, starts_before))


def _fingerprint(
    query: SlotQuery, starts_after: datetime | None, starts_before: datetime | None
) -> str:
    """The filter as the client gave it, hashed. A window bound left to its default
    (now, 7 days later) moves with the clock between pages, so the window counts as
    given, not as applied; ``limit`` (``first``) may change from page to page."""
    near = query.near
    given = [
        [near.latitude, near.longitude] if near is not None else None,
        query.radius_km,
        query.region.value if query.region is not None else None,
        sorted(t.value for t in query.appointment_types or ()),
        sorted(query.languages or ()),
        sorted(query.clinic_keys) if query.clinic_keys is not None else None,
        sorted(query.physician_keys) if query.physician_keys is not None else None,
        *(b.astimezone(UTC).isoformat() if b else None for b in (starts_after, starts_before)),
    ]
    digest = hashlib.sha256(orjson.dumps(given)).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode("ascii")


async def search_slots(
    ctx: RequestContext, request: SlotRequest, after: str | None, path: list[str | int]
) -> SlotPage:
    page = await ctx.federation.search_slots(request.query, request.position(after))
    ctx.report(page.errors, path)
    carried = slot_cursor_count(after) if after else None
    if carried is not None:
        # The count of the search's first page, so that every page shows the same one.
        page.count = carried
    return page


async def slot_by_key(ctx: RequestContext, key: str) -> FoundSlot | None:
    """A slot by its global key, if some source still lists it as free."""
    identity = SlotIdentity.decode(key)
    if identity is None:
        return None
    start = identity.start
    if start < ctx.now or start > ctx.now + MAX_HORIZON:
        return None  # past slots cannot be booked; none is published that far ahead
    query = SlotQuery(
        starts_after=start,
        starts_before=start + timedelta(seconds=1),
        limit=50,
        clinic_keys=(identity.clinic_key,),
        physician_keys=(identity.physician_key,) if identity.physician_key else None,
    )
    page = await ctx.federation.search_slots(query)
    ctx.report(page.errors)
    return next((s for s in page.slots if s.identity == identity), None)


# One batched search asks each source for at most this many slots.
MAX_BATCH_SLOTS = 1000
# Rounds of a batched search before the owners still short keep what they have.
MAX_ROUNDS = 6
# Each round asks for this many times ``first`` slots per owner still short (the
# first one too): busy owners would otherwise crowd quiet ones out, round after round.
ROUND_GROWTH = 3


async def batch_next_slots(
    ctx: RequestContext, keys: Sequence[NextSlotsKey]
) -> list[list[FoundSlot]]:
    """``nextSlots`` of many clinics/physicians with one search per source.

    Owners with the same kind, ``first`` and types are searched together (in
    chunks of at most ``MAX_BATCH_SLOTS`` slots). When busier neighbours leave
    some owners short while more slots exist, the same search goes on after its
    last slot for those owners only (one more call per source, however many
    they are), so every list is exactly the owner's next slots.
    """
    groups: dict[tuple[int, frozenset[AppointmentType] | None, bool], list[NextSlotsKey]] = {}
    for key in keys:
        is_clinic = isinstance(key.owner, MergedClinic)
        groups.setdefault((key.first, key.types, is_clinic), []).append(key)
    answers: dict[NextSlotsKey, list[FoundSlot]] = {}

    async def run(
        first: int, types: frozenset[AppointmentType] | None, members: list[NextSlotsKey]
    ) -> None:
        window = SlotQuery(
            starts_after=ctx.now,
            starts_before=ctx.now + MAX_WINDOW,
            limit=first,
            appointment_types=types,
        )
        found: dict[NextSlotsKey, list[FoundSlot]] = {m: [] for m in members}
        pending, after, share = members, None, first * ROUND_GROWTH
        for _ in range(MAX_ROUNDS):
            owners = [m.owner for m in pending]
            count = min(share * len(owners), max(MAX_BATCH_SLOTS, first))
            page = await ctx.federation.slots_of(replace(window, limit=count), owners, after)
            ctx.report(page.errors)
            for member in pending:
                found[member] += [s for s in page.slots if _owned_by(s, member.owner)]
            pending = [m for m in pending if len(found[m]) < first]
            after = page.end()
            if not pending or after is None:
                break
            share *= ROUND_GROWTH
        for member in members:
            answers[member] = found[member][:first]

    runs = []
    for (first, types, _), members in groups.items():
        size = max(1, MAX_BATCH_SLOTS // (first * ROUND_GROWTH))
        runs += [run(first, types, members[i : i + size]) for i in range(0, len(members), size)]
    await asyncio.gather(*runs)
    return [answers[k] for k in keys]


def _owned_by(slot: FoundSlot, owner: MergedClinic | MergedPhysician) -> bool:
    """Whether the slot belongs to the owner, by the sources' own ids (not merged keys)."""
    record = slot.record
    local = record.clinic_local_id if isinstance(owner, MergedClinic) else record.physician_local_id
    return local is not None and local in owner.local_ids(record.source_id)
