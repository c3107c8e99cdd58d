"""The federated queries: fan a search out to the sources, merge, order, paginate.

``Federation`` is what the resolvers call. It asks every enabled source that
can cover a query, concurrently (``SourcePool.fan_out``), re-checks every
filter on what comes back (an upstream is never trusted to have filtered),
merges clinics and physicians across sources (``sources.search.merge``), removes
duplicate slots (two of one source with one identity are one slot, seats added)
and returns one ordered page.

Slot pages use keyset pagination over ``(start, distance, key)``. Each source
returns at most ``limit`` slots ordered by start; a source that had more is
*truncated*, and only slots starting before the earliest last-start of the
truncated sources (the *horizon*) are known to be complete and ordered. The
search widens ``limit`` until a full page lies before the horizon, asking again only
the truncated sources whose answer ends before the slot that follows a full page.

The module is one class and stays whole (past 400 lines): every read of a request
shares its snapshot of the sources, its deadline and its phase budget. The values
it takes and gives are in ``sources.search.results``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sources.geo import distance_km
from sources.names import normalize_name
from sources.pool.fanout import FanOutResult
from sources.pool.reads import Read, clinics_read, physicians_read, slots_read
from sources.records import (
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    PhysicianQuery,
    ProblemSeverity,
    SlotQuery,
    SlotRecord,
    SlotResult,
)
from sources.search.merge import (
    EPOCH,
    MergedClinic,
    MergedPhysician,
    SlotIdentity,
    identifier_key,
    merge_clinics,
    merge_indexed,
    merge_physicians,
    name_key,
    parse_identifier_key,
    parse_name_key,
    parse_source_key,
    source_key,
)
from sources.search.results import (
    CountKind,
    Found,
    FoundClinic,
    FoundSlot,
    SlotCount,
    SlotPage,
    SlotPosition,
    SourceUse,
    distance_rank,
    found_of,
    within,
)

if TYPE_CHECKING:
    from sources.base import Source
    from sources.errors import SourceError
    from sources.pool.fanout import Gate, SourcePool

T = TypeVar("T")
U = TypeVar("U")

# Past the fan-out deadline, a further phase of the same request still waits this long.
MIN_PHASE_BUDGET_S = 0.2

# Queries sent to sources have their time bounds widened to whole minutes, so that
# requests made within the same minute ask the same thing (and share cache entries);
# the exact bounds are re-checked on what comes back.
QUERY_GRANULARITY = timedelta(minutes=1)

# Each source is asked for at least this many slots: many slots share a start
# (sessions begin on the hour), and an answer cut inside such a tie settles nothing
# before it, which would cost another round of calls.
MIN_SOURCE_LIMIT = 25

# A page is widened at most this far per source before the search settles for
# the complete part it has (and says there is a next page).
MAX_SOURCE_LIMIT = 4000

# The largest count GraphQL's Int can carry: a larger one is shown as at least this.
MAX_COUNT = 2**31 - 1


class Federation:
    """Federated reads over the pool's enabled sources (snapshotted per instance)."""

    def __init__(
        self,
        pool: SourcePool,
        deadline_s: float | None = None,
        *,
        sources: Sequence[Source] | None = None,
        gate: Gate | None = None,
    ) -> None:
        """``deadline_s``: how long, from now, this federation may wait on sources in all
        (a request's fan-out deadline); past it, it answers with what it has.
        ``sources``: only those (default: every enabled source); ``gate``: every read
        is a background call made once the gate lets it (the watch's, paced)."""
        self.pool = pool
        self.sources: tuple[Source, ...] = pool.enabled if sources is None else tuple(sources)
        self._gate = gate
        self.order: Mapping[str, int] = pool.order
        # The sources this federation has asked, in the order first asked.
        self.asked: dict[str, SourceUse] = {}
        self._deadline = None if deadline_s is None else time.monotonic() + deadline_s

    def rests_on(self, source_ids: Iterable[str]) -> None:
        """Count these sources as asked, though this federation did not call them: what
        it serves rests on their answers all the same (a subscription's event, read by
        the watch), so that their freshness is told as a query's is."""
        for source_id in source_ids:
            self.asked.setdefault(source_id, SourceUse())

    async def _fan_out(
        self, sources: Iterable[Source], read_for: Callable[[Source], Read[T]]
    ) -> FanOutResult[T]:
        sources = list(sources)
        for source in sources:
            self.asked.setdefault(source.id, SourceUse())
        budget = None
        if self._deadline is not None:
            # A later phase (slots after a clinic lookup) still gets a moment, so the
            # sources that answer fast are not starved by one that used the budget up.
            budget = max(self._deadline - time.monotonic(), MIN_PHASE_BUDGET_S)
        fan = await self.pool.fan_out(sources, read_for, budget, self._gate)
        for source_id, served in fan.served.items():
            use = self.asked[source_id]
            use.from_cache = use.from_cache or served.from_cache
            use.age_s = max(use.age_s, served.age_s)
        return fan

    # -- clinics and physicians --------------------------------------------------

    async def clinics_by_keys(self, keys: Sequence[str]) -> Found[dict[str, MergedClinic]]:
        """Merged clinics for merged keys; keys no source knows are absent."""
        identifiers = tuple(i for k in keys if (i := parse_identifier_key(k)) is not None)
        names = {p for k in keys if (p := parse_name_key(k)) is not None}
        by_source: dict[str, list[str]] = {}
        for k in keys:
            if (sk := parse_source_key(k)) is not None:
                by_source.setdefault(sk[0], []).append(sk[1])
        postal_codes = tuple(sorted({postal for _, postal in names}))
        wanted_names = {f"n:{n}|{p}" for n, p in names}
        # Up to three lookups, each one batched read per source, all at once.
        none: FanOutResult[list[ClinicRecord]] = FanOutResult({}, [])
        by_identifier = clinics_read(ClinicQuery(identifiers=identifiers))
        by_postal = clinics_read(ClinicQuery(postal_codes=postal_codes))
        targets = [s for s in self.sources if s.id in by_source]
        fans = await asyncio.gather(
            self._fan_out(self.sources, lambda s: by_identifier) if identifiers else _done(none),
            self._fan_out(self.sources, lambda s: by_postal) if postal_codes else _done(none),
            self._fan_out(
                targets, lambda s: clinics_read(ClinicQuery(local_ids=tuple(by_source[s.id])))
            ),
        )
        records = _flatten(fans[0].results.values()) + _flatten(fans[2].results.values())
        # A postal code is shared by neighbours: keep only the clinics of the asked names.
        records += [r for r in _flatten(fans[1].results.values()) if name_key(r) in wanted_names]
        errors = [e for fan in fans for e in fan.errors]
        merged = merge_clinics(records, self.order)
        return Found(_assign_clinics(keys, merged), errors)

    async def search_clinics(self, search: ClinicQuery) -> Found[list[FoundClinic]]:
        """Every clinic matching ``search`` (the same value every source is asked),
        merged, re-checked and ordered (distance, name, key)."""
        read = clinics_read(search)
        fan = await self._fan_out(self.sources, lambda s: read)
        wanted = (search.name_contains or "").strip()
        wanted_norm = normalize_name(wanted) if wanted else ""
        found = []
        for clinic in merge_clinics(_flatten(fan.results.values()), self.order):
            records = [
                r
                for r in clinic.records
                if within(r.location, search.near, search.radius_km)
                and (search.region is None or r.address.region == search.region)
                and (not wanted_norm or wanted_norm in normalize_name(r.name))
            ]
            if not records:
                continue
            clinic = MergedClinic(clinic.key, tuple(records))
            distance = (
                distance_km(search.near, clinic.location)
                if search.near is not None and clinic.location is not None
                else None
            )
            found.append(FoundClinic(clinic, distance))
        found.sort(key=FoundClinic.sort_key)
        return Found(found, fan.errors)

    async def physicians_by_keys(self, keys: Sequence[str]) -> Found[dict[str, MergedPhysician]]:
        identifiers = tuple(i for k in keys if (i := parse_identifier_key(k)) is not None)
        by_source: dict[str, list[str]] = {}
        for k in keys:
            if (sk := parse_source_key(k)) is not None:
                by_source.setdefault(sk[0], []).append(sk[1])

        targets = [s for s in self.sources if identifiers or s.id in by_source]
        fan = await self._fan_out(
            targets,
            lambda s: physicians_read(
                PhysicianQuery(identifiers=identifiers, local_ids=tuple(by_source.get(s.id, ())))
            ),
        )
        merged = merge_physicians(_flatten(fan.results.values()), self.order)
        out: dict[str, MergedPhysician] = {}
        for physician in merged:
            for record in physician.records:
                for k in [identifier_key(i) for i in record.identifiers] + [
                    source_key(record.source_id, record.local_id)
                ]:
                    out.setdefault(k, physician)
        return Found({k: out[k] for k in keys if k in out}, fan.errors)

    async def physicians_of_clinics(
        self, clinics: Sequence[MergedClinic]
    ) -> Found[dict[str, list[MergedPhysician]]]:
        """The physicians working at each clinic, keyed by clinic key."""
        wanted = {
            s.id: tuple(lid for c in clinics for lid in c.local_ids(s.id)) for s in self.sources
        }
        targets = [s for s in self.sources if wanted[s.id]]
        fan = await self._fan_out(
            targets, lambda s: physicians_read(PhysicianQuery(clinic_local_ids=wanted[s.id]))
        )
        merged = merge_physicians(_flatten(fan.results.values()), self.order)
        out: dict[str, list[MergedPhysician]] = {c.key: [] for c in clinics}
        for clinic in clinics:
            local = {(r.source_id, r.local_id) for r in clinic.records}
            for physician in merged:
                if any(
                    (r.source_id, cid) in local
                    for r in physician.records
                    for cid in r.clinic_local_ids
                ):
                    out[clinic.key].append(physician)
            out[clinic.key].sort(key=lambda p: (normalize_name(p.display_name), p.key))
        return Found(out, fan.errors)

    async def clinics_of_physicians(
        self, physicians: Sequence[MergedPhysician]
    ) -> Found[dict[str, list[MergedClinic]]]:
        wanted = {
            s.id: tuple(
                cid
                for p in physicians
                for r in p.records
                if r.source_id == s.id
                for cid in r.clinic_local_ids
            )
            for s in self.sources
        }
        targets = [s for s in self.sources if wanted[s.id]]
        fan = await self._fan_out(
            targets, lambda s: clinics_read(ClinicQuery(local_ids=wanted[s.id]))
        )
        merged = merge_clinics(_flatten(fan.results.values()), self.order)
        by_local = {(r.source_id, r.local_id): c for c in merged for r in c.records}
        out: dict[str, list[MergedClinic]] = {}
        for physician in physicians:
            found: dict[str, MergedClinic] = {}
            for r in physician.records:
                for cid in r.clinic_local_ids:
                    clinic = by_local.get((r.source_id, cid))
                    if clinic is not None:
                        found.setdefault(clinic.key, clinic)
            out[physician.key] = sorted(
                found.values(), key=lambda c: (normalize_name(c.name), c.key)
            )
        return Found(out, fan.errors)

    # -- slots ---------------------------------------------------------------------

    async def search_slots(
        self,
        query: SlotQuery,
        after: SlotPosition | None = None,
        *,
        within: Mapping[str, Sequence[str]] | None = None,
    ) -> SlotPage:
        """One page of ``query.limit`` slots after ``after``, ordered by (start, distance, key).

        ``within``: by source id, the only clinics (that source's own ids) to search
        there, besides the query's criteria; for a watcher reading again only the
        clinics a load changed."""
        errors: list[SourceError] = []
        clinics: dict[str, tuple[str, ...]] | None = None
        physicians: dict[str, tuple[str, ...]] | None = None
        if query.clinic_keys is not None:
            found = await self.clinics_by_keys(query.clinic_keys)
            errors += found.errors
            clinics = {s.id: _local_ids(found.value.values(), s.id) for s in self.sources}
        if query.physician_keys is not None:
            doctors = await self.physicians_by_keys(query.physician_keys)
            errors += doctors.errors
            physicians = {s.id: _local_ids(doctors.value.values(), s.id) for s in self.sources}
        scoped = {
            s.id: _project(
                query,
                clinics[s.id] if clinics is not None else None,
                physicians[s.id] if physicians is not None else None,
            )
            for s in self.sources
        }
        for source_id, ids in (within or {}).items():
            asked = scoped.get(source_id)
            if asked is not None:
                kept = ids if asked.clinic_local_ids is None else _kept(asked.clinic_local_ids, ids)
                scoped[source_id] = replace(asked, clinic_local_ids=tuple(kept))
        # A source that knows none of the asked clinics or physicians cannot cover the query.
        targets = [s for s in self.sources if _covers(scoped[s.id])]
        page = await self._search_scoped(query, scoped, targets, after)
        if errors and page.count.kind is CountKind.EXACT:
            # A source whose clinics or physicians could not be looked up was not asked.
            page.count = SlotCount(page.count.value, CountKind.AT_LEAST)
        page.errors = errors + page.errors
        return page

    async def slots_of(
        self,
        query: SlotQuery,
        owners: Sequence[MergedClinic | MergedPhysician],
        after: SlotPosition | None = None,
    ) -> SlotPage:
        """Slots of given clinics, or of given physicians (not mixed), in one search per source."""
        of_clinics = all(isinstance(o, MergedClinic) for o in owners)
        scoped = {}
        for source in self.sources:
            ids = _local_ids(owners, source.id)
            scoped[source.id] = _project(query, *((ids, None) if of_clinics else (None, ids)))
        targets = [s for s in self.sources if _covers(scoped[s.id])]
        # The owners' own records take part in the merge, so a slot's clinic is the
        # same merged clinic (same key) as its owner, whatever else the sources sent.
        known = [r for o in owners if isinstance(o, MergedClinic) for r in o.records]
        return await self._search_scoped(query, scoped, targets, after, known)

    async def _search_scoped(
        self,
        query: SlotQuery,
        scoped: Mapping[str, SlotQuery],
        targets: Sequence[Source],
        after: SlotPosition | None,
        known: Sequence[ClinicRecord] = (),
    ) -> SlotPage:
        """``scoped``: the query as each source is asked it (its own ids)."""
        first = query.limit
        lower = max(query.starts_after, after.start) if after else query.starts_after
        since, until = _floor(lower), _ceil(query.starts_before)
        cut = after.sort_key() if after is not None else None
        results: dict[str, SlotResult] = {}
        errors: list[SourceError] = []
        folded: dict[str, int] = {}  # by source: slots served as part of another of its own
        pending = list(targets)
        limit = min(max(first + 1, MIN_SOURCE_LIMIT), MAX_SOURCE_LIMIT)
        while True:

            def ask(source: Source, limit: int = limit) -> Read[SlotResult]:
                asked = scoped[source.id]
                return slots_read(
                    replace(asked, starts_after=since, starts_before=until, limit=limit)
                )

            fan = await self._fan_out(pending, ask)
            errors += fan.errors
            for error in fan.errors:
                # A source failing in a later round contributes nothing: its earlier,
                # shorter answer would keep the horizon low and bring it back each round.
                results.pop(error.source_id, None)
            results.update(fan.results)
            folded = {}
            slots = self._collect(query, scoped, results, known, folded)
            if cut is not None:
                slots = [s for s in slots if s.sort_key() > cut]
            truncated = [sid for sid, r in results.items() if not r.complete and r.slots]
            bounds = [_bound(results[sid], query.near) for sid in truncated]
            horizon = min((b[0] for b in bounds), default=None)
            settled = _settled(slots, bounds, first + 1)
            # ``first`` settled slots make a full page; with a truncated source left
            # there is a next page too (even if its slots may all be filtered out).
            if len(settled) >= first or not truncated or limit >= MAX_SOURCE_LIMIT:
                break
            limit = min(limit * 4, MAX_SOURCE_LIMIT)
            binding = _binding(slots, first, dict(zip(truncated, bounds, strict=True)))
            pending = [s for s in targets if s.id in binding]
        offset = after.offset if after else 0
        page = settled[:first]
        has_next = len(settled) > first or bool(truncated)
        resume = None
        if has_next and not page and horizon is not None:
            # Nothing settled before the horizon: resume there rather than strand the client.
            resume = SlotPosition(horizon, -1.0, None, offset)
        # A source that knows its data lack slots it published (a LOSS problem: a failed
        # file, a search it could not finish) cannot be counted exactly.
        lossy = any(
            problem.severity is ProblemSeverity.LOSS
            for source in targets
            if source.id in results
            for problem in self.pool.adapter_problems(source)
        )
        for source_id, n in folded.items():
            self.pool.health(source_id).served_as_one(n)
        count = self._count(query, results, bool(errors) or lossy, slots, offset, set(folded))
        return SlotPage(page, has_next, count, offset, errors, resume)

    def _collect(
        self,
        query: SlotQuery,
        scoped: Mapping[str, SlotQuery],
        results: Mapping[str, SlotResult],
        known: Sequence[ClinicRecord] = (),
        folded: dict[str, int] | None = None,
    ) -> list[FoundSlot]:
        """Every slot that truly matches, merged across sources, ordered, without duplicates.

        The same slot from two sources is one slot. Two slots of one source (two local
        ids) with one identity are two seats the API cannot tell apart: one slot, the
        first one's booking details, their seats added, counted by source in ``folded``.
        """
        # In the sources' order, not the order their answers came in: the same answers
        # give the same records in the same order, whose merge is remembered.
        answers = [results[sid] for sid in sorted(results)]
        clinic_of, physician_of = merge_indexed(
            [*known, *(c for r in answers for c in r.clinics.values())],
            (p for r in answers for p in r.physicians.values()),
            self.order,
        )
        near, radius = query.near, query.radius_km
        # Worked out once per merged clinic, not once per slot: its distance, and
        # whether it is within the radius (a slot out of it is out before its identity
        # is made: its duplicates, of the same clinic, are out as well).
        distances: dict[int, float | None] = {}
        # The languages a slot speaks (its physician's, else its clinic's), worked out
        # once per merged physician or clinic: a property that walks their records.
        spoken: dict[int, frozenset[str]] = {}
        found: dict[SlotIdentity, FoundSlot] = {}
        # The window in UTC, the zone of a slot identity's instants: a slot already made
        # of an answer is checked on those (one zone: no offsets worked out).
        asked_window = (query.starts_after, query.starts_before)
        window = (query.starts_after.astimezone(UTC), query.starts_before.astimezone(UTC))
        for source_id in sorted(results, key=lambda sid: self.order.get(sid, len(self.order))):
            asked = scoped[source_id]
            clinic_set = None if asked.clinic_local_ids is None else set(asked.clinic_local_ids)
            physician_set = (
                None if asked.physician_local_ids is None else set(asked.physician_local_ids)
            )
            result = results[source_id]
            made = found_of(result)
            for index, slot in enumerate(result.slots):
                if clinic_set is not None and slot.clinic_local_id not in clinic_set:
                    continue
                if physician_set is not None and slot.physician_local_id not in physician_set:
                    continue
                clinic = clinic_of.get((source_id, slot.clinic_local_id))
                if clinic is None:
                    continue  # a slot whose clinic the source did not describe
                physician = (
                    physician_of.get((source_id, slot.physician_local_id))
                    if slot.physician_local_id
                    else None
                )
                this = made[index]
                if this is None:
                    if not _slot_matches(query, asked_window, slot.start, slot.end, slot, clinic):
                        continue
                else:
                    made_at = this.identity
                    if not _slot_matches(query, window, made_at.start, made_at.end, slot, clinic):
                        continue
                if query.languages:
                    owner = physician if physician is not None else clinic
                    speaks = spoken.get(id(owner))
                    if speaks is None:
                        speaks = spoken[id(owner)] = frozenset(owner.languages)
                    if query.languages.isdisjoint(speaks):
                        continue
                try:
                    distance = distances[id(clinic)]
                except KeyError:
                    location = clinic.location
                    distance = distances[id(clinic)] = (
                        distance_km(near, location)
                        if near is not None and location is not None
                        else None
                    )
                if radius is not None and distance is not None and distance > radius:
                    continue
                # Made once per slot of an answer, while its merged clinic, physician and
                # distance stay the same objects (a cached answer's, at one point).
                if (
                    this is None
                    or this.clinic is not clinic
                    or this.physician is not physician
                    or this.distance_km != distance
                ):
                    identity = SlotIdentity.of(
                        slot, clinic.key, physician.key if physician is not None else None
                    )
                    this = made[index] = FoundSlot(identity, slot, clinic, physician, distance)
                identity = this.identity
                seen = found.get(identity)
                if seen is not None:
                    if seen.record.source_id == source_id and seen.record.local_id != slot.local_id:
                        found[identity] = seen.with_seats_of(slot)
                        if folded is not None:
                            folded[source_id] = folded.get(source_id, 0) + 1
                    continue
                found[identity] = this
        return sorted(found.values(), key=_slot_order)

    @staticmethod
    def _count(
        query: SlotQuery,
        results: Mapping[str, SlotResult],
        failed: bool,  # a source failed, or knows its answer lacks slots
        remaining: Sequence[FoundSlot],
        offset: int,
        folding: Collection[str] = (),
    ) -> SlotCount:
        """Matches of the whole search: ``EXACT`` when every source answered completely,
        or when one source alone has matches and counts them exactly (``total_exact``).

        Otherwise ``AT_LEAST`` a lower bound, never an over-count: the slots found, or
        a truncated source's own count of its matches (its slots found plus those it
        did not send) when larger; a source's count is not used when the gateway
        filters on what no source counts (languages). Null when no source answered.
        ``folding``: sources some of whose slots were served as one (seats added), whose
        counts are of slots, not of what the gateway serves: never exact.
        """
        results = {
            sid: replace(r, total_exact=False) if sid in folding else r
            for sid, r in results.items()
        }
        if not failed and all(r.complete for r in results.values()):
            if offset + len(remaining) <= MAX_COUNT:
                return SlotCount(offset + len(remaining), CountKind.EXACT)
        if not results:
            return SlotCount(None, None)
        truncated = [r for r in results.values() if not r.complete]
        if (
            not failed
            and not query.languages
            and len(truncated) == 1
            and truncated[0].total_exact
            # Sources are asked whole minutes: on other bounds, theirs count more.
            and _floor(query.starts_after) == query.starts_after
            and _ceil(query.starts_before) == query.starts_before
            and truncated[0].total is not None
            and all(not r.slots for r in results.values() if r.complete)
        ):
            # One source holds every match and counts them as the gateway keeps them:
            # no other source can list one of them twice, so its count is the count.
            total = truncated[0].total
            if total <= MAX_COUNT:
                return SlotCount(total, CountKind.EXACT)
        bound = len(remaining)
        if not query.languages:
            for sid, result in results.items():
                # Only a count of exactly what the gateway keeps (``total_exact``) can
                # raise the bound: an upstream's raw count may include what its adapter
                # drops (malformed, busy, unknown clinics), and would over-count.
                if result.complete or result.total is None or not result.total_exact:
                    continue
                mine = sum(1 for s in remaining if s.record.source_id == sid)
                bound = max(bound, mine + max(0, result.total - len(result.slots)))
        return SlotCount(min(offset + bound, MAX_COUNT), CountKind.AT_LEAST)


# How far a truncated source's answer can be trusted: up to its last slot's start
# (and distance, when it orders by distance), that point included when it sent
# the whole tie group there.
_Bound = tuple[datetime, float | None, bool]


def _bound(result: SlotResult, near: GeoPoint | None) -> _Bound:
    last = result.slots[-1]
    if result.ordered_by_distance and near is not None:
        clinic = result.clinics.get(last.clinic_local_id)
        location = clinic.location if clinic is not None else None
        if location is not None:
            return (last.start, distance_km(near, location), result.ties_complete)
    return (last.start, None, result.ties_complete)


def _slot_order(slot: FoundSlot) -> tuple[object, ...]:
    """``FoundSlot.sort_key`` flattened, its instants compared as datetimes in UTC (one
    zone: compared without working out offsets) rather than counted in microseconds,
    the start once (the record's is the same instant): the same order, for less."""
    identity = slot.identity
    return (
        identity.start,
        distance_rank(slot.distance_km),
        identity.clinic_key,
        identity.physician_key or "",
        identity.end,
        identity.appointment_type.value,
    )


def _settled(slots: list[FoundSlot], bounds: Sequence[_Bound], most: int) -> list[FoundSlot]:
    """The first ``most`` slots before every truncated source's bound (a page and one
    more, to tell whether there is a next page): a prefix of ``slots``, which are in slot
    order (start, then distance rank), in which ``_before`` holds and then does not, so
    the first slot that is not before a bound ends it."""
    if not bounds:
        return slots[:most]
    for index, slot in enumerate(slots[:most]):
        if not all(_before(slot, bound) for bound in bounds):
            return slots[:index]
    return slots[:most]


def _binding(slots: list[FoundSlot], first: int, bounds: Mapping[str, _Bound]) -> list[str]:
    """The truncated sources to ask again, wider: those whose bound comes before the slot
    that would follow a full page (``slots[first]``; every one when there is none). The
    others already hold every slot up to it: asked again, they would read their answer
    again from its start for nothing."""
    if len(slots) <= first:
        return list(bounds)
    following = slots[first]
    return [sid for sid, bound in bounds.items() if not _before(following, bound)]


def _before(slot: FoundSlot, bound: _Bound) -> bool:
    """Whether a slot comes before what a truncated source may still hold."""
    start, distance, inclusive = bound
    if slot.record.start != start:
        return slot.record.start < start
    if distance is not None and distance_rank(slot.distance_km) != distance:
        return distance_rank(slot.distance_km) < distance
    return inclusive


def _slot_matches(
    query: SlotQuery,
    window: tuple[datetime, datetime],
    start: datetime,
    end: datetime,
    slot: SlotRecord,
    clinic: MergedClinic,
) -> bool:
    """Every filter but languages (``_collect`` checks those, once per physician); the
    slot's ``start`` and ``end`` (the record's, or the same instants in UTC) checked
    against ``window`` (the query's bounds, or the same instants in UTC)."""
    if not (window[0] <= start < window[1]) or end <= start:
        return False
    if query.appointment_types and slot.appointment_type not in query.appointment_types:
        return False
    if query.region is not None and clinic.region != query.region:
        return False
    return not (query.near is not None and clinic.location is None)


def _local_ids(owners: Iterable[MergedClinic | MergedPhysician], source_id: str) -> tuple[str, ...]:
    return tuple(lid for o in owners for lid in o.local_ids(source_id))


def _project(
    query: SlotQuery, clinics: tuple[str, ...] | None, physicians: tuple[str, ...] | None
) -> SlotQuery:
    """The query as one source is asked it: merged keys resolved to its own ids."""
    return replace(
        query,
        clinic_keys=None,
        physician_keys=None,
        clinic_local_ids=clinics,
        physician_local_ids=physicians,
    )


def _kept(ids: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """``ids`` that are also ``allowed``, in their order."""
    allowed_set = set(allowed)
    return [i for i in ids if i in allowed_set]


def _covers(asked: SlotQuery) -> bool:
    """Whether a source may hold slots of the query (it knows the asked clinics or physicians)."""
    return all(ids is None or ids for ids in (asked.clinic_local_ids, asked.physician_local_ids))


def _assign_clinics(keys: Sequence[str], merged: Sequence[MergedClinic]) -> dict[str, MergedClinic]:
    index: dict[str, MergedClinic] = {}
    for clinic in merged:
        index.setdefault(clinic.key, clinic)
        for record in clinic.records:
            for identifier in record.identifiers:
                index.setdefault(identifier_key(identifier), clinic)
            nk = name_key(record)
            if nk is not None:
                index.setdefault(nk, clinic)
            index.setdefault(source_key(record.source_id, record.local_id), clinic)
    return {k: index[k] for k in keys if k in index}


def _floor(moment: datetime) -> datetime:
    return moment - (moment - EPOCH) % QUERY_GRANULARITY


def _ceil(moment: datetime) -> datetime:
    rest = (moment - EPOCH) % QUERY_GRANULARITY
    return moment + (QUERY_GRANULARITY - rest) if rest else moment


async def _done(value: U) -> U:
    return value


def _flatten(groups: Iterable[Iterable[T]]) -> list[T]:
    return [item for group in groups for item in group]
