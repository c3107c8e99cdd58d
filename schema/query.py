"""The root ``Query`` type."""

from __future__ import annotations

import strawberry

from resolvers import checks as check_resolvers
from resolvers import clinics as clinic_resolvers
from resolvers import slots as slot_resolvers
from resolvers.nodes import resolve_node
from schema.checks import SlotCheck
from schema.inputs import ClinicFilter, SlotFilter, unset_to_none
from schema.plan.records import SlotRecords, slot_connection
from schema.types import (
    Clinic,
    ClinicConnection,
    ClinicEdge,
    Context,
    Node,
    PageInfo,
    Physician,
    Slot,
    SlotConnection,
    Source,
)
from sources.search import MergedClinic, MergedPhysician


@strawberry.type
class Query:
    @strawberry.field(
        description="Free slots matching the filter, ordered by start, then distance, then id."
    )
    async def slots(
        self,
        info: Context,
        filter: SlotFilter,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> SlotConnection:
        request = filter.to_request(info.context.now, first)
        page = await slot_resolvers.search_slots(
            info.context, request, unset_to_none(after), info.path.as_list()
        )
        if info.path.key in info.context.record_roots:
            # Its compiled plan reads the records (schema/plan/records.py).
            return SlotRecords(page, request)  # type: ignore[return-value]
        return slot_connection(page, request)

    @strawberry.field(description="Clinics matching the filter, nearest first, then by name.")
    async def clinics(
        self,
        info: Context,
        filter: ClinicFilter | None = strawberry.UNSET,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> ClinicConnection:
        f = filter if isinstance(filter, ClinicFilter) else ClinicFilter()
        near = unset_to_none(f.near)
        page = await clinic_resolvers.search_clinics(
            info.context,
            near=near.to_point() if near is not None else None,
            radius_km=unset_to_none(f.radius_km),
            region=unset_to_none(f.region),
            name_contains=unset_to_none(f.name_contains),
            first=first,
            after=unset_to_none(after),
            path=info.path.as_list(),
        )
        edges = [
            ClinicEdge(
                cursor=clinic_resolvers.clinic_cursor(page, i),
                node=Clinic.from_merged(found.clinic),
            )
            for i, found in enumerate(page.clinics)
        ]
        return ClinicConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None
            ),
            total_count=page.total,
        )

    @strawberry.field(description="Any object by its global id; null when no source has it.")
    async def node(self, info: Context, id: strawberry.ID) -> Node | None:
        found = await resolve_node(info.context, id)
        if isinstance(found, MergedClinic):
            return Clinic.from_merged(found)
        if isinstance(found, MergedPhysician):
            return Physician.from_merged(found)
        return Slot.from_found(found) if found is not None else None

    @strawberry.field(
        description="A slot checked against its booking source now, never from a cache: "
        "whether it is still free at the moment a patient picks it, and the clinic's next "
        "slots when it is not."
    )
    async def slot_check(self, info: Context, id: strawberry.ID) -> SlotCheck:
        return SlotCheck.of(await check_resolvers.check_slot(info.context, id))

    @strawberry.field(description="Every registered booking source, in registry order.")
    def sources(self, info: Context) -> list[Source]:
        return [Source.from_view(v) for v in info.context.pool.views()]
