"""A slot checked at its booking source now: ``check_slot(ctx, slot_id)``.

The slot is found as a query finds it (``slot_by_key``: the sources that list it as
free); the source that listed it is then asked about that one slot, now, never from a
cache (``Source.check_slot`` through ``SourcePool.call``: breaker, timeout, bulkhead).
Identical checks of one slot at one source, made while one is under way, wait for that
one: a thousand patients opening one link make one upstream call.

- no source lists the slot free any more (or its start has passed): ``GONE``;
- the source answers: its ``FREE``/``GONE``, and as of when (a bulk feed: its copy's
  time); ``UNKNOWN`` when it cannot be asked about one slot;
- the source fails: ``UNKNOWN``, its failure reported as a query reports it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from resolvers.clinics import next_slots
from resolvers.errors import RateLimitedError
from resolvers.ids import expect_global_id
from resolvers.slots import slot_by_key
from sources.errors import SourceError
from sources.records import SlotCheck, SlotState
from sources.search import MergedClinic, SlotIdentity

if TYPE_CHECKING:
    from resolvers.context import RequestContext
    from sources.base import Source
    from sources.pool import SourcePool
    from sources.records import SlotRecord
    from sources.search import FoundSlot

__all__ = ["CHECK_COST", "Checked", "check_slot", "clinic_of", "hand_off", "instead"]


@dataclass(frozen=True, slots=True)
class Checked:
    """A slot's check: its key, state, when checked and as of when it held, and the slot
    as a source listed it (None when none does any more)."""

    key: str
    state: SlotState
    checked_at: datetime
    as_of: datetime | None
    found: FoundSlot | None


# Checks under way, by (pool, source, slot local id): identical ones wait for the first.
_UNDER_WAY: dict[tuple[int, str, str], asyncio.Future[SlotCheck | SourceError]] = {}


# What a check costs against the client's rate limit, in requests: it calls a booking
# source, past every cache.
CHECK_COST = 5.0


async def check_slot(ctx: RequestContext, slot_id: str) -> Checked:
    """See the module docstring; ``UserInputError`` for an id that is not a slot's,
    ``RateLimitedError`` when the client's rate budget cannot pay for a check now (it
    costs ``CHECK_COST`` requests, the request carrying it included)."""
    key = expect_global_id(slot_id, "Slot", "id")
    if ctx.charge is not None:
        refused = await ctx.charge(CHECK_COST - 1)
        if refused is not None:
            raise RateLimitedError(refused)
    found = await slot_by_key(ctx, key)
    now = ctx.now
    if found is None:
        return Checked(key, SlotState.GONE, now, now, None)
    source = next((s for s in ctx.pool.enabled if s.id == found.record.source_id), None)
    if source is None:  # removed from the registry since the search
        return Checked(key, SlotState.UNKNOWN, now, None, found)
    outcome = await _collapsed(ctx.pool, source, found.record)
    if isinstance(outcome, SourceError):
        ctx.report([outcome])
        return Checked(key, SlotState.UNKNOWN, now, None, found)
    return Checked(key, outcome.state, now, outcome.as_of, found)


async def hand_off(ctx: RequestContext, slot_id: str) -> Checked:
    """A patient following a slot's link: the slot checked, and the hand-off counted for
    the source that listed it (``sources.pool.phantoms``: no physician, no patient)."""
    checked = await check_slot(ctx, slot_id)
    found = checked.found
    if checked.state is SlotState.UNKNOWN:
        return checked
    if found is not None:
        source_id, physician_id = found.record.source_id, found.record.physician_local_id
    else:
        # No source lists it any more: the source of its clinic, when only one lists
        # that clinic (else it cannot be told which one published it).
        clinic = await clinic_of(ctx, checked.key)
        sources = clinic.source_ids if clinic is not None else ()
        if len(sources) != 1:
            return checked
        source_id, physician_id = sources[0], None
    gone = checked.state is SlotState.GONE
    ctx.pool.phantoms.hand_off(source_id, gone=gone, physician_id=physician_id)
    return checked


async def _collapsed(pool: SourcePool, source: Source, slot: SlotRecord) -> SlotCheck | SourceError:
    under_way = (id(pool), source.id, slot.local_id)
    pending = _UNDER_WAY.get(under_way)
    if pending is None:
        pending = asyncio.ensure_future(pool.call(source, lambda s: s.check_slot(slot)))
        _UNDER_WAY[under_way] = pending
        pending.add_done_callback(lambda _: _UNDER_WAY.pop(under_way, None))
    # Shielded: a client leaving does not cancel the others' answer.
    return await asyncio.shield(pending)


async def clinic_of(ctx: RequestContext, key: str) -> MergedClinic | None:
    """The clinic of a slot's key, as the sources describe it now."""
    identity = SlotIdentity.decode(key)
    if identity is None:
        return None
    found = await ctx.federation.clinics_by_keys([identity.clinic_key])
    ctx.report(found.errors)
    return found.value.get(identity.clinic_key)


async def instead(ctx: RequestContext, checked: Checked, count: int) -> list[FoundSlot]:
    """The next ``count`` free slots of the checked slot's clinic, the slot itself left
    out (a stale copy may still list it); none when it is free."""
    if checked.state is SlotState.FREE or count <= 0:
        return []
    clinic = checked.found.clinic if checked.found is not None else None
    if clinic is None:
        clinic = await clinic_of(ctx, checked.key)
    if clinic is None:
        return []
    slots = await next_slots(ctx, clinic, count + 1)
    return [s for s in slots if s.key != checked.key][:count]
