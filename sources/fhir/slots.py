"""One slot search carried out by its plan (``sources.fhir.plan``).

    search = SlotSearch(client, found, capabilities, page_size=1000, max_pages=50)
    result = await search.run(query, plan, roles=..., practitioners=...)

A sorted plan reads page by page until the query's limit and checks every page is
in order (by instant, within the window); past the limit it reads on within the page
only to the end of the last slot's tie group (same start): when the page shows where
that ends, the answer says so (``ties_complete``) and the gateway can settle the slots
of that start without widening its search. A partial answer holds no more than
that. An inversion raises ``OutOfOrder``, and the adapter demotes the server to
unsorted and runs the search again. An unsorted plan reads the window in full.
``incomplete`` is set when the server said there was more and gave no way to it: the
answer then says it is partial.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sources.errors import SourceError
from sources.fhir.fetch import all_pages, fetch_missing
from sources.fhir.plan import FULL_READ_MAX, or_refs, type_tokens
from sources.records import SlotResult
from sources.timeutil import in_zone, read_upstream_datetime

if TYPE_CHECKING:
    from sources.fhir.capabilities import Capabilities
    from sources.fhir.client import FhirClient, Pages
    from sources.fhir.directory import Directory
    from sources.fhir.found import Found
    from sources.fhir.plan import SlotPlan
    from sources.records import SlotQuery

__all__ = ["OutOfOrder", "SlotSearch", "in_order"]

# A language most slots pass (sent to the server as its speakers, or common) is read in
# pages of this many times the limit (at least ``COMMON_PAGE_MIN``): a page of the
# server's largest size would cost it, and us, far more than the few the query keeps.
COMMON_PAGE_FACTOR = 4
COMMON_PAGE_MIN = 100
# Pages read past the one that reached the limit while the limit's tie group goes on.
TIE_PAGES = 1


class OutOfOrder(Exception):
    """A page of a sorted search came back out of order (by instant)."""


class SlotSearch:
    """The reads of one slot search; ``pages`` is how its (first) Slot search was paged,
    ``paged`` every Slot search it made (two for a split ROUTINE)."""

    def __init__(
        self,
        client: FhirClient,
        found: Found,
        capabilities: Capabilities,
        *,
        page_size: int,
        max_pages: int,
    ) -> None:
        self.client = client
        self.found = found
        self.capabilities = capabilities
        self.page_size = page_size
        self.max_pages = max_pages
        self.directory: Directory | None = None
        self.pages: Pages | None = None
        self.paged: list[Pages] = []

    def seeded_by(self, directory: Directory) -> SlotSearch:
        """Searches without ``_include`` when the directory keeps every Schedule, clinic
        and member of staff: what the Slots refer to is taken from it (``seed``)."""
        self.directory = directory if directory.whole else None
        return self

    async def run(
        self,
        query: SlotQuery,
        plan: SlotPlan,
        *,
        roles: set[str] | None = None,
        practitioners: set[str] | None = None,
        speaking: list[str] | None = None,
        most_pass: bool = False,
    ) -> SlotResult:
        """``speaking``: the Schedule actors a language filter narrows to (any of them);
        ``most_pass``: most slots the server sends pass what is filtered here (a language
        sent as ``speaking``, or too many speak it to send; ROUTINE): read in pages a few
        times the limit, in full only when that is at most two pages. A split plan
        (``split_routine``) reads the coded types, then the uncoded slots
        (``appointment-type:missing=true``), and merges the two by start."""
        self.paged = []
        scoping = await self._scoping(plan, roles, practitioners, speaking)
        if scoping is None:
            return SlotResult((), complete=True, total=0)
        if not plan.split_routine:
            return await self._read(query, plan, scoping, most_pass=most_pass)
        coded = await self._read(query, plan, scoping, most_pass=most_pass)
        uncoded = [*scoping, ("appointment-type:missing", "true")]
        return merge_halves(coded, await self._read(query, plan, uncoded, most_pass=most_pass))

    async def _read(
        self,
        query: SlotQuery,
        plan: SlotPlan,
        scoping: list[tuple[str, str]],
        *,
        most_pass: bool,
    ) -> SlotResult:
        """One Slot search (``scoping`` its narrowing parameters), read by the plan."""
        found = self.found
        found.slots.clear()
        read_all = not plan.sorted
        count = self.page_size if read_all or plan.filtered_here else query.limit
        if most_pass and plan.filtered_here and not read_all:
            count = max(COMMON_PAGE_FACTOR * query.limit, COMMON_PAGE_MIN)
        params = [
            ("status", "free"),
            ("start", "ge" + query.starts_after.isoformat()),
            ("start", "lt" + query.starts_before.isoformat()),
        ]
        if plan.sorted:
            params.append(("_sort", "start"))
        params.append(("_count", str(min(self.page_size, max(1, count)))))
        seeded = self.directory is not None
        if plan.includes and not seeded:
            params += [
                ("_include", "Slot:schedule"),
                ("_include:iterate", "Schedule:actor"),
                ("_include:iterate", "PractitionerRole:practitioner"),
            ]
        if plan.includes:
            params.append(("_total", "accurate"))
        if plan.push_types and query.appointment_types is not None:
            if not any(name == "appointment-type:missing" for name, _ in scoping):
                params.append(("appointment-type", type_tokens(query.appointment_types)))
        params += scoping
        pages = self.client.pages(
            "Slot",
            params,
            max_pages=self.max_pages,
            offset_paging=self.capabilities.offset_paging,
        )
        self.paged.append(pages)
        self.pages = self.pages if len(self.paged) > 1 else pages
        last: datetime | None = None
        examined = 0  # Slots examined of those the server sent, to tell whether any was dropped
        cut = plan.sorted and not read_all  # stops at the limit (and the end of its tie group)
        boundary: datetime | None = None  # the start of the slot that reached the limit
        ties_complete = stopped = False
        past = 0  # pages read past the one that reached the limit, to end its tie group
        while (bundle := await self._next(pages, past)) is not None:
            if pages.read == 1 and plan.filtered_here:
                # Filtered here: the server's count is not ours; read it whole when small.
                # When most pass, small is at most one more page.
                most = 2 * count if most_pass else FULL_READ_MAX
                read_all = read_all or (pages.total is not None and pages.total <= most)
                cut = cut and not read_all
            matches = found.add(bundle, "Slot")
            if self.directory is not None:
                self.directory.seed(found, matches)
            await fetch_missing(
                self.client, matches, found, page_size=self.page_size, max_pages=self.max_pages
            )
            if plan.sorted:  # once their clinics, whose zones naive times are in, are read
                last = _check_order(matches, query, last, found)
            for raw in matches:
                if boundary is not None and (start := _start(found, raw)) is not None:
                    if start > boundary:  # in order: the limit's tie group is whole
                        ties_complete = stopped = True
                        break
                examined += 1
                found.keep_slot(raw, query)
                if cut and boundary is None and len(found.slots) >= query.limit:
                    boundary = found.slots[raw["id"]].start
            if stopped or (not read_all and boundary is None and len(found.slots) >= query.limit):
                break
            if boundary is not None:
                # The page ended inside the limit's tie group: one more page most often
                # ends it, for far less than the gateway asking again four times wider.
                past += 1
                if past > TIE_PAGES:
                    break
        found_slots = found.slots.values()
        slots = tuple(sorted(found_slots, key=lambda s: (s.start, s.local_id)))
        complete = pages.complete and not stopped
        if not complete and not ties_complete:
            # Past the limit, a partial answer only costs the gateway: it serves none of it.
            slots = slots[: max(1, query.limit)]
        exact = complete or not plan.filtered_here
        return SlotResult(
            slots=slots,
            complete=complete,
            total=len(slots) if complete else (pages.total if exact else None),
            # The server applied every filter of the search (nothing filtered here), and
            # every match it sent was kept: its count is the count of what we serve.
            total_exact=exact and pages.total is not None and examined == len(found.slots),
            clinics=found.clinics_of(slots),
            physicians=found.physicians_of(slots),
            ties_complete=ties_complete and not complete,
        )

    @staticmethod
    async def _next(pages: Pages, past: int) -> dict[str, Any] | None:
        """The next page; past the limit, a page that cannot be read (a next link not
        followed, a failure) ends the search where it is, as before that page."""
        if not past:
            return await pages.next()
        try:
            return await pages.next()
        except SourceError:
            return None

    async def _scoping(
        self,
        plan: SlotPlan,
        roles: set[str] | None,
        practitioners: set[str] | None,
        speaking: list[str] | None = None,
    ) -> list[tuple[str, str]] | None:
        """The parameters narrowing the Slots to the clinics, physicians and speakers
        asked (each a ``schedule.actor`` of its own: all of them hold), or None when no
        Schedule can match."""
        scope = self.found.scope
        if plan.chains:
            params = []
            if scope is not None:
                params.append(("schedule.actor", or_refs("Location", sorted(scope))))
            if roles is not None:
                params.append(("schedule.actor", or_refs("PractitionerRole", sorted(roles))))
            if speaking is not None:
                params.append(("schedule.actor", _or_actors(speaking)))
            return params
        schedules: set[str] | None = None
        if scope is not None:
            schedules = await self._schedules(or_refs("Location", sorted(scope)))
        if roles is not None or practitioners:
            actors = [
                *(f"PractitionerRole/{r}" for r in sorted(roles or ())),
                *(f"Practitioner/{p}" for p in sorted(practitioners or ())),
            ]
            theirs = await self._schedules(",".join(actors)) if actors else set()
            schedules = theirs if schedules is None else schedules & theirs
        if speaking is not None:
            theirs = await self._schedules(_or_actors(speaking))
            schedules = theirs if schedules is None else schedules & theirs
        if schedules is None:
            return []
        if not schedules:
            return None
        return [("schedule", or_refs("Schedule", sorted(schedules)))]

    async def _schedules(self, actors: str) -> set[str]:
        """The ids of the Schedules of these actors (read whole, kept in ``found``)."""
        bundles, _ = await all_pages(
            self.client,
            "Schedule",
            [("actor", actors)],
            page_size=self.page_size,
            max_pages=self.max_pages,
            offset_paging=self.capabilities.offset_paging,
        )
        ids: set[str] = set()
        for bundle in bundles:
            ids.update(s["id"] for s in self.found.add(bundle, "Schedule"))
        return ids


def merge_halves(coded: SlotResult, uncoded: SlotResult) -> SlotResult:
    """One answer from the two searches of a split ROUTINE (typed, then without a type),
    as one search's: in order by start, cut where the first truncated half stops (its
    tie group whole there when every half stopping there said so), counted when both
    counted. A slot in both (a server ignoring the modifier) is served once."""
    halves = (coded, uncoded)
    by_id = {s.local_id: s for half in halves for s in half.slots}
    slots = sorted(by_id.values(), key=lambda s: (s.start, s.local_id))
    ends = [h.slots[-1].start for h in halves if not h.complete and h.slots]
    ties = False
    if ends:
        end = min(ends)
        slots = [s for s in slots if s.start <= end]
        stopping = [h for h in halves if not h.complete and h.slots and h.slots[-1].start == end]
        ties = all(h.ties_complete for h in stopping)
    complete = coded.complete and uncoded.complete
    counts = (coded.total, uncoded.total)
    total = None if None in counts else sum(c for c in counts if c is not None)
    twice = len(by_id) < len(coded.slots) + len(uncoded.slots)
    return SlotResult(
        slots=tuple(slots),
        complete=complete,
        total=len(slots) if complete else total,
        clinics={**uncoded.clinics, **coded.clinics},
        physicians={**uncoded.physicians, **coded.physicians},
        ties_complete=ties and not complete,
        total_exact=coded.total_exact and uncoded.total_exact and not twice,
    )


def _start(found: Found, raw: dict[str, Any]) -> datetime | None:
    """A Slot's start as an instant; None when it cannot be read (``keep_slot`` tells)."""
    try:
        times = found.times(raw)
    except (ValueError, OverflowError, TypeError):
        return None
    return times[0] if times is not None else None


def _or_actors(actors: list[str]) -> str:
    """``Type/id`` references as one "or" value (each id escaped as FHIR search asks)."""
    plain = ",".join(actors)
    clean = plain.count(",") == len(actors) - 1 and not any(c in plain for c in "\\|$")
    if clean:  # nothing to escape: most often
        return plain
    return ",".join(or_refs(kind, [rid]) for kind, rid in (a.split("/", 1) for a in actors))


def _check_order(
    matches: list[dict[str, Any]], query: SlotQuery, last: datetime | None, found: Found
) -> datetime | None:
    """The last start seen, once this page's starts (within the window) are checked in
    order; a naive start is read in its clinic's zone, and skipped when that is unknown."""
    for raw in matches:
        try:
            start = read_upstream_datetime(raw.get("start"))  # type: ignore[arg-type]
            if start.tzinfo is None:
                zone = found.zone_of(raw)
                if zone is None:
                    continue
                start = in_zone(start, zone)
        except (ValueError, OverflowError, TypeError):
            continue
        if not query.starts_after <= start < query.starts_before:
            continue
        if last is not None and start < last:
            raise OutOfOrder(f"slot {raw.get('id')!r} starts before the one read before it")
        last = start
    return last


def in_order(slots: list[dict[str, Any]], *, descending: bool) -> bool | None:
    """Whether the slots' starts, as instants, are in order (None: fewer than two with an
    offset). Naive starts are skipped: their clinics' zones are the search's to read."""
    starts = []
    for slot in slots:
        try:
            start = read_upstream_datetime(slot.get("start"))  # type: ignore[arg-type]
        except (ValueError, OverflowError, TypeError):
            continue
        if start.tzinfo is not None:
            starts.append(start)
    pairs = itertools.pairwise(starts)
    return all((b <= a) if descending else (a <= b) for a, b in pairs) if starts[1:] else None
