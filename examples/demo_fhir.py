"""A demo FHIR R4 scheduling server for the clinics the demo world lists on ``"fhir"``.

    python -m examples.demo_fhir --port 8101 --scale 0.01 [--host 127.0.0.1]

Base URL ``http://HOST:PORT/fhir``; answers are ``application/fhir+json``. It serves
``Location`` (a clinic), ``Practitioner``, ``PractitionerRole`` (one per physician and
clinic), ``Schedule`` (one per clinic and physician, ``actor`` = [Location,
PractitionerRole]) and ``Slot``, encoded as ``sources.fhir`` describes. Reads are
``GET /fhir/{type}/{id}``; searches are ``GET /fhir/{type}?...`` or
``POST /fhir/{type}/_search`` with a form body:

- ``Location``: ``_id``, ``identifier``, ``near=lat|lon|dist|unit`` (km, m, mi),
  ``address-postalcode``, ``address-state``, ``address-city`` (starts with), ``name`` and
  ``name:contains`` (both contain; case- and accent-insensitive).
- ``Practitioner``: ``_id``, ``identifier``.
- ``PractitionerRole``: ``_id``, ``location``, ``practitioner``.
- ``Schedule``: ``_id``, ``actor``.
- ``Slot``: ``status``, ``start`` (ge/gt/le/lt/eq, repeatable), ``appointment-type``,
  ``schedule``, ``schedule.actor`` (also ``:Location``/``:PractitionerRole``), ``_sort=start``.
- Everywhere: ``_count`` (at most 1000), ``_total``, ``_include`` and ``_include:iterate``
  with ``Slot:schedule``, ``Schedule:actor``, ``PractitionerRole:practitioner`` and
  ``PractitionerRole:location``. Commas OR, repeated parameters AND.

Like a real server, a Slot search without ``status`` returns busy slots too. Pages are
linked by ``next`` URLs carrying an opaque ``_page_token``. Unknown parameters, bad
values and modifiers it does not know are a 400 ``OperationOutcome``.
``GET /fhir/metadata`` is a minimal CapabilityStatement; ``GET /_stats`` counts requests.

Slots are indexed once at startup per clinic, status and appointment type, sorted by
start: a search bisects each bucket it needs, merges them lazily and counts totals from
slice lengths, so no query scans the slots.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import gc
import heapq
import itertools
import math
import re
import unicodedata
import zlib
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from examples.world import (
    CLINIC_PERMIT_SYSTEM,
    PHYSICIAN_LICENCE_SYSTEM,
    World,
    WorldClinic,
    WorldPhysician,
    WorldSlot,
)
from sources.fhir import (
    ACCEPTING_PATIENTS_SYSTEM,
    APPOINTMENT_TYPE_SYSTEM,
    BOOKING_DEEP_LINK_URL,
    BOOKING_PHONE_URL,
    LANGUAGE_SYSTEM,
    LOCATION_COMMUNICATION_URL,
    NEW_PATIENTS_URL,
    V2_APPOINTMENT_REASON,
    V2_APPOINTMENT_REASON_SYSTEM,
)
from sources.geo import distance_km
from sources.records import AppointmentType, GeoPoint
from sources.timeutil import MONTREAL

FHIR_JSON = "application/fhir+json"
MAX_COUNT = 1000
DEFAULT_COUNT = 100
BOOKING_BASE = "https://fhir-demo.passerelle.example/book/"
SYSTEM = "fhir"
RESOURCE_TYPES = ("Location", "Practitioner", "PractitionerRole", "Schedule", "Slot")
INCLUDES = {  # name -> (source type, target types)
    "Slot:schedule": ("Slot", ("Schedule",)),
    "Schedule:actor": ("Schedule", ("Location", "PractitionerRole")),
    "PractitionerRole:practitioner": ("PractitionerRole", ("Practitioner",)),
    "PractitionerRole:location": ("PractitionerRole", ("Location",)),
}
_COMMON = {"_id", "_count", "_total", "_include", "_include:iterate", "_format"}
PARAMS = {
    "Location": _COMMON
    | {"identifier", "near", "address-postalcode", "address-state", "address-city"}
    | {"name", "name:contains"},
    "Practitioner": _COMMON | {"identifier"},
    "PractitionerRole": _COMMON | {"location", "practitioner"},
    "Schedule": _COMMON | {"actor"},
    "Slot": _COMMON
    | {"status", "start", "appointment-type", "schedule", "_sort"}
    | {"schedule.actor", "schedule.actor:Location", "schedule.actor:PractitionerRole"},
}
SLOT_STATUSES = {"free", "busy", "busy-unavailable", "busy-tentative", "entered-in-error"}
_GRID_DEG = 0.5
_STATS = web.AppKey("stats", dict)
_SERVER = web.AppKey("server", object)

Params = list[tuple[str, str]]
Ref = tuple[str, str]  # (resource type, id)


class BadRequest(Exception):
    """A search the server refuses: becomes a 400 OperationOutcome."""


@dataclass(slots=True)
class _Bucket:
    """Slots of one clinic with one status and type (or any type), sorted by start."""

    starts: array[float] = field(default_factory=lambda: array("d"))
    slots: list[WorldSlot] = field(default_factory=list)


@dataclass(slots=True)
class _SlotPlan:
    lower: float = -math.inf  # start >= lower
    upper: float = math.inf  # start < upper
    statuses: frozenset[bool] = frozenset((True, False))  # True = free
    types: frozenset[AppointmentType] | None = None
    clinics: set[str] | None = None
    pairs: set[tuple[str, str]] | None = None  # (clinic, physician) schedules allowed


class FhirDemo:
    """The world's ``"fhir"`` clinics, indexed for search, and their FHIR rendering."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.clinics = {c.id: c for c in world.clinics_for(SYSTEM)}
        self.physicians: dict[str, WorldPhysician] = {}
        self.roles: dict[str, tuple[str, str]] = {}  # role id -> (physician, clinic)
        self.roles_by_clinic: dict[str, list[str]] = defaultdict(list)
        self.roles_by_physician: dict[str, list[str]] = defaultdict(list)
        for physician in world.physicians:
            for cid in physician.clinic_ids:
                if cid in self.clinics:
                    self.physicians[physician.id] = physician
                    rid = f"{physician.id}-{cid}"
                    self.roles[rid] = (physician.id, cid)
                    self.roles_by_clinic[cid].append(rid)
                    self.roles_by_physician[physician.id].append(rid)
        self.schedules = {f"{cid}-{pid}": (cid, pid) for pid, cid in self.roles.values()}
        self.licences = {p.licence: p.id for p in self.physicians.values()}
        self.permits = {c.permit: c.id for c in self.clinics.values()}
        self.grid: dict[tuple[int, int], list[WorldClinic]] = defaultdict(list)
        self.buckets: dict[str, dict[tuple[bool, AppointmentType | None], _Bucket]] = {}
        for clinic in self.clinics.values():
            self.grid[_cell(clinic.latitude, clinic.longitude)].append(clinic)
            buckets: dict[tuple[bool, AppointmentType | None], _Bucket] = defaultdict(_Bucket)
            for slot in world.slots_for_clinic(clinic.id):
                ts = slot.start.timestamp()
                for key in ((slot.free, slot.appointment_type), (slot.free, None)):
                    buckets[key].starts.append(ts)
                    buckets[key].slots.append(slot)
            self.buckets[clinic.id] = dict(buckets)

    # -- search ---------------------------------------------------------------

    def search(self, rtype: str, params: Params, base: str, self_url: str) -> dict[str, Any]:
        token = [v for k, v in params if k == "_page_token"]
        position: Any = None
        if token:
            if len(params) != 1:
                raise BadRequest("_page_token must be used alone")
            rtype_in_token, params, position = _decode_token(token[0])
            if rtype_in_token != rtype:
                raise BadRequest("page token belongs to another search")
        for name, _ in params:
            if name not in PARAMS[rtype]:
                raise BadRequest(f"unknown or unsupported search parameter {name!r} for {rtype}")
        count = min(_int_param(params, "_count", DEFAULT_COUNT), MAX_COUNT)
        total_mode = _one(params, "_total") or "accurate"
        if total_mode not in ("none", "estimate", "accurate"):
            raise BadRequest("_total must be none, estimate or accurate")
        includes = _values(params, "_include")
        iterate = _values(params, "_include:iterate")
        for name in includes + iterate:
            if name not in INCLUDES:
                raise BadRequest(f"unsupported _include {name!r}")

        if rtype == "Slot":
            if any(v != "start" for v in _values(params, "_sort")):
                raise BadRequest("only _sort=start is supported")
            plan = self._slot_plan(params)
            cursor = tuple(position) if position else None
            slots, more, total = self._slots(plan, count, cursor, total_mode != "none")
            matches: list[tuple[Ref, dict[str, Any]]] = [
                (("Slot", s.id), self.render_slot(s)) for s in slots
            ]
            next_position: Any = (
                [slots[-1].start.timestamp(), slots[-1].id] if more and slots else None
            )
            slot_schedules = {s.id: f"{s.clinic_id}-{s.physician_id}" for s in slots}
        else:
            ids = self._search_ids(rtype, params)
            offset = int(position or 0)
            page = ids[offset : offset + count]
            matches = [((rtype, i), self.render(rtype, i)) for i in page]
            total = len(ids)
            next_position = offset + count if offset + count < len(ids) and count else None
            slot_schedules = {}

        included = self._includes([r for r, _ in matches], includes, iterate, slot_schedules)
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if total is not None and total_mode != "none":
            bundle["total"] = total
        bundle["link"] = [{"relation": "self", "url": self_url}]
        if next_position is not None:
            next_token = _encode_token(rtype, params, next_position)
            bundle["link"].append(
                {"relation": "next", "url": f"{base}/{rtype}?_page_token={next_token}"}
            )
        bundle["entry"] = [
            {"fullUrl": f"{base}/{t}/{i}", "resource": body, "search": {"mode": "match"}}
            for (t, i), body in matches
        ] + [
            {
                "fullUrl": f"{base}/{t}/{i}",
                "resource": self.render(t, i),
                "search": {"mode": "include"},
            }
            for t, i in included
        ]
        return bundle

    def _slot_plan(self, params: Params) -> _SlotPlan:
        plan = _SlotPlan()
        for name, value in params:
            if name == "status":
                codes = _split(value)
                if not set(codes) <= SLOT_STATUSES:
                    raise BadRequest(f"unknown Slot status in {value!r}")
                plan.statuses &= frozenset(c == "free" for c in codes if c in ("free", "busy"))
            elif name == "start":
                self._narrow_start(plan, value)
            elif name == "appointment-type":
                kinds: set[AppointmentType] = set()
                for token in _split(value):
                    kinds |= _appointment_types(token)
                plan.types = (
                    frozenset(kinds) & plan.types if plan.types is not None else frozenset(kinds)
                )
            elif name.startswith("schedule"):
                self._narrow_schedules(plan, name, value)
        return plan

    def _narrow_start(self, plan: _SlotPlan, value: str) -> None:
        match = re.fullmatch(r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.+)", value.strip())
        prefix, text = (match.group(1) or "eq", match.group(2)) if match else ("", "")
        if prefix not in ("eq", "gt", "lt", "ge", "le"):
            raise BadRequest(f"unsupported start prefix in {value!r}")
        low, high = _date_range(text)
        if prefix in ("ge", "eq"):
            plan.lower = max(plan.lower, low)
        if prefix == "gt":
            plan.lower = max(plan.lower, high)
        if prefix in ("le", "eq"):
            plan.upper = min(plan.upper, high)
        if prefix == "lt":
            plan.upper = min(plan.upper, low)

    def _narrow_schedules(self, plan: _SlotPlan, name: str, value: str) -> None:
        typed = name.partition(":")[2] or None
        clinics: set[str] = set()
        pairs: set[tuple[str, str]] = set()
        only_locations = True
        for text in _split(value):
            kind, rid = _reference(text, "Schedule" if name == "schedule" else typed)
            if kind == "Location":
                clinics.add(rid)
                continue
            only_locations = False
            if kind == "Schedule" and rid in self.schedules:
                pairs.add(self.schedules[rid])
            elif kind == "PractitionerRole" and rid in self.roles:
                pid, cid = self.roles[rid]
                pairs.add((cid, pid))
        if only_locations:
            plan.clinics = clinics if plan.clinics is None else plan.clinics & clinics
            return
        for cid in clinics & self.clinics.keys():
            pairs.update((cid, self.roles[r][0]) for r in self.roles_by_clinic[cid])
        plan.pairs = pairs if plan.pairs is None else plan.pairs & pairs

    def _slots(
        self, plan: _SlotPlan, count: int, cursor: tuple[Any, ...] | None, want_total: bool
    ) -> tuple[list[WorldSlot], bool, int | None]:
        allowed: dict[str, set[str]] | None = None
        if plan.pairs is not None:
            allowed = defaultdict(set)
            for cid, pid in plan.pairs:
                allowed[cid].add(pid)
            clinic_ids = set(allowed)
        else:
            clinic_ids = set(self.clinics)
        if plan.clinics is not None:
            clinic_ids &= plan.clinics
        types: tuple[AppointmentType | None, ...] = (
            (None,) if plan.types is None else tuple(plan.types)
        )
        streams: list[Iterator[tuple[float, str, WorldSlot]]] = []
        total = 0
        for cid in sorted(clinic_ids & self.buckets.keys()):
            physicians = allowed[cid] if allowed is not None else None
            for key in itertools.product(plan.statuses, types):
                bucket = self.buckets[cid].get(key)
                if bucket is None:
                    continue
                lo = bisect.bisect_left(bucket.starts, plan.lower)
                hi = bisect.bisect_left(bucket.starts, plan.upper)
                if lo >= hi:
                    continue
                if want_total:
                    total += (
                        hi - lo
                        if physicians is None
                        else sum(s.physician_id in physicians for s in bucket.slots[lo:hi])
                    )
                if cursor is not None:
                    lo = max(lo, bisect.bisect_left(bucket.starts, cursor[0]))
                streams.append(_stream(bucket, lo, hi, physicians, cursor))
        page = [slot for _, _, slot in itertools.islice(heapq.merge(*streams), count + 1)]
        return page[:count], len(page) > count, total if want_total else None

    def _search_ids(self, rtype: str, params: Params) -> list[str]:
        candidates: list[str] | None = None  # None: every resource of the type, by id
        order_by_distance: dict[str, float] = {}

        def narrow(ids: set[str]) -> None:
            nonlocal candidates
            kept = ids if candidates is None else set(candidates) & ids
            candidates = sorted(kept)

        for name, value in params:
            if name == "_id":
                narrow(set(_split(value)))
            elif name == "identifier":
                narrow(self._by_identifier(rtype, value))
            elif rtype == "Location" and name == "near":
                distances = self._near(value)
                order_by_distance.update(distances)
                narrow(set(distances))
            elif rtype == "Location" and name.startswith(("address-", "name")):
                narrow(self._by_text(name, value))
            elif rtype == "PractitionerRole" and name in ("location", "practitioner"):
                kind = "Location" if name == "location" else "Practitioner"
                wanted = {_reference(v, kind)[1] for v in _split(value)}
                index = self.roles_by_clinic if kind == "Location" else self.roles_by_physician
                narrow({r for i in wanted for r in index.get(i, ())})
            elif rtype == "Schedule" and name == "actor":
                narrow(self._schedules_of(value))
        tables: dict[str, Mapping[str, object]] = {
            "Location": self.clinics,
            "Practitioner": self.physicians,
            "PractitionerRole": self.roles,
            "Schedule": self.schedules,
        }
        everything = tables[rtype]
        ids = (
            sorted(everything) if candidates is None else [i for i in candidates if i in everything]
        )
        if order_by_distance:
            ids.sort(key=lambda i: (order_by_distance.get(i, math.inf), i))
        return ids

    def _by_identifier(self, rtype: str, value: str) -> set[str]:
        system, index = {
            "Location": (CLINIC_PERMIT_SYSTEM, self.permits),
            "Practitioner": (PHYSICIAN_LICENCE_SYSTEM, self.licences),
        }.get(rtype, ("", {}))
        out = set()
        for token in _split(value):
            token_system, bar, code = _split_token(token)
            if bar and token_system != system:
                continue
            if code in index:
                out.add(index[code])
        return out

    def _by_text(self, name: str, value: str) -> set[str]:
        wanted = [_fold(v) for v in _split(value)]
        field_of: Callable[[WorldClinic], str] = {
            "address-postalcode": lambda c: c.postal_code,
            "address-state": lambda c: "QC",
            "address-city": lambda c: c.city,
        }.get(name, lambda c: c.name)
        out = set()
        for clinic in self.clinics.values():
            text = _fold(field_of(clinic))
            if name == "address-postalcode":
                text, wanted_here = text.replace(" ", ""), [w.replace(" ", "") for w in wanted]
            else:
                wanted_here = wanted
            if name.startswith("name"):
                hit = any(w in text for w in wanted_here)
            else:
                hit = any(text.startswith(w) for w in wanted_here)
            if hit:
                out.add(clinic.id)
        return out

    def _near(self, value: str) -> dict[str, float]:
        parts = value.split("|")
        try:
            lat, lon = float(parts[0]), float(parts[1])
            dist = float(parts[2]) if len(parts) > 2 and parts[2] else 50.0
        except (ValueError, IndexError):
            raise BadRequest("near must be latitude|longitude|distance|units") from None
        unit = parts[3] if len(parts) > 3 and parts[3] else "km"
        factor = {"km": 1.0, "m": 0.001, "mi": 1.609344, "[mi_i]": 1.609344}.get(unit)
        if factor is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or not dist >= 0:
            raise BadRequest("near: bad coordinates, distance or unit (km, m, mi)")
        radius = min(dist * factor, 20_000.0)
        here = GeoPoint(lat, lon)
        dlat = radius / 111.0
        dlon = radius / max(1.0, 111.32 * math.cos(math.radians(lat)))
        lo, hi = _cell(lat - dlat, lon - dlon), _cell(lat + dlat, lon + dlon)
        out = {}
        cells = (
            self.grid.keys()
            if (hi[0] - lo[0]) * (hi[1] - lo[1]) > len(self.grid)
            else [(i, j) for i in range(lo[0], hi[0] + 1) for j in range(lo[1], hi[1] + 1)]
        )
        for cell in cells:
            for clinic in self.grid.get(cell, ()):
                d = distance_km(here, GeoPoint(clinic.latitude, clinic.longitude))
                if d <= radius:
                    out[clinic.id] = d
        return out

    def _schedules_of(self, value: str) -> set[str]:
        out = set()
        for text in _split(value):
            kind, rid = _reference(text, None)
            for sid, (cid, pid) in self.schedules.items():
                if (kind == "Location" and cid == rid) or (
                    kind == "PractitionerRole" and self.roles.get(rid) == (pid, cid)
                ):
                    out.add(sid)
        return out

    def _includes(
        self,
        matches: list[Ref],
        includes: list[str],
        iterate: list[str],
        slot_schedules: dict[str, str],
    ) -> list[Ref]:
        seen = set(matches)
        out: list[Ref] = []

        def follow(refs: list[Ref], names: list[str]) -> list[Ref]:
            new = []
            for kind, rid in refs:
                for name in names:
                    if INCLUDES[name][0] == kind:
                        for target in self._targets(name, rid, slot_schedules):
                            if target not in seen:
                                seen.add(target)
                                new.append(target)
            out.extend(new)
            return new

        new = follow(matches, includes + iterate)
        while new and iterate:
            new = follow(new, iterate)
        return out

    def _targets(self, name: str, rid: str, slot_schedules: dict[str, str]) -> list[Ref]:
        if name == "Slot:schedule":
            return [("Schedule", slot_schedules[rid])] if rid in slot_schedules else []
        if name == "Schedule:actor":
            cid, pid = self.schedules[rid]
            return [("Location", cid), ("PractitionerRole", f"{pid}-{cid}")]
        pid, cid = self.roles[rid]
        return [("Practitioner", pid)] if name.endswith("practitioner") else [("Location", cid)]

    # -- resources ------------------------------------------------------------

    def render(self, rtype: str, rid: str) -> dict[str, Any]:
        """One resource as JSON; ``KeyError`` when it does not exist."""
        if rtype == "Location":
            return self.render_location(self.clinics[rid])
        if rtype == "Practitioner":
            return self.render_practitioner(self.physicians[rid])
        if rtype == "PractitionerRole":
            pid, cid = self.roles[rid]
            return self.render_role(rid, self.physicians[pid], self.clinics[cid])
        if rtype == "Schedule":
            cid, pid = self.schedules[rid]
            return {
                "resourceType": "Schedule",
                "id": rid,
                "active": True,
                "actor": [
                    {"reference": f"Location/{cid}", "display": self.clinics[cid].name},
                    {
                        "reference": f"PractitionerRole/{pid}-{cid}",
                        "display": self.physicians[pid].display_name,
                    },
                ],
            }
        if rtype == "Slot":
            cid = rid.split("-", 1)[0]
            return self.render_slot(
                next(s for s in self.world.slots_for_clinic(cid) if s.id == rid)
            )
        raise KeyError(rtype)

    def render_location(self, clinic: WorldClinic) -> dict[str, Any]:
        return {
            "resourceType": "Location",
            "id": clinic.id,
            "extension": [
                {"url": LOCATION_COMMUNICATION_URL, "valueCodeableConcept": _language(code)}
                for code in clinic.languages
            ],
            "identifier": [{"system": CLINIC_PERMIT_SYSTEM, "value": clinic.permit}],
            "status": "active",
            "name": clinic.name,
            "mode": "instance",
            "telecom": [{"system": "phone", "value": clinic.phone, "use": "work"}],
            "address": {
                "use": "work",
                "line": [clinic.line],
                "city": clinic.city,
                "state": "QC",
                "postalCode": clinic.postal_code,
                "country": "CA",
            },
            "position": {"latitude": clinic.latitude, "longitude": clinic.longitude},
        }

    def render_practitioner(self, physician: WorldPhysician) -> dict[str, Any]:
        return {
            "resourceType": "Practitioner",
            "id": physician.id,
            "identifier": [{"system": PHYSICIAN_LICENCE_SYSTEM, "value": physician.licence}],
            "active": True,
            "name": [
                {
                    "use": "official",
                    "text": physician.display_name,
                    "family": physician.family,
                    "given": [physician.given],
                    "prefix": ["Dr"],
                }
            ],
            "communication": [_language(code) for code in physician.languages],
        }

    def render_role(
        self, rid: str, physician: WorldPhysician, clinic: WorldClinic
    ) -> dict[str, Any]:
        code = "newpt" if physician.accepting_new_patients else "nopt"
        return {
            "resourceType": "PractitionerRole",
            "id": rid,
            "extension": [
                {
                    "url": NEW_PATIENTS_URL,
                    "extension": [
                        {
                            "url": "acceptingPatients",
                            "valueCodeableConcept": {
                                "coding": [{"system": ACCEPTING_PATIENTS_SYSTEM, "code": code}]
                            },
                        }
                    ],
                }
            ],
            "active": True,
            "practitioner": {
                "reference": f"Practitioner/{physician.id}",
                "display": physician.display_name,
            },
            "location": [{"reference": f"Location/{clinic.id}", "display": clinic.name}],
        }

    def render_slot(self, slot: WorldSlot) -> dict[str, Any]:
        kind = slot.appointment_type
        coding = [{"system": APPOINTMENT_TYPE_SYSTEM, "code": kind.value}]
        if kind in V2_APPOINTMENT_REASON:
            coding.insert(
                0, {"system": V2_APPOINTMENT_REASON_SYSTEM, "code": V2_APPOINTMENT_REASON[kind]}
            )
        resource: dict[str, Any] = {
            "resourceType": "Slot",
            "id": slot.id,
            "schedule": {"reference": f"Schedule/{slot.clinic_id}-{slot.physician_id}"},
            "status": "free" if slot.free else "busy",
            "start": slot.start.isoformat(),
            "end": slot.end.isoformat(),
            "appointmentType": {"coding": coding},
        }
        if slot.free:
            resource["extension"] = [
                {"url": BOOKING_DEEP_LINK_URL, "valueUrl": BOOKING_BASE + slot.id},
                {"url": BOOKING_PHONE_URL, "valueString": self.clinics[slot.clinic_id].phone},
            ]
        return resource


# -- HTTP ------------------------------------------------------------------------


def build_app(world: World) -> web.Application:
    """The aiohttp application serving ``world``'s FHIR clinics under ``/fhir``."""
    demo = FhirDemo(world)
    # Next links carry the whole search; long reference lists need more than 8 KiB lines.
    app = web.Application(
        middlewares=[_count_requests],
        handler_args={"max_line_size": 65536, "max_field_size": 65536},
    )
    app[_STATS] = {"requests": 0}
    app[_SERVER] = demo

    def base_of(request: web.Request) -> str:
        return f"{request.url.origin()}/fhir"

    async def search(request: web.Request) -> web.Response:
        rtype = request.match_info["type"]
        if rtype not in RESOURCE_TYPES:
            return _outcome(404, "not-supported", f"unknown resource type {rtype!r}")
        params: Params = list(request.query.items())
        if request.method == "POST":
            form = await request.post()
            params += [(k, v) for k, v in form.items() if isinstance(v, str)]
        base = base_of(request)
        self_url = f"{base}/{rtype}?{urlencode(params)}"
        try:
            return _fhir(demo.search(rtype, params, base, self_url))
        except BadRequest as exc:
            return _outcome(400, "invalid", str(exc))

    async def read(request: web.Request) -> web.Response:
        rtype, rid = request.match_info["type"], request.match_info["id"]
        if rtype not in RESOURCE_TYPES:
            return _outcome(404, "not-supported", f"unknown resource type {rtype!r}")
        try:
            return _fhir(demo.render(rtype, rid))
        except (KeyError, StopIteration):
            return _outcome(404, "not-found", f"{rtype}/{rid} does not exist")

    async def metadata(request: web.Request) -> web.Response:
        return _fhir(_capability_statement())

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(app[_STATS])

    app.router.add_get("/_stats", stats)
    app.router.add_get("/fhir/metadata", metadata)
    app.router.add_post("/fhir/{type}/_search", search)
    app.router.add_get("/fhir/{type}", search)
    app.router.add_get("/fhir/{type}/{id}", read)
    return app


@web.middleware
async def _count_requests(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    if request.path != "/_stats":
        request.app[_STATS]["requests"] += 1
    response: web.StreamResponse = await handler(request)
    return response


def _fhir(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=FHIR_JSON)


def _outcome(status: int, code: str, message: str) -> web.Response:
    issue = {"severity": "error", "code": code, "diagnostics": message}
    return _fhir({"resourceType": "OperationOutcome", "issue": [issue]}, status)


def _capability_statement() -> dict[str, Any]:
    resources = []
    for rtype in RESOURCE_TYPES:
        names = sorted(p for p in PARAMS[rtype] if not p.startswith("_") and ":" not in p)
        resources.append(
            {
                "type": rtype,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [
                    {"name": n, "type": "special" if n == "near" else "string"} for n in names
                ],
                "searchInclude": sorted(n for n, (src, _) in INCLUDES.items() if src == rtype),
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-01",
        "kind": "instance",
        "software": {"name": "Passerelle FHIR demo"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{"mode": "server", "resource": resources}],
    }


# -- parameters ------------------------------------------------------------------


def _split(value: str) -> list[str]:
    """Comma-separated values, honouring FHIR's ``\\,`` escape."""
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",").strip() for p in parts if p.strip()]


def _split_token(token: str) -> tuple[str, bool, str]:
    """``system|code`` -> (system, True, code); a bare ``code`` -> ("", False, code)."""
    match = re.fullmatch(r"(.*?)(?<!\\)\|(.*)", token)
    return (match.group(1), True, match.group(2)) if match else ("", False, token)


def _reference(text: str, typed: str | None) -> Ref:
    parts = text.rstrip("/").split("/")
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    if typed:
        return typed, parts[-1]
    raise BadRequest(f"reference {text!r} needs a type, as Location/{text}")


def _appointment_types(token: str) -> set[AppointmentType]:
    system, has_system, code = _split_token(token)
    out = set()
    if system == APPOINTMENT_TYPE_SYSTEM or not has_system:
        if code in AppointmentType.__members__:
            out.add(AppointmentType[code])
    if system == V2_APPOINTMENT_REASON_SYSTEM or not has_system:
        out.update(k for k, v in V2_APPOINTMENT_REASON.items() if v == code)
    return out


def _date_range(text: str) -> tuple[float, float]:
    """``[low, high)`` of a FHIR date or dateTime, as POSIX times (naive = Montreal)."""
    text = text.strip().replace(" ", "+")  # an unencoded "+" in a query string
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            low = datetime(day.year, day.month, day.day, tzinfo=MONTREAL)
            return low.timestamp(), (low + timedelta(days=1)).timestamp()
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"not a FHIR date or dateTime: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=MONTREAL)
    step = timedelta(minutes=1) if re.search(r"T\d{2}:\d{2}(?!:)", text) else timedelta(seconds=1)
    return value.timestamp(), (value + step).timestamp()


def _values(params: Params, name: str) -> list[str]:
    return [v for k, v in params if k == name]


def _one(params: Params, name: str) -> str | None:
    values = _values(params, name)
    if len(values) > 1:
        raise BadRequest(f"{name} may appear once")
    return values[0] if values else None


def _int_param(params: Params, name: str, default: int) -> int:
    text = _one(params, name)
    if text is None:
        return default
    if not text.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(text)


def _encode_token(rtype: str, params: Params, position: Any) -> str:
    """The search and where the next page starts, compressed: reference lists repeat a lot."""
    raw = zlib.compress(orjson.dumps({"t": rtype, "p": params, "at": position}), 9)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, Params, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(zlib.decompressobj().decompress(raw, 1 << 20))
        params = [(str(k), str(v)) for k, v in data["p"]]
        return str(data["t"]), params, data["at"]
    except (ValueError, TypeError, KeyError, zlib.error):
        raise BadRequest("invalid page token") from None


def _stream(
    bucket: _Bucket,
    lo: int,
    hi: int,
    physicians: set[str] | None,
    cursor: tuple[Any, ...] | None,
) -> Iterator[tuple[float, str, WorldSlot]]:
    starts, slots = bucket.starts, bucket.slots
    for i in range(lo, hi):
        slot = slots[i]
        if physicians is not None and slot.physician_id not in physicians:
            continue
        key = (starts[i], slot.id)
        if cursor is not None and key <= cursor:
            continue
        yield starts[i], slot.id, slot


def _cell(latitude: float, longitude: float) -> tuple[int, int]:
    return math.floor(latitude / _GRID_DEG), math.floor(longitude / _GRID_DEG)


def _language(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LANGUAGE_SYSTEM, "code": code}]}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    app = build_app(World(scale=args.scale, seed=args.seed))
    # The index is built once and lives forever: keep the collector from walking it.
    gc.collect()
    gc.freeze()
    print(f"FHIR demo on http://{args.host}:{args.port}/fhir", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)  # exits cleanly on SIGTERM


if __name__ == "__main__":
    main()
