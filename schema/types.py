"""Object types: Clinic, Physician, Slot, Source and their connections.

Types are built at the edge from the merged records of ``sources``; fields that
need more data delegate to ``resolvers`` (batched through the request's loaders).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import strawberry
from strawberry.types import Info

from resolvers import clinics as clinic_resolvers
from resolvers.context import RequestContext
from resolvers.ids import to_global_id
from schema.enums import (
    AppointmentType,
    CountKind,
    ProblemSeverity,
    Region,
    SourceProtocol,
    SourceStatus,
)
from schema.inputs import unset_to_none
from sources.pool import SourceView
from sources.problems import ProblemCode
from sources.records import SourceProblem as ProblemRecord
from sources.search import FoundSlot, MergedClinic, MergedPhysician

Context = Info[RequestContext, None]


@strawberry.interface(description="An object with a stable, opaque global id.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class GeoPoint:
    latitude: float
    longitude: float
    approximate: bool = strawberry.field(
        description="True when the booking system gave no position and the gateway placed "
        "the clinic at its municipality's centre (GeoNames): good to a few kilometres, "
        "not to the door. False for a position the booking system gave."
    )


@strawberry.type
class Address:
    line: str | None
    city: str
    postal_code: str | None
    region: Region


@strawberry.type(description="Something an operator should fix about a booking source.")
class SourceProblem:
    code: str = strawberry.field(
        description="Stable; one of: " + ", ".join(code.value for code in ProblemCode) + "."
    )
    severity: ProblemSeverity
    message: str = strawberry.field(description="What is wrong and what to fix.")
    count: int = strawberry.field(description="How many times, or how many records.")
    samples: list[str] | None = strawberry.field(
        description="Examples (ids, file URLs without their query, lines): for operators "
        "only, null in production unless the request may see them."
    )
    diagnostics: str | None = strawberry.field(
        description="The upstream's own words, sanitized: for operators only, as samples."
    )

    @classmethod
    def from_record(cls, problem: ProblemRecord, operator: bool) -> SourceProblem:
        return cls(
            code=problem.code,
            severity=problem.severity,
            message=problem.message,
            count=problem.count,
            samples=list(problem.samples) if operator else None,
            diagnostics=problem.diagnostics if operator else None,
        )


@strawberry.type(
    description="Hand-offs of a source's slots (patients following a slot's link) and how "
    "many were gone by then; counted per source only, never per physician or patient."
)
class PhantomSlots:
    hand_offs: int
    gone: int
    rate: float | None = strawberry.field(
        description="gone / handOffs; null (too few to show) until the source is known to "
        "have at least 5 physicians, lest it tell one physician's workload."
    )


@strawberry.type(description="A booking system the gateway reads from.")
class Source:
    id: strawberry.ID
    name: str
    protocol: SourceProtocol
    status: SourceStatus
    last_success_at: datetime | None
    latency_ms: float | None
    data_as_of: datetime | None = strawberry.field(
        description="When the data served was current, for sources served from a copy "
        "(bulk feeds): the feed's own timestamp."
    )
    skipped_records: int | None = strawberry.field(
        description="Malformed records skipped in the last load of a bulk feed."
    )
    view: strawberry.Private[SourceView]

    @strawberry.field(
        description="Operators only (null otherwise): how often this source's slots were "
        "gone when patients followed them through the gateway's hand-off, since this "
        "instance started."
    )
    def phantom_slots(self, info: Context) -> PhantomSlots | None:
        if not info.context.operator_view:
            return None
        pool = info.context.pool
        source = next((s for s in pool.enabled if s.id == self.id), None)
        counted = pool.phantoms.rate(self.id, source.physician_count if source else None)
        return PhantomSlots(hand_offs=counted.hand_offs, gone=counted.gone, rate=counted.rate)

    @strawberry.field(description="What an operator should fix: a LOSS makes the source DEGRADED.")
    def problems(self, info: Context) -> list[SourceProblem]:
        operator = info.context.operator_view
        return [SourceProblem.from_record(p, operator) for p in self.view.problems]

    @classmethod
    def from_view(cls, view: SourceView) -> Source:
        return cls(
            id=strawberry.ID(view.id),
            name=view.name,
            protocol=view.protocol,
            status=view.status,
            last_success_at=view.last_success_at,
            latency_ms=view.latency_ms,
            data_as_of=view.data_as_of,
            skipped_records=view.skipped_records,
            view=view,
        )


def _sources(info: Context, source_ids: tuple[str, ...]) -> list[Source]:
    views = (info.context.source_view(sid) for sid in source_ids)
    return [Source.from_view(v) for v in views if v is not None]


@strawberry.type(description="A clinic, merged across every booking system that lists it.")
class Clinic(Node):
    id: strawberry.ID
    name: str
    address: Address
    region: Region
    location: GeoPoint | None
    phone: str | None
    languages: list[str]
    time_zone: str = strawberry.field(
        description="The IANA time zone the clinic keeps (America/Montreal, America/Halifax "
        "in the Îles-de-la-Madeleine, America/Blanc-Sablon on the Basse-Côte-Nord), to show "
        "its slots in local time; DateTime values stay in Montreal time with their offset."
    )
    merged: strawberry.Private[MergedClinic]

    @classmethod
    def from_merged(cls, clinic: MergedClinic) -> Clinic:
        address = clinic.address
        location = clinic.location
        return cls(
            id=strawberry.ID(to_global_id("Clinic", clinic.key)),
            name=clinic.name,
            address=Address(
                line=address.line,
                city=address.city,
                postal_code=address.postal_code,
                region=address.region,
            ),
            region=clinic.region,
            location=GeoPoint(
                latitude=location.latitude,
                longitude=location.longitude,
                approximate=location.approximate,
            )
            if location
            else None,
            phone=clinic.phone,
            languages=list(clinic.languages),
            time_zone=clinic.time_zone,
            merged=clinic,
        )

    @strawberry.field
    async def physicians(self, info: Context) -> list[Physician]:
        found = await clinic_resolvers.physicians_of(info.context, self.merged)
        return [Physician.from_merged(p) for p in found]

    @strawberry.field(description="The booking systems that list this clinic.")
    def sources(self, info: Context) -> list[Source]:
        return _sources(info, self.merged.source_ids)

    @strawberry.field(description="The clinic's next free slots over the next 31 days.")
    async def next_slots(
        self,
        info: Context,
        first: int | None = 5,
        appointment_types: list[AppointmentType] | None = strawberry.UNSET,
    ) -> list[Slot]:
        found = await clinic_resolvers.next_slots(
            info.context,
            self.merged,
            first,
            unset_to_none(appointment_types),
        )
        return Slot.many(found)


@strawberry.type(description="A physician. Only what a patient needs to choose is exposed.")
class Physician(Node):
    id: strawberry.ID
    display_name: str
    languages: list[str]
    accepting_new_patients: bool | None
    merged: strawberry.Private[MergedPhysician]

    @classmethod
    def from_merged(cls, physician: MergedPhysician) -> Physician:
        return cls(
            id=strawberry.ID(to_global_id("Physician", physician.key)),
            display_name=physician.display_name,
            languages=list(physician.languages),
            accepting_new_patients=physician.accepting_new_patients,
            merged=physician,
        )

    @strawberry.field
    async def clinics(self, info: Context) -> list[Clinic]:
        found = await clinic_resolvers.clinics_of(info.context, self.merged)
        return [Clinic.from_merged(c) for c in found]

    @strawberry.field(description="The physician's next free slots over the next 31 days.")
    async def next_slots(self, info: Context, first: int | None = 5) -> list[Slot]:
        found = await clinic_resolvers.next_slots(info.context, self.merged, first)
        return Slot.many(found)


@strawberry.type(description="A free appointment slot. Busy or booked slots never appear.")
class Slot(Node):
    id: strawberry.ID
    start: datetime
    end: datetime
    duration_minutes: int
    appointment_type: AppointmentType
    booking_url: str | None
    booking_phone: str | None
    capacity: int | None = strawberry.field(
        description="Seats in this slot when it groups several (SMART slot-capacity, or "
        "free slots of one system at one place, time and type served as one, seats added)."
    )
    distance_km: float | None = strawberry.field(
        description="From the search's `near` point, when one was given."
    )
    # Plain values, not resolvers (strawberry's resolver path costs more than building
    # them): built once per merged clinic and physician of a page, not once per slot.
    clinic: Clinic
    physician: Physician | None
    found: strawberry.Private[FoundSlot]

    @classmethod
    def from_found(
        cls, slot: FoundSlot, built: dict[int, Clinic | Physician] | None = None
    ) -> Slot:
        """The slot of ``slot``; ``built``: the clinics and physicians of the page's slots
        built so far, by the merged one's identity (filled here)."""
        record = slot.record
        built = {} if built is None else built
        clinic = built.get(id(slot.clinic))
        if not isinstance(clinic, Clinic):
            clinic = built[id(slot.clinic)] = Clinic.from_merged(slot.clinic)
        physician: Physician | None = None
        if slot.physician is not None:
            known = built.get(id(slot.physician))
            physician = known if isinstance(known, Physician) else None
            if physician is None:
                physician = built[id(slot.physician)] = Physician.from_merged(slot.physician)
        return cls(
            id=strawberry.ID(to_global_id("Slot", slot.key)),
            start=record.start,
            end=record.end,
            duration_minutes=round((record.end - record.start).total_seconds() / 60),
            appointment_type=record.appointment_type,
            booking_url=record.booking_url,
            booking_phone=record.booking_phone,
            capacity=record.capacity,
            distance_km=None if slot.distance_km is None else round(slot.distance_km, 2),
            clinic=clinic,
            physician=physician,
            found=slot,
        )

    @classmethod
    def many(cls, slots: Iterable[FoundSlot]) -> list[Slot]:
        """The slots of ``slots``, their clinics and physicians built once each."""
        built: dict[int, Clinic | Physician] = {}
        return [cls.from_found(slot, built) for slot in slots]

    @strawberry.field(description="The booking system this slot was read from.")
    def source(self, info: Context) -> Source:
        view = info.context.source_view(self.found.record.source_id)
        if view is None:  # pragma: no cover - a slot always comes from a registered source
            raise LookupError(f"unknown source {self.found.record.source_id}")
        return Source.from_view(view)


@strawberry.type
class SlotEdge:
    @strawberry.field
    def cursor(self) -> str:
        return self.cursor_of()

    node: Slot
    # Encoded only when asked: a search often asks for pageInfo's cursor alone.
    cursor_of: strawberry.Private[Callable[[], str]]


@strawberry.type
class SlotConnection:
    edges: list[SlotEdge]
    page_info: PageInfo
    total_count: int | None = strawberry.field(
        description="Matching slots, as the search's first page counted them (the same on "
        "every page): exact, or a lower bound (see totalCountKind). Null when no source "
        "could count."
    )
    total_count_kind: CountKind | None = strawberry.field(
        description="EXACT when every source answered completely, else AT_LEAST."
    )


@strawberry.type
class ClinicEdge:
    cursor: str
    node: Clinic


@strawberry.type
class ClinicConnection:
    edges: list[ClinicEdge]
    page_info: PageInfo
    total_count: int | None


__all__ = [
    "Address",
    "Clinic",
    "ClinicConnection",
    "ClinicEdge",
    "GeoPoint",
    "Node",
    "PageInfo",
    "Physician",
    "Slot",
    "SlotConnection",
    "SlotEdge",
    "Source",
    "SourceProblem",
]
