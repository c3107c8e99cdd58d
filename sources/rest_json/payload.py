"""Reading the REST/JSON API's bodies: the paging envelope, its items made records.

The envelope is strict: a body that is not ``{"resultats": [...], ...}`` is a
``SourceBadResponse``. Items are read leniently (``"oui"`` is true, ``"45.5"`` a latitude,
a bad booking link is dropped); an item that cannot become a record is skipped by
``read_item`` and counted by reason, so that the adapter logs one line per call (counts
only, never payloads). Clinics are placed by ``sources.places`` (from ``code_postal``,
``ville``, ``lat``/``lng``; no province): one outside Quebec is not wanted, and every
place is noted in the reader's ``places``.

    reader = ItemReader("rdvq", permit_system=PERMITS, licence_system=LICENCES)
    page = read_page("rdvq", "disponibilites", body)
    skipped: Counter[str] = Counter()
    slots = [read_item(reader.slot, item, skipped) for item in page.items]

The API's times are its clinics' local wall times: a ``SlotItem``'s are placed in its
clinic's zone (``SlotItem.placed``) once the clinic is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias, TypeVar

from sources.geo import infer_region, normalize_postal_code, valid_point
from sources.places import PlaceKind, RecentPlaces, locate
from sources.records import (
    Address,
    AppointmentType,
    ClinicRecord,
    Identifier,
    PhysicianRecord,
    SlotRecord,
)
from sources.rest_json.wall_times import instant, read_time
from sources.time_zones import time_zone_of
from sources.transport.failures import shape_error

if TYPE_CHECKING:
    from collections import Counter
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sources.places import Place

TYPES_BY_CODE: Final[Mapping[str, AppointmentType]] = {
    "sans_rendez_vous": AppointmentType.WALK_IN,
    "urgent": AppointmentType.URGENT,
    "prioritaire": AppointmentType.PRIORITY,
    "regulier": AppointmentType.ROUTINE,
    "suivi": AppointmentType.FOLLOW_UP,
    "bilan": AppointmentType.CHECKUP,
    "suivi_grossesse": AppointmentType.PREGNANCY_FOLLOW_UP,
    "suivi_enfant": AppointmentType.CHILD_FOLLOW_UP,
    "nouveau_patient": AppointmentType.NEW_PATIENT,
}

_URL_SCHEMES = ("https://", "http://")
_API_ID = re.compile(r"^\d{1,18}$")
_TRUE = frozenset({"true", "oui", "1", "vrai", "yes"})
_FALSE = frozenset({"false", "non", "0", "faux", "no"})
# What a malformed item can raise while being read; it is then skipped.
_ITEM_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)

_T = TypeVar("_T")
Reader: TypeAlias = Callable[[object], _T | None]
"""Reads one item into a record (``None``: not wanted); raises when it is malformed."""


class MalformedItem(Exception):
    """One item cannot be read; ``reason``: why, for the log line; a clinic's id, place."""

    def __init__(self, reason: str, local_id: str | None = None, place: Place | None = None):
        super().__init__(reason)
        self.reason, self.local_id, self.place = reason, local_id, place


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of a paged listing; paging fields the upstream got wrong are ``None``."""

    items: list[object]
    page: int | None
    pages: int | None
    total: int | None


def read_page(source_id: str, resource: str, body: object) -> Page:
    """The paging envelope of ``body``; ``SourceBadResponse`` when it is not one."""
    if not isinstance(body, dict):
        raise shape_error(source_id, f"{resource}: expected an object, got {_kind(body)}")
    items = body.get("resultats")
    if not isinstance(items, list):
        raise shape_error(source_id, f"{resource}: 'resultats' is {_kind(items)}, not a list")
    return Page(
        items=items,
        page=_count(body.get("page")),
        pages=_count(body.get("pages")),
        total=_count(body.get("total")),
    )


def read_item(read: Reader[_T], item: object, skipped: Counter[str]) -> _T | None:
    """``read(item)``, or ``None`` with the reason counted in ``skipped`` when the
    item is malformed."""
    try:
        return read(item)
    except MalformedItem as exc:
        skipped[exc.reason] += 1
    except _ITEM_ERRORS as exc:
        skipped[f"unreadable ({type(exc).__name__})"] += 1
    return None


@dataclass(slots=True)
class SlotItem:
    """A free slot as read, its clinic not yet known: a time without an offset is that
    clinic's local wall time, read in the clinic's zone by :meth:`placed`. Not frozen:
    a value of one call, never shared, and made for every item read (a frozen one costs
    a ``object.__setattr__`` a field)."""

    source_id: str
    local_id: str
    start: datetime
    end: datetime
    appointment_type: AppointmentType
    clinic_local_id: str
    physician_local_id: str | None
    booking_url: str | None
    booking_phone: str | None

    def placed(self, zone: ZoneInfo) -> tuple[datetime, datetime, float] | None:
        """Its start and end, naive times read in ``zone``, and its start's POSIX time;
        None when it then does not end after it starts."""
        start, start_at = instant(self.start, zone)
        end, end_at = instant(self.end, zone)
        if end_at <= start_at and self.end.tzinfo is None:
            # A naive end in the repeated autumn hour may be its second occurrence.
            later = end.replace(fold=1)
            if later.timestamp() > start_at:
                end, end_at = later, later.timestamp()
        if end_at <= start_at:
            return None
        return start, end, start_at

    def record(self, start: datetime, end: datetime, physician_local_id: str | None) -> SlotRecord:
        """The slot as the gateway serves it, placed (:meth:`placed`)."""
        return SlotRecord(
            source_id=self.source_id,
            local_id=self.local_id,
            start=start,
            end=end,
            appointment_type=self.appointment_type,
            clinic_local_id=self.clinic_local_id,
            physician_local_id=physician_local_id,
            booking_url=self.booking_url,
            booking_phone=self.booking_phone,
        )


@dataclass(frozen=True, slots=True)
class ItemReader:
    """Reads one source's items into records; the systems name the identifiers
    ``no_permis`` and ``no_licence`` are values of; ``places``: the clinics' places."""

    source_id: str
    permit_system: str
    licence_system: str
    places: RecentPlaces = field(default_factory=RecentPlaces)

    def slot(self, item: object) -> SlotItem | None:
        """A free slot, ``None`` for a busy one."""
        data = _mapping(item)
        status = data.get("statut")
        if not isinstance(status, str) or status.strip().lower() != "libre":
            return None
        local_id = _opaque_id(data.get("id"))
        clinic_id = api_id(data.get("clinique_id"))
        if local_id is None or clinic_id is None:
            raise MalformedItem("missing id")
        code = data.get("type_rdv")
        kind = TYPES_BY_CODE.get(code.strip().lower()) if isinstance(code, str) else None
        if kind is None:
            raise MalformedItem("unknown appointment type")
        start, end = _time(data.get("debut")), _time(data.get("fin"))
        if start.tzinfo is not None and end.tzinfo is not None and end <= start:
            raise MalformedItem("end not after start")  # naive ones: once placed
        url = _str(data.get("lien_reservation"))
        return SlotItem(
            source_id=self.source_id,
            local_id=local_id,
            start=start,
            end=end,
            appointment_type=kind,
            clinic_local_id=clinic_id,
            physician_local_id=api_id(data.get("medecin_id")),
            booking_url=url if url is not None and url.startswith(_URL_SCHEMES) else None,
            booking_phone=_str(data.get("telephone_reservation")),
        )

    def clinic(self, item: object) -> ClinicRecord | None:
        return self.placed_clinic(item)[2]

    def placed_clinic(self, item: object) -> tuple[str, Place, ClinicRecord | None]:
        """A clinic (None outside Quebec, malformed without region), id, place noted."""
        data = _mapping(item)
        local_id = api_id(data.get("id"))
        name = _str(data.get("nom"))
        if local_id is None or name is None:
            raise MalformedItem("missing id or name", local_id)
        address = _mapping_or_empty(data.get("adresse"))
        code = _str(address.get("code_postal"))
        place = locate(
            code,
            None,
            None,
            _str(address.get("ville")),
            valid_point(_number(data.get("lat")), _number(data.get("lng"))),
        )
        self.places.current.note(local_id, place)
        if place.kind is PlaceKind.OUTSIDE_QUEBEC:
            return local_id, place, None
        postal_code = normalize_postal_code(code)
        location = place.position
        region = infer_region(postal_code, location)
        if region is None:
            raise MalformedItem("clinic of unknown region", local_id, place)
        permit = _opaque_id(data.get("no_permis"))
        city = _str(address.get("ville"))
        record = ClinicRecord(
            source_id=self.source_id,
            local_id=local_id,
            name=name,
            address=Address(
                city=city or "",
                region=region,
                line=_str(address.get("rue")),
                postal_code=postal_code,
            ),
            location=location,
            phone=_str(data.get("telephone")),
            languages=_languages(data.get("langues")),
            identifiers=(Identifier(self.permit_system, permit),) if permit else (),
            time_zone=time_zone_of(position=location, postal_code=postal_code, city=city),
        )
        return local_id, place, record

    def physician(self, item: object) -> PhysicianRecord:
        data = _mapping(item)
        local_id = api_id(data.get("id"))
        parts = [_str(data.get(k)) for k in ("titre", "prenom", "nom")]
        if local_id is None or not (parts[1] or parts[2]):
            raise MalformedItem("missing id or name", local_id)
        licence = _opaque_id(data.get("no_licence"))
        clinics = data.get("cliniques")
        clinic_ids = (
            tuple(dict.fromkeys(i for i in map(api_id, clinics) if i is not None))
            if isinstance(clinics, list)
            else ()
        )
        return PhysicianRecord(
            source_id=self.source_id,
            local_id=local_id,
            display_name=" ".join(p for p in parts if p),
            languages=_languages(data.get("langues")),
            identifiers=(Identifier(self.licence_system, licence),) if licence else (),
            clinic_local_ids=clinic_ids,
            accepting_new_patients=_boolean(data.get("accepte_nouveaux_patients")),
        )


def listed_time_zone(item: object) -> str:
    """The zone of a clinic as the API lists it, read or not (a clinic without a name):
    what ``ItemReader.clinic`` gives it, from its address and position."""
    data = _mapping_or_empty(item)
    address = _mapping_or_empty(data.get("adresse"))
    code = _str(address.get("code_postal"))
    position = valid_point(_number(data.get("lat")), _number(data.get("lng")))
    place = locate(code, None, None, _str(address.get("ville")), position)
    return time_zone_of(
        position=place.position,
        postal_code=normalize_postal_code(code),
        city=_str(address.get("ville")),
    )


def api_id(value: object) -> str | None:
    """An integer id of this API (a JSON number or a string of digits), as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, str) and _API_ID.match(value.strip()):
        return str(int(value.strip()))
    return None


# -- reading values -----------------------------------------------------------


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise MalformedItem("not an object")
    return value


def _mapping_or_empty(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None


def _opaque_id(value: object) -> str | None:
    """A slot id or an identifier value: any number or non-blank string, as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _str(value)


def _number(value: object) -> object:
    """Numbers sent as strings are read as numbers; anything else is left to ``valid_point``."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _count(value: object) -> int | None:
    """A non-negative integer paging field, tolerating ``"3"`` and ``3.0``; one past
    what a count can be is taken as that (2**31 - 1), never parsed digit by digit."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(min(value, _MAX_COUNT)) if value >= 0 else -1
    elif isinstance(value, str) and value.strip().isdigit():
        digits = value.strip()
        value = _MAX_COUNT if len(digits) > 10 else int(digits)
    return min(value, _MAX_COUNT) if isinstance(value, int) and value >= 0 else None


_MAX_COUNT = 2**31 - 1


def _boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def _languages(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(
        dict.fromkeys(v.strip().lower() for v in value if isinstance(v, str) and v.strip())
    )


def _time(value: object) -> datetime:
    """A time as written: aware, or the clinic's naive local wall time."""
    text = _str(value)
    if text is None:
        raise MalformedItem("missing time")
    try:
        return read_time(text)
    except ValueError:
        raise MalformedItem("bad time") from None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


__all__ = [
    "TYPES_BY_CODE",
    "ItemReader",
    "MalformedItem",
    "Page",
    "Reader",
    "SlotItem",
    "api_id",
    "listed_time_zone",
    "read_item",
    "read_page",
]
