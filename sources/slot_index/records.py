"""The clinics and physicians of a ``SlotIndex``: found by id, region, position, name.

A ``Directory`` is built once per full load and shared unchanged by every
index ``with_slot_changes`` derives from it (updates change slots only).
Clinics are numbered in the order they were added; slot storage is kept by
the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sources.geo import distance_km, normalize_postal_code, prepare
from sources.names import normalize_name
from sources.records import (
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    PhysicianQuery,
    PhysicianRecord,
    Region,
    SlotQuery,
)
from sources.slot_index.columns import Languages
from sources.slot_index.grid import ClinicGrid


def _grouped(pairs: Iterable[tuple[object, str]]) -> dict[object, tuple[str, ...]]:
    grouped: dict[object, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return {k: tuple(v) for k, v in grouped.items()}


class Directory:
    """One source's clinic and physician records, with the lookups queries need."""

    __slots__ = (
        "_by_clinic",
        "_by_identifier",
        "_by_region",
        "_grid",
        "_names",
        "_physician_order",
        "_postal_codes",
        "clinics",
        "numbers",
        "physicians",
        "points",
    )

    def __init__(
        self, clinics: Mapping[str, ClinicRecord], physicians: Mapping[str, PhysicianRecord]
    ) -> None:
        self.clinics = tuple(clinics.values())
        self.numbers = {c.local_id: n for n, c in enumerate(self.clinics)}
        # Clinic positions prepared once for the distances of every near-me search.
        self.points = {
            n: prepare(c.location) for n, c in enumerate(self.clinics) if c.location is not None
        }
        self.physicians = dict(physicians)
        self._physician_order = {local_id: n for n, local_id in enumerate(physicians)}
        by_region: dict[Region, list[int]] = {}
        for number, clinic in enumerate(self.clinics):
            by_region.setdefault(clinic.address.region, []).append(number)
        self._by_region = {k: tuple(v) for k, v in by_region.items()}
        self._grid = ClinicGrid(
            (n, c.location) for n, c in enumerate(self.clinics) if c.location is not None
        )
        self._names = tuple(normalize_name(c.name) for c in self.clinics)
        self._postal_codes = tuple(
            normalize_postal_code(c.address.postal_code) for c in self.clinics
        )
        records = self.physicians.values()
        self._by_identifier: Mapping[object, tuple[str, ...]] = _grouped(
            (i, p.local_id) for p in records for i in dict.fromkeys(p.identifiers)
        )
        self._by_clinic: Mapping[object, tuple[str, ...]] = _grouped(
            (c, p.local_id) for p in records for c in dict.fromkeys(p.clinic_local_ids)
        )

    def languages_of(self, number: int) -> Languages:
        """The languages a slot of this clinic answers a ``languages`` filter with."""
        return languages_for(self.clinics[number], self.physicians)

    def slot_clinics(
        self,
        query: SlotQuery,
        physician_clinics: Mapping[str, tuple[int, ...]],
        distances: dict[int, float] | None = None,
    ) -> Iterable[int]:
        """Numbers of the clinics meeting the query's clinic criteria, and holding
        slots of the query's physicians (``physician_clinics``) if it names any. Where
        the grid measured them (a radius around the query's point), their distances
        are added to ``distances``."""
        candidates: Iterable[int] | None = None
        if query.clinic_local_ids is not None:
            candidates = self._numbers_of(query.clinic_local_ids)
        if query.physician_local_ids is not None:
            held = {n for p in query.physician_local_ids for n in physician_clinics.get(p, ())}
            candidates = held if candidates is None else held & set(candidates)
        near, radius_km = query.near, query.radius_km
        if (
            candidates is None
            and near is not None
            and radius_km is not None
            and distances is not None
        ):
            measured = self._grid.measured(near, radius_km)
            distances.update(measured)
            return self._narrowed(sorted(measured), None, None, query.region)
        return self._narrowed(candidates, near, radius_km, query.region)

    def _numbers_of(self, local_ids: Iterable[str]) -> set[int]:
        numbers = self.numbers
        return {n for c in local_ids if (n := numbers.get(c)) is not None}

    def _narrowed(
        self,
        candidates: Iterable[int] | None,
        near: GeoPoint | None,
        radius_km: float | None,
        region: Region | None,
    ) -> Iterable[int]:
        """``candidates`` (None: every clinic) within the radius and the region."""
        if candidates is None and near is not None:
            candidates, near = self._grid.within(near, radius_km), None
        if candidates is None and region is not None:
            candidates, region = self._by_region.get(region, ()), None
        if candidates is None:
            return range(len(self.clinics))
        if region is not None:
            candidates = [n for n in candidates if self.clinics[n].address.region == region]
        if near is not None:
            candidates = [n for n in candidates if self._within(n, near, radius_km)]
        return candidates

    def _within(self, number: int, near: GeoPoint, radius_km: float | None) -> bool:
        location = self.clinics[number].location
        if location is None:
            return False
        return radius_km is None or distance_km(near, location) <= radius_km

    def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        """Every clinic meeting all of ``query``'s criteria, in the order they were added."""
        ids = None if query.local_ids is None else self._numbers_of(query.local_ids)
        candidates = self._narrowed(ids, query.near, query.radius_km, query.region)
        wanted = (query.name_contains or "").strip()
        name = normalize_name(wanted) if wanted else ""
        identifiers = None if query.identifiers is None else frozenset(query.identifiers)
        postal_codes = None
        if query.postal_codes is not None:
            postal_codes = {normalize_postal_code(p) for p in query.postal_codes} - {None}
        found = []
        for number in sorted(candidates):
            clinic = self.clinics[number]
            if name and name not in self._names[number]:
                continue
            if identifiers is not None and identifiers.isdisjoint(clinic.identifiers):
                continue
            if postal_codes is not None and self._postal_codes[number] not in postal_codes:
                continue
            found.append(clinic)
        return found

    def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        """Physicians by local id, by identifier, or listing one of the clinics (any match)."""
        ids = dict.fromkeys(i for i in query.local_ids if i in self.physicians)
        for identifier in query.identifiers:
            ids.update(dict.fromkeys(self._by_identifier.get(identifier, ())))
        for clinic_id in query.clinic_local_ids:
            ids.update(dict.fromkeys(self._by_clinic.get(clinic_id, ())))
        order = self._physician_order
        return [self.physicians[i] for i in sorted(ids, key=order.__getitem__)]


def languages_for(clinic: ClinicRecord, physicians: Mapping[str, PhysicianRecord]) -> Languages:
    """The languages a slot of ``clinic`` answers a ``languages`` filter with."""

    # As the federation re-checks: the physician's languages when the source
    # describes the physician, else the clinic's.
    def languages(physician_local_id: str | None) -> tuple[str, ...]:
        record = physicians.get(physician_local_id) if physician_local_id else None
        return record.languages if record is not None else clinic.languages

    return languages
