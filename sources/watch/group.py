"""``Group``: one watched search, read once for all the subscribers that share its key.

A group reads each source on its own (``Federation`` over that one source), with a
coarse query covering every member: the key's cell centre with a radius of the
largest member radius plus the cell's half-diagonal, the members' windows rounded
to whole days, the key's types, languages, region, clinics and physicians; the
whole window, page after page. It keeps, per source, only the identities of the
free slots it read (with their clinic's position) and what that read covered.

A read is compared with the last one of the same source; only changes at the
source count:

- opened: a slot read now that the last read did not hold although it covered it
  (a slot newly covered, by a window sliding on or a wider radius, was there
  before: it is not opened), and that no other source holds;
- gone: a slot the last read held, still covered and not started, that this read
  did not find, and that no other source still holds.

The first read of a source is a baseline: nothing is opened. A failing source
keeps what it held (its slots are neither gone nor opened again when it comes
back); its failure is told once, as its recovery. Bulk feeds (sources serving
their own copy) are read after each load of it, only the clinics the load changed
when the source says which (``copy_loaded``) and the group's coverage has not
grown since its last read: the slots it holds of other clinics stand; live sources
at their pace (``sources.watch.pace``), turn by turn with the other groups.

Held slots are bounded: past ``max_slots`` per source, a read stops and the group
watches its window up to the start of its last slot only (logged once per group
and source, without what it watches).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sources.errors import SourceBusy, SourceError, SourceUnavailable
from sources.records import SlotQuery
from sources.search import Federation, FoundSlot, SlotIdentity
from sources.watch.changes import GoneSlot, GroupChange, SourceFailure
from sources.watch.held import Watched, compare
from sources.watch.keys import HALF_DIAGONAL_KM, day_ceil, day_of, day_start
from sources.watch.member import Matched, Member, matched
from sources.watch.scope import Coverage, Scope, merged_ids, merged_with, union_changes

if TYPE_CHECKING:
    from sources.base import CopyChanges, Source
    from sources.pool import SourcePool
    from sources.watch.keys import WatchKey
    from sources.watch.pace import Pace

__all__ = ["Group", "GroupSettings", "Publisher"]

logger = logging.getLogger("passerelle.watch")

# Slots asked per page of a read.
PAGE = 1000


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """What every group of one watch shares."""

    pool: SourcePool
    clock: Callable[[], datetime]
    pace_for: Callable[[Source], Pace]
    max_slots: int
    sync_s: float = 1.0  # how often the sources read are checked against the pool
    busy_retry_s: float = 0.05  # a copy's read finding no free bulkhead slot, again after


# Told each settled read of a source: its change (None: none, the read was a baseline),
# before any member hears it; False: not to be told (this instance lost its lease).
Publisher = Callable[[str, GroupChange | None], Awaitable[bool]]

# A read: the slots found, what it covered, whether it stopped at ``max_slots``, and
# what of the source it read (None: everything).
_Read = tuple[dict[SlotIdentity, "FoundSlot"], Coverage, bool, Scope | None]


class Group:
    """See the module docstring. ``members`` are the subscribers; ``run`` is its task."""

    def __init__(self, key: WatchKey, settings: GroupSettings) -> None:
        self.key = key
        self.settings = settings
        self.members: dict[Member, None] = {}
        self._watched: dict[str, Watched] = {}
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._centre = key.centre()
        self.task: asyncio.Task[None] | None = None
        # Between instances (sources.watch.relay): the radius other instances' members
        # need, who is told a change first, and the sources failing as last told.
        self.extra_radius_km = 0.0
        self.publisher: Publisher | None = None
        self.told_failing: tuple[SourceFailure, ...] = ()

    # -- members -------------------------------------------------------------------

    def join(self, member: Member) -> None:
        self.members[member] = None
        failing = self.told_failing
        if failing:
            # A subscriber joining while sources fail hears it at once, as a query would.
            now = self.settings.clock()
            member.hear(GroupChange(self.key, now, failing=failing), now)

    def leave(self, member: Member) -> None:
        self.members.pop(member, None)

    @property
    def read_once(self) -> frozenset[str]:
        """The sources this group has read (its baseline), or found failing."""
        return frozenset(sid for sid, w in self._watched.items() if w.held is not None or w.failing)

    def copy_loaded(self, source_id: str, changes: CopyChanges | None = None) -> None:
        """A copy was loaded; ``changes``: what it changed (None: anything may have)."""
        watched = self._watched.get(source_id)
        if watched is not None:
            watched.pending = union_changes(watched.pending, changes)
            watched.loaded.set()

    def forget(self) -> None:
        """Drop what the sources held (another instance reads them now)."""
        self._watched.clear()

    def restore(self, watched: dict[str, Watched]) -> None:
        """Take over what another instance's reads held (before reading)."""
        enabled = {s.id for s in self.settings.pool.enabled}
        self._watched = {sid: w for sid, w in watched.items() if sid in enabled}

    def sources_held(self) -> list[str]:
        return list(self._watched)

    def members_radius_km(self) -> float | None:
        """The largest radius of its members (None: the key has no cell)."""
        if self._centre is None:
            return None
        return max((m.wanted.query.radius_km or 0.0 for m in self.members), default=0.0)

    def state_of(self, source_id: str) -> Watched | None:
        return self._watched.get(source_id)

    # -- the task ------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name="watch group")

    async def run(self) -> None:
        seen: tuple[Source, ...] | None = None
        try:
            while True:
                enabled = self.settings.pool.enabled
                if enabled is not seen:
                    self._follow({s.id: s for s in enabled})
                    seen = enabled
                await asyncio.sleep(self.settings.sync_s)
        finally:
            loops = list(self._loops.values())
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._loops.clear()

    def _follow(self, enabled: dict[str, Source]) -> None:
        """Watch every enabled source, and no other (a source removed is forgotten)."""
        for source_id in [sid for sid in self._loops if sid not in enabled]:
            self._loops.pop(source_id).cancel()
            self._watched.pop(source_id, None)
        for source_id, source in enabled.items():
            if source_id not in self._loops:
                self._watched.setdefault(source_id, Watched())
                copy = source.refresh_interval_s is not None
                self._loops[source_id] = asyncio.create_task(self._guarded(source_id, copy))

    def _source(self, source_id: str) -> Source | None:
        return next((s for s in self.settings.pool.enabled if s.id == source_id), None)

    async def _guarded(self, source_id: str, copy: bool) -> None:
        """Watch one source; a bug of ours is logged (never what is watched) and the
        watch starts again a moment later."""
        while True:
            try:
                await (self._watch_copy(source_id) if copy else self._watch_live(source_id))
                return  # the source left the pool
            except Exception:
                logger.exception("watching source %s failed; again in a second", source_id)
                await asyncio.sleep(1.0)

    async def _watch_live(self, source_id: str) -> None:
        """A live source: read again at each turn of its pace."""
        while (source := self._source(source_id)) is not None:
            pace = self.settings.pace_for(source)
            outcome = await self._read(source, pace.turn)
            if isinstance(outcome, SourceUnavailable) and outcome.status == 429:
                pace.rate_limited()
            await self._settle(source_id, outcome)
            # The read's slots (whole FoundSlots, up to max_slots) are not kept while
            # waiting for the next turn: what is held is in ``Watched``, packed.
            del outcome

    async def _watch_copy(self, source_id: str) -> None:
        """A source serving its own copy: read at once, then after each load of it."""
        watched = self._watched[source_id]
        while (source := self._source(source_id)) is not None:
            watched.loaded.clear()
            changes, watched.pending = watched.pending, {}
            scope = Scope.of(changes) if changes is not None else None
            # A copy answers at once: as few pages as the search allows.
            outcome = await self._read(source, _at_once, self.settings.max_slots, scope)
            if isinstance(outcome, SourceError):
                watched.pending = union_changes(watched.pending, changes)  # still to be read
                if isinstance(outcome, SourceBusy):
                    await asyncio.sleep(self.settings.busy_retry_s)
                    continue
            await self._settle(source_id, outcome)
            del outcome  # not kept until the next load (up to max_slots whole FoundSlots)
            await watched.loaded.wait()

    # -- reading -------------------------------------------------------------------

    async def _read(
        self,
        source: Source,
        gate: Callable[[Source], Awaitable[None]],
        page_size: int = PAGE,
        scope: Scope | None = None,
    ) -> _Read | SourceError:
        """Every slot of the group's window at ``source``, ``page_size`` slots a call;
        only those in ``scope`` when the last read stands for the others (a baseline,
        the same or a narrower coverage, not capped), else all of them."""
        coverage = self._coverage(self.settings.clock())
        watched = self._watched.get(source.id)
        if (
            watched is None
            or watched.held is None
            or watched.coverage is None
            or watched.capped
            or not coverage.within(watched.coverage)
        ):
            scope = None
        if scope is not None and watched is not None:
            clinics = merged_with(scope.clinics, source.id, watched.held, watched.by_clinic)
            scope = Scope(clinics, scope.starts)
            if not scope.clinics:
                return {}, coverage, False, scope  # nothing of this source changed
        key = self.key
        query = SlotQuery(
            starts_after=coverage.lower,
            starts_before=coverage.upper,
            limit=min(page_size, self.settings.max_slots),
            near=coverage.centre,
            radius_km=coverage.radius_km,
            region=key.region,
            appointment_types=frozenset(key.types) if key.types else None,
            languages=frozenset(key.languages) if key.languages else None,
            clinic_keys=key.clinic_keys,
            physician_keys=key.physician_keys,
        )
        federation = Federation(self.settings.pool, sources=(source,), gate=gate)
        within = None if scope is None else {source.id: tuple(sorted(scope.clinics))}
        windows = [(coverage.lower, coverage.upper)] if scope is None else scope.windows(coverage)
        found: dict[SlotIdentity, FoundSlot] = {}
        cap = self.settings.max_slots
        for lower, upper in windows:
            query = replace(query, starts_after=lower, starts_before=upper)
            after = None
            while True:
                page = await federation.search_slots(query, after, within=within)
                if page.errors:
                    return page.errors[0]
                found.update((s.identity, s) for s in page.slots)
                after = page.end()
                if scope is not None and len(found) > cap:
                    # The changes alone hold too many: read everything, capped.
                    return await self._read(source, gate, page_size, None)
                if len(found) > cap or (after is not None and len(found) == cap):
                    # Enough: the window is watched up to the start of the cap-th slot only.
                    horizon = sorted(found.values(), key=_order)[cap - 1].record.start
                    kept = {i: s for i, s in found.items() if s.record.start < horizon}
                    capped = Coverage(coverage.lower, horizon, coverage.centre, coverage.radius_km)
                    return kept, capped, True, None
                if after is None:
                    break
        if scope is not None and (more := merged_ids(found.values(), source.id) - scope.clinics):
            # A changed clinic is one with others of this source: read them together.
            return await self._read(
                source, gate, page_size, Scope(scope.clinics | more, scope.starts)
            )
        return found, coverage, False, scope

    def _coverage(self, now: datetime) -> Coverage:
        """What a read covers now: every member's window, rounded to whole days, and
        around the cell's centre, every member's radius."""
        windows = [m.wanted.window(now) for m in self.members] or [(now, now)]
        lower = max(now, day_start(day_of(min(w[0] for w in windows))))
        upper = day_start(day_ceil(max(w[1] for w in windows)))
        radius = None
        if self._centre is not None:
            radii = [m.wanted.query.radius_km or 0.0 for m in self.members]
            radius = max(*radii, self.extra_radius_km, 0.0) + HALF_DIAGONAL_KM
        return Coverage(lower, max(lower, upper), self._centre, radius)

    # -- comparing -----------------------------------------------------------------

    async def _settle(self, source_id: str, outcome: _Read | SourceError) -> None:
        watched = self._watched.get(source_id)
        if watched is None or isinstance(outcome, SourceBusy):
            return
        failing_before = self._failing()
        now = self.settings.clock()
        opened: list[FoundSlot] = []
        gone: list[GoneSlot] = []
        baseline = watched.held is None
        if isinstance(outcome, SourceError):
            watched.failing = SourceFailure.of(outcome)
        else:
            watched.failing = None
            found, coverage, capped, scope = outcome
            others = [w.held for sid, w in self._watched.items() if sid != source_id and w.held]
            opened, gone = compare(watched, others, found, coverage, now, scope)
            if capped and not watched.capped:
                watched.capped = True
                logger.warning(
                    "a watched search holds over %d free slots of source %s: its alerts "
                    "cover only the earliest of its window",
                    self.settings.max_slots,
                    source_id,
                )
        failing = self._failing()
        change = None
        if opened or gone or failing != failing_before:
            change = GroupChange(self.key, now, tuple(opened), tuple(gone), failing)
        if self.publisher is not None and (change is not None or baseline):
            if not await self.publisher(source_id, change):
                return
        if change is not None:
            self.deliver(change, now)

    def deliver(self, change: GroupChange, now: datetime) -> None:
        """Every member takes what its filter matches of ``change``."""
        self.told_failing = change.failing
        # Worked out once per filter: subscribers with the same one take the same
        # slot objects, so that their alerts can be made once (``Alert.same_as``).
        taken: dict[tuple[object, ...], Matched] = {}
        for member in list(self.members):
            key = member.wanted.match_key
            share = taken.get(key)
            if share is None:
                share = taken[key] = matched(change, member.wanted, now)
            member.hear(change, now, share)

    def _failing(self) -> tuple[SourceFailure, ...]:
        return tuple(w.failing for w in self._watched.values() if w.failing is not None)


def _order(slot: FoundSlot) -> tuple[datetime, str]:
    return slot.record.start, slot.key


async def _at_once(source: Source) -> None:
    """No waiting: a copy is read at once."""
