"""Reading one SMART Scheduling Links NDJSON file into compact, not yet resolved, data.

:class:`FeedReader` takes the lines of one file as they arrive and keeps:

- Locations as ``ClinicRecord``s (a Location without a name or a Quebec region is skipped;
  one outside Quebec is not served, its id kept to count it and its slots);
- Practitioners and PractitionerRoles as their JSON (few, and needed whole to build
  ``PhysicianRecord``s once every file is read: kept as compact bytes, not objects);
- Schedules as their actors' ids;
- free Slots in :class:`SlotColumns`, one typed array per field (about 27 bytes a slot
  with its booking link, front coded), since slot files are the bulk of a feed. A time without an
  offset is its clinic's local time, and the clinic is known only once every file is
  read: it is kept as a wall time (``SlotColumns.naive`` says which) and placed in the
  clinic's zone when the load resolves the slot.

A ``slot-capacity`` group is one slot with its capacity. In a ``_since`` delta, bulk-data
``deleted`` Bundles (DELETE entries) name removed resources (outside one they are skipped).
Busy slots are counted and dropped here; they are never stored. References are resolved
later (``sources.smart_scheduling.load``), when every file of a load is read, because
files come in any order. Lines are dispatched on their own ``resourceType``, whatever
the manifest said the file holds. A line that cannot be read is skipped and counted.

It stays one module past 400 lines because :class:`FeedReader` and :class:`SlotColumns`
are one format: the reader writes the columns' rows (wall times marked) as it reads.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from sources.fhir.resources import (
    BOOKING_DEEP_LINK_URL,
    BOOKING_PHONE_URL,
    appointment_type,
    clinic_record,
    declared_time_zone,
    location_place,
    ref_id,
    refs,
    slot_booking_phone,
    slot_booking_url,
    text_value,
)
from sources.places import PlaceKind
from sources.records import AppointmentType
from sources.slot_index.texts import FrontCodedTexts
from sources.smart_scheduling.reports import NO_PLACES, Places
from sources.time_zones import known_zone
from sources.timeutil import read_upstream_datetime, wall_epoch

if TYPE_CHECKING:
    from collections.abc import Callable

    from sources.records import ClinicRecord

SLOT_CAPACITY_URL = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity"
STRING_NUMBERS = "numbers written as strings"
UNKNOWN_TIME_ZONES = "time zones that are no IANA name (each zone inferred from its place)"
NAIVE_START, NAIVE_END = 1, 2  # SlotColumns.naive's bits
MAX_CAPACITY = 100_000

KINDS: tuple[AppointmentType, ...] = tuple(AppointmentType)
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
SlotPlace = tuple[str, int, int]  # (schedule id, start, end as read): tells apart slots of an id
_TIME_CACHE = 65_536  # distinct timestamps remembered per file (slot files repeat them)
# An http(s) link with a plain host: what slot_booking_url accepts, checked without yarl.
_PLAIN_LINK = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#]\S*)?", re.IGNORECASE)


class SlotColumns:
    """The free slots of one file, one array per field; row ``i`` is one slot.

    ``ids`` holds ``hash(slot id)``: 8 bytes instead of a string, enough to find a slot
    again within this process (a 64-bit collision among a million ids is ~3e-8 likely).
    ``naive`` maps a row whose start (``NAIVE_START``) or end (``NAIVE_END``) had no
    offset to those bits; that time is held as its wall time (``timeutil.wall_epoch``).
    Booking links are front coded (``FrontCodedTexts``: each link as what tells it from
    the one before, about 6 bytes), phones are numbers into ``phone_table``, capacities
    other than 1 are kept by row; times are 32-bit while they fit: about 27 bytes a slot.
    """

    __slots__ = (
        "_phone_codes",
        "_schedule_codes",
        "ends",
        "ids",
        "kinds",
        "naive",
        "phone_ids",
        "phone_table",
        "schedule_ids",
        "schedules",
        "seats",
        "starts",
        "urls",
    )

    def __init__(self) -> None:
        self.ids = array("q")
        self.schedules = array("H")  # index into schedule_ids (wider when needed)
        self.schedule_ids: list[str] = []
        self.starts = array("i")  # epoch seconds (64-bit once one does not fit)
        self.ends = array("i")
        self.kinds = array("B")  # index into KINDS
        self.seats: dict[int, int] = {}  # row -> capacity, where it is not 1
        self.urls = FrontCodedTexts()
        self.phone_ids = array("H")  # index into phone_table (wider when needed)
        self.phone_table: list[str | None] = [None]
        self.naive: dict[int, int] = {}  # row -> NAIVE_START | NAIVE_END: wall times
        self._schedule_codes: dict[str, int] = {}
        self._phone_codes: dict[str | None, int] = {None: 0}

    def __len__(self) -> int:
        return len(self.ids)

    def append(
        self,
        slot_id: str,
        schedule_id: str,
        start: int,
        end: int,
        kind: AppointmentType,
        url: str | None,
        phone: str | None,
        capacity: int,
        naive: int = 0,
    ) -> None:
        row = len(self.ids)
        if naive:
            self.naive[row] = naive
        code = self._schedule_codes.get(schedule_id)
        if code is None:
            code = self._schedule_codes[schedule_id] = len(self.schedule_ids)
            self.schedule_ids.append(schedule_id)
        phone_code = self._phone_codes.get(phone)
        if phone_code is None:
            phone_code = self._phone_codes[phone] = len(self.phone_table)
            self.phone_table.append(phone)
        if capacity != 1:
            self.seats[row] = capacity
        self.ids.append(hash(slot_id))
        self.kinds.append(_KIND_CODES[kind])
        self.urls.append(url)
        try:
            self.schedules.append(code)
            self.starts.append(start)
            self.ends.append(end)
            self.phone_ids.append(phone_code)
        except OverflowError:
            self._widen(row, (code, start, end, phone_code))

    def _widen(self, row: int, values: tuple[int, int, int, int]) -> None:
        """Append the row's values that are missing, widening a column they overflow."""
        for name, value in zip(("schedules", "starts", "ends", "phone_ids"), values, strict=True):
            column = getattr(self, name)
            if len(column) > row:
                continue  # appended before the overflow
            try:
                column.append(value)
            except OverflowError:
                column = array(_WIDER[column.typecode], column)
                column.append(value)
                setattr(self, name, column)

    def url(self, row: int) -> str | None:
        return self.urls[row]

    def phone(self, row: int) -> str | None:
        return self.phone_table[self.phone_ids[row]]

    def capacity(self, row: int) -> int:
        return self.seats.get(row, 1)

    def finish(self) -> None:
        """Reading is over: drop the lookups and the arrays' spare room."""
        self._schedule_codes = {}
        self._phone_codes = {}
        self.urls.freeze()
        for name in ("ids", "schedules", "starts", "ends", "kinds", "phone_ids"):
            column = getattr(self, name)
            setattr(self, name, array(column.typecode, column))


_WIDER = {"H": "I", "I": "q", "i": "q"}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A Schedule's actors, by id."""

    location_ids: tuple[str, ...]
    role_ids: tuple[str, ...]
    practitioner_ids: tuple[str, ...]


@dataclass(slots=True, eq=False)
class FeedFile:
    """What one file held, with its counts. ``unresolved`` is set when the load resolves it.

    Compared by identity: a load reuses the very object of a file it did not fetch again.
    """

    name: str
    locations: dict[str, ClinicRecord] = field(default_factory=dict)
    # Practitioners and PractitionerRoles as compact JSON (``orjson.loads`` when the load
    # resolves them): a tenth of what they take as Python objects.
    practitioners: dict[str, bytes] = field(default_factory=dict)
    roles: dict[str, bytes] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    slots: SlotColumns = field(default_factory=SlotColumns)
    # Slots a delta says are no longer free: hash(id), and where (None: a DELETE entry).
    gone_slots: list[tuple[int, SlotPlace | None]] = field(default_factory=list)
    gone_other: int = 0  # non-slot resources a delta deletes
    lines: int = 0
    busy: int = 0
    malformed: int = 0
    unresolved: int = 0
    unresolved_slots: int = 0  # of ``unresolved``, the free slots (outside Quebec not counted)
    # Deviations from the specification read all the same, with how often they occurred.
    tolerated: dict[str, int] = field(default_factory=dict)
    outside: set[str] = field(default_factory=set)  # Locations outside Quebec, not served
    outside_slots: int = 0  # their free slots, set when the load resolves the file
    no_position: int = 0  # Quebec Locations served without a position
    approximate: int = 0  # Quebec Locations served at their municipality's centre

    @property
    def skipped(self) -> int:
        return self.malformed + self.unresolved

    def tolerate(self, deviation: str, count: int = 1) -> None:
        self.tolerated[deviation] = self.tolerated.get(deviation, 0) + count

    @property
    def kept(self) -> int:
        """Records read and resolved: what the load uses of this file."""
        read = (
            len(self.locations)
            + len(self.practitioners)
            + len(self.roles)
            + len(self.schedules)
            + len(self.slots)
        )
        return read - self.unresolved

    @property
    def places(self) -> Places:
        return Places(len(self.outside), self.outside_slots, self.no_position, self.approximate)

    @property
    def has_non_slots(self) -> bool:
        return bool(
            self.locations
            or self.outside
            or self.practitioners
            or self.roles
            or self.schedules
            or self.gone_other
        )


class FeedReader:
    """Feed it a file's lines with :meth:`line`; :meth:`finish` returns the ``FeedFile``.

    With ``delta=True`` the ids of non-free and deleted slots are kept too, for a
    ``_since`` delta to remove them. ``watch`` sees each decoded line, and if it was kept.
    """

    def __init__(self, source_id: str, name: str, *, delta: bool = False) -> None:
        self.source_id = source_id
        self.file = FeedFile(name)
        self.watch: Callable[[Any, bool], None] | None = None
        self._delta = delta
        self._times: dict[str, tuple[int, bool]] = {}  # text -> (epoch, naive)
        self._phones: dict[str, str] = {}

    def line(self, data: bytes) -> None:
        self.file.lines += 1
        try:
            resource = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.file.malformed += 1
            return
        self.file.malformed += not (kept := isinstance(resource, dict) and self._read(resource))
        if self.watch is not None:
            self.watch(resource, kept)

    def oversized(self, count: int) -> None:
        self.file.lines += count
        self.file.malformed += count

    def finish(self) -> FeedFile:
        self.file.slots.finish()
        self._times = {}
        return self.file

    def _read(self, resource: dict[str, Any]) -> bool:
        kind = resource.get("resourceType")
        if kind == "Slot":
            return self._slot(resource)
        if kind == "Bundle":
            return self._deleted(resource)
        rid = text_value(resource.get("id"))
        if rid is None:
            return False
        resource["id"] = rid
        if kind == "Location":
            place = location_place(resource)
            if place.kind is PlaceKind.OUTSIDE_QUEBEC:
                self.file.outside.add(rid)
                return True
            clinic = clinic_record(self.source_id, resource, place)
            if clinic is None:
                return False
            declared = declared_time_zone(resource)
            if declared is not None and not known_zone(declared):
                self.file.tolerate(UNKNOWN_TIME_ZONES)
            self.file.locations[rid] = clinic
            self.file.no_position += place.kind is PlaceKind.NO_POSITION
            self.file.approximate += place.kind is PlaceKind.APPROXIMATE
        elif kind == "Schedule":
            actors = resource.get("actor")
            schedule = Schedule(
                refs(actors, "Location"),
                refs(actors, "PractitionerRole"),
                refs(actors, "Practitioner"),
            )
            if not schedule.location_ids:
                return False
            self.file.schedules[rid] = schedule
        elif kind == "Practitioner":
            self.file.practitioners[rid] = _kept_json(resource)
        elif kind == "PractitionerRole":
            self.file.roles[rid] = _kept_json(resource)
        else:
            return False
        return True

    def _slot(self, slot: dict[str, Any]) -> bool:
        status = slot.get("status")
        slot_id = text_value(slot.get("id"))
        if not isinstance(status, str) or slot_id is None:
            return False
        if status != "free":
            self.file.busy += 1
            if self._delta:
                self.file.gone_slots.append((hash(slot_id), self._place(slot)))
            return True
        schedule_id = ref_id(slot.get("schedule"), "Schedule")
        start, naive_start = self._epoch(slot.get("start"))
        end, naive_end = self._epoch(slot.get("end"))
        kind = slot_type(slot)
        if schedule_id is None or start is None or end is None or kind is None:
            return False
        # A wall time and an instant cannot be compared before the clinic's zone is
        # known: the load checks those once it is.
        if naive_start == naive_end and end <= start:
            return False
        naive = (NAIVE_START if naive_start else 0) | (NAIVE_END if naive_end else 0)
        url = phone = None
        capacity: int | None = 1
        extensions = slot.get("extension")
        if extensions:
            present = {e.get("url") for e in extensions if isinstance(e, dict)}
            if BOOKING_DEEP_LINK_URL in present:
                url = _booking_url(slot, extensions)
            if BOOKING_PHONE_URL in present:
                phone = slot_booking_phone(slot)
                phone = None if phone is None else self._phones.setdefault(phone, phone)
            if SLOT_CAPACITY_URL in present:
                capacity, as_string = _capacity(slot)
                if as_string:
                    self.file.tolerate(STRING_NUMBERS)
        if capacity is None:
            return False
        self.file.slots.append(slot_id, schedule_id, start, end, kind, url, phone, capacity, naive)
        return True

    def _deleted(self, bundle: dict[str, Any]) -> bool:
        """A bulk-data ``deleted`` Bundle: DELETE entries naming what a delta removed."""
        if not self._delta:
            return False
        entries = bundle.get("entry")
        if not isinstance(entries, list):
            return False
        for entry in entries:
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict) or request.get("method") != "DELETE":
                continue
            url = text_value(request.get("url"))
            parts = url.split("?", 1)[0].split("/") if url else []
            if len(parts) < 2 or not parts[-1]:
                continue
            if parts[-2] == "Slot":
                self.file.gone_slots.append((hash(parts[-1]), None))
            else:
                self.file.gone_other += 1
        return True

    def _place(self, slot: dict[str, Any]) -> SlotPlace | None:
        schedule_id = ref_id(slot.get("schedule"), "Schedule")
        (start, _), (end, _) = self._epoch(slot.get("start")), self._epoch(slot.get("end"))
        if schedule_id is None or start is None or end is None:
            return None
        return schedule_id, start, end

    def _epoch(self, value: object) -> tuple[int, bool] | tuple[None, bool]:
        """POSIX time, or for a time without offset its wall time; and whether naive."""
        if not isinstance(value, str):
            return None, False
        known = self._times.get(value)
        if known is None:
            try:
                moment = read_upstream_datetime(value)
                naive = moment.tzinfo is None
                known = (wall_epoch(moment) if naive else int(moment.timestamp()), naive)
            except (ValueError, OverflowError):
                return None, False
            if len(self._times) < _TIME_CACHE:
                self._times[value] = known
        return known


def _kept_json(resource: dict[str, Any]) -> bytes:
    """``resource`` as compact JSON to keep: copied, since ``orjson.dumps`` hands back
    bytes holding a buffer of at least 4 KiB whatever their length."""
    return bytes(memoryview(orjson.dumps(resource)))


def _booking_url(slot: dict[str, Any], extensions: list[Any]) -> str | None:
    """``slot_booking_url``, without parsing the common plain http(s) link (the hot path)."""
    for extension in extensions:
        if isinstance(extension, dict) and extension.get("url") == BOOKING_DEEP_LINK_URL:
            for key in ("valueUrl", "valueUri", "valueString"):
                if value := text_value(extension.get(key)):
                    return value if _PLAIN_LINK.fullmatch(value) else slot_booking_url(slot)
    return None


def slot_type(slot: dict[str, Any]) -> AppointmentType | None:
    """``appointmentType`` decides when present (None, to skip, if coded only in unknown
    systems, as the FHIR adapter does); else a ``serviceType`` coded in a system we know
    (SMART feeds put the service, e.g. COVID-19 immunization, there); else ROUTINE."""
    if slot.get("appointmentType") is not None:
        return appointment_type(slot["appointmentType"])
    service_types = slot.get("serviceType")
    if isinstance(service_types, dict):
        service_types = [service_types]
    for concept in service_types if isinstance(service_types, list) else ():
        kind = appointment_type(concept)
        if kind is not None and isinstance(concept, dict) and concept.get("coding"):
            return kind
    return AppointmentType.ROUTINE


def slot_capacity(slot: dict[str, Any]) -> int | None:
    """The ``slot-capacity`` extension's count (1 without it); None when it is not a count.
    A count written as a string of digits (``"1"``, as a large publisher writes it) is read."""
    return _capacity(slot)[0]


def _capacity(slot: dict[str, Any]) -> tuple[int | None, bool]:
    """The capacity, and whether it was written as a string."""
    extensions = slot.get("extension")
    for extension in extensions if isinstance(extensions, list) else ():
        if isinstance(extension, dict) and extension.get("url") == SLOT_CAPACITY_URL:
            value, as_string = extension.get("valueInteger"), False
            if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
                value, as_string = int(value.strip()), True
            if isinstance(value, bool) or not isinstance(value, int):
                return None, False
            return (value if 1 <= value <= MAX_CAPACITY else None), as_string
    return 1, False


__all__ = [
    "KINDS",
    "NAIVE_END",
    "NAIVE_START",
    "NO_PLACES",
    "SLOT_CAPACITY_URL",
    "STRING_NUMBERS",
    "UNKNOWN_TIME_ZONES",
    "FeedFile",
    "FeedReader",
    "Places",
    "Schedule",
    "SlotColumns",
    "SlotPlace",
    "slot_capacity",
    "slot_type",
]
