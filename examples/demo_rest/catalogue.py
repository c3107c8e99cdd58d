"""What the demo REST API serves, indexed once at startup: the world's ``"rest"``
clinics, their physicians and slots under this system's own ids and codes.

The endpoints (``examples.demo_rest.endpoints``) only filter and page what
``Catalogue`` holds; the API's conventions are in ``examples.demo_rest.server``.

    catalogue = Catalogue.of(World(scale=0.02))
    nearby = catalogue.clinics_in_circle(GeoPoint(45.5, -73.57), radius_km=5)
"""

from __future__ import annotations

import bisect
import itertools
import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import TYPE_CHECKING

from examples.world import WorldPhysician, WorldSlot
from sources.geo import distance_km
from sources.records import AppointmentType, GeoPoint, Region

if TYPE_CHECKING:
    from examples.world import World, WorldClinic

TYPE_CODES: dict[AppointmentType, str] = {
    AppointmentType.WALK_IN: "sans_rendez_vous",
    AppointmentType.URGENT: "urgent",
    AppointmentType.PRIORITY: "prioritaire",
    AppointmentType.ROUTINE: "regulier",
    AppointmentType.FOLLOW_UP: "suivi",
    AppointmentType.CHECKUP: "bilan",
    AppointmentType.PREGNANCY_FOLLOW_UP: "suivi_grossesse",
    AppointmentType.CHILD_FOLLOW_UP: "suivi_enfant",
    AppointmentType.NEW_PATIENT: "nouveau_patient",
}
TYPES_BY_CODE = {code: kind for kind, code in TYPE_CODES.items()}
# Official administrative region codes follow the enum's order: 01..17.
REGION_CODES: dict[Region, str] = {region: f"{i:02d}" for i, region in enumerate(Region, 1)}
REGIONS_BY_CODE = {code: region for region, code in REGION_CODES.items()}

_CLINIC_ID_BASE = 1000
_PHYSICIAN_ID_BASE = 50000
_GRID_DEG = 0.5


def clinic_api_id(world_id: str) -> int:
    """``"C00012"`` -> ``1012``: this system's own clinic id."""
    return _CLINIC_ID_BASE + int(world_id[1:])


def physician_api_id(world_id: str) -> int:
    """``"P00345"`` -> ``50345``: this system's own physician id."""
    return _PHYSICIAN_ID_BASE + int(world_id[1:])


def slot_api_id(world_id: str) -> str:
    """This system's slot id; it sorts as the world's ids do."""
    return f"dispo-{world_id}"


def fold(text: str) -> str:
    """``text`` without case or accents, as the ``nom`` filter compares names."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def compact_postal(text: str) -> str:
    """A postal code or prefix without spaces, dashes or case."""
    return "".join(text.split()).replace("-", "").upper()


# (start timestamp, world slot id, slot): tuples compare by time then id.
SlotEntry = tuple[float, str, WorldSlot]
ENTRY_START = itemgetter(0)
_START_AND_ID = itemgetter(0, 1)
# (api id, physician, api ids of the listed clinics they work in)
PhysicianEntry = tuple[int, WorldPhysician, tuple[int, ...]]


@dataclass(slots=True)
class ClinicEntry:
    clinic: WorldClinic
    api_id: int
    folded_name: str
    compact_postal: str
    point: GeoPoint
    # (free or None for both, type or None for all) -> entries sorted by start, id
    buckets: dict[tuple[bool | None, AppointmentType | None], list[SlotEntry]]


@dataclass(slots=True)
class Catalogue:
    clinics: list[ClinicEntry]  # by api id
    clinics_by_api_id: dict[int, ClinicEntry]
    grid: dict[tuple[int, int], list[ClinicEntry]]
    physicians: list[PhysicianEntry]  # by api id
    physicians_by_api_id: dict[int, PhysicianEntry]

    @classmethod
    def of(cls, world: World) -> Catalogue:
        """Index ``world``'s ``"rest"`` clinics and the physicians working in them."""
        listed_clinics: list[ClinicEntry] = []
        grid: dict[tuple[int, int], list[ClinicEntry]] = {}
        for clinic in world.clinics_for("rest"):
            timeline = [(s.start.timestamp(), s.id, s) for s in world.slots_for_clinic(clinic.id)]
            timeline.sort(key=itemgetter(0, 1))
            # Filtering the sorted list keeps each bucket sorted; identity tests avoid
            # hashing an enum per slot, which made startup twice as slow at scale 1.0.
            buckets: dict[tuple[bool | None, AppointmentType | None], list[SlotEntry]] = {
                (None, None): timeline,
                (True, None): [e for e in timeline if e[2].free],
                (False, None): [e for e in timeline if not e[2].free],
            }
            for kind in AppointmentType:
                of_kind = [e for e in timeline if e[2].appointment_type is kind]
                buckets[None, kind] = of_kind
                buckets[True, kind] = [e for e in of_kind if e[2].free]
                buckets[False, kind] = [e for e in of_kind if not e[2].free]
            entry = ClinicEntry(
                clinic=clinic,
                api_id=clinic_api_id(clinic.id),
                folded_name=fold(clinic.name),
                compact_postal=compact_postal(clinic.postal_code),
                point=GeoPoint(clinic.latitude, clinic.longitude),
                buckets=buckets,
            )
            listed_clinics.append(entry)
            grid.setdefault(_cell(clinic.latitude, clinic.longitude), []).append(entry)
        listed_clinics.sort(key=lambda e: e.api_id)
        listed = {e.clinic.id for e in listed_clinics}
        physicians = []
        for physician in world.physicians:
            clinic_ids = tuple(clinic_api_id(c) for c in physician.clinic_ids if c in listed)
            if clinic_ids:
                physicians.append((physician_api_id(physician.id), physician, clinic_ids))
        physicians.sort(key=itemgetter(0))
        return cls(
            clinics=listed_clinics,
            clinics_by_api_id={e.api_id: e for e in listed_clinics},
            grid=grid,
            physicians=physicians,
            physicians_by_api_id={p[0]: p for p in physicians},
        )

    def physicians_with_ids(self, ids: Iterable[int]) -> list[PhysicianEntry]:
        """The listed physicians among ``ids``, by api id."""
        return [self.physicians_by_api_id[i] for i in sorted(ids) if i in self.physicians_by_api_id]

    def slots_of(self, world_clinic_id: str) -> list[WorldSlot]:
        """A clinic's slots as served now (free and busy, churn included), by start."""
        entry = self.clinics_by_api_id.get(clinic_api_id(world_clinic_id))
        return [e[2] for e in entry.buckets[None, None]] if entry is not None else []

    def slot(self, api_id: str) -> WorldSlot | None:
        """A slot by this system's id (``dispo-C00012-...``), free or busy, as served now."""
        world_id = api_id.removeprefix("dispo-")
        clinic_id = world_id.partition("-")[0]
        if world_id == api_id or not clinic_id[1:].isdigit():
            return None
        return next((s for s in self.slots_of(clinic_id) if s.id == world_id), None)

    def set_free(self, slot: WorldSlot, free: bool) -> WorldSlot:
        """Serve ``slot`` free or busy from now on (``examples.churn``)."""
        entry = self.clinics_by_api_id[clinic_api_id(slot.clinic_id)]
        changed = replace(slot, free=free)
        old: SlotEntry = (slot.start.timestamp(), slot.id, slot)
        new: SlotEntry = (old[0], slot.id, changed)
        for kind in (None, slot.appointment_type):
            every = entry.buckets[None, kind]
            every[bisect.bisect_left(every, old[:2], key=_START_AND_ID)] = new
            was = entry.buckets.get((slot.free, kind), [])
            at = bisect.bisect_left(was, old[:2], key=_START_AND_ID)
            if at < len(was) and was[at][1] == slot.id:
                del was[at]
            bisect.insort(entry.buckets.setdefault((free, kind), []), new, key=_START_AND_ID)
        return changed

    def clinics_in_circle(self, center: GeoPoint, radius_km: float) -> list[ClinicEntry]:
        """The clinics within ``radius_km`` of ``center``, by api id."""
        dlat = radius_km / 111.0 + _GRID_DEG
        coslat = max(0.01, math.cos(math.radians(min(89.0, abs(center.latitude) + dlat))))
        dlng = radius_km / (111.0 * coslat) + _GRID_DEG
        lat0, lng0 = _cell(center.latitude - dlat, center.longitude - dlng)
        lat1, lng1 = _cell(center.latitude + dlat, center.longitude + dlng)
        if (lat1 - lat0 + 1) * (lng1 - lng0 + 1) > len(self.clinics):
            candidates: Iterable[ClinicEntry] = self.clinics
        else:
            candidates = itertools.chain.from_iterable(
                self.grid.get((i, j), ())
                for i in range(lat0, lat1 + 1)
                for j in range(lng0, lng1 + 1)
            )
        found = [c for c in candidates if distance_km(center, c.point) <= radius_km]
        found.sort(key=lambda c: c.api_id)
        return found


def _cell(latitude: float, longitude: float) -> tuple[int, int]:
    return (math.floor(latitude / _GRID_DEG), math.floor(longitude / _GRID_DEG))


__all__ = [
    "ENTRY_START",
    "REGIONS_BY_CODE",
    "REGION_CODES",
    "TYPES_BY_CODE",
    "TYPE_CODES",
    "Catalogue",
    "ClinicEntry",
    "PhysicianEntry",
    "SlotEntry",
    "clinic_api_id",
    "compact_postal",
    "fold",
    "physician_api_id",
    "slot_api_id",
]
