"""The FHIR R4 scheduling adapter: free ``Slot``s, with their clinics and physicians.

    source = FhirSource(
        SourceConfig(id="fhir-demo", name="FHIR demo", protocol=SourceProtocol.FHIR_R4,
                     url="http://127.0.0.1:8101/fhir"),
        SourceContext(session=session, logger=logging.getLogger("passerelle.source.fhir-demo")),
    )
    result = await source.search_slots(SlotQuery(starts_after=now, starts_before=later, limit=20))

How the gateway's model sits on FHIR R4 (``examples/demo_fhir.py`` serves exactly this):

- Clinic = ``Location``: ``identifier``, ``name``, a ``telecom`` phone, ``address``,
  ``position``; its languages as the core extension ``location-communication``
  (one per language, a CodeableConcept in ``urn:ietf:bcp:47``).
- Physician = ``Practitioner`` (``name``, ``identifier``, ``communication`` in
  ``urn:ietf:bcp:47``) with one ``PractitionerRole`` per clinic (``practitioner``,
  ``location``). Accepting new patients is the Da Vinci Plan-Net ``newpatients``
  extension on the role, whose ``acceptingPatients`` is coded in HL7's
  ``accepting-patients`` code system (``newpt`` yes, ``nopt``/``existptonly``/``existptfam`` no);
  a legacy ``valueBoolean`` is read too.
- One ``Schedule`` per clinic and physician, ``actor`` = [Location, PractitionerRole].
- ``Slot``: ``status``, ``start``/``end``, ``appointmentType`` coded in
  :data:`APPOINTMENT_TYPE_SYSTEM` (all nine types, so they round-trip) and, where a code
  exists, in HL7 v2 table 0276; booking link and phone as the SMART Scheduling Links
  ``booking-deep-link``/``booking-phone`` extensions.

Reading is lenient per entry and strict per answer: a malformed entry is skipped and
counted in one log line, while an answer that is not a Bundle is a ``SourceBadResponse``.
A slot without ``appointmentType`` is ROUTINE (v2 table 0276: "default if not valued"); a
slot coded only in unknown systems is skipped rather than guessed. Only free slots are kept.
Next links are followed only on the origin of ``config.url``, never twice, at most
``MAX_PAGES`` pages per search.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from yarl import URL

from sources.base import Source
from sources.errors import SourceBadResponse
from sources.geo import distance_km, infer_region, normalize_postal_code, valid_point
from sources.http import request_json, shape_error
from sources.records import (
    Address,
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    Identifier,
    PhysicianQuery,
    PhysicianRecord,
    SlotQuery,
    SlotRecord,
    SlotResult,
    SourceProtocol,
)
from sources.timeutil import MONTREAL, parse_upstream_datetime

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sources.base import SourceConfig, SourceContext

APPOINTMENT_TYPE_SYSTEM = "urn:passerelle:appointment-type"
V2_APPOINTMENT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
V2_APPOINTMENT_REASON: dict[AppointmentType, str] = {
    AppointmentType.WALK_IN: "WALKIN",
    AppointmentType.ROUTINE: "ROUTINE",
    AppointmentType.FOLLOW_UP: "FOLLOWUP",
    AppointmentType.CHECKUP: "CHECKUP",
    AppointmentType.URGENT: "EMERGENCY",
}
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
LOCATION_COMMUNICATION_URL = "http://hl7.org/fhir/StructureDefinition/location-communication"
NEW_PATIENTS_URL = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/newpatients"
ACCEPTING_PATIENTS_SYSTEM = "http://terminology.hl7.org/CodeSystem/accepting-patients"
BOOKING_DEEP_LINK_URL = (
    "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link"
)
BOOKING_PHONE_URL = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-phone"

MAX_PAGES = 50
PAGE_SIZE = 1000  # the largest _count the demo (and most servers) honour

_FROM_V2 = {code: kind for kind, code in V2_APPOINTMENT_REASON.items()}
_ACCEPTING_SYSTEMS = (
    ACCEPTING_PATIENTS_SYSTEM,
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/AcceptingPatientsCS",
)
_LANGUAGE_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")
_MAX_TEXT = 512
_MAX_URL = 64 * 1024
_T = TypeVar("_T")


class FhirSource(Source):
    """Adapter for a FHIR R4 server offering Slot search; see the module docstring."""

    protocol: ClassVar[SourceProtocol] = SourceProtocol.FHIR_R4

    def __init__(self, config: SourceConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self._base = config.url.rstrip("/")
        self._origin: URL | None
        try:
            self._origin = URL(self._base).origin()
        except ValueError:
            self._origin = None  # every call then fails with SourceBadResponse

    # -- the contract ---------------------------------------------------------

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        found = _Found(self.id)
        if query.clinic_local_ids is not None or query.region is not None or _has_radius(query):
            scope = ClinicQuery(
                near=query.near,
                radius_km=query.radius_km,
                region=query.region,
                local_ids=query.clinic_local_ids,
            )
            found.scope = {r["id"] for r in await self._locations(scope, found)}
            if not found.scope:
                return SlotResult((), complete=True, total=0)
        roles: set[str] | None = None
        if query.physician_local_ids is not None:
            roles = await self._role_ids(query.physician_local_ids)
            if not roles:
                return SlotResult((), complete=True, total=0)

        params = [
            ("status", "free"),
            ("start", "ge" + _instant(query.starts_after)),
            ("start", "lt" + _instant(query.starts_before)),
            ("_sort", "start"),
            ("_count", str(min(PAGE_SIZE, max(1, query.limit)))),
            ("_include", "Slot:schedule"),
            ("_include:iterate", "Schedule:actor"),
            ("_include:iterate", "PractitionerRole:practitioner"),
            ("_total", "accurate"),
        ]
        if query.appointment_types is not None:
            params.append(("appointment-type", _type_tokens(query.appointment_types)))
        if found.scope is not None:
            params.append(("schedule.actor", _or_refs("Location", sorted(found.scope))))
        if roles is not None:
            params.append(("schedule.actor", _or_refs("PractitionerRole", sorted(roles))))

        total: int | None = None
        complete = False
        method, url = "POST", f"{self._base}/Slot/_search"
        data: list[tuple[str, str]] | None = params
        visited: set[str] = set()
        for page in range(MAX_PAGES):
            bundle = await self._bundle(method, url, data)
            if page == 0:
                total = _bundle_total(bundle)
            matches = found.add(bundle, "Slot")
            await self._fetch_missing(matches, found)
            for raw in matches:
                found.keep_slot(raw, query)
            next_url = _next_link(bundle)
            if next_url is None:
                complete = True
                break
            if len(found.slots) >= query.limit:
                break
            url, method, data = self._follow(next_url, visited), "GET", None
        else:
            self.logger.warning("stopped after %d pages of slots", MAX_PAGES)
        found.log(self.logger)

        slots = tuple(sorted(found.slots.values(), key=lambda s: (s.start, s.local_id)))
        return SlotResult(
            slots=slots,
            complete=complete,
            total=len(slots) if complete else total,
            clinics=found.clinics_of(slots),
            physicians=found.physicians_of(slots),
        )

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        found = _Found(self.id)
        out = []
        for resource in await self._locations(query, found):
            clinic = found.clinic(resource["id"])
            if clinic is not None and _clinic_matches(clinic, query):
                out.append(clinic)
        found.log(self.logger)
        return out

    async def _locations(self, query: ClinicQuery, found: _Found) -> list[dict[str, Any]]:
        """Locations the server returns for ``query``, checked cheaply on id, place and region.

        Records are built later and only for the clinics that are used: building one
        costs far more than this check, and a region scope can hold hundreds of clinics.
        """
        params = [("_count", str(PAGE_SIZE))]
        if query.local_ids is not None:
            if not query.local_ids:
                return []
            params.append(("_id", _or(query.local_ids)))
        if query.identifiers is not None:
            if not query.identifiers:
                return []
            params.append(("identifier", _identifier_tokens(query.identifiers)))
        if query.near is not None and query.radius_km is not None:
            near = query.near
            params.append(("near", f"{near.latitude}|{near.longitude}|{query.radius_km}|km"))
        if query.name_contains:
            params.append(("name:contains", query.name_contains))
        if query.postal_codes is not None:
            if not query.postal_codes:
                return []
            params.append(("address-postalcode", _or(query.postal_codes)))
        if query.region is not None:
            params.append(("address-state", "QC"))
        for bundle in await self._all_pages("Location", params):
            found.add(bundle, "Location")
        return [r for r in found.resources["Location"].values() if _place_matches(r, query)]

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        found = _Found(self.id)
        wanted: set[str] = set()
        if query.local_ids:
            for bundle in await self._all_pages("Practitioner", [("_id", _or(query.local_ids))]):
                found.add(bundle, "Practitioner")
            wanted |= set(query.local_ids) & found.resources["Practitioner"].keys()
        if query.identifiers:
            token = _identifier_tokens(query.identifiers)
            asked = set(query.identifiers)
            for bundle in await self._all_pages("Practitioner", [("identifier", token)]):
                for practitioner in found.add(bundle, "Practitioner"):
                    if asked & set(_identifiers(practitioner.get("identifier"))):
                        wanted.add(practitioner["id"])
        if query.clinic_local_ids:
            params = [
                ("location", _or_refs("Location", query.clinic_local_ids)),
                ("_include", "PractitionerRole:practitioner"),
            ]
            clinics = set(query.clinic_local_ids)
            for bundle in await self._all_pages("PractitionerRole", params):
                for role in found.add(bundle, "PractitionerRole"):
                    pid = _ref_id(role.get("practitioner"), "Practitioner")
                    if pid and clinics & set(_refs(role.get("location"), "Location")):
                        wanted.add(pid)
        if not wanted:
            found.log(self.logger)
            return []
        # Every role of each physician, so that clinic_local_ids lists all their clinics.
        params = [("practitioner", _or_refs("Practitioner", sorted(wanted)))]
        for bundle in await self._all_pages("PractitionerRole", params):
            found.add(bundle, "PractitionerRole")
        await self._fetch_by_id(found, "Practitioner", wanted)
        out = [p for pid in sorted(wanted) if (p := found.physician(pid)) is not None]
        found.log(self.logger)
        return out

    # -- HTTP -----------------------------------------------------------------

    async def _bundle(
        self, method: str, url: str, data: list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        if self._origin is None:
            raise SourceBadResponse(self.id, "configured URL is not an absolute http(s) URL")
        headers = {"Accept": "application/fhir+json"}
        if self.config.credentials:
            headers["Authorization"] = f"Bearer {self.config.credentials}"
        body = await request_json(
            self.session, self.id, method, url,
            timeout_s=self.config.timeout_s, data=data, headers=headers,
        )  # fmt: skip
        if not isinstance(body, dict):
            raise shape_error(self.id, f"expected a Bundle, got a JSON {type(body).__name__}")
        kind = body.get("resourceType")
        if kind != "Bundle":
            raise shape_error(self.id, f"expected a Bundle, got {_short(kind)}")
        if not all(isinstance(body.get(key, []), list) for key in ("entry", "link")):
            raise shape_error(self.id, "Bundle.entry or Bundle.link is not a list")
        return body

    def _follow(self, link: object, visited: set[str]) -> str:
        """The absolute next-page URL, refused off our origin (SSRF) or when seen before."""
        if not isinstance(link, str) or not link.strip() or len(link) > _MAX_URL:
            raise shape_error(self.id, "Bundle next link is not a usable URL")
        try:
            url = URL(self._base + "/").join(URL(link.strip()))
            same_origin = url.scheme in ("http", "https") and url.origin() == self._origin
        except (ValueError, TypeError):
            same_origin = False
        if not same_origin:
            raise SourceBadResponse(self.id, "next link points outside the source's origin")
        text = str(url)
        if text in visited:
            raise SourceBadResponse(self.id, "next links loop")
        visited.add(text)
        return text

    async def _all_pages(
        self, resource_type: str, params: list[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        """Every page of a search, following next links up to ``MAX_PAGES``."""
        bundles = [await self._bundle("POST", f"{self._base}/{resource_type}/_search", params)]
        visited: set[str] = set()
        while (link := _next_link(bundles[-1])) is not None:
            if len(bundles) >= MAX_PAGES:
                self.logger.warning("stopped after %d pages of %s", MAX_PAGES, resource_type)
                break
            bundles.append(await self._bundle("GET", self._follow(link, visited)))
        return bundles

    async def _fetch_by_id(self, found: _Found, resource_type: str, ids: set[str]) -> None:
        missing = sorted(ids - found.resources[resource_type].keys())
        if not missing:
            return
        params = [("_id", _or(missing))]
        if resource_type == "Schedule":
            params += [
                ("_include", "Schedule:actor"),
                ("_include:iterate", "PractitionerRole:practitioner"),
            ]
        elif resource_type == "PractitionerRole":
            params.append(("_include", "PractitionerRole:practitioner"))
        for bundle in await self._all_pages(resource_type, params):
            found.add(bundle, resource_type)

    async def _fetch_missing(self, slots: list[dict[str, Any]], found: _Found) -> None:
        """Fetch what the server did not ``_include`` (many ignore ``:iterate``)."""
        free = [s for s in slots if s.get("status") == "free"]
        schedules = {sid for s in free if (sid := _ref_id(s.get("schedule"), "Schedule"))}
        await self._fetch_by_id(found, "Schedule", schedules)
        locations: set[str] = set()
        roles: set[str] = set()
        practitioners: set[str] = set()
        for sid in schedules:
            actors = found.resources["Schedule"].get(sid, {}).get("actor")
            locations.update(_refs(actors, "Location"))
            roles.update(_refs(actors, "PractitionerRole"))
            practitioners.update(_refs(actors, "Practitioner"))
        await self._fetch_by_id(found, "Location", locations)
        await self._fetch_by_id(found, "PractitionerRole", roles)
        for rid in roles:
            role = found.resources["PractitionerRole"].get(rid, {})
            if pid := _ref_id(role.get("practitioner"), "Practitioner"):
                practitioners.add(pid)
        await self._fetch_by_id(found, "Practitioner", practitioners)

    async def _role_ids(self, physician_ids: tuple[str, ...]) -> set[str]:
        if not physician_ids:
            return set()
        params = [("practitioner", _or_refs("Practitioner", physician_ids))]
        wanted = set(physician_ids)
        found = _Found(self.id)
        roles: set[str] = set()
        for bundle in await self._all_pages("PractitionerRole", params):
            for role in found.add(bundle, "PractitionerRole"):
                if _ref_id(role.get("practitioner"), "Practitioner") in wanted:
                    roles.add(role["id"])
        return roles


class _Found:
    """The resources one call has read, by type and id, and the records built from them."""

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self.skipped: Counter[str] = Counter()
        self.scope: set[str] | None = None  # Location ids a slot search was narrowed to
        self.resources: dict[str, dict[str, dict[str, Any]]] = {
            t: {} for t in ("Slot", "Schedule", "Location", "PractitionerRole", "Practitioner")
        }
        self.slots: dict[str, SlotRecord] = {}
        self._clinics: dict[str, ClinicRecord | None] = {}
        self._physicians: dict[str, PhysicianRecord | None] = {}
        self._roles: dict[str, list[dict[str, Any]]] = {}  # by practitioner id

    def add(self, bundle: dict[str, Any], match_type: str) -> list[dict[str, Any]]:
        """Index a Bundle's resources; return those of ``match_type`` not sent as includes."""
        matches: list[dict[str, Any]] = []
        for entry in bundle.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            rid = _text(resource.get("id")) if isinstance(resource, dict) else None
            if not isinstance(resource, dict) or not isinstance(kind, str) or rid is None:
                self.skipped["entry"] += 1
                continue
            resource["id"] = rid
            if kind in self.resources and rid not in self.resources[kind]:
                self._index(kind, rid, resource)
            search = entry.get("search")
            mode = search.get("mode") if isinstance(search, dict) else None
            if kind == match_type and mode in (None, "match"):
                matches.append(resource)
        return matches

    def _index(self, kind: str, rid: str, resource: dict[str, Any]) -> None:
        self.resources[kind][rid] = resource
        # Records built from earlier pages may lack what this one brings.
        if kind == "Location" and self._clinics.get(rid, True) is None:
            del self._clinics[rid]
        elif kind in ("Practitioner", "PractitionerRole"):
            role = kind == "PractitionerRole"
            pid = _ref_id(resource.get("practitioner"), "Practitioner") if role else rid
            if role and pid:
                self._roles.setdefault(pid, []).append(resource)
            self._physicians.pop(pid or "", None)

    def keep_slot(self, raw: dict[str, Any], query: SlotQuery) -> None:
        """Turn one Slot into a record if it is free, well-formed and matches ``query``."""
        if raw.get("status") != "free":
            self.skipped["non-free Slot"] += 1
            return
        try:
            start = parse_upstream_datetime(raw.get("start"))  # type: ignore[arg-type]
            end = parse_upstream_datetime(raw.get("end"))  # type: ignore[arg-type]
        except (ValueError, OverflowError):
            self.skipped["Slot"] += 1
            return
        kind = _appointment_type(raw.get("appointmentType"))
        schedule = self.resources["Schedule"].get(_ref_id(raw.get("schedule"), "Schedule") or "")
        if end <= start or kind is None or schedule is None:
            self.skipped["Slot"] += 1
            return
        if not query.starts_after <= start < query.starts_before:
            return
        if query.appointment_types is not None and kind not in query.appointment_types:
            return
        actors = schedule.get("actor")
        clinic_id = next(iter(_refs(actors, "Location")), None)
        clinic = self.clinic(clinic_id) if clinic_id else None
        if clinic is None:
            self.skipped["Slot"] += 1
            return
        if self.scope is not None and clinic.local_id not in self.scope:
            return
        physician_id = next(iter(_refs(actors, "Practitioner")), None)
        for rid in _refs(actors, "PractitionerRole"):
            role = self.resources["PractitionerRole"].get(rid, {})
            physician_id = _ref_id(role.get("practitioner"), "Practitioner") or physician_id
        if query.physician_local_ids is not None and physician_id not in query.physician_local_ids:
            return
        physician = self.physician(physician_id) if physician_id else None
        if query.languages and not _speaks(query.languages, clinic, physician):
            return
        extensions = _extensions(raw)
        self.slots[raw["id"]] = SlotRecord(
            source_id=self.source_id,
            local_id=raw["id"],
            start=start,
            end=end,
            appointment_type=kind,
            clinic_local_id=clinic.local_id,
            physician_local_id=physician_id,
            booking_url=_web_url(_ext_value(extensions, BOOKING_DEEP_LINK_URL)),
            booking_phone=_phone(_ext_value(extensions, BOOKING_PHONE_URL)),
        )

    def clinic(self, location_id: str) -> ClinicRecord | None:
        if location_id not in self._clinics:
            resource = self.resources["Location"].get(location_id)
            record = _clinic_record(self.source_id, resource) if resource else None
            self.skipped["Location"] += int(resource is not None and record is None)
            self._clinics[location_id] = record
        return self._clinics[location_id]

    def physician(self, practitioner_id: str) -> PhysicianRecord | None:
        if practitioner_id not in self._physicians:
            self._physicians[practitioner_id] = _physician_record(
                self.source_id,
                practitioner_id,
                self.resources["Practitioner"].get(practitioner_id),
                self._roles.get(practitioner_id, []),
            )
        return self._physicians[practitioner_id]

    def clinics_of(self, slots: tuple[SlotRecord, ...]) -> dict[str, ClinicRecord]:
        return {s.clinic_local_id: c for s in slots if (c := self.clinic(s.clinic_local_id))}

    def physicians_of(self, slots: tuple[SlotRecord, ...]) -> dict[str, PhysicianRecord]:
        ids = {s.physician_local_id for s in slots if s.physician_local_id}
        return {pid: p for pid in ids if (p := self.physician(pid)) is not None}

    def log(self, logger: logging.Logger) -> None:
        malformed = {k: n for k, n in self.skipped.items() if n and k != "non-free Slot"}
        if malformed:
            detail = ", ".join(f"{n} {kind}" for kind, n in sorted(malformed.items()))
            logger.warning("skipped malformed entries: %s", detail)
        if self.skipped["non-free Slot"]:
            logger.info("dropped %d non-free slots", self.skipped["non-free Slot"])


# -- reading FHIR JSON (every function accepts anything and never raises) ------


def _clinic_record(source_id: str, resource: dict[str, Any]) -> ClinicRecord | None:
    name = _text(resource.get("name"))
    address = _as_dict(_first(resource.get("address")))
    position = _as_dict(resource.get("position"))
    point = valid_point(_number(position.get("latitude")), _number(position.get("longitude")))
    postal_code = normalize_postal_code(_text(address.get("postalCode")))
    region = infer_region(postal_code, point)
    if name is None or region is None:
        return None
    lines = [line for item in _as_list(address.get("line")) if (line := _text(item))]
    phones = (
        _text(t.get("value"))
        for t in map(_as_dict, _as_list(resource.get("telecom")))
        if t.get("system") == "phone"
    )
    languages = (
        _language(e.get("valueCodeableConcept"))
        for e in map(_as_dict, _as_list(resource.get("extension")))
        if e.get("url") == LOCATION_COMMUNICATION_URL
    )
    return ClinicRecord(
        source_id=source_id,
        local_id=resource["id"],
        name=name,
        address=Address(
            city=_text(address.get("city")) or "",
            region=region,
            line=", ".join(lines) or None,
            postal_code=postal_code,
        ),
        location=point,
        phone=_phone(next((p for p in phones if p), None)),
        languages=_unique(languages),
        identifiers=_identifiers(resource.get("identifier")),
    )


def _physician_record(
    source_id: str,
    practitioner_id: str,
    practitioner: dict[str, Any] | None,
    roles: list[dict[str, Any]],
) -> PhysicianRecord | None:
    """From the Practitioner and its roles; from a role's ``display`` when only roles came."""
    practitioner = practitioner or {}
    display = _human_name(practitioner.get("name")) or next(
        (d for r in roles if (d := _text(_as_dict(r.get("practitioner")).get("display")))), None
    )
    if display is None:
        return None
    accepting = [a for r in roles if (a := _accepting(r)) is not None]
    communication = (
        _language(_as_dict(c).get("language", c))  # R5 wraps the concept in ``language``
        for c in _as_list(practitioner.get("communication"))
    )
    return PhysicianRecord(
        source_id=source_id,
        local_id=practitioner_id,
        display_name=display,
        languages=_unique(communication),
        identifiers=_identifiers(practitioner.get("identifier")),
        clinic_local_ids=_unique(
            cid for r in roles for cid in _refs(r.get("location"), "Location")
        ),
        accepting_new_patients=any(accepting) if accepting else None,
    )


def _human_name(value: object) -> str | None:
    names = [n for n in map(_as_dict, _as_list(value)) if n]
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    if text := _text(name.get("text")):
        return text
    parts = [
        *(p for item in _as_list(name.get("prefix")) if (p := _text(item))),
        *(g for item in _as_list(name.get("given")) if (g := _text(item))),
    ]
    if family := _text(name.get("family")):
        parts.append(family)
    return " ".join(parts) or None


def _accepting(role: dict[str, Any]) -> bool | None:
    for extension in map(_as_dict, _as_list(role.get("extension"))):
        if extension.get("url") != NEW_PATIENTS_URL:
            continue
        for part in map(_as_dict, _as_list(extension.get("extension"))):
            if part.get("url") != "acceptingPatients":
                continue
            if isinstance(part.get("valueBoolean"), bool):
                return bool(part["valueBoolean"])
            for system, code in _codings(part.get("valueCodeableConcept")):
                if system in _ACCEPTING_SYSTEMS or system is None:
                    if code in ("newpt", "nopt", "existptonly", "existptfam"):
                        return code == "newpt"
    return None


def _appointment_type(value: object) -> AppointmentType | None:
    """Our own coding first, then v2-0276; absent is ROUTINE, unknown is None (skip)."""
    if value is None:
        return AppointmentType.ROUTINE
    if not isinstance(value, dict):
        return None
    codings = _codings(value)
    for system, code in codings:
        if system in (APPOINTMENT_TYPE_SYSTEM, None) and code in AppointmentType.__members__:
            return AppointmentType[code]
    for system, code in codings:
        if system in (V2_APPOINTMENT_REASON_SYSTEM, None) and code in _FROM_V2:
            return _FROM_V2[code]
    if not codings and not _text(value.get("text")):
        return AppointmentType.ROUTINE  # an empty concept says no more than an absent one
    return None


def _speaks(
    wanted: frozenset[str], clinic: ClinicRecord, physician: PhysicianRecord | None
) -> bool:
    """True unless the languages we know of (physician's and clinic's) exclude ``wanted``."""
    known = set(clinic.languages) | set(physician.languages if physician else ())
    asked = {_primary(w) for w in wanted}
    return not known or bool(known & asked)


def _place_matches(resource: dict[str, Any], query: ClinicQuery) -> bool:
    """The checks of ``_clinic_matches`` that need no record: id, region, distance."""
    if query.local_ids is not None and resource["id"] not in query.local_ids:
        return False
    if query.region is None and (query.near is None or query.radius_km is None):
        return True
    position = _as_dict(resource.get("position"))
    point = valid_point(_number(position.get("latitude")), _number(position.get("longitude")))
    if query.near is not None and query.radius_km is not None:
        if point is None or distance_km(query.near, point) > query.radius_km:
            return False
    if query.region is not None:
        postal_code = _text(_as_dict(_first(resource.get("address"))).get("postalCode"))
        return infer_region(postal_code, point) is query.region
    return True


def _clinic_matches(clinic: ClinicRecord, query: ClinicQuery) -> bool:
    if query.local_ids is not None and clinic.local_id not in query.local_ids:
        return False
    if query.identifiers is not None and not set(query.identifiers) & set(clinic.identifiers):
        return False
    if query.region is not None and clinic.address.region is not query.region:
        return False
    if query.near is not None and query.radius_km is not None:
        if clinic.location is None or distance_km(query.near, clinic.location) > query.radius_km:
            return False
    if query.name_contains and _fold(query.name_contains) not in _fold(clinic.name):
        return False
    if query.postal_codes is not None:
        code = (clinic.address.postal_code or "").replace(" ", "")
        asked = [p.upper().replace(" ", "") for p in query.postal_codes]
        if not code or not any(code.startswith(p) for p in asked if p):
            return False
    return True


def _identifiers(value: object) -> tuple[Identifier, ...]:
    items = (_as_dict(i) for i in _as_list(value))
    pairs = ((_text(i.get("system")), _text(i.get("value"))) for i in items)
    return _unique(Identifier(s, v) for s, v in pairs if s and v)


def _codings(value: object) -> list[tuple[str | None, str]]:
    codings = (_as_dict(c) for c in _as_list(_as_dict(value).get("coding")))
    return [(_text(c.get("system")), code) for c in codings if (code := _text(c.get("code")))]


def _language(value: object) -> str | None:
    for system, code in _codings(value):
        if system in (LANGUAGE_SYSTEM, None) and _LANGUAGE_RE.match(code):
            return _primary(code)
    return None


def _primary(tag: str) -> str:
    """``"fr-CA"`` -> ``"fr"``: the gateway filters on the language, not the region."""
    return re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()


def _extensions(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in map(_as_dict, _as_list(resource.get("extension"))) if e]


def _ext_value(extensions: list[dict[str, Any]], url: str) -> str | None:
    for extension in extensions:
        if extension.get("url") == url:
            for key in ("valueUrl", "valueUri", "valueString"):
                if value := _text(extension.get(key)):
                    return value
    return None


def _web_url(value: str | None) -> str | None:
    """Only http(s) links reach patients: no ``javascript:`` or ``data:`` from upstream."""
    try:
        url = URL(value) if value else None
    except (ValueError, TypeError):
        return None
    return value if url is not None and url.scheme in ("http", "https") and url.host else None


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.removeprefix("tel:").strip()
    return value if 3 <= len(value) <= 40 and re.fullmatch(r"[\d\s()+.\-#*x]+", value) else None


def _ref_id(value: object, resource_type: str) -> str | None:
    """The id of a ``Reference`` to ``resource_type`` (relative or absolute), else None."""
    reference = _text(_as_dict(value).get("reference"))
    if reference is None:
        return None
    parts = reference.split("?", 1)[0].split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def _refs(value: object, resource_type: str) -> tuple[str, ...]:
    return _unique(_ref_id(item, resource_type) for item in _as_list(value))


def _bundle_total(bundle: dict[str, Any]) -> int | None:
    total = bundle.get("total")
    return total if type(total) is int and 0 <= total < 2**31 else None


def _next_link(bundle: dict[str, Any]) -> object:
    """The ``url`` of the ``next`` link, whatever its type (``_follow`` checks it), or None."""
    for link in map(_as_dict, bundle.get("link") or ()):
        if link.get("relation") == "next":
            return link.get("url", "")
    return None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and len(value) <= _MAX_TEXT else None


def _number(value: object) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: object) -> list[Any]:
    """A list as is, a lone object as a one-item list, anything else as empty."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict | str) else []


def _first(value: object) -> object:
    items = _as_list(value)
    return items[0] if items else None


def _unique(items: Iterable[_T | None]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(i for i in items if i is not None))


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, as FHIR string search compares."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _short(value: object) -> str:
    return repr(value)[:40] if isinstance(value, str) else type(value).__name__


# -- writing search parameters -------------------------------------------------


def _has_radius(query: SlotQuery) -> bool:
    return query.near is not None and query.radius_km is not None


def _instant(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=MONTREAL)
    return value.isoformat()


def _escape(value: str) -> str:
    """FHIR search escaping of ``\\``, ``,``, ``|`` and ``$`` inside one value."""
    return re.sub(r"([\\,|$])", r"\\\1", value)


def _or(values: tuple[str, ...] | list[str]) -> str:
    return ",".join(_escape(v) for v in values)


def _or_refs(resource_type: str, ids: tuple[str, ...] | list[str]) -> str:
    return ",".join(f"{resource_type}/{_escape(i)}" for i in ids)


def _identifier_tokens(identifiers: tuple[Identifier, ...]) -> str:
    return ",".join(f"{_escape(i.system)}|{_escape(i.value)}" for i in identifiers)


def _type_tokens(kinds: frozenset[AppointmentType]) -> str:
    """Both codings, so servers that know only v2-0276 filter too; we re-check locally."""
    tokens = [f"{APPOINTMENT_TYPE_SYSTEM}|{k.value}" for k in sorted(kinds, key=lambda k: k.value)]
    tokens += sorted(
        f"{V2_APPOINTMENT_REASON_SYSTEM}|{V2_APPOINTMENT_REASON[k]}"
        for k in kinds
        if k in V2_APPOINTMENT_REASON
    )
    return ",".join(tokens)


__all__ = [
    "ACCEPTING_PATIENTS_SYSTEM",
    "APPOINTMENT_TYPE_SYSTEM",
    "BOOKING_DEEP_LINK_URL",
    "BOOKING_PHONE_URL",
    "LANGUAGE_SYSTEM",
    "LOCATION_COMMUNICATION_URL",
    "MAX_PAGES",
    "NEW_PATIENTS_URL",
    "V2_APPOINTMENT_REASON",
    "V2_APPOINTMENT_REASON_SYSTEM",
    "FhirSource",
]
