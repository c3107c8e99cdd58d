"""A demo proprietary booking API (REST/JSON) serving ``World.clinics_for("rest")``.

Run it::

    python -m examples.demo_rest --port 8102 --scale 0.01 --api-key KEY [--host 127.0.0.1]

The key may come from the environment variable ``PASSERELLE_DEMO_REST_KEY``
instead of ``--api-key``. The server stops cleanly on SIGINT/SIGTERM.

The API is deliberately unlike FHIR: French field names, local times without
offset, page/limit paging, numeric ids, an API key header.

Conventions
-----------
- Base path ``/api/v1``. Every ``/api/`` request needs the header
  ``X-Cle-Api: <key>``; a missing or wrong key gets ``401``.
- Times are **America/Montreal local wall times without offset**, to the
  second: ``"2026-11-26T08:00:00"``. A parameter carrying an offset is refused
  (``400``). In the repeated hour of the autumn change a local time means its
  first occurrence (daylight time).
- Lists in parameters are comma-separated: ``cliniques=1012,1040``. Different
  parameters combine with AND, the values of one list with OR. Unknown
  parameters are ignored.
- Clinic and physician ids are integers; slot ids are opaque strings.
- Regions are the official codes of Quebec's administrative regions,
  ``"01"`` (Bas-Saint-Laurent) to ``"17"`` (Centre-du-Québec), in the order
  of ``sources.records.Region``: 01 Bas-Saint-Laurent, 02 Saguenay-Lac-Saint-Jean,
  03 Capitale-Nationale, 04 Mauricie, 05 Estrie, 06 Montréal, 07 Outaouais,
  08 Abitibi-Témiscamingue, 09 Côte-Nord, 10 Nord-du-Québec,
  11 Gaspésie-Îles-de-la-Madeleine, 12 Chaudière-Appalaches, 13 Laval,
  14 Lanaudière, 15 Laurentides, 16 Montérégie, 17 Centre-du-Québec.
- Geographic filter: ``lat``, ``lng`` (degrees) and ``rayon_km`` (0 < r <= 1000)
  come together or not at all; distance is great-circle to the clinic.

Paging
------
``page`` starts at 1 (default 1); ``limite`` is 1 to 500 (default 100; more is
a ``400``). Every list answer is the envelope::

    {"resultats": [...], "page": 2, "pages": 7, "limite": 100, "total": 642}

``pages`` is ``ceil(total / limite)`` (0 when nothing matches); a page past the
last one returns an empty ``resultats``.

Endpoints
---------
``GET /api/v1/cliniques`` -- clinics, ordered by ``id``.
    Filters: ``ids`` (ints), ``no_permis`` (permits), ``lat``+``lng``+``rayon_km``,
    ``region`` (codes), ``nom`` (contains; case and accents ignored),
    ``code_postal`` (codes or prefixes such as ``H2X``; spaces and case ignored).
    Item::

        {"id": 1012, "nom": "GMF Tremblay Montréal",
         "adresse": {"rue": "1234 rue Saint-Denis", "ville": "Montréal",
                     "code_postal": "H2X 1Y4"},
         "lat": 45.51, "lng": -73.57, "telephone": "+1-514-555-0101",
         "langues": ["fr", "en"], "no_permis": "54321-0012"}

``GET /api/v1/medecins`` -- physicians working in at least one listed clinic, by ``id``.
    Filters: ``ids`` (ints), ``no_licence`` (licences), ``clinique`` (clinic ids).
    Item::

        {"id": 50345, "titre": "Dr", "prenom": "Marie", "nom": "Tremblay",
         "langues": ["fr", "en"], "no_licence": "3-00345", "cliniques": [1012],
         "accepte_nouveaux_patients": false}

``GET /api/v1/disponibilites`` -- slots, ordered by ``debut`` then ``id``.
    Filters: ``debut_min``, ``debut_max`` (local times, both **inclusive**),
    ``cliniques``, ``medecins`` (ids), ``types`` (codes below),
    ``lat``+``lng``+``rayon_km`` and ``region`` (of the clinic),
    ``statut`` (``libre`` or ``reserve``; **absent means both**).
    Item::

        {"id": "dispo-C00012-P00345-03-7", "debut": "2026-11-26T08:00:00",
         "fin": "2026-11-26T08:20:00", "clinique_id": 1012, "medecin_id": 50345,
         "type_rdv": "regulier", "statut": "libre",
         "lien_reservation": "https://rdv.example.org/reserver/dispo-C00012-P00345-03-7",
         "telephone_reservation": "+1-514-555-0101"}

    A ``reserve`` slot has ``null`` booking link and phone.
    ``type_rdv`` codes: ``sans_rendez_vous``, ``urgent``, ``prioritaire``,
    ``regulier``, ``suivi``, ``bilan``, ``suivi_grossesse``, ``suivi_enfant``,
    ``nouveau_patient``.

``GET /_stats`` -- ``{"requests": N}``, the requests received except ``/_stats``
itself; no key needed.

Errors
------
Always JSON ``{"erreur": "<message in French>"}``:

- ``400`` bad parameter (wrong number, unknown code, offset in a time,
  ``debut_max`` before ``debut_min``, ``limite`` over 500...);
- ``401`` missing or wrong ``X-Cle-Api``;
- ``404``/``405`` unknown path or method;
- ``429`` too many requests for this key, with ``Retry-After`` (seconds). Each
  key has a token bucket (``rate_limit_rps`` tokens per second, ``rate_limit_burst``
  deep); ``build_app`` sets both.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import hmac
import itertools
import math
import os
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from examples.world import World, WorldClinic, WorldPhysician, WorldSlot
from sources.geo import distance_km
from sources.records import AppointmentType, GeoPoint, Region
from sources.timeutil import MONTREAL

API_KEY_HEADER = "X-Cle-Api"
API_KEY_ENV = "PASSERELLE_DEMO_REST_KEY"
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_LIST_ITEMS = 1000
MAX_RADIUS_KM = 1000.0
DEFAULT_BOOKING_BASE_URL = "https://rdv.example.org/reserver"

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
_TYPES_BY_CODE = {code: kind for kind, code in TYPE_CODES.items()}
# Official administrative region codes follow the enum's order: 01..17.
REGION_CODES: dict[Region, str] = {region: f"{i:02d}" for i, region in enumerate(Region, 1)}
_REGIONS_BY_CODE = {code: region for region, code in REGION_CODES.items()}

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


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _compact_postal(text: str) -> str:
    return "".join(text.split()).replace("-", "").upper()


def _local(value: datetime) -> str:
    return value.astimezone(MONTREAL).replace(tzinfo=None).isoformat(timespec="seconds")


class _BadRequest(Exception):
    pass


# ---------------------------------------------------------------------------
# The data, indexed once at startup.

# (start timestamp, world slot id, slot): tuples compare by time then id.
_Entry = tuple[float, str, WorldSlot]
_START = itemgetter(0)


@dataclass(slots=True)
class _ClinicEntry:
    clinic: WorldClinic
    api_id: int
    folded_name: str
    compact_postal: str
    point: GeoPoint
    # (free or None for both, type or None for all) -> entries sorted by start, id
    buckets: dict[tuple[bool | None, AppointmentType | None], list[_Entry]]


@dataclass(slots=True)
class _Catalogue:
    clinics: list[_ClinicEntry]  # by api id
    clinics_by_api_id: dict[int, _ClinicEntry]
    grid: dict[tuple[int, int], list[_ClinicEntry]]
    physicians: list[tuple[int, WorldPhysician, tuple[int, ...]]]  # by api id
    physicians_by_api_id: dict[int, tuple[int, WorldPhysician, tuple[int, ...]]]


def _cell(latitude: float, longitude: float) -> tuple[int, int]:
    return (math.floor(latitude / _GRID_DEG), math.floor(longitude / _GRID_DEG))


def _index(world: World) -> _Catalogue:
    listed_clinics: list[_ClinicEntry] = []
    grid: dict[tuple[int, int], list[_ClinicEntry]] = {}
    for clinic in world.clinics_for("rest"):
        timeline = [(s.start.timestamp(), s.id, s) for s in world.slots_for_clinic(clinic.id)]
        timeline.sort(key=itemgetter(0, 1))
        # Filtering the sorted list keeps each bucket sorted; identity tests avoid
        # hashing an enum per slot, which made startup twice as slow at scale 1.0.
        buckets: dict[tuple[bool | None, AppointmentType | None], list[_Entry]] = {
            (None, None): timeline,
            (True, None): [e for e in timeline if e[2].free],
            (False, None): [e for e in timeline if not e[2].free],
        }
        for kind in AppointmentType:
            of_kind = [e for e in timeline if e[2].appointment_type is kind]
            buckets[None, kind] = of_kind
            buckets[True, kind] = [e for e in of_kind if e[2].free]
            buckets[False, kind] = [e for e in of_kind if not e[2].free]
        entry = _ClinicEntry(
            clinic=clinic,
            api_id=clinic_api_id(clinic.id),
            folded_name=_fold(clinic.name),
            compact_postal=_compact_postal(clinic.postal_code),
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
    return _Catalogue(
        clinics=listed_clinics,
        clinics_by_api_id={e.api_id: e for e in listed_clinics},
        grid=grid,
        physicians=physicians,
        physicians_by_api_id={p[0]: p for p in physicians},
    )


# ---------------------------------------------------------------------------
# Parameters.


def _text_list(request: web.Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        raise _BadRequest(f"paramètre '{name}' vide")
    if len(values) > MAX_LIST_ITEMS:
        raise _BadRequest(f"paramètre '{name}': au plus {MAX_LIST_ITEMS} valeurs")
    return values


def _int_list(request: web.Request, name: str) -> set[int] | None:
    values = _text_list(request, name)
    if values is None:
        return None
    try:
        return {int(v) for v in values}
    except ValueError:
        raise _BadRequest(
            f"paramètre '{name}': entiers séparés par des virgules attendus"
        ) from None


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"paramètre '{name}': entier attendu") from None
    if not low <= value <= high:
        raise _BadRequest(f"paramètre '{name}': entre {low} et {high}")
    return value


def _float(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _BadRequest(f"paramètre '{name}': nombre attendu") from None
    if not math.isfinite(value):
        raise _BadRequest(f"paramètre '{name}': nombre fini attendu")
    return value


def _local_time(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise _BadRequest(
            f"paramètre '{name}': heure locale AAAA-MM-JJTHH:MM:SS attendue"
        ) from None
    if value.tzinfo is not None:
        raise _BadRequest(f"paramètre '{name}': heure locale sans décalage attendue")
    return value.replace(tzinfo=MONTREAL, fold=0).timestamp()


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
        return {_REGIONS_BY_CODE[f"{int(v):02d}"] for v in values}
    except (ValueError, KeyError):
        raise _BadRequest("paramètre 'region': codes de région 01 à 17 attendus") from None


def _circle(request: web.Request) -> tuple[GeoPoint, float] | None:
    lat, lng, radius = _float(request, "lat"), _float(request, "lng"), _float(request, "rayon_km")
    given = [v is not None for v in (lat, lng, radius)]
    if not any(given):
        return None
    if lat is None or lng is None or radius is None:
        raise _BadRequest("paramètres 'lat', 'lng' et 'rayon_km' vont ensemble")
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise _BadRequest("paramètres 'lat'/'lng' hors limites")
    if not 0 < radius <= MAX_RADIUS_KM:
        raise _BadRequest(f"paramètre 'rayon_km': entre 0 et {MAX_RADIUS_KM:g}")
    return GeoPoint(lat, lng), radius


# ---------------------------------------------------------------------------
# Queries.


def _clinics_in_circle(
    catalogue: _Catalogue, center: GeoPoint, radius_km: float
) -> list[_ClinicEntry]:
    dlat = radius_km / 111.0 + _GRID_DEG
    coslat = max(0.01, math.cos(math.radians(min(89.0, abs(center.latitude) + dlat))))
    dlng = radius_km / (111.0 * coslat) + _GRID_DEG
    lat0, lng0 = _cell(center.latitude - dlat, center.longitude - dlng)
    lat1, lng1 = _cell(center.latitude + dlat, center.longitude + dlng)
    if (lat1 - lat0 + 1) * (lng1 - lng0 + 1) > len(catalogue.clinics):
        candidates: Iterable[_ClinicEntry] = catalogue.clinics
    else:
        candidates = itertools.chain.from_iterable(
            catalogue.grid.get((i, j), ())
            for i in range(lat0, lat1 + 1)
            for j in range(lng0, lng1 + 1)
        )
    found = [c for c in candidates if distance_km(center, c.point) <= radius_km]
    found.sort(key=lambda c: c.api_id)
    return found


def _select_clinics(catalogue: _Catalogue, request: web.Request) -> list[_ClinicEntry]:
    """Clinics matching the clinic-level filters shared by both clinic and slot searches."""
    circle = _circle(request)
    regions = _regions(request)
    clinics = _clinics_in_circle(catalogue, *circle) if circle is not None else catalogue.clinics
    if regions is not None:
        clinics = [c for c in clinics if c.clinic.region in regions]
    return clinics


def _envelope(items: list[object], page: int, limit: int, total: int) -> dict[str, object]:
    return {
        "resultats": items,
        "page": page,
        "pages": math.ceil(total / limit),
        "limite": limit,
        "total": total,
    }


def _clinic_json(entry: _ClinicEntry) -> dict[str, object]:
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


def _physician_json(api_id: int, p: WorldPhysician, clinics: tuple[int, ...]) -> dict[str, object]:
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


@dataclass(slots=True)
class _Api:
    catalogue: _Catalogue
    booking_base_url: str

    async def clinics(self, request: web.Request) -> web.Response:
        page, limit = _page(request)
        ids = _int_list(request, "ids")
        permits = _text_list(request, "no_permis")
        name = request.query.get("nom")
        postals = _text_list(request, "code_postal")
        clinics = _select_clinics(self.catalogue, request)
        if ids is not None:
            clinics = [c for c in clinics if c.api_id in ids]
        if permits is not None:
            wanted = set(permits)
            clinics = [c for c in clinics if c.clinic.permit in wanted]
        if name is not None and name.strip():
            folded = _fold(name.strip())
            clinics = [c for c in clinics if folded in c.folded_name]
        if postals is not None:
            prefixes = tuple(_compact_postal(p) for p in postals)
            clinics = [c for c in clinics if c.compact_postal.startswith(prefixes)]
        chosen = clinics[(page - 1) * limit : page * limit]
        return _json(_envelope([_clinic_json(c) for c in chosen], page, limit, len(clinics)))

    async def physicians(self, request: web.Request) -> web.Response:
        page, limit = _page(request)
        ids = _int_list(request, "ids")
        licences = _text_list(request, "no_licence")
        clinic_ids = _int_list(request, "clinique")
        physicians: Sequence[tuple[int, WorldPhysician, tuple[int, ...]]]
        if ids is not None:
            physicians = [
                self.catalogue.physicians_by_api_id[i]
                for i in sorted(ids)
                if i in self.catalogue.physicians_by_api_id
            ]
        else:
            physicians = self.catalogue.physicians
        if licences is not None:
            wanted = set(licences)
            physicians = [p for p in physicians if p[1].licence in wanted]
        if clinic_ids is not None:
            physicians = [p for p in physicians if not clinic_ids.isdisjoint(p[2])]
        chosen = physicians[(page - 1) * limit : page * limit]
        return _json(_envelope([_physician_json(*p) for p in chosen], page, limit, len(physicians)))

    async def slots(self, request: web.Request) -> web.Response:
        page, limit = _page(request)
        low = _local_time(request, "debut_min")
        high = _local_time(request, "debut_max")
        if low is not None and high is not None and high < low:
            raise _BadRequest("'debut_max' précède 'debut_min'")
        clinic_ids = _int_list(request, "cliniques")
        physician_ids = _int_list(request, "medecins")
        type_codes = _text_list(request, "types")
        types: list[AppointmentType | None] = [None]
        if type_codes is not None:
            unknown = sorted(set(type_codes) - _TYPES_BY_CODE.keys())
            if unknown:
                raise _BadRequest(f"paramètre 'types': code inconnu {unknown[0]!r}")
            types = [_TYPES_BY_CODE[code] for code in dict.fromkeys(type_codes)]
        status = request.query.get("statut")
        if status not in (None, "libre", "reserve"):
            raise _BadRequest("paramètre 'statut': 'libre' ou 'reserve'")
        free = None if status is None else status == "libre"

        clinics = _select_clinics(self.catalogue, request)
        if clinic_ids is not None:
            clinics = [c for c in clinics if c.api_id in clinic_ids]
        wanted_physicians: set[str] | None = None
        if physician_ids is not None:
            found = [
                self.catalogue.physicians_by_api_id[i]
                for i in physician_ids
                if i in self.catalogue.physicians_by_api_id
            ]
            wanted_physicians = {p[1].id for p in found}
            their_clinics = {c for p in found for c in p[2]}
            clinics = [c for c in clinics if c.api_id in their_clinics]
        lo_key = -math.inf if low is None else low
        hi_key = math.inf if high is None else high
        offset = (page - 1) * limit
        runs: list[list[_Entry]] = []
        total = 0
        for clinic in clinics:
            for kind in types:
                bucket = clinic.buckets.get((free, kind))
                if not bucket:
                    continue
                a = bisect.bisect_left(bucket, lo_key, key=_START)
                b = bisect.bisect_right(bucket, hi_key, key=_START)
                if a >= b:
                    continue
                if wanted_physicians is None:
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
        return _json(_envelope([self._slot_json(e[2]) for e in chosen], page, limit, total))

    def _slot_json(self, slot: WorldSlot) -> dict[str, object]:
        clinic = self.catalogue.clinics_by_api_id[clinic_api_id(slot.clinic_id)].clinic
        slot_id = slot_api_id(slot.id)
        return {
            "id": slot_id,
            "debut": _local(slot.start),
            "fin": _local(slot.end),
            "clinique_id": clinic_api_id(slot.clinic_id),
            "medecin_id": physician_api_id(slot.physician_id),
            "type_rdv": TYPE_CODES[slot.appointment_type],
            "statut": "libre" if slot.free else "reserve",
            "lien_reservation": f"{self.booking_base_url}/{slot_id}" if slot.free else None,
            "telephone_reservation": clinic.phone if slot.free else None,
        }


# ---------------------------------------------------------------------------
# Edge: stats, errors, authentication, rate limit.


def _json(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"erreur": message}, status, headers)


class _TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked; one request takes one."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass(slots=True)
class _Stats:
    requests: int = 0


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _middleware(api_key: str, stats: _Stats, rate: float | None, burst: float) -> Middleware:
    buckets: dict[str, _TokenBucket] = {}
    expected = api_key.encode()

    @web.middleware
    async def edge(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path != "/_stats":
            stats.requests += 1
        try:
            if request.path.startswith("/api/"):
                key = request.headers.get(API_KEY_HEADER)
                if key is None or not hmac.compare_digest(key.encode(), expected):
                    return _error(401, f"clé d'API absente ou invalide (en-tête {API_KEY_HEADER})")
                if rate is not None:
                    bucket = buckets.get(key)
                    if bucket is None:
                        bucket = buckets[key] = _TokenBucket(rate, burst)
                    wait = bucket.take()
                    if wait > 0:
                        return _error(
                            429,
                            "trop de requêtes, réessayez plus tard",
                            {"Retry-After": str(max(1, math.ceil(wait)))},
                        )
            return await handler(request)
        except _BadRequest as exc:
            return _error(400, str(exc))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, exc.reason)

    return edge


def build_app(
    world: World,
    *,
    api_key: str,
    rate_limit_rps: float | None = 100.0,
    rate_limit_burst: float | None = None,
    booking_base_url: str = DEFAULT_BOOKING_BASE_URL,
) -> web.Application:
    """The demo API over ``world``'s ``"rest"`` clinics; their slots are generated here.

    ``rate_limit_rps`` tokens per second per key (``None``: no limit), banked up
    to ``rate_limit_burst`` (default: two seconds' worth, at least one).

        app = build_app(World(scale=0.02), api_key="secret", rate_limit_rps=5)
    """
    if not api_key:
        raise ValueError("api_key must not be empty")
    if rate_limit_rps is not None and rate_limit_rps <= 0:
        raise ValueError("rate_limit_rps must be positive (or None for no limit)")
    burst = (
        rate_limit_burst if rate_limit_burst is not None else max(1.0, 2 * (rate_limit_rps or 0))
    )
    stats = _Stats()
    api = _Api(_index(world), booking_base_url.rstrip("/"))

    async def stats_view(request: web.Request) -> web.Response:
        return _json({"requests": stats.requests})

    app = web.Application(middlewares=[_middleware(api_key, stats, rate_limit_rps, burst)])
    app.router.add_get("/api/v1/cliniques", api.clinics)
    app.router.add_get("/api/v1/medecins", api.physicians)
    app.router.add_get("/api/v1/disponibilites", api.slots)
    app.router.add_get("/_stats", stats_view)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo_rest",
        description="Demo proprietary REST/JSON booking API over the synthetic world.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--first-day", type=date.fromisoformat, default=None)
    parser.add_argument("--api-key", default=None, help=f"required; defaults to ${API_KEY_ENV}")
    parser.add_argument("--rate-limit-rps", type=float, default=100.0)
    args = parser.parse_args(argv)
    api_key = args.api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        parser.error(f"an API key is required: --api-key or ${API_KEY_ENV}")
    world = World(args.scale, seed=args.seed, first_day=args.first_day)
    app = build_app(world, api_key=api_key, rate_limit_rps=args.rate_limit_rps)
    web.run_app(app, host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
