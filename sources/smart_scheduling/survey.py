"""What ``sources check`` counts in a SMART Scheduling Links feed while the adapter reads it.

:class:`FeedSurvey` is the ``FeedWatch`` of the check's one load: it is handed every
decoded line of every file with whether the adapter kept it, and every file's answer,
and keeps counts and compact sets only, so that the check costs little more than the
load itself:

- per file (:class:`FileTally`): the resource types its lines hold, the lines the adapter
  skipped, the free slots it kept, what its answer said of itself;
- for the whole feed: slot statuses; why skipped resources were skipped (the fields at
  fault) and which fields the specification asks for are missing on kept ones; the ids
  of each type, to find duplicates (slot ids as 8-byte hashes in an array, about 16 MB
  for two million slots, sorted once at the end); what refers to what (Slot -> Schedule
  -> Location, PractitionerRole, Practitioner), by id, for references to resources the
  feed does not hold; timestamps without an offset; booking links that are not http(s);
  phones the gateway drops or that are not North American numbers.

Nothing a resource said is kept beyond its ids: no address, no phone, no link.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from operator import eq
from typing import TYPE_CHECKING, Any

from yarl import URL

from sources.fhir.resources import (
    BOOKING_DEEP_LINK_URL,
    BOOKING_PHONE_URL,
    location_place,
    ref_id,
    refs,
    slot_booking_phone,
    text_value,
)
from sources.places import PlaceKind
from sources.smart_scheduling.feed import SLOT_CAPACITY_URL, slot_capacity, slot_type
from sources.timeutil import MONTREAL, parse_upstream_datetime

if TYPE_CHECKING:
    from collections.abc import Callable

    from sources.smart_scheduling.http import Fetched

__all__ = ["READ_TYPES", "FeedSurvey", "FileTally", "Refs"]

READ_TYPES = ("Location", "Schedule", "Slot", "PractitionerRole", "Practitioner")
SLOT_STATUSES = frozenset(
    {"free", "busy", "busy-unavailable", "busy-tentative", "entered-in-error"}
)
_MAX_SAMPLES = 3
_CACHE = 65_536  # distinct timestamps and phones remembered (feeds repeat them)
_BUCKETS = 16
_MAX_TEXT = 512  # longer text is no value (``text_value``)
_OFFSET = re.compile(r"T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_PLAIN_LINK = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#]\S*)?", re.IGNORECASE)
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d+\s*$", re.IGNORECASE)


@dataclass(slots=True)
class FileTally:
    """One file as the survey saw it: its resources by ``resourceType``; ``skipped``: the
    resources the adapter did not keep (``skipped_slots``: Slots); ``free``: the free
    slots it kept; ``fetched``: what the file's answer said of itself."""

    url: str
    types: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    skipped_slots: int = 0
    free: int = 0
    fetched: Fetched | None = None


@dataclass(frozen=True, slots=True)
class Refs:
    """References to resources the feed does not hold: how many, the free slots they
    concern (when they concern slots) and a few of the missing ids."""

    what: str
    count: int
    slots: int = 0
    samples: tuple[str, ...] = ()


class FeedSurvey:
    """The ``FeedWatch`` of a check: see the module docstring."""

    def __init__(self) -> None:
        self.files: dict[str, FileTally] = {}
        self.statuses: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()  # resources the adapter skipped, by type
        self.skipped_fields: Counter[tuple[str, str]] = Counter()
        self.spec_missing: Counter[tuple[str, str]] = Counter()
        self.no_offset = 0
        self.links = self.bad_links = 0
        self.slot_phones = 0  # free slots with a booking-phone
        self.phones = self.dropped_phones = self.foreign_phones = 0  # slots' and Locations'
        self.capacities = 0
        self.schedules_with = Counter[str]()  # how Schedules name their physician
        # Slot ids hashed, in buckets by hash: sorted one bucket at a time at the end.
        self._slot_ids = [array("q") for _ in range(_BUCKETS)]
        self._ids: dict[str, set[str]] = {kind: set() for kind in READ_TYPES if kind != "Slot"}
        self.duplicates: Counter[str] = Counter()
        self.duplicate_samples: dict[str, list[str]] = {}
        self._slot_refs: Counter[str] = Counter()  # Schedule reference -> free slots
        self._schedules: dict[str, tuple[tuple[str, ...], ...]] = {}
        self._roles: dict[str, str | None] = {}
        self._offsets: dict[str, bool] = {}
        self._phone_verdicts: dict[str, tuple[int, int, int]] = {}

    # -- FeedWatch ---------------------------------------------------------------------

    def reading(self, url: str) -> Callable[[Any, bool], None]:
        tally = self.files[url] = FileTally(url)

        def line(resource: Any, kept: bool) -> None:
            if not isinstance(resource, dict):
                return  # JSON, but no resource: an unreadable line, as a line that is not JSON
            kind = resource.get("resourceType")
            kind = kind if isinstance(kind, str) else "(none)"
            tally.types[kind] += 1
            if kind == "Slot":
                self._slot(tally, resource, kept)
            else:
                self._other(tally, kind, resource, kept)

        return line

    def answered(self, url: str, fetched: Fetched) -> None:
        self.files[url].fetched = fetched

    # -- per line ----------------------------------------------------------------------

    def _slot(self, tally: FileTally, slot: dict[str, Any], kept: bool) -> None:
        # The hot path: two million lines in a province feed. Free slots that were kept
        # have their fields as the adapter needs them (strings, a schedule reference).
        slot_id = slot.get("id")
        if isinstance(slot_id, str):
            hashed = hash(slot_id.strip())
            self._slot_ids[hashed % _BUCKETS].append(hashed)
        if not kept:
            tally.skipped += 1
            tally.skipped_slots += 1
            self.skipped["Slot"] += 1
            for name in _slot_faults(slot):
                self.skipped_fields["Slot", name] += 1
            return
        status = slot["status"]
        if status != "free":
            self.statuses[status if status in SLOT_STATUSES else "(other)"] += 1
            return
        self.statuses["free"] += 1
        tally.free += 1
        self._slot_refs[slot["schedule"]["reference"]] += 1
        offsets = self._offsets
        for value in (slot["start"], slot["end"]):
            has = offsets.get(value)
            if has is None:
                has = self._offset(value)
            if not has:
                self.no_offset += 1
        extensions = slot.get("extension")
        for extension in extensions if isinstance(extensions, list) else ():
            url = extension.get("url") if isinstance(extension, dict) else None
            if url == BOOKING_DEEP_LINK_URL:
                self.links += 1
                value = extension.get("valueUrl")
                if not (
                    type(value) is str and len(value) <= _MAX_TEXT and _PLAIN_LINK.fullmatch(value)
                ):
                    self.bad_links += not _http_link(_value(extension))
            elif url == BOOKING_PHONE_URL:
                self.slot_phones += 1
                raw = extension.get("valueString")
                if type(raw) is str and len(extension) == 2:  # the common case, remembered
                    known = self._phone_verdicts.get(raw)
                    if known is None:
                        known = self._phone_verdicts[raw] = _phone_verdict(text_value(raw))
                    self._add_phone(known)
                else:
                    self._add_phone(_phone_verdict(_value(extension)))
            elif url == SLOT_CAPACITY_URL:
                self.capacities += 1

    def _other(self, tally: FileTally, kind: str, resource: dict[str, Any], kept: bool) -> None:
        rid = text_value(resource.get("id"))
        ids = self._ids.get(kind)
        if ids is not None and rid is not None:
            if rid in ids:
                self.duplicates[kind] += 1
                samples = self.duplicate_samples.setdefault(kind, [])
                if len(samples) < _MAX_SAMPLES:
                    samples.append(rid)
            ids.add(rid)
        if not kept:
            tally.skipped += 1
            self.skipped[kind] += 1
            for name in _faults(kind, resource, rid):
                self.skipped_fields[kind, name] += 1
            return
        if kind == "Location":
            self._location(resource)
        elif kind == "Schedule" and rid is not None:
            actors = resource.get("actor")
            named = (refs(actors, "PractitionerRole"), refs(actors, "Practitioner"))
            self._schedules[rid] = (refs(actors, "Location"), *named)
            self.schedules_with[
                "PractitionerRole" if named[0] else "Practitioner" if named[1] else "no physician"
            ] += 1
            if not resource.get("serviceType"):
                self.spec_missing["Schedule", "serviceType"] += 1
        elif kind == "PractitionerRole" and rid is not None:
            self._roles[rid] = ref_id(resource.get("practitioner"), "Practitioner")

    def _location(self, location: dict[str, Any]) -> None:
        telecom = location.get("telecom")
        phones = [
            t.get("value")
            for t in (telecom if isinstance(telecom, list) else ())
            if isinstance(t, dict) and t.get("system") == "phone"
        ]
        if not phones:
            self.spec_missing["Location", "telecom (a phone)"] += 1
        for phone in phones:
            self._add_phone(_phone_verdict(text_value(phone)))
        if not location.get("address"):
            self.spec_missing["Location", "address"] += 1

    def _offset(self, value: str) -> bool:
        """Whether a timestamp carries its offset, remembered (slot files repeat them)."""
        has = _OFFSET.search(value.strip()) is not None
        if len(self._offsets) < _CACHE:
            self._offsets[value] = has
        return has

    def _add_phone(self, verdict: tuple[int, int, int]) -> None:
        if len(self._phone_verdicts) > _CACHE:
            self._phone_verdicts.clear()
        phones, dropped, foreign = verdict
        self.phones += phones
        self.dropped_phones += dropped
        self.foreign_phones += foreign

    # -- once every file is read -------------------------------------------------------

    def slot_duplicates(self) -> int:
        """Slot lines whose id an earlier Slot line already had (a sort of the hashes)."""
        repeated = 0
        for bucket in self._slot_ids:
            ordered = sorted(bucket)
            repeated += sum(map(eq, ordered, islice(ordered, 1, None)))
        return repeated

    def dangling(self) -> list[Refs]:
        """References to resources no file of the feed holds, as :class:`Refs`."""
        found: list[Refs] = []
        per_schedule: Counter[str] = Counter()
        unknown = Counter[str]()
        for reference, slots in self._slot_refs.items():
            schedule_id = ref_id({"reference": reference}, "Schedule") or reference
            per_schedule[schedule_id] += slots
            if schedule_id not in self._ids["Schedule"]:
                unknown[schedule_id] += slots
        if unknown:
            found.append(
                Refs(
                    "Slot -> Schedule", sum(unknown.values()), sum(unknown.values()), _ids(unknown)
                )
            )
        for position, kind in enumerate(("Location", "PractitionerRole", "Practitioner")):
            missing = Counter[str]()
            slots = 0
            for schedule_id, actors in self._schedules.items():
                absent = [a for a in actors[position] if a not in self._ids[kind]]
                if absent:
                    missing.update(absent)
                    slots += per_schedule[schedule_id]
            if missing:
                found.append(Refs(f"Schedule -> {kind}", missing.total(), slots, _ids(missing)))
        roles = Counter(p for p in self._roles.values() if p and p not in self._ids["Practitioner"])
        if roles:
            found.append(Refs("PractitionerRole -> Practitioner", roles.total(), 0, _ids(roles)))
        return found


def _value(extension: dict[str, Any]) -> str | None:
    for key in ("valueUrl", "valueUri", "valueString"):
        if value := text_value(extension.get(key)):
            return value
    return None


def _http_link(value: str | None) -> bool:
    """An http(s) link with a host, as the gateway requires of a booking link."""
    if value is None:
        return False
    if _PLAIN_LINK.fullmatch(value):
        return True
    try:
        url = URL(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def _phone_verdict(value: str | None) -> tuple[int, int, int]:
    """(a phone, dropped by the gateway, not a 10-digit North American number)."""
    if value is None:
        return 0, 0, 0
    extension = {"url": BOOKING_PHONE_URL, "valueString": value}
    if slot_booking_phone({"extension": [extension]}) is None:
        return 1, 1, 0
    digits = re.sub(r"\D", "", _EXTENSION.sub("", value.removeprefix("tel:")))
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return 1, 0, int(not (len(digits) == 10 and digits[0] in "23456789"))


def _slot_faults(slot: dict[str, Any]) -> list[str]:
    """Why the adapter skipped a Slot: the fields at fault."""
    faults = []
    if text_value(slot.get("id")) is None:
        faults.append("id")
    if not isinstance(slot.get("status"), str):
        faults.append("status")
    if ref_id(slot.get("schedule"), "Schedule") is None:
        faults.append("schedule (a Schedule reference)")
    start, end = _instant(slot.get("start")), _instant(slot.get("end"))
    faults += [name for name, value in (("start", start), ("end", end)) if value is None]
    if start is not None and end is not None and end <= start:
        faults.append("end (not after start)")
    if slot_type(slot) is None:
        faults.append("appointmentType (no code the gateway knows)")
    if slot_capacity(slot) is None:
        faults.append("slot-capacity (not a count of 1 to 100000)")
    return faults or ["(other)"]


def _faults(kind: str, resource: dict[str, Any], rid: str | None) -> list[str]:
    """Why the adapter skipped a resource other than a Slot: the fields at fault."""
    if kind not in READ_TYPES:
        return ["resourceType (not one the gateway reads)"]
    if rid is None:
        return ["id"]
    if kind == "Schedule":
        return ["actor (a Location reference)"]
    if kind == "Location":
        if text_value(resource.get("name")) is None:
            return ["name"]
        if location_place(resource).kind is PlaceKind.UNKNOWN:
            return ["address (postalCode, state, country) or position: nothing places it"]
        return ["address.postalCode or position (to give it a Quebec region)"]
    return ["(other)"]


def _instant(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        # For plausibility (begun, a year ahead) only: an offset-less time, told apart
        # by its own check, is near enough read in Montreal.
        return parse_upstream_datetime(value, MONTREAL).timestamp()
    except (ValueError, OverflowError):
        return None


def _ids(counts: Counter[str]) -> tuple[str, ...]:
    return tuple(sorted(counts)[:_MAX_SAMPLES])
