"""A slot search's page turned straight into the response, without strawberry objects.

When the root field ``slots`` has a plan that reads records (every field selected has
a reader here, or is the record's attribute of the same name), ``Query.slots`` returns
:class:`SlotRecords` (the page and its request) rather than a ``SlotConnection`` of
``Slot``, ``Clinic`` and ``Physician`` objects, and the plan reads the merged records
themselves: a field the query does not select is never worked out (a slot's id, an
edge's cursor). Each reader gives what ``schema/types.py`` and ``schema/query.py``
give the same field; ``tests/schema/test_compiled_plan.py`` compares the bytes. A
plan that bails hands graphql-core the connection :meth:`SlotRecords.materialize`
builds, the very one ``Query.slots`` builds otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import strawberry

from resolvers.ids import to_global_id
from resolvers.slots import SlotRequest
from schema.types import (
    Clinic,
    PageInfo,
    Physician,
    Slot,
    SlotConnection,
    SlotEdge,
    Source,
)
from sources.records import Address, GeoPoint
from sources.search import FoundSlot, MergedClinic, MergedPhysician, SlotPage

__all__ = ["RECORD_TYPES", "RecordType", "SlotRecords", "slot_connection"]

# (value, request context) -> the field's value, before completion.
Reader = Callable[[Any, Any], Any]


def slot_connection(page: SlotPage, request: SlotRequest) -> SlotConnection:
    """The connection of a page, as strawberry objects (each clinic and physician once)."""
    built: dict[int, Clinic | Physician] = {}
    edges = [
        SlotEdge(node=Slot.from_found(s, built), cursor_of=partial(request.cursor, page, i))
        for i, s in enumerate(page.slots)
    ]
    return SlotConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next, end_cursor=request.end_cursor(page)),
        total_count=page.count.value,
        total_count_kind=page.count.kind,
    )


@dataclass(frozen=True, slots=True)
class SlotRecords:
    """What ``Query.slots`` returns when its plan reads records."""

    page: SlotPage
    request: SlotRequest

    def materialize(self) -> SlotConnection:
        return slot_connection(self.page, self.request)


@dataclass(frozen=True, slots=True)
class _Edge:
    records: SlotRecords
    index: int
    slot: FoundSlot


@dataclass(frozen=True, slots=True)
class RecordType:
    """The class a type's records have, and the readers of its fields (a field not
    listed is the record's attribute of the field's Python name). A reader marked
    ``objects`` gives strawberry objects: what it gives is completed as usual."""

    origin: type
    readers: dict[str, Reader]
    objects: frozenset[str] = frozenset()


def _edges(records: SlotRecords, _context: Any) -> list[_Edge]:
    return [_Edge(records, i, slot) for i, slot in enumerate(records.page.slots)]


def _duration(slot: FoundSlot, _context: Any) -> int:
    record = slot.record
    return round((record.end - record.start).total_seconds() / 60)


def _distance(slot: FoundSlot, _context: Any) -> float | None:
    return None if slot.distance_km is None else round(slot.distance_km, 2)


def _source(slot: FoundSlot, context: Any) -> Source:
    view = context.source_view(slot.record.source_id)
    if view is None:  # pragma: no cover - a slot always comes from a registered source
        raise LookupError(f"unknown source {slot.record.source_id}")
    return Source.from_view(view)


def _clinic_sources(clinic: MergedClinic, context: Any) -> list[Source]:
    views = (context.source_view(sid) for sid in clinic.source_ids)
    return [Source.from_view(v) for v in views if v is not None]


RECORD_TYPES: dict[str, RecordType] = {
    "SlotConnection": RecordType(
        SlotRecords,
        {
            "edges": _edges,
            "pageInfo": lambda r, _c: r,
            "totalCount": lambda r, _c: r.page.count.value,
            "totalCountKind": lambda r, _c: r.page.count.kind,
        },
    ),
    "PageInfo": RecordType(
        SlotRecords,
        {
            "hasNextPage": lambda r, _c: r.page.has_next,
            "endCursor": lambda r, _c: r.request.end_cursor(r.page),
        },
    ),
    "SlotEdge": RecordType(
        _Edge,
        {
            "cursor": lambda e, _c: e.records.request.cursor(e.records.page, e.index),
            "node": lambda e, _c: e.slot,
        },
    ),
    "Slot": RecordType(
        FoundSlot,
        {
            "id": lambda s, _c: strawberry.ID(to_global_id("Slot", s.key)),
            "start": lambda s, _c: s.record.start,
            "end": lambda s, _c: s.record.end,
            "durationMinutes": _duration,
            "appointmentType": lambda s, _c: s.record.appointment_type,
            "bookingUrl": lambda s, _c: s.record.booking_url,
            "bookingPhone": lambda s, _c: s.record.booking_phone,
            "capacity": lambda s, _c: s.record.capacity,
            "distanceKm": _distance,
            "clinic": lambda s, _c: s.clinic,
            "physician": lambda s, _c: s.physician,
            "source": _source,
        },
        objects=frozenset({"source"}),
    ),
    "Clinic": RecordType(
        MergedClinic,
        {
            "id": lambda c, _c: strawberry.ID(to_global_id("Clinic", c.key)),
            "sources": _clinic_sources,
        },
        objects=frozenset({"sources"}),
    ),
    "Physician": RecordType(
        MergedPhysician,
        {"id": lambda p, _c: strawberry.ID(to_global_id("Physician", p.key))},
    ),
    "Address": RecordType(Address, {}),
    "GeoPoint": RecordType(GeoPoint, {}),
}
