"""The demo REST API's three listings: parameters read and checked, the catalogue
filtered, one page answered in the paging envelope.

``examples.demo_rest.server`` documents the parameters and items, and wraps these
handlers in the edge (API key, rate limit, errors): a bad parameter raises
``BadRequest``, which the edge turns into a ``400``.

    endpoints = Endpoints(Catalogue.of(world), "https://rdv.example.org/reserver")
    app.router.add_get("/api/v1/cliniques", endpoints.clinics)
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import orjson
from aiohttp import web

from examples.demo_rest.catalogue import (
    ENTRY_START,
    REGIONS_BY_CODE,
    TYPE_CODES,
    TYPES_BY_CODE,
    Catalogue,
    ClinicEntry,
    PhysicianEntry,
    SlotEntry,
    clinic_api_id,
    compact_postal,
    fold,
    physician_api_id,
    slot_api_id,
)
from sources.records import AppointmentType, GeoPoint, Region
from sources.timeutil import local_naive, zone_info

if TYPE_CHECKING:
    from examples.world import WorldSlot

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_LIST_ITEMS = 1000
MAX_RADIUS_KM = 1000.0

_T = TypeVar("_T")


class BadRequest(Exception):
    """A parameter the API refuses; the message, in French, is the ``400``'s ``erreur``."""


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


@dataclass(slots=True)
class Endpoints:
    """The handlers of ``/api/v1/cliniques``, ``/medecins`` and ``/disponibilites``."""

    catalogue: Catalogue
    booking_base_url: str

    async def clinics(self, request: web.Request) -> web.Response:
        page, limit = _page(request)
        ids = _int_list(request, "ids")
        permits = _text_list(request, "no_permis")
        name = request.query.get("nom")
        postals = _text_list(request, "code_postal")
        clinics = self._select_clinics(request)
        if ids is not None:
            clinics = [c for c in clinics if c.api_id in ids]
        if permits is not None:
            wanted = set(permits)
            clinics = [c for c in clinics if c.clinic.permit in wanted]
        if name is not None and name.strip():
            folded = fold(name.strip())
            clinics = [c for c in clinics if folded in c.folded_name]
        if postals is not None:
            prefixes = tuple(compact_postal(p) for p in postals)
            clinics = [c for c in clinics if c.compact_postal.startswith(prefixes)]
        return _paged(clinics, page, limit, _clinic_json)

    async def physicians(self, request: web.Request) -> web.Response:
        page, limit = _page(request)
        ids = _int_list(request, "ids")
        licences = _text_list(request, "no_licence")
        clinic_ids = _int_list(request, "clinique")
        physicians: Sequence[PhysicianEntry]
        if ids is not None:
            physicians = self.catalogue.physicians_with_ids(ids)
        else:
            physicians = self.catalogue.physicians
        if licences is not None:
            wanted = set(licences)
            physicians = [p for p in physicians if p[1].licence in wanted]
        if clinic_ids is not None:
            physicians = [p for p in physicians if not clinic_ids.isdisjoint(p[2])]
        return _paged(physicians, page, limit, _physician_json)

    async def slots(self, request: web.Request) -> web.Response:
        page, limit = _page(request)
        low = _local_time(request, "debut_min")
        high = _local_time(request, "debut_max")
        if low is not None and high is not None and high < low:
            raise BadRequest("'debut_max' précède 'debut_min'")
        clinic_ids = _int_list(request, "cliniques")
        physician_ids = _int_list(request, "medecins")
        type_codes = _text_list(request, "types")
        types: list[AppointmentType | None] = [None]
        if type_codes is not None:
            unknown = sorted(set(type_codes) - TYPES_BY_CODE.keys())
            if unknown:
                raise BadRequest(f"paramètre 'types': code inconnu {unknown[0]!r}")
            types = [TYPES_BY_CODE[code] for code in dict.fromkeys(type_codes)]
        status = request.query.get("statut")
        if status not in (None, "libre", "reserve"):
            raise BadRequest("paramètre 'statut': 'libre' ou 'reserve'")
        free = None if status is None else status == "libre"

        languages = _text_list(request, "langues")

        clinics = self._select_clinics(request)
        if clinic_ids is not None:
            clinics = [c for c in clinics if c.api_id in clinic_ids]
        wanted_physicians: set[str] | None = None
        if physician_ids is not None or languages is not None:
            found = (
                self.catalogue.physicians_with_ids(physician_ids)
                if physician_ids is not None
                else self.catalogue.physicians
            )
            if languages is not None:  # physicians speaking one of them
                spoken = {code.lower() for code in languages}
                found = [p for p in found if spoken.intersection(p[1].languages)]
            wanted_physicians = {p[1].id for p in found}
            their_clinics = {c for p in found for c in p[2]}
            clinics = [c for c in clinics if c.api_id in their_clinics]
        # A clinic whose every physician is wanted is read as if unfiltered (its counts
        # from the bisection alone): "fr" asks nearly every clinic whole.
        whole: set[int] = set()
        if wanted_physicians is not None:
            staff: dict[int, set[str]] = {}
            for _, physician, at in self.catalogue.physicians:
                for clinic_id in at:
                    staff.setdefault(clinic_id, set()).add(physician.id)
            whole = {c for c, ids in staff.items() if ids <= wanted_physicians}
        offset = (page - 1) * limit
        runs: list[list[SlotEntry]] = []
        total = 0
        keys: dict[str, tuple[float, float]] = {}
        for clinic in clinics:
            # The bounds are local times: each clinic's, read in its own zone.
            zone_name = clinic.clinic.time_zone
            if zone_name not in keys:
                keys[zone_name] = _bounds_in(low, high, zone_name)
            lo_key, hi_key = keys[zone_name]
            for kind in types:
                bucket = clinic.buckets.get((free, kind))
                if not bucket:
                    continue
                a = bisect.bisect_left(bucket, lo_key, key=ENTRY_START)
                b = bisect.bisect_right(bucket, hi_key, key=ENTRY_START)
                if a >= b:
                    continue
                if wanted_physicians is None or clinic.api_id in whole:
                    total += b - a
                    # No run contributes more than the items up to the end of this page.
                    runs.append(bucket[a : min(b, a + offset + limit)])
                else:
                    run = [e for e in bucket[a:b] if e[2].physician_id in wanted_physicians]
                    if run:
                        total += len(run)
                        runs.append(run)
        chosen = (
            list(itertools.islice(heapq.merge(*runs), offset, offset + limit))
            if offset < total
            else []
        )
        items: list[object] = [self._slot_json(e[2]) for e in chosen]
        return json_response(_envelope(items, page, limit, total))

    async def slot(self, request: web.Request) -> web.Response:
        """One slot by id, free (``statut: libre``) or not (``reserve``); 404 unknown."""
        found = self.catalogue.slot(request.match_info["id"])
        if found is None:
            return json_response({"erreur": "disponibilité inconnue"}, status=404)
        return json_response(self._slot_json(found))

    def _select_clinics(self, request: web.Request) -> list[ClinicEntry]:
        """Clinics matching the clinic-level filters shared by clinic and slot searches."""
        circle = _circle(request)
        regions = _regions(request)
        clinics = (
            self.catalogue.clinics_in_circle(*circle)
            if circle is not None
            else self.catalogue.clinics
        )
        if regions is not None:
            clinics = [c for c in clinics if c.clinic.region in regions]
        return clinics

    def _slot_json(self, slot: WorldSlot) -> dict[str, object]:
        clinic_id = clinic_api_id(slot.clinic_id)
        clinic = self.catalogue.clinics_by_api_id[clinic_id].clinic
        slot_id = slot_api_id(slot.id)
        zone = zone_info(clinic.time_zone)
        return {
            "id": slot_id,
            "debut": local_naive(slot.start, zone),
            "fin": local_naive(slot.end, zone),
            "clinique_id": clinic_id,
            "medecin_id": physician_api_id(slot.physician_id),
            "type_rdv": TYPE_CODES[slot.appointment_type],
            "statut": "libre" if slot.free else "reserve",
            "lien_reservation": f"{self.booking_base_url}/{slot_id}" if slot.free else None,
            "telephone_reservation": clinic.phone if slot.free else None,
        }


# -- answers ----------------------------------------------------------------------


def _paged(
    rows: Sequence[_T], page: int, limit: int, render: Callable[[_T], object]
) -> web.Response:
    """Page ``page`` of ``rows`` (every match, in order), rendered, in the envelope."""
    chosen = rows[(page - 1) * limit : page * limit]
    return json_response(_envelope([render(r) for r in chosen], page, limit, len(rows)))


def _envelope(items: list[object], page: int, limit: int, total: int) -> dict[str, object]:
    return {
        "resultats": items,
        "page": page,
        "pages": math.ceil(total / limit),
        "limite": limit,
        "total": total,
    }


def _clinic_json(entry: ClinicEntry) -> dict[str, object]:
    c = entry.clinic
    return {
        "id": entry.api_id,
        "nom": c.name,
        "adresse": {"rue": c.line, "ville": c.city, "code_postal": c.postal_code},
        "lat": c.latitude,
        "lng": c.longitude,
        "telephone": c.phone,
        "langues": list(c.languages),
        "no_permis": c.permit,
    }


def _physician_json(entry: PhysicianEntry) -> dict[str, object]:
    api_id, p, clinics = entry
    return {
        "id": api_id,
        "titre": "Dr",
        "prenom": p.given,
        "nom": p.family,
        "langues": list(p.languages),
        "no_licence": p.licence,
        "cliniques": list(clinics),
        "accepte_nouveaux_patients": p.accepting_new_patients,
    }


# -- parameters -------------------------------------------------------------------


def _text_list(request: web.Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        raise BadRequest(f"paramètre '{name}' vide")
    if len(values) > MAX_LIST_ITEMS:
        raise BadRequest(f"paramètre '{name}': au plus {MAX_LIST_ITEMS} valeurs")
    return values


def _int_list(request: web.Request, name: str) -> set[int] | None:
    values = _text_list(request, name)
    if values is None:
        return None
    try:
        return {int(v) for v in values}
    except ValueError:
        raise BadRequest(f"paramètre '{name}': entiers séparés par des virgules attendus") from None


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"paramètre '{name}': entier attendu") from None
    if not low <= value <= high:
        raise BadRequest(f"paramètre '{name}': entre {low} et {high}")
    return value


def _float(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"paramètre '{name}': nombre attendu") from None
    if not math.isfinite(value):
        raise BadRequest(f"paramètre '{name}': nombre fini attendu")
    return value


def _bounds_in(low: datetime | None, high: datetime | None, zone_name: str) -> tuple[float, float]:
    """Naive local bounds as POSIX times in one zone (no bound: infinite)."""
    zone = zone_info(zone_name)
    return (
        -math.inf if low is None else low.replace(tzinfo=zone, fold=0).timestamp(),
        math.inf if high is None else high.replace(tzinfo=zone, fold=0).timestamp(),
    )


def _local_time(request: web.Request, name: str) -> datetime | None:
    """A local time without offset: each clinic's own, when compared with its slots."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise BadRequest(f"paramètre '{name}': heure locale AAAA-MM-JJTHH:MM:SS attendue") from None
    if value.tzinfo is not None:
        raise BadRequest(f"paramètre '{name}': heure locale sans décalage attendue")
    return value


def _page(request: web.Request) -> tuple[int, int]:
    return (
        _int(request, "page", 1, 1, 1_000_000),
        _int(request, "limite", DEFAULT_LIMIT, 1, MAX_LIMIT),
    )


def _regions(request: web.Request) -> set[Region] | None:
    values = _text_list(request, "region")
    if values is None:
        return None
    try:
        return {REGIONS_BY_CODE[f"{int(v):02d}"] for v in values}
    except (ValueError, KeyError):
        raise BadRequest("paramètre 'region': codes de région 01 à 17 attendus") from None


def _circle(request: web.Request) -> tuple[GeoPoint, float] | None:
    lat, lng, radius = _float(request, "lat"), _float(request, "lng"), _float(request, "rayon_km")
    if lat is None and lng is None and radius is None:
        return None
    if lat is None or lng is None or radius is None:
        raise BadRequest("paramètres 'lat', 'lng' et 'rayon_km' vont ensemble")
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise BadRequest("paramètres 'lat'/'lng' hors limites")
    if not 0 < radius <= MAX_RADIUS_KM:
        raise BadRequest(f"paramètre 'rayon_km': entre 0 et {MAX_RADIUS_KM:g}")
    return GeoPoint(lat, lng), radius


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MAX_LIST_ITEMS",
    "MAX_RADIUS_KM",
    "BadRequest",
    "Endpoints",
    "json_response",
]
