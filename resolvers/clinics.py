"""Clinic searches and the lookups behind Clinic and Physician fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from resolvers.context import NextSlotsKey
from resolvers.ids import decode_offset_cursor, encode_offset_cursor
from resolvers.inputs import check_first, check_point, check_radius, check_text
from sources.names import normalize_name
from sources.records import ClinicQuery
from sources.search import FoundClinic

if TYPE_CHECKING:
    from resolvers.context import RequestContext
    from sources.records import AppointmentType, GeoPoint, Region
    from sources.search import FoundSlot, MergedClinic, MergedPhysician

MAX_NAME_LENGTH = 200
CLINIC_CURSOR = "c"


@dataclass(frozen=True, slots=True)
class ClinicPage:
    clinics: list[FoundClinic]
    offset: int
    has_next: bool
    total: int


async def search_clinics(
    ctx: RequestContext,
    *,
    near: GeoPoint | None,
    radius_km: float | None,
    region: Region | None,
    name_contains: str | None,
    first: int | None,
    after: str | None,
    path: list[str | int],
) -> ClinicPage:
    count = check_first(first, 20, "clinics")
    offset = decode_offset_cursor(CLINIC_CURSOR, after) if after else 0
    point = check_point(near) if near is not None else None
    name = check_text(name_contains, "nameContains", MAX_NAME_LENGTH)
    search = ClinicQuery(
        near=point,
        radius_km=check_radius(point, radius_km),
        region=region,
        # Nothing searchable (only spaces or punctuation) means no name filter.
        name_contains=name if name and normalize_name(name) else None,
    )
    found = await ctx.federation.search_clinics(search)
    ctx.report(found.errors, path)
    everything = found.value
    page = everything[offset : offset + count]
    return ClinicPage(page, offset, offset + count < len(everything), len(everything))


def clinic_cursor(page: ClinicPage, index: int) -> str:
    return encode_offset_cursor(CLINIC_CURSOR, page.offset + index + 1)


async def physicians_of(ctx: RequestContext, clinic: MergedClinic) -> list[MergedPhysician]:
    result: list[MergedPhysician] = await ctx.physicians_of_clinic_loader.load(clinic)
    return result


async def clinics_of(ctx: RequestContext, physician: MergedPhysician) -> list[MergedClinic]:
    result: list[MergedClinic] = await ctx.clinics_of_physician_loader.load(physician)
    return result


async def next_slots(
    ctx: RequestContext,
    owner: MergedClinic | MergedPhysician,
    first: int | None,
    appointment_types: list[AppointmentType] | None = None,
) -> list[FoundSlot]:
    count = check_first(first, 5, "nextSlots")
    if count == 0:
        return []
    types = frozenset(appointment_types) if appointment_types else None
    result: list[FoundSlot] = await ctx.next_slots_loader.load(NextSlotsKey(owner, count, types))
    return result
