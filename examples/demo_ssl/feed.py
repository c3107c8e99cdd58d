"""The demo world written as a SMART Scheduling Links bulk publication: NDJSON files.

:func:`write_feed` streams the clinics a publisher lists into a directory, one
resource a line, never holding more than one clinic's slots:

- ``locations.ndjson`` (``Location``), ``practitioners.ndjson`` (``Practitioner``),
  ``practitioner-roles.ndjson`` (``PractitionerRole``, one per physician and clinic) and
  ``schedules.ndjson`` (``Schedule``, one per clinic and physician, ``actor`` =
  [Location, PractitionerRole] as in the HL7 successor draft);
- ``slots-qc-RR.ndjson``, one ``Slot`` file per administrative region ``RR`` (``"01"`` to
  ``"17"``, as ``sources.records.Region`` orders them), free and busy slots alike, free ones
  with the ``booking-deep-link`` and ``booking-phone`` extensions;
- ``$bulk-publish``, the manifest (``examples.demo_ssl.manifest``), whose ``Slot`` outputs
  carry ``extension.state`` ``["QC"]``.

With ``deviations=True`` the feed is what real publishers send: ``state`` as a string,
extra top-level manifest fields, ids with ``_`` or spaces, five timestamp spellings
(bare ``-05`` offsets, no seconds, UTC with milliseconds), identical slots of a third of
the clinics pooled in one ``Slot`` with the ``slot-capacity`` extension under a
Location-only ``Schedule``, and a few malformed lines per file, counted in
:attr:`FeedFile.malformed` by kind (:data:`MALFORMED_KINDS`).

Writing the files (whole, dated by publication, counted) is ``examples.demo_ssl.files``.
What is left stays one module past 400 lines because :class:`FeedWriter` is one state per
publication: the same id function names a resource and every reference to it, and the Slot
line template, the pooled slots and the deviations all read it; split, they would pass it
around instead.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from examples.demo_fhir.resources import render_location, render_practitioner, render_role
from examples.demo_ssl.files import NdjsonFile, replace_file
from examples.demo_ssl.manifest import (
    DATA_PATH,
    MANIFEST_NAME,
    Feed,
    FeedFile,
    SlotCounts,
    format_transaction_time,
)
from sources.fhir.resources import (
    APPOINTMENT_TYPE_SYSTEM,
    BOOKING_DEEP_LINK_URL,
    BOOKING_PHONE_URL,
    V2_APPOINTMENT_REASON,
    V2_APPOINTMENT_REASON_SYSTEM,
)
from sources.records import AppointmentType, Region

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from examples.world import World, WorldClinic, WorldPhysician, WorldSlot

SLOT_CAPACITY_URL = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity"
BOOKING_BASE = "https://ssl-demo.passerelle.example/book?slot="
SERVICE_TYPE = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/service-type",
                "code": "124",
                "display": "General Practice",
            }
        ]
    }
]
REGION_CODES: dict[Region, str] = {r: f"{i + 1:02d}" for i, r in enumerate(Region)}
MALFORMED_KINDS = (
    "bad_json",
    "unknown_location",
    "unknown_schedule",
    "missing_start",
    "end_before_start",
)
_FIXED_FILES = (
    ("Location", "locations.ndjson"),
    ("Practitioner", "practitioners.ndjson"),
    ("PractitionerRole", "practitioner-roles.ndjson"),
    ("Schedule", "schedules.ndjson"),
)
_TIME_STYLES = 5
_LINK_EXTENSION = f'{{"url":"{BOOKING_DEEP_LINK_URL}","valueUrl":"{BOOKING_BASE}'
_PHONE_EXTENSION = f'{{"url":"{BOOKING_PHONE_URL}","valueString":"'


def slot_file_name(region: Region) -> str:
    return f"slots-qc-{REGION_CODES[region]}.ndjson"


def delta_file_name(sequence: int) -> str:
    return f"slots-delta-{sequence:04d}.ndjson"


@dataclass
class Changes:
    """What happened since the world was generated: slots booked, slots added."""

    booked: set[str] = field(default_factory=set)
    added: defaultdict[str, list[WorldSlot]] = field(default_factory=lambda: defaultdict(list))


def write_feed(
    world: World,
    directory: Path,
    *,
    clinics: Iterable[WorldClinic] | None = None,
    base_url: str = "http://127.0.0.1:8103",
    deviations: bool = False,
    transaction_time: datetime | None = None,
) -> Feed:
    """Write the NDJSON files and the ``$bulk-publish`` manifest of ``clinics``.

    ``clinics`` defaults to ``world.clinics_for("ssl")``. Lines are written as they are
    rendered: a province of 1.5 million slots never sits in memory.
    """
    writer = FeedWriter(world, clinics, deviations=deviations)
    feed = writer.write(directory, transaction_time or datetime.now(UTC))
    write_manifest(feed, base_url)
    return feed


def write_manifest(feed: Feed, base_url: str) -> None:
    replace_file(feed.directory / MANIFEST_NAME, orjson.dumps(feed.manifest(base_url)), feed)


class FeedWriter:
    """Renders and writes the feed of ``clinics``, with ``changes`` applied."""

    def __init__(
        self,
        world: World,
        clinics: Iterable[WorldClinic] | None = None,
        *,
        deviations: bool = False,
        changes: Changes | None = None,
    ) -> None:
        self.world = world
        listed = world.clinics_for("ssl") if clinics is None else list(clinics)
        self.clinics = sorted(listed, key=lambda c: (REGION_CODES[c.region], c.id))
        self.deviations = deviations
        self.changes = changes or Changes()
        self.by_region: dict[Region, list[WorldClinic]] = defaultdict(list)
        for clinic in self.clinics:
            self.by_region[clinic.region].append(clinic)
        self._grouped: dict[str, set[str]] = {}
        self._times: dict[tuple[int | str, ...], str] = {}

    # -- ids: the same function names a resource and every reference to it ----------

    def location_id(self, clinic_id: str) -> str:
        if self.deviations:
            odd = zlib.crc32(clinic_id.encode()) % 8
            if odd < 2:
                return f"qc_{clinic_id}"
            if odd == 2:
                return f"QC {clinic_id}"
        return clinic_id

    def schedule_id(self, clinic_id: str, physician_id: str) -> str:
        return self._odd(f"{clinic_id}-{physician_id}")

    def pool_id(self, clinic_id: str) -> str:
        return self._odd(f"{clinic_id}-pool")

    def slot_id(self, world_slot_id: str) -> str:
        return self._odd(world_slot_id)

    def _odd(self, resource_id: str) -> str:
        if self.deviations:
            odd = zlib.crc32(resource_id.encode()) % 8
            if odd < 2:
                return resource_id.replace("-", "_")
            if odd == 2:
                return resource_id.replace("-", " ")
        return resource_id

    def is_pooled(self, clinic_id: str) -> bool:
        """In deviation mode a third of the clinics pool their identical slots."""
        return self.deviations and zlib.crc32(f"pool|{clinic_id}".encode()) % 3 == 0

    # -- writing ------------------------------------------------------------------

    def write(self, directory: Path, transaction_time: datetime) -> Feed:
        directory.mkdir(parents=True, exist_ok=True)
        fixed = {rtype: NdjsonFile(directory, name, rtype) for rtype, name in _FIXED_FILES}
        written_physicians: set[str] = set()
        region_files: list[FeedFile] = []
        try:
            for region, clinics in self.by_region.items():
                with NdjsonFile(directory, slot_file_name(region), "Slot") as slots_out:
                    for clinic in clinics:
                        self._write_clinic(clinic, fixed, written_physicians)
                        self._write_slots(clinic, slots_out)
                    self._write_bad_slots(clinics, slots_out)
                region_files.append(slots_out.finish(transaction_time))
            self._write_bad_locations_and_schedules(fixed)
        except BaseException:
            for out in fixed.values():
                out.abandon()
            raise
        files = [fixed[rtype].finish(transaction_time) for rtype, _ in _FIXED_FILES]
        return Feed(directory, transaction_time, (*files, *region_files), self.deviations)

    def write_region(self, directory: Path, region: Region, transaction_time: datetime) -> FeedFile:
        """Rewrite one region's slot file from the current state."""
        clinics = self.by_region[region]
        with NdjsonFile(directory, slot_file_name(region), "Slot") as out:
            for clinic in clinics:
                self._write_slots(clinic, out)
            self._write_bad_slots(clinics, out)
        return out.finish(transaction_time)

    def write_slots(
        self,
        directory: Path,
        name: str,
        slots: Iterable[tuple[WorldClinic, WorldSlot]],
        transaction_time: datetime,
    ) -> FeedFile:
        """A file of the given slots as they stand now (a delta file)."""
        with NdjsonFile(directory, name, "Slot") as out:
            for clinic, slot in slots:
                out.slot(self.slot_line(clinic, slot), slot.free, 1)
        return out.finish(transaction_time)

    def _write_clinic(
        self, clinic: WorldClinic, fixed: dict[str, NdjsonFile], written_physicians: set[str]
    ) -> None:
        location = render_location(clinic)
        location["id"] = self.location_id(clinic.id)
        fixed["Location"].resource(location)
        for physician in self.world.physicians_by_clinic[clinic.id]:
            if physician.id not in written_physicians:
                written_physicians.add(physician.id)
                fixed["Practitioner"].resource(render_practitioner(physician))
            role = render_role(physician, clinic)
            role["location"][0]["reference"] = f"Location/{location['id']}"
            fixed["PractitionerRole"].resource(role)
            fixed["Schedule"].resource(self._schedule(clinic, physician))
        if self.grouped_ids(clinic.id):
            fixed["Schedule"].resource(
                {
                    "resourceType": "Schedule",
                    "id": self.pool_id(clinic.id),
                    "active": True,
                    "serviceType": SERVICE_TYPE,
                    "actor": [{"reference": f"Location/{location['id']}", "display": clinic.name}],
                }
            )

    def _schedule(self, clinic: WorldClinic, physician: WorldPhysician) -> dict[str, Any]:
        return {
            "resourceType": "Schedule",
            "id": self.schedule_id(clinic.id, physician.id),
            "active": True,
            "serviceType": SERVICE_TYPE,
            "actor": [
                {"reference": f"Location/{self.location_id(clinic.id)}", "display": clinic.name},
                {
                    "reference": f"PractitionerRole/{physician.id}-{clinic.id}",
                    "display": physician.display_name,
                },
            ],
        }

    def _write_slots(self, clinic: WorldClinic, out: NdjsonFile) -> None:
        for line, free, seats in self.slot_lines(clinic):
            out.slot(line, free, seats)

    # -- slots ----------------------------------------------------------------------

    def slot_lines(self, clinic: WorldClinic) -> Iterator[tuple[bytes, bool, int]]:
        """The clinic's Slot lines as they stand (world, bookings, additions, pools), each
        with its status (free or not) and the seats it stands for."""
        booked = self.changes.booked
        grouped = self.grouped_ids(clinic.id)
        line = self.slot_line
        for slot in self.world.iter_slots(clinic.id):
            if slot.id in grouped:
                continue
            if slot.free and slot.id in booked:
                slot = replace(slot, free=False)
            yield line(clinic, slot), slot.free, 1
        for slot in self.changes.added.get(clinic.id, ()):
            free = slot.id not in booked
            yield line(clinic, replace(slot, free=free)), free, 1
        if grouped:
            for group in self._groups(clinic.id):
                seats = len(group)
                yield (
                    line(
                        clinic,
                        group[0],
                        capacity=seats,
                        resource_id=self.slot_id(f"{group[0].id}-x{seats}"),
                        schedule_id=self.pool_id(clinic.id),
                    ),
                    group[0].free,
                    seats,
                )

    def grouped_ids(self, clinic_id: str) -> set[str]:
        """World slots of the clinic that a ``slot-capacity`` resource stands for."""
        if not self.is_pooled(clinic_id):
            return set()
        ids = self._grouped.get(clinic_id)
        if ids is None:
            ids = {s.id for group in self._groups(clinic_id) for s in group}
            self._grouped[clinic_id] = ids
        return ids

    def _groups(self, clinic_id: str) -> list[list[WorldSlot]]:
        # Grouped by what the world first said, so that groups never change: bookings and
        # additions only touch slots outside them.
        groups: dict[tuple[Any, ...], list[WorldSlot]] = defaultdict(list)
        for slot in self.world.iter_slots(clinic_id):
            groups[(slot.start, slot.end, slot.appointment_type, slot.free)].append(slot)
        return [g for g in groups.values() if len(g) > 1]

    def slot_line(
        self,
        clinic: WorldClinic,
        slot: WorldSlot,
        *,
        capacity: int = 1,
        resource_id: str | None = None,
        schedule_id: str | None = None,
    ) -> bytes:
        """One Slot as an NDJSON line; a free one has its booking link and phone.

        Written from a template, not through a dict and a JSON encoder: this is the line a
        province writes 1.5 million times. Ids, phones and codes are ASCII letters, digits,
        ``-``, ``_``, ``+`` and spaces, so nothing needs escaping (the tests parse every line).
        """
        if self.deviations:
            style = zlib.crc32(slot.id.encode()) % _TIME_STYLES
            rid = resource_id or self.slot_id(slot.id)
            schedule = schedule_id or self.schedule_id(clinic.id, slot.physician_id)
        else:
            style = 0
            rid = resource_id or slot.id
            schedule = schedule_id or f"{clinic.id}-{slot.physician_id}"
        extensions = []
        if slot.free:
            seats = f"&seats={capacity}" if capacity > 1 else ""
            extensions.append(f'{_LINK_EXTENSION}{slot.id}{seats}"}}')
            extensions.append(f'{_PHONE_EXTENSION}{clinic.phone}"}}')
        if capacity > 1:
            extensions.append(f'{{"url":"{SLOT_CAPACITY_URL}","valueInteger":{capacity}}}')
        extension = f',"extension":[{",".join(extensions)}]' if extensions else ""
        status = "free" if slot.free else "busy"
        start, end = self._time(slot.start, style), self._time(slot.end, style)
        return (
            f'{{"resourceType":"Slot","id":"{rid}","schedule":{{"reference":"Schedule/{schedule}"}},'
            f'"status":"{status}","start":"{start}","end":"{end}",'
            f'"appointmentType":{_APPOINTMENT_TYPES[slot.appointment_type]}{extension}}}\n'
        ).encode()

    def _time(self, value: datetime, style: int) -> str:
        # A fortnight has few distinct slot times, and isoformat() through zoneinfo is slow.
        # The key is the wall time and its zone: hashing an aware datetime asks zoneinfo too.
        key = (
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.fold,
            str(value.tzinfo),
            style,
        )
        text = self._times.get(key)
        if text is None:
            text = self._times[key] = _stamp(value, style)
        return text

    # -- what real publishers get wrong ----------------------------------------------

    def _write_bad_slots(self, clinics: list[WorldClinic], out: NdjsonFile) -> None:
        if not self.deviations:
            return
        clinic = next((c for c in clinics if self.world.physicians_by_clinic[c.id]), None)
        if clinic is None:
            return
        physician = self.world.physicians_by_clinic[clinic.id][0]
        day = self.world.first_day
        good = {
            "resourceType": "Slot",
            "schedule": {"reference": f"Schedule/{self.schedule_id(clinic.id, physician.id)}"},
            "status": "free",
            "start": f"{day.isoformat()}T10:00:00-05:00",
            "end": f"{day.isoformat()}T10:20:00-05:00",
            "extension": [{"url": BOOKING_DEEP_LINK_URL, "valueUrl": BOOKING_BASE + "broken"}],
        }
        code = REGION_CODES[clinic.region]
        unknown = {"reference": "Schedule/no-such-schedule"}
        out.malformed("unknown_schedule", {**good, "id": f"bad-{code}-1", "schedule": unknown})
        no_start = {k: v for k, v in good.items() if k != "start"}
        out.malformed("missing_start", {**no_start, "id": f"bad-{code}-2"})
        backwards = f"{day.isoformat()}T09:40:00-05:00"
        out.malformed("end_before_start", {**good, "id": f"bad-{code}-3", "end": backwards})
        truncated = f'{{"resourceType":"Slot","id":"bad-{code}-4","schedule":{{"refer'
        out.malformed_text("bad_json", truncated.encode())

    def _write_bad_locations_and_schedules(self, fixed: dict[str, NdjsonFile]) -> None:
        if not self.deviations:
            return
        fixed["Location"].malformed_text("bad_json", b'{"resourceType":"Location","id":"x" "name"}')
        fixed["Schedule"].malformed(
            "unknown_location",
            {
                "resourceType": "Schedule",
                "id": "orphan-schedule",
                "serviceType": SERVICE_TYPE,
                "actor": [{"reference": "Location/no-such-location"}],
            },
        )
        fixed["Schedule"].malformed_text("bad_json", b"<html>502 Bad Gateway</html>")


def _stamp(value: datetime, style: int) -> str:
    """Style 0 is ISO 8601 as FHIR writes it; 1 to 4 are spellings seen in the wild."""
    if style == 0:
        return value.isoformat()
    if style == 4:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    offset = value.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    bare = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}"
    if style == 1:
        return value.strftime("%Y-%m-%dT%H:%M:%S") + bare  # 2026-11-20T08:00:00-05
    if style == 2:
        return value.strftime("%Y-%m-%dT%H:%M") + bare + ":00"  # 2026-11-20T08:00-05:00
    return value.strftime("%Y-%m-%dT%H:%M") + bare  # 2026-11-20T08:00-05


def _appointment_type(kind: AppointmentType) -> dict[str, Any]:
    coding = [{"system": APPOINTMENT_TYPE_SYSTEM, "code": kind.value}]
    if kind in V2_APPOINTMENT_REASON:
        coding.insert(
            0, {"system": V2_APPOINTMENT_REASON_SYSTEM, "code": V2_APPOINTMENT_REASON[kind]}
        )
    return {"coding": coding}


_APPOINTMENT_TYPES = {
    kind: orjson.dumps(_appointment_type(kind)).decode() for kind in AppointmentType
}

__all__ = [
    "DATA_PATH",
    "MALFORMED_KINDS",
    "MANIFEST_NAME",
    "REGION_CODES",
    "SLOT_CAPACITY_URL",
    "Changes",
    "Feed",
    "FeedFile",
    "FeedWriter",
    "SlotCounts",
    "delta_file_name",
    "format_transaction_time",
    "slot_file_name",
    "write_feed",
    "write_manifest",
]
