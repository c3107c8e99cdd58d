"""The free slots of a window as the FHIR adapter reads them, tallied for ``sources check``:
served, or not served and why; then the typical searches, each with its plan, compared
with that tally.

    window = await tally_window(source, report, now)  # None when it could not be read
    if window is not None:
        await searches(source, report, window)

The window (``WINDOW``, the API's default) is read one day at a time by the adapter's own
slot search (``slots.SlotSearch``, demoted to unsorted or to a plainer plan as the
adapter would be), each day to its end, so that no page cap of the adapter's is taken
for a loss. Its ``Found`` is a ``_Tally``, which says why each free slot the server sent
was not kept: a Location outside Quebec (not served, not a loss: the gateway serves
Quebec), or unreadable (a loss). Slots the server had and gave no way to (no next link,
``_offset`` ignored) are counted from its ``Bundle.total``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sources.errors import SourceError, SourceRefusedRequest
from sources.fhir.adapter import MAX_PAGES, PAGE_SIZE
from sources.fhir.found import Found
from sources.fhir.plan import FULL_READ_MAX, SlotPlan
from sources.fhir.resources import appointment_type, ref_id, refs
from sources.fhir.slots import OutOfOrder, SlotSearch
from sources.geo import distance_km
from sources.places import PlaceKind
from sources.records import AppointmentType, SlotQuery
from sources.transport.failures import redact_for_log

if TYPE_CHECKING:
    from collections.abc import Callable

    from sources.check import CheckReport
    from sources.fhir.adapter import FhirSource
    from sources.records import ClinicRecord, SlotRecord, SlotResult

__all__ = ["WINDOW", "Window", "searches", "tally_window"]

# The API's default window (startsBefore: 7 days after the start).
WINDOW = timedelta(days=7)
_DAY = timedelta(days=1)
_WHOLE_DAY = 10**6  # a limit no day reaches: each day is read to its end
SEARCH_LIMIT = 20  # slots asked by each typical search, as a page of the API
NEAR_KM = 10.0
_LANGUAGE = "fr"


class _Tally(Found):
    """A search's ``Found`` that also says why each free slot it was sent was not kept."""

    def __init__(self, source_id: str) -> None:
        super().__init__(source_id)
        self.outside: Counter[str] = Counter()  # free slots, by Location id
        self.unreadable: Counter[str] = Counter()  # free slots, by what is wrong
        self.busy = 0

    def keep_slot(self, raw: dict[str, Any], query: SlotQuery) -> None:
        super().keep_slot(raw, query)
        if raw.get("status") != "free":
            self.busy += 1
            return
        if raw["id"] in self.slots:
            return
        try:
            times = self.times(raw)  # as keep_slot reads them: naive in the clinic's zone
            if times is not None and not query.starts_after <= times[0] < query.starts_before:
                return  # not asked for: the server did not apply the window
        except (ValueError, OverflowError):
            pass  # unreadable, below
        # Outside Quebec first: such a slot is not the gateway's to serve, readable or not.
        location = self._location(raw)
        if location is not None:
            self.clinic(location["id"])  # placed as the adapter places it
        if location is not None and location["id"] in self.places.kinds[PlaceKind.OUTSIDE_QUEBEC]:
            self.outside[location["id"]] += 1
        else:
            why = self._unreadable(raw)
            self.unreadable[why or "its Location (a name, and a postal code or position)"] += 1

    def _unreadable(self, raw: dict[str, Any]) -> str | None:
        """What makes a free slot unreadable before its Location, as ``keep_slot`` reads it."""
        try:
            times = self.times(raw)
        except (ValueError, OverflowError):
            return "start or end (ISO-8601 with an offset)"
        if times is not None and times[1] <= times[0]:
            return "end not after start"
        if appointment_type(raw.get("appointmentType")) is None:
            return "appointmentType (coded in a system the gateway knows)"
        if self._schedule(raw) is None:
            return "its Schedule"
        if self._location(raw) is None:
            return "its Schedule's Location actor"
        return None

    def _schedule(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        return self.resources["Schedule"].get(ref_id(raw.get("schedule"), "Schedule") or "")

    def _location(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        lid = next(iter(refs((self._schedule(raw) or {}).get("actor"), "Location")), None)
        return self.resources["Location"].get(lid) if lid else None


@dataclass(slots=True)
class Window:
    """What the window's reading served, for the typical searches to be compared with."""

    start: datetime
    end: datetime
    whole: bool = True  # every day was read to its end
    served: dict[str, SlotRecord] = field(default_factory=dict)
    clinics: dict[str, ClinicRecord] = field(default_factory=dict)


@dataclass(slots=True)
class _Counts:
    outside: Counter[str] = field(default_factory=Counter)
    unreadable: Counter[str] = field(default_factory=Counter)
    busy: int = 0
    lost: int = 0  # what the server counted and gave no way to
    uncounted: bool = False  # lost, and the server did not count them
    capped: bool = False
    demoted: str | None = None
    refused: str | None = None


async def tally_window(source: FhirSource, report: CheckReport, now: datetime) -> Window | None:
    """Read every free slot of the window, as the adapter would; write the served count
    and what is not served, by reason, into ``report``. None when a day's search failed."""
    window, counts = Window(now, now + WINDOW), _Counts()
    for day in range(WINDOW.days):
        query = SlotQuery(now + day * _DAY, now + (day + 1) * _DAY, limit=_WHOLE_DAY)
        try:
            tally, search, result = await _read(source, query, counts)
        except SourceError as exc:
            report.failed(
                "slots", f"the Slot search of day {day + 1} failed: {exc.message}",
                "make a day's Slot search answer, every page within the source's timeout",
            )  # fmt: skip
            return None
        window.served.update((s.local_id, s) for s in result.slots)
        window.clinics.update(result.clinics)
        counts.outside.update(tally.outside)
        counts.unreadable.update(tally.unreadable)
        counts.busy += tally.busy
        pages = search.pages
        if pages is not None and (pages.incomplete or pages.capped):
            window.whole = False
            counts.capped = counts.capped or pages.capped
            if pages.total is None:
                counts.uncounted = True
            else:
                counts.lost += max(0, pages.total - pages.matches)
    _report(source, report, window, counts)
    return window


async def _read(
    source: FhirSource, query: SlotQuery, counts: _Counts
) -> tuple[_Tally, SlotSearch, SlotResult]:
    """One day's search, as ``FhirSource.search_slots`` runs it: found out of order, the
    server is read as unsorted from then on; refused, the search runs on a plainer plan."""
    plan = SlotPlan.for_query(source.capabilities, query)
    sizes = {"page_size": min(PAGE_SIZE, source.options.page_size), "max_pages": MAX_PAGES}
    while True:
        tally = _Tally(source.id)
        search = SlotSearch(source.client, tally, source.capabilities, **sizes)
        try:
            return tally, search, await search.run(query, plan)
        except OutOfOrder as exc:
            if not plan.sorted:
                raise  # pragma: no cover - an unsorted plan checks no order
            counts.demoted = str(exc)
            source.capabilities = source.capabilities.merged(sorted_by_instant=False)
            plan = SlotPlan.for_query(source.capabilities, query)
        except SourceRefusedRequest as exc:
            if not plan.includes:
                raise
            counts.refused = exc.diagnostics or "no diagnostics"
            plan = plan.fallback()


def _report(source: FhirSource, report: CheckReport, window: Window, counts: _Counts) -> None:
    report.served = len(window.served)
    days = WINDOW.days
    detail = f"{report.served} free slots read in {days} searches, one a day"
    if counts.busy:
        report.warned(
            "slots", f"{detail}; {counts.busy} busy slots came back to status=free (dropped "
            "here)", "apply status=free to Slot searches",
        )  # fmt: skip
    else:
        report.passed("slots", detail)
    if counts.demoted:
        report.warned(
            "sort", f"a day's slots came out of order ({counts.demoted}): read as unsorted "
            "since", "sort on start as an instant, not as text (12:00Z comes after 11:00-05:00)",
        )  # fmt: skip
    if counts.refused:
        report.warned(
            "refused",
            f"the Slot search with _include and _total was refused "
            f"({redact_for_log(counts.refused)}): asked again without them",
            "accept _include and _total on Slot searches (ignoring them is allowed)",
        )
    outside = f"{len(counts.outside)} Locations outside Quebec; the gateway serves Quebec"
    report.not_served_for("OUTSIDE_QUEBEC", counts.outside.total(), loss=False, detail=outside)
    if counts.unreadable:
        wrong = ", ".join(f"{n} {why}" for why, n in counts.unreadable.most_common())
        report.not_served_for(
            "MALFORMED_RECORDS", counts.unreadable.total(), loss=True, detail=wrong
        )
        report.failed(
            "records",
            f"{counts.unreadable.total()} free slots cannot be read: {wrong}",
            "write Slots, Schedules and Locations as sources/fhir/README.md says (The model on R4)",
        )
    if not window.whole:
        if source.capabilities.first_page_only:
            reason, why = "FHIR_NO_NEXT_LINK", "no next link and _offset ignored"
        elif counts.capped:
            reason, why = "INCOMPLETE_SEARCH", f"a day holds more than {MAX_PAGES} pages"
        else:
            reason, why = "INCOMPLETE_SEARCH", "the server gave no way past a page"
        report.not_served_for(reason, counts.lost, loss=True, detail=why)
        if counts.uncounted:
            report.failed(
                "paging",
                f"searches stop before their end ({why}) and the server does not count "
                "what is left: an unknown number of free slots is lost",
                "send Bundle.link with relation next on every page that has more",
            )


# -- the typical searches -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Search:
    label: str
    query: SlotQuery
    expected: Callable[[SlotRecord], bool] | None  # None: not compared (languages)
    fix: str


async def searches(source: FhirSource, report: CheckReport, window: Window) -> None:
    """Run the typical searches through the adapter; their plans go to ``report.plan``,
    a search serving less than the window's tally is a failed check."""
    for search in _typical(window):
        plan = SlotPlan.for_query(source.capabilities, search.query)
        report.plan.append(f"{search.label}: {_describe(source, plan, search.query)}")
        name = f"search: {search.label.split(' (')[0]}"
        try:
            result = await source.search_slots(search.query)
        except SourceError as exc:
            report.failed(name, f"failed: {exc.message}", search.fix)
            continue
        if search.expected is None or not window.whole:
            phantom = sum(s.local_id not in window.served for s in result.slots)
            if window.whole and phantom:
                report.failed(name, f"{phantom} slots served that the window lacks", search.fix)
            else:
                report.passed(name, f"{len(result.slots)} served (not compared)")
            continue
        expected = sorted(
            (s for s in window.served.values() if search.expected(s)),
            key=lambda s: (s.start, s.local_id),
        )
        missed, wrong = _compare(result, expected)
        if missed or wrong:
            report.failed(
                name, f"{missed} slots it had to serve missed, {wrong} served that it should "
                f"not have (of {len(expected)} in the window)", search.fix,
            )  # fmt: skip
        else:
            report.passed(
                name, f"{len(result.slots)} served, none missed, none wrong "
                f"(of {len(expected)} in the window)",
            )  # fmt: skip


def _typical(window: Window) -> list[_Search]:
    base = SlotQuery(window.start, window.end, limit=SEARCH_LIMIT)
    chains = "answer schedule.actor as FHIR does, or refuse it with a 400 OperationOutcome"
    out = [_Search("the window", base, lambda s: True, "answer Slot searches by start")]
    ordered = sorted(window.served.values(), key=lambda s: (s.start, s.local_id))
    first = next((s for s in ordered if window.clinics[s.clinic_local_id].location), None)
    if first is not None:
        clinic = window.clinics[first.clinic_local_id]
        here = clinic.location
        assert here is not None

        def near(s: SlotRecord) -> bool:
            at = window.clinics[s.clinic_local_id].location
            return at is not None and distance_km(here, at) <= NEAR_KM

        out.append(
            _Search(
                f"near a clinic ({NEAR_KM:g} km)",
                replace(base, near=here, radius_km=NEAR_KM),
                near,
                chains,
            )
        )
        cid = clinic.local_id
        out.append(
            _Search(
                "a clinic's slots",
                replace(base, clinic_local_ids=(cid,)),
                lambda s: s.clinic_local_id == cid,
                chains,
            )
        )
    physician = next((s.physician_local_id for s in ordered if s.physician_local_id), None)
    if physician is not None:
        out.append(
            _Search(
                "a physician's slots",
                replace(base, physician_local_ids=(physician,)),
                lambda s: s.physician_local_id == physician,
                "answer PractitionerRole?practitioner= and " + chains.removeprefix("answer "),
            )
        )
    kinds = Counter(s.appointment_type for s in ordered)
    pushed = [k for k, _ in kinds.most_common() if k is not AppointmentType.ROUTINE]
    kind = pushed[0] if pushed else AppointmentType.ROUTINE
    out.append(
        _Search(
            f"by type ({kind.value})",
            replace(base, appointment_types=frozenset({kind})),
            lambda s: s.appointment_type is kind,
            "apply appointment-type (system|code tokens) as FHIR does, or refuse it",
        )
    )
    out.append(
        _Search(
            f"languages ({_LANGUAGE})",
            replace(base, languages=frozenset({_LANGUAGE})),
            None,
            "answer Slot searches by start",
        )
    )
    return out


def _compare(result: SlotResult, expected: list[SlotRecord]) -> tuple[int, int]:
    """The slots a search missed, and those it served that do not match it.

    A search cut at its limit must hold every match that starts before its last start;
    of that start, any of the matches may come (ties are ordered by ids here, not there)."""
    due = {s.local_id for s in expected}
    got = {s.local_id for s in result.slots}
    if result.complete:
        before = expected
    elif result.slots:
        last = max(s.start for s in result.slots)
        before = [s for s in expected if s.start < last]
    else:
        before = expected[:1]
    return sum(s.local_id not in got for s in before), len(got - due)


def _describe(source: FhirSource, plan: SlotPlan, query: SlotQuery) -> str:
    capabilities = source.capabilities
    parts = [
        "sorted by the server, read up to the page asked"
        if plan.sorted
        else "the window read in full, sorted here"
    ]
    if query.near is not None:
        kept = source.directory.locations
        parts.append(
            f"clinics from the gateway's copy of the {len(kept)} Locations"
            if kept is not None
            else "clinics by a Location search"
        )
    if query.near is not None or query.clinic_local_ids or query.physician_local_ids:
        parts.append(
            "narrowed by schedule.actor chains"
            if plan.chains
            else "Schedules by actor, then Slot?schedule="
        )
    if query.appointment_types is not None and plan.push_types:
        parts.append("appointment-type sent to the server")
    if plan.filtered_here and query.languages and source.directory.staff is None:
        parts.append(f"filtered here (read in full when the server counts ≤ {FULL_READ_MAX})")
    elif plan.filtered_here:  # as the adapter's most_pass: ROUTINE, or the staff is known
        parts.append("filtered here in small pages (a rare language sent as its speakers)")
    if capabilities.include is False:
        parts.append("references read by _id")
    if capabilities.next_links is False and capabilities.offset_paging:
        parts.append("pages by _offset")
    return "; ".join(parts)
