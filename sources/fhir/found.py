"""What one FHIR call has read, the records built from it, and their re-check against the query.

Reading is lenient per entry: a malformed entry or resource is skipped and counted, and
:meth:`Found.log` reports the counts in one line. Servers may ignore search parameters
they do not support, so every record is checked here against the query before it is kept.
Locations are placed by ``sources.places``: those it does not serve (outside Quebec) are
no clinics, and they and their slots are counted in :attr:`Found.places`, not as malformed.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from sources.fhir.resources import (
    appointment_type,
    clinic_record,
    declared_time_zone,
    location_place,
    physician_record,
    postal_code,
    primary_language,
    ref_id,
    refs,
    slot_booking_phone,
    slot_booking_url,
    text_value,
)
from sources.geo import distance_km, infer_region
from sources.places import Place, PlaceKind, PlaceTally
from sources.problems import ProblemCode
from sources.records import ClinicRecord, PhysicianRecord, SlotRecord
from sources.time_zones import known_zone
from sources.timeutil import in_zone, read_upstream_datetime, zone_info
from sources.transport.failures import redact_for_log

if TYPE_CHECKING:
    import logging
    from zoneinfo import ZoneInfo

    from sources.problems import ProblemBook
    from sources.records import ClinicQuery, SlotQuery


class Found:
    """The resources one call has read, by type and id, and the records built from them.

    found = Found(source_id)
    for raw in found.add(bundle, "Slot"):  # index every entry, return the matches
        found.keep_slot(raw, query)
    found.log(logger)
    """

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self.skipped: Counter[str] = Counter()
        self.scope: set[str] | None = None  # Location ids a slot search was narrowed to
        self.resources: dict[str, dict[str, dict[str, Any]]] = {
            t: {} for t in ("Schedule", "Location", "PractitionerRole", "Practitioner")
        }
        self.slots: dict[str, SlotRecord] = {}
        self.places = PlaceTally()  # the Locations met, by place; slots met outside Quebec
        self._clinics: dict[str, ClinicRecord | None] = {}
        self._physicians: dict[str, PhysicianRecord | None] = {}
        self._roles: dict[str, list[dict[str, Any]]] = {}  # by practitioner id
        # Locations declaring a time zone this machine does not know: id -> the name.
        self.unknown_zones: dict[str, str] = {}
        # By Schedule id, its clinic's and physician's ids: the same for each of its slots
        # (forgotten when a Schedule or a role is read, which may change them).
        self._actors: dict[str, tuple[str | None, str | None]] = {}

    def add(self, bundle: dict[str, Any], match_type: str) -> list[dict[str, Any]]:
        """Index a Bundle's resources; return those of ``match_type`` not sent as includes."""
        matches: list[dict[str, Any]] = []
        for entry in bundle.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            rid = text_value(resource.get("id")) if isinstance(resource, dict) else None
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
        if kind in ("Schedule", "PractitionerRole") and self._actors:
            self._actors.clear()
        # Records built from earlier pages may lack what this one brings.
        if kind == "Location" and self._clinics.get(rid, True) is None:
            del self._clinics[rid]
        elif kind in ("Practitioner", "PractitionerRole"):
            role = kind == "PractitionerRole"
            pid = ref_id(resource.get("practitioner"), "Practitioner") if role else rid
            if role and pid:
                self._roles.setdefault(pid, []).append(resource)
            self._physicians.pop(pid or "", None)

    def keep_slot(self, raw: dict[str, Any], query: SlotQuery) -> None:
        """Turn one Slot into a record if it is free, well-formed and matches ``query``."""
        if raw.get("status") != "free":
            self.skipped["non-free Slot"] += 1
            return
        try:
            times = self.times(raw)
        except (ValueError, OverflowError):
            self.skipped["Slot"] += 1
            return
        kind = appointment_type(raw.get("appointmentType"))
        schedule_id = ref_id(raw.get("schedule"), "Schedule") or ""
        schedule = self.resources["Schedule"].get(schedule_id)
        if times is None:  # naive times, and no clinic to read them in: no slot
            actors = schedule.get("actor") if schedule is not None else None
            if set(refs(actors, "Location")) & self.places.kinds[PlaceKind.OUTSIDE_QUEBEC]:
                self.places.outside_slots += 1  # not served (its window untold: no zone)
            else:
                self.skipped["Slot"] += 1
            return
        start, end = times
        if end <= start or kind is None or schedule is None:
            self.skipped["Slot"] += 1
            return
        if not query.starts_after <= start < query.starts_before:
            return
        if query.appointment_types is not None and kind not in query.appointment_types:
            return
        clinic_id, physician_id = self._actors_of(schedule_id, schedule)
        clinic = self.clinic(clinic_id) if clinic_id else None
        if clinic is None:
            if clinic_id in self.places.kinds[PlaceKind.OUTSIDE_QUEBEC]:
                self.places.outside_slots += 1  # not served, and not malformed
            else:
                self.skipped["Slot"] += 1
            return
        if self.scope is not None and clinic.local_id not in self.scope:
            return
        if query.physician_local_ids is not None and physician_id not in query.physician_local_ids:
            return
        physician = self.physician(physician_id) if physician_id else None
        if query.languages and not _speaks(query.languages, clinic, physician):
            return
        self.slots[raw["id"]] = SlotRecord(
            source_id=self.source_id,
            local_id=raw["id"],
            start=start,
            end=end,
            appointment_type=kind,
            clinic_local_id=clinic.local_id,
            physician_local_id=physician_id,
            booking_url=slot_booking_url(raw),
            booking_phone=slot_booking_phone(raw),
        )

    def _actors_of(
        self, schedule_id: str, schedule: dict[str, Any]
    ) -> tuple[str | None, str | None]:
        """The ids of a Schedule's clinic (its first Location) and physician (its
        Practitioner, else its last role's practitioner), once per Schedule."""
        known = self._actors.get(schedule_id)
        if known is not None:
            return known
        actors = schedule.get("actor")
        clinic_id = next(iter(refs(actors, "Location")), None)
        physician_id = next(iter(refs(actors, "Practitioner")), None)
        for rid in refs(actors, "PractitionerRole"):
            role = self.resources["PractitionerRole"].get(rid, {})
            physician_id = ref_id(role.get("practitioner"), "Practitioner") or physician_id
        self._actors[schedule_id] = (clinic_id, physician_id)
        return clinic_id, physician_id

    def clinic(self, location_id: str) -> ClinicRecord | None:
        """The clinic of a Location read so far, built once; None if absent or malformed."""
        if location_id not in self._clinics:
            resource = self.resources["Location"].get(location_id)
            record = None
            if resource is not None:
                place, record, declared = _location_reading(self.source_id, resource)
                self.places.note(location_id, place)
                outside = place.kind is PlaceKind.OUTSIDE_QUEBEC
                self.skipped["Location"] += int(record is None and not outside)
                if record is not None and declared is not None and not known_zone(declared):
                    self.unknown_zones[location_id] = declared
            self._clinics[location_id] = record
        return self._clinics[location_id]

    def times(self, raw: dict[str, Any]) -> tuple[datetime, datetime] | None:
        """A Slot's start and end as instants, a time without an offset read in its
        clinic's zone (:meth:`zone_of`); None when that clinic is not known. Raises
        ``ValueError``/``OverflowError`` when they are not ISO-8601."""
        start, end = _instant(raw.get("start")), _instant(raw.get("end"))
        if start.tzinfo is None or end.tzinfo is None:
            zone = self.zone_of(raw)
            if zone is None:
                return None
            start, end = in_zone(start, zone), in_zone(end, zone)
        return start, end

    def zone_of(self, raw: dict[str, Any]) -> ZoneInfo | None:
        """The time zone a Slot's naive times are in: its Schedule's Location's, else
        the Location of its Schedule's PractitionerRole; None when neither is known."""
        schedule = self.resources["Schedule"].get(ref_id(raw.get("schedule"), "Schedule") or "")
        if schedule is None:
            return None
        actors = schedule.get("actor")
        locations = list(refs(actors, "Location"))
        for rid in refs(actors, "PractitionerRole"):
            role = self.resources["PractitionerRole"].get(rid, {})
            locations += refs(role.get("location"), "Location")
        for location_id in locations:
            clinic = self.clinic(location_id)
            if clinic is not None:
                return zone_info(clinic.time_zone)
        return None

    def physician(self, practitioner_id: str) -> PhysicianRecord | None:
        """The physician from the Practitioner and roles read so far, built once."""
        if practitioner_id not in self._physicians:
            self._physicians[practitioner_id] = _physician_reading(
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

    def log(self, logger: logging.Logger, book: ProblemBook | None = None) -> None:
        """One warning for the malformed entries skipped, one info line for busy slots;
        the Locations declaring a zone that is no IANA name noted in ``book``."""
        malformed = {k: n for k, n in self.skipped.items() if n and k != "non-free Slot"}
        if malformed:
            detail = ", ".join(f"{n} {kind}" for kind, n in sorted(malformed.items()))
            logger.warning("skipped malformed entries: %s", detail)
        if self.skipped["non-free Slot"]:
            logger.info("dropped %d non-free slots", self.skipped["non-free Slot"])
        if book is None:
            return
        for location_id, name in sorted(self.unknown_zones.items()):
            news = book.note(
                ProblemCode.UNKNOWN_TIME_ZONE,
                "Locations declare a time zone (the timezone extension) that is no IANA "
                "name; each one's zone is inferred from its place instead",
                sample=f"Location/{location_id}",
                diagnostics=name,
            )
            if news:
                logger.warning(
                    "Location/%s declares the time zone %r, which is no IANA name: its "
                    "zone is inferred from its place",
                    location_id,
                    redact_for_log(name),
                )


# Readings of the same resources, kept across calls: a server sends the same Locations,
# Practitioners and roles with search after search, and building their records costs far
# more than writing them out again as the key. Keyed on the resources' JSON as read (two
# equal resources make equal records), bounded: emptied when full.
_MAX_READINGS = 4096
_LOCATIONS: dict[tuple[str, bytes], tuple[Place, ClinicRecord | None, str | None]] = {}
_PHYSICIANS: dict[tuple[str, str, bytes], PhysicianRecord | None] = {}


def _location_reading(
    source_id: str, resource: dict[str, Any]
) -> tuple[Place, ClinicRecord | None, str | None]:
    """A Location's place, its clinic record and its declared zone, once per content."""
    key = _content_key(resource)
    known = _LOCATIONS.get((source_id, key)) if key is not None else None
    if known is None:
        place = location_place(resource)
        known = (place, clinic_record(source_id, resource, place), declared_time_zone(resource))
        if key is not None:
            _remember(_LOCATIONS, (source_id, bytes(memoryview(key))), known)
    return known


def _physician_reading(
    source_id: str,
    practitioner_id: str,
    practitioner: dict[str, Any] | None,
    roles: list[dict[str, Any]],
) -> PhysicianRecord | None:
    """``physician_record``, once per content of the Practitioner and its roles."""
    key = _content_key([practitioner, roles])
    if key is None:
        return physician_record(source_id, practitioner_id, practitioner, roles)
    if (source_id, practitioner_id, key) in _PHYSICIANS:
        return _PHYSICIANS[source_id, practitioner_id, key]
    record = physician_record(source_id, practitioner_id, practitioner, roles)
    _remember(_PHYSICIANS, (source_id, practitioner_id, bytes(memoryview(key))), record)
    return record


def _instant(value: object) -> datetime:
    """``read_upstream_datetime``; a text once (slots of a server share their times)."""
    if isinstance(value, str):
        return _read_text_time(value)
    return read_upstream_datetime(value)  # type: ignore[arg-type]  # raises ValueError


@lru_cache(maxsize=8192)
def _read_text_time(text: str) -> datetime:
    return read_upstream_datetime(text)


def _content_key(value: object) -> bytes | None:
    """The JSON of what was read (None: a value JSON cannot hold, never from a body).
    Kept as a key, it is copied first: ``orjson.dumps`` hands back bytes holding a 4 KiB
    buffer whatever their length (8 MB a table of 4,096 otherwise)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return None


def _remember(table: dict[Any, Any], key: object, value: object) -> None:
    if len(table) >= _MAX_READINGS:
        table.clear()
    table[key] = value


def place_matches(resource: dict[str, Any], query: ClinicQuery, place: Place | None = None) -> bool:
    """The checks of :func:`clinic_matches` that need no record: id, region, distance, and
    whether the Location is served at all. ``place``: its ``location_place``, if known."""
    if query.local_ids is not None and resource["id"] not in query.local_ids:
        return False
    place = place or location_place(resource)
    if not place.served:
        return False
    if query.region is None and (query.near is None or query.radius_km is None):
        return True
    point = place.position
    if query.near is not None and query.radius_km is not None:
        if point is None or distance_km(query.near, point) > query.radius_km:
            return False
    if query.region is not None:
        return infer_region(postal_code(resource), point) is query.region
    return True


def clinic_matches(clinic: ClinicRecord, query: ClinicQuery) -> bool:
    if query.local_ids is not None and clinic.local_id not in query.local_ids:
        return False
    if query.identifiers is not None and not set(query.identifiers) & set(clinic.identifiers):
        return False
    if query.region is not None and clinic.address.region is not query.region:
        return False
    if query.near is not None and query.radius_km is not None:
        if clinic.location is None or distance_km(query.near, clinic.location) > query.radius_km:
            return False
    if query.name_contains and fold(query.name_contains) not in fold(clinic.name):
        return False
    if query.postal_codes is not None:
        code = (clinic.address.postal_code or "").replace(" ", "")
        asked = [p.upper().replace(" ", "") for p in query.postal_codes]
        if not code or not any(code.startswith(p) for p in asked if p):
            return False
    return True


def fold(text: str) -> str:
    """Case- and accent-insensitive form, as FHIR string search compares."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _speaks(
    wanted: frozenset[str], clinic: ClinicRecord, physician: PhysicianRecord | None
) -> bool:
    """True unless the languages we know of (physician's and clinic's) exclude ``wanted``."""
    known = set(clinic.languages) | set(physician.languages if physician else ())
    asked = {primary_language(w) for w in wanted}
    return not known or bool(known & asked)


__all__ = ["Found", "clinic_matches", "fold", "place_matches"]
