"""The REST/JSON API's records as the adapter reads them, for ``sources check``: a page's
required fields, and every free slot of the window served or not, and why.

    await check_fields(api, report, items)    # a page of slots, their clinics, physicians
    await tally_window(api, report, now)      # report.served, report.not_served

The window (``WINDOW``, the API's default) goes through ``RestJsonSource.search_slots``
one day at a time, each day to its end, and what it serves is set against the API's own
``total`` for the day. Only a day that falls short is read again, item by item, with the
adapter's readers (``payload``), and the clinics its slots name looked up, to say why.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from sources.errors import SourceError
from sources.places import PlaceKind
from sources.records import SlotQuery
from sources.rest_json.adapter import MAX_PAGES, local_bounds
from sources.rest_json.payload import api_id, listed_time_zone, read_item
from sources.timeutil import in_zone, read_upstream_datetime, zone_info

if TYPE_CHECKING:
    from datetime import datetime

    from sources.check import CheckReport
    from sources.rest_json.raw import RawApi

__all__ = ["FORMAT_FIX", "WINDOW", "check_fields", "tally_window"]

WINDOW = timedelta(days=7)  # the API's default window
_DAY = timedelta(days=1)
_WHOLE_DAY = 10**6  # a limit no day reaches: each day is read to its end
FORMAT_FIX = "answer in the demo API's format (examples/demo_rest/server.py): " + (
    '{"resultats": [...], "page", "pages", "limite", "total"}, its items as documented there'
)


async def check_fields(api: RawApi, report: CheckReport, items: list[object]) -> None:
    """Slots, their clinics and physicians, read by the adapter's readers."""
    reader = api.reader
    skipped: dict[str, Counter[str]] = {k: Counter() for k in ("slot", "clinic", "physician")}
    slots = [s for i in items if (s := read_item(reader.slot, i, skipped["slot"]))]
    clinics = sorted({s.clinic_local_id for s in slots})
    physicians = sorted({p for s in slots if (p := s.physician_local_id)})
    read = {"slot": len(slots), "clinic": 0, "physician": 0}
    for kind, resource, ids in (
        ("clinic", "cliniques", clinics),
        ("physician", "medecins", physicians),
    ):
        if not ids:
            continue
        answer, page = await api.page(resource, [("ids", ",".join(ids))], 1, len(ids))
        if page is None:
            skipped[kind][f"not looked up (/{resource}: HTTP {answer.status})"] += len(ids)
            continue
        how = reader.clinic if kind == "clinic" else reader.physician
        read[kind] = sum(read_item(how, i, skipped[kind]) is not None for i in page.items)
        if len(page.items) < len(ids):
            skipped[kind]["not found by its id"] += len(ids) - len(page.items)
    wrong = "; ".join(
        f"{kind}s: " + ", ".join(f"{n} {why}" for why, n in counts.most_common())
        for kind, counts in skipped.items()
        if counts
    )
    detail = f"{read['slot']} slots, {read['clinic']} clinics, {read['physician']} physicians read"
    if outside := len(reader.places.current.kinds[PlaceKind.OUTSIDE_QUEBEC] & set(clinics)):
        detail += f" ({outside} more clinics outside Quebec, not served)"
    if wrong:
        report.warned("fields", f"{detail}; cannot be read: {wrong}", FORMAT_FIX)
    else:
        report.passed("fields", f"{detail}, every required field there")


async def tally_window(api: RawApi, report: CheckReport, now: datetime) -> None:
    """Every free slot of the window through the adapter's ``search_slots``, one day at a
    time, against the API's own ``total``; what is not served is read again to say why."""
    served: set[str] = set()
    unreadable: Counter[str] = Counter()
    outside: Counter[str] = Counter()  # free slots, by clinic outside Quebec
    stopped = 0
    for day in range(WINDOW.days):
        start = now + day * _DAY
        query = SlotQuery(start, start + _DAY, limit=_WHOLE_DAY)
        try:
            result = await api.source.search_slots(query)
        except SourceError as exc:
            report.failed(
                "slots", f"the slot search of day {day + 1} failed: {exc.message}",
                "answer every page of a day's slots within the source's timeout",
            )  # fmt: skip
            return
        # Days are half-open: a slot at the next day's first instant is that day's (the
        # adapter's window, as the API's, holds its end).
        served.update(s.local_id for s in result.slots if s.start < query.starts_before)
        missing = (result.total or 0) - len(result.slots)
        if missing > 0:
            why, abroad = await _why_not(api, query)
            unreadable += why
            outside += abroad
            explained = why.total() + abroad.total()
            stopped += max(0, missing - explained) if not result.complete else 0
    report.served = len(served)
    report.passed("slots", f"{len(served)} free slots served, read one day at a time")
    wrong = ", ".join(f"{n} {why}" for why, n in unreadable.most_common())
    where = f"{len(outside)} clinics outside Quebec; the gateway serves Quebec"
    report.not_served_for("OUTSIDE_QUEBEC", outside.total(), loss=False, detail=where)
    report.not_served_for("MALFORMED_RECORDS", unreadable.total(), loss=True, detail=wrong)
    report.not_served_for(
        "INCOMPLETE_SEARCH", stopped, loss=True, detail="paging stopped before the end"
    )
    if unreadable:
        report.failed(
            "records", f"{unreadable.total()} free slots cannot be served: {wrong}",
            FORMAT_FIX,
        )  # fmt: skip


async def _why_not(api: RawApi, query: SlotQuery) -> tuple[Counter[str], Counter[str]]:
    """Why a day's free slots were not all served: its items read again with the
    adapter's readers, and the clinics they name looked up (placed as the adapter places
    them). The slots that cannot be served, by reason; those outside Quebec, by clinic.

    The bounds sent are wide enough for every zone (``local_bounds``), so the items are
    kept to the day's window first, each local time read in its listed clinic's zone."""
    low, high = local_bounds(query.starts_after, query.starts_before)
    params = [
        ("statut", "libre"),
        ("debut_min", low.isoformat(timespec="seconds")),
        ("debut_max", high.isoformat(timespec="seconds")),
    ]
    items: list[object] = []
    size = api.source.options.page_size
    for number in range(1, MAX_PAGES + 1):
        _, page = await api.page("disponibilites", params, number, size)
        if page is None:
            break
        items += page.items
        if not page.items or (page.pages is not None and number >= page.pages):
            break
    named = {cid for i in items if isinstance(i, dict) and (cid := api_id(i.get("clinique_id")))}
    listed: dict[str, object] = {}  # the clinics as the API lists them, by id
    ids = sorted(named, key=lambda i: (len(i), i))
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        _, page = await api.page("cliniques", [("ids", ",".join(chunk))], 1, 500)
        for item in page.items if page is not None else []:
            if isinstance(item, dict) and (cid := api_id(item.get("id"))):
                listed[cid] = item
    reasons: Counter[str] = Counter()
    by_clinic: Counter[str] = Counter()
    for item in items:
        if _in_window(item, listed, query):
            if (slot := read_item(api.reader.slot, item, reasons)) is not None:
                by_clinic[slot.clinic_local_id] += 1
    clinic_reasons: Counter[str] = Counter()
    readable: set[str] = set()
    for cid in sorted(by_clinic.keys() & listed.keys()):
        if (clinic := read_item(api.reader.clinic, listed[cid], clinic_reasons)) is not None:
            readable.add(clinic.local_id)
    outside = api.reader.places.current.kinds[PlaceKind.OUTSIDE_QUEBEC]
    lost = sum(n for cid, n in by_clinic.items() if cid not in readable | outside)
    if lost:
        why = ", ".join(sorted(clinic_reasons)) or "not found by its id"
        reasons[f"of a clinic that cannot be read ({why})"] += lost
    abroad = Counter({cid: n for cid, n in by_clinic.items() if cid in outside})
    return reasons, abroad


def _in_window(item: object, listed: dict[str, object], query: SlotQuery) -> bool:
    """Whether a slot item starts in the query's window, a local time read in the zone of
    its clinic as listed; kept when that cannot be told (no time, no clinic listed)."""
    data = item if isinstance(item, dict) else {}
    try:
        start = read_upstream_datetime(data.get("debut"))  # type: ignore[arg-type]
    except ValueError:
        return True
    if start.tzinfo is None:
        clinic = listed.get(api_id(data.get("clinique_id")) or "")
        if clinic is None:
            return True
        start = in_zone(start, zone_info(listed_time_zone(clinic)))
    return query.starts_after <= start < query.starts_before
