"""The demo FHIR server's search engine: the world's ``"fhir"`` clinics, indexed for search.

Slots are indexed once at startup per clinic, status and appointment type, sorted by
start: a search bisects each bucket it needs, merges them lazily and counts totals from
slice lengths, so no query scans the slots. Locations are also gridded by position, so
that ``near`` looks only at the cells its circle covers.

It stays one module past 400 lines because :class:`FhirIndex` is one set of indexes that
every search part reads several of (a Slot plan its buckets and schedules, ``near`` its
grid, ``_include`` its references); split, the parts would share its private state.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import re
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from examples.demo_fhir.params import (
    INCLUDES,
    BadRequest,
    Params,
    Ref,
    date_range,
    encode_page_token,
    parse_appointment_types,
    parse_reference,
    parse_search,
    split_token,
    split_values,
)
from examples.demo_fhir.resources import (
    render_location,
    render_practitioner,
    render_role,
    render_schedule,
    render_slot,
    role_id,
    schedule_id,
)
from examples.world import CLINIC_PERMIT_SYSTEM, PHYSICIAN_LICENCE_SYSTEM
from sources.fhir.found import fold
from sources.geo import distance_km
from sources.records import AppointmentType, GeoPoint

if TYPE_CHECKING:
    from examples.world import World, WorldClinic, WorldPhysician, WorldSlot

SYSTEM = "fhir"
SLOT_STATUSES = {"free", "busy", "busy-unavailable", "busy-tentative", "entered-in-error"}
_GRID_DEG = 0.5


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


class FhirIndex:
    """The world's ``"fhir"`` clinics, indexed for FHIR search.

    index = FhirIndex(World(scale=0.01))
    bundle = index.search("Location", [("address-city", "Laval")], base, self_url)
    """

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
                    rid = role_id(physician.id, cid)
                    self.roles[rid] = (physician.id, cid)
                    self.roles_by_clinic[cid].append(rid)
                    self.roles_by_physician[physician.id].append(rid)
        self.schedules = {schedule_id(cid, pid): (cid, pid) for pid, cid in self.roles.values()}
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
        """One page of a search as a ``searchset`` Bundle; ``BadRequest`` if refused."""
        request = parse_search(rtype, params)
        params, position, count = request.params, request.position, request.count
        if rtype == "Slot":
            plan = self._slot_plan(params)
            cursor = tuple(position) if position else None
            slots, more, total = self._slots(plan, count, cursor, request.total_mode != "none")
            matches: list[tuple[Ref, dict[str, Any]]] = [
                (("Slot", s.id), self._render_slot(s)) for s in slots
            ]
            next_position: Any = (
                [slots[-1].start.timestamp(), slots[-1].id] if more and slots else None
            )
            slot_schedules = {s.id: schedule_id(s.clinic_id, s.physician_id) for s in slots}
        else:
            ids = self._search_ids(rtype, params)
            offset = int(position or 0)
            page = ids[offset : offset + count]
            matches = [((rtype, i), self.render(rtype, i)) for i in page]
            total = len(ids)
            next_position = offset + count if offset + count < len(ids) and count else None
            slot_schedules = {}

        included = self._includes(
            [r for r, _ in matches], request.includes, request.iterate, slot_schedules
        )
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if total is not None and request.total_mode != "none":
            bundle["total"] = total
        bundle["link"] = [{"relation": "self", "url": self_url}]
        if next_position is not None:
            next_token = encode_page_token(rtype, params, next_position)
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
                codes = split_values(value)
                if not set(codes) <= SLOT_STATUSES:
                    raise BadRequest(f"unknown Slot status in {value!r}")
                plan.statuses &= frozenset(c == "free" for c in codes if c in ("free", "busy"))
            elif name == "start":
                self._narrow_start(plan, value)
            elif name == "appointment-type":
                kinds: set[AppointmentType] = set()
                for token in split_values(value):
                    kinds |= parse_appointment_types(token)
                plan.types = (
                    frozenset(kinds) & plan.types if plan.types is not None else frozenset(kinds)
                )
            elif name == "appointment-type:missing":
                # Every slot here is coded: missing=true matches none, false every one.
                if value not in ("true", "false"):
                    raise BadRequest(f"appointment-type:missing is true or false, not {value!r}")
                if value == "true":
                    plan.types = frozenset()
            elif name.startswith("schedule"):
                self._narrow_schedules(plan, name, value)
        return plan

    def _narrow_start(self, plan: _SlotPlan, value: str) -> None:
        match = re.fullmatch(r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.+)", value.strip())
        prefix, text = (match.group(1) or "eq", match.group(2)) if match else ("", "")
        if prefix not in ("eq", "gt", "lt", "ge", "le"):
            raise BadRequest(f"unsupported start prefix in {value!r}")
        low, high = date_range(text)
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
        for text in split_values(value):
            kind, rid = parse_reference(text, "Schedule" if name == "schedule" else typed)
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
                narrow(set(split_values(value)))
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
                wanted = {parse_reference(v, kind)[1] for v in split_values(value)}
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
        for token in split_values(value):
            token_system, bar, code = split_token(token)
            if bar and token_system != system:
                continue
            if code in index:
                out.add(index[code])
        return out

    def _by_text(self, name: str, value: str) -> set[str]:
        wanted = [fold(v) for v in split_values(value)]
        field_of: Callable[[WorldClinic], str] = {
            "address-postalcode": lambda c: c.postal_code,
            "address-state": lambda c: "QC",
            "address-city": lambda c: c.city,
        }.get(name, lambda c: c.name)
        out = set()
        for clinic in self.clinics.values():
            text = fold(field_of(clinic))
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
        for text in split_values(value):
            kind, rid = parse_reference(text, None)
            if kind == "Location" and rid in self.clinics:
                out.update(schedule_id(rid, self.roles[r][0]) for r in self.roles_by_clinic[rid])
            elif kind == "PractitionerRole" and rid in self.roles:
                pid, cid = self.roles[rid]
                out.add(schedule_id(cid, pid))
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
            return [("Location", cid), ("PractitionerRole", role_id(pid, cid))]
        pid, cid = self.roles[rid]
        return [("Practitioner", pid)] if name.endswith("practitioner") else [("Location", cid)]

    # -- resources ------------------------------------------------------------

    def render(self, rtype: str, rid: str) -> dict[str, Any]:
        """One resource as JSON; ``KeyError`` when it does not exist."""
        if rtype == "Location":
            return render_location(self.clinics[rid])
        if rtype == "Practitioner":
            return render_practitioner(self.physicians[rid])
        if rtype == "PractitionerRole":
            pid, cid = self.roles[rid]
            return render_role(self.physicians[pid], self.clinics[cid])
        if rtype == "Schedule":
            cid, pid = self.schedules[rid]
            return render_schedule(self.clinics[cid], self.physicians[pid])
        if rtype == "Slot":
            cid = rid.split("-", 1)[0]
            if cid not in self.clinics:  # a slot of a clinic this system does not list
                raise KeyError(rid)
            slot = next((s for s in self.slots_of(cid) if s.id == rid), None)
            if slot is None:
                raise KeyError(rid)
            return self._render_slot(slot)
        raise KeyError(rtype)

    # -- churn ----------------------------------------------------------------

    def slots_of(self, clinic_id: str) -> list[WorldSlot]:
        """The clinic's slots as served now (free and busy, churn included), by start."""
        buckets = self.buckets.get(clinic_id, {})
        held = [s for free in (True, False) for s in buckets.get((free, None), _Bucket()).slots]
        return sorted(held, key=lambda s: (s.start, s.id))

    def set_free(self, slot: WorldSlot, free: bool) -> WorldSlot:
        """Serve ``slot`` free or busy from now on (``examples.churn``)."""
        changed = replace(slot, free=free)
        buckets = self.buckets[slot.clinic_id]
        for kind in (slot.appointment_type, None):
            _move(
                buckets.get((slot.free, kind)),
                buckets.setdefault((free, kind), _Bucket()),
                slot,
                changed,
            )
        return changed

    def _render_slot(self, slot: WorldSlot) -> dict[str, Any]:
        # Only a free slot carries its clinic's phone, so only it needs the clinic.
        return render_slot(slot, self.clinics[slot.clinic_id].phone if slot.free else None)


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


def _move(source: _Bucket | None, target: _Bucket, slot: WorldSlot, changed: WorldSlot) -> None:
    """``slot`` out of ``source``, ``changed`` into ``target``, both kept by (start, id)."""
    start = slot.start.timestamp()
    if source is not None:
        i = bisect.bisect_left(source.starts, start)
        while i < len(source.slots) and source.slots[i].id != slot.id:
            i += 1
        if i < len(source.slots):
            del source.starts[i]
            del source.slots[i]
    i = bisect.bisect_left(target.starts, start)
    while i < len(target.slots) and target.starts[i] == start and target.slots[i].id < slot.id:
        i += 1
    target.starts.insert(i, start)
    target.slots.insert(i, changed)


__all__ = ["SLOT_STATUSES", "SYSTEM", "FhirIndex"]
