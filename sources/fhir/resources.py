"""Reading FHIR R4 JSON resources into the gateway's records, and the codes both ends share.

How the gateway's model sits on FHIR R4 (``examples/demo_fhir/`` serves exactly this):

- Clinic = ``Location``: ``identifier``, ``name``, a ``telecom`` phone, ``address``,
  ``position``; its languages as the core extension ``location-communication``
  (one per language, a CodeableConcept in ``urn:ietf:bcp:47``), its zone as ``timezone``.
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

Every reader here accepts any JSON value and never raises: a value of the wrong shape
reads as absent, and a record that cannot be built is None, for the caller to skip.

The module stays whole (past 400 lines): it is the one reading of FHIR into records, so
that the adapter's directories and its records never read a resource two ways.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from yarl import URL

from sources.geo import infer_region, normalize_postal_code, valid_point
from sources.places import Place, locate
from sources.quebec import in_quebec
from sources.records import Address, AppointmentType, ClinicRecord, Identifier, PhysicianRecord
from sources.time_zones import TIMEZONE_EXTENSION_URL, time_zone_of

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from sources.records import GeoPoint

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

_FROM_V2 = {code: kind for kind, code in V2_APPOINTMENT_REASON.items()}
_ACCEPTING_SYSTEMS = (
    ACCEPTING_PATIENTS_SYSTEM,
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/AcceptingPatientsCS",
)
_LANGUAGE_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")
# An http(s) URL of a plain host name (letters, digits, dots, dashes; no port, no
# user) followed by nothing or a path of printable ASCII: yarl reads every one of
# them with that scheme and host, so the check needs no parse. Others are parsed.
_PLAIN_WEB_LINK = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?:/[!-~]*)?\Z")
_MAX_TEXT = 512
_T = TypeVar("_T")


# -- records ---------------------------------------------------------------------


def clinic_record(
    source_id: str, resource: dict[str, Any], place: Place | None = None
) -> ClinicRecord | None:
    """A clinic from a ``Location``; None without a name or a region we can place it in,
    and None where ``sources.places`` does not serve it (outside Quebec: never given a
    Quebec region). ``place``: :func:`location_place`, when the caller has it already."""
    name = text_value(resource.get("name"))
    address = _address(resource)
    place = place or location_place(resource)
    point = place.position
    code = postal_code(resource)
    region = infer_region(code, point)
    if name is None or region is None or not place.served:
        return None
    lines = [line for item in _as_list(address.get("line")) if (line := text_value(item))]
    phones = (
        text_value(t.get("value"))
        for t in map(_as_dict, _as_list(resource.get("telecom")))
        if t.get("system") == "phone"
    )
    city = text_value(address.get("city"))
    return ClinicRecord(
        source_id=source_id,
        local_id=resource["id"],
        name=name,
        address=Address(
            city=city or "",
            region=region,
            line=", ".join(lines) or None,
            postal_code=code,
        ),
        location=point,
        phone=_phone(next((p for p in phones if p), None)),
        languages=location_languages(resource),
        identifiers=identifiers(resource.get("identifier")),
        time_zone=time_zone_of(
            declared=declared_time_zone(resource), position=point, postal_code=code, city=city
        ),
    )


def physician_record(
    source_id: str,
    practitioner_id: str,
    practitioner: dict[str, Any] | None,
    roles: list[dict[str, Any]],
) -> PhysicianRecord | None:
    """From the Practitioner and its roles; from a role's ``display`` when only roles came."""
    practitioner = practitioner or {}
    display = _human_name(practitioner.get("name")) or next(
        (d for r in roles if (d := text_value(_as_dict(r.get("practitioner")).get("display")))),
        None,
    )
    if display is None:
        return None
    accepting = [a for r in roles if (a := _accepting(r)) is not None]
    return PhysicianRecord(
        source_id=source_id,
        local_id=practitioner_id,
        display_name=display,
        languages=practitioner_languages(practitioner),
        identifiers=identifiers(practitioner.get("identifier")),
        clinic_local_ids=_unique(cid for r in roles for cid in refs(r.get("location"), "Location")),
        accepting_new_patients=any(accepting) if accepting else None,
    )


def location_languages(resource: dict[str, Any]) -> tuple[str, ...]:
    """A Location's languages (``location-communication``), as primary tags."""
    spoken = _extensions(resource, LOCATION_COMMUNICATION_URL)
    return _unique(_language(e.get("valueCodeableConcept")) for e in spoken)


def practitioner_languages(practitioner: dict[str, Any]) -> tuple[str, ...]:
    """A Practitioner's ``communication`` (R5 wraps each in ``language``), as primary tags."""
    spoken = _as_list(practitioner.get("communication"))
    return _unique(_language(_as_dict(c).get("language", c)) for c in spoken)


def _human_name(value: object) -> str | None:
    names = [n for n in map(_as_dict, _as_list(value)) if n]
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    if text := text_value(name.get("text")):
        return text
    parts = [
        *(p for item in _as_list(name.get("prefix")) if (p := text_value(item))),
        *(g for item in _as_list(name.get("given")) if (g := text_value(item))),
    ]
    if family := text_value(name.get("family")):
        parts.append(family)
    return " ".join(parts) or None


def _accepting(role: dict[str, Any]) -> bool | None:
    for extension in _extensions(role, NEW_PATIENTS_URL):
        for part in _extensions(extension, "acceptingPatients"):
            if isinstance(part.get("valueBoolean"), bool):
                return bool(part["valueBoolean"])
            for system, code in _codings(part.get("valueCodeableConcept")):
                if system in _ACCEPTING_SYSTEMS or system is None:
                    if code in ("newpt", "nopt", "existptonly", "existptfam"):
                        return code == "newpt"
    return None


# -- parts of a Slot ---------------------------------------------------------------


def appointment_type(value: object) -> AppointmentType | None:
    """Our own coding first, then v2-0276.

    Absent is ROUTINE (v2 table 0276: "default if not valued"); coded only in systems we
    do not know is None, for the slot to be skipped rather than guessed.
    """
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
    if not codings and not text_value(value.get("text")):
        return AppointmentType.ROUTINE  # an empty concept says no more than an absent one
    return None


def slot_booking_url(slot: dict[str, Any]) -> str | None:
    """The ``booking-deep-link``, only if it is an http(s) link (no ``javascript:``)."""
    value = _extension_value(slot, BOOKING_DEEP_LINK_URL)
    if value is not None and _PLAIN_WEB_LINK.match(value):
        return value  # what yarl reads as http(s) with a host, without parsing it
    try:
        url = URL(value) if value else None
    except (ValueError, TypeError):
        return None
    return value if url is not None and url.scheme in ("http", "https") and url.host else None


def slot_booking_phone(slot: dict[str, Any]) -> str | None:
    return _phone(_extension_value(slot, BOOKING_PHONE_URL))


# -- parts of a Location -------------------------------------------------------------


def location_point(resource: dict[str, Any]) -> GeoPoint | None:
    position = _as_dict(resource.get("position"))
    return valid_point(_number(position.get("latitude")), _number(position.get("longitude")))


def location_in_quebec(resource: dict[str, Any]) -> bool | None:
    """Whether a Location is in Quebec, by the rule of ``sources.quebec`` (its first
    address's postal code, country and state, else its position); None when nothing says."""
    address = _address(resource)
    return in_quebec(
        text_value(address.get("postalCode")),
        text_value(address.get("state")),
        text_value(address.get("country")),
        location_point(resource),
    )


def declared_time_zone(resource: dict[str, Any]) -> str | None:
    """The core ``timezone`` extension's ``valueCode`` as written (``known_zone`` of
    ``sources.time_zones`` tells whether it is an IANA name; if not, it is ignored)."""
    for extension in _extensions(resource, TIMEZONE_EXTENSION_URL):
        if value := text_value(extension.get("valueCode")):
            return value
    return None


def location_place(resource: dict[str, Any]) -> Place:
    """Where a Location is served (``sources.places``): from its first address's postal
    code, state, country and city, and its position."""
    address = _address(resource)
    return locate(
        text_value(address.get("postalCode")),
        text_value(address.get("state")),
        text_value(address.get("country")),
        text_value(address.get("city")),
        location_point(resource),
    )


def postal_code(resource: dict[str, Any]) -> str | None:
    """The first address's postal code, normalized; None when it is not a Canadian one."""
    return normalize_postal_code(text_value(_address(resource).get("postalCode")))


def _address(resource: dict[str, Any]) -> dict[str, Any]:
    return _as_dict(_first(resource.get("address")))


# -- data types --------------------------------------------------------------------


def identifiers(value: object) -> tuple[Identifier, ...]:
    items = (_as_dict(i) for i in _as_list(value))
    pairs = ((text_value(i.get("system")), text_value(i.get("value"))) for i in items)
    return _unique(Identifier(s, v) for s, v in pairs if s and v)


def ref_id(value: object, resource_type: str) -> str | None:
    """The id of a ``Reference`` to ``resource_type`` (relative or absolute), else None."""
    reference = text_value(value.get("reference")) if isinstance(value, dict) else None
    if reference is None:
        return None
    target = _ref_target(reference)
    return target[1] if target is not None and target[0] == resource_type else None


@lru_cache(maxsize=8192)
def _ref_target(reference: str) -> tuple[str, str] | None:
    """``(type, id)`` of a reference's text; the same few are read for many slots."""
    parts = reference.split("?", 1)[0].split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-1]:
        return parts[-2], parts[-1]
    return None


def refs(value: object, resource_type: str) -> tuple[str, ...]:
    """The ids of every ``Reference`` to ``resource_type`` in ``value``, in order, once."""
    found: dict[str, None] = {}
    for item in _as_list(value):
        if (rid := ref_id(item, resource_type)) is not None:
            found[rid] = None
    return tuple(found)


def primary_language(tag: str) -> str:
    """``"fr-CA"`` -> ``"fr"``: the gateway filters on the language, not the region."""
    return re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()


def _language(value: object) -> str | None:
    for system, code in _codings(value):
        if system in (LANGUAGE_SYSTEM, None) and _LANGUAGE_RE.match(code):
            return primary_language(code)
    return None


def _codings(value: object) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    if isinstance(value, dict):
        for c in _as_list(value.get("coding")):
            if isinstance(c, dict) and (code := text_value(c.get("code"))):
                out.append((text_value(c.get("system")), code))
    return out


def _extensions(element: object, url: str) -> Iterator[dict[str, Any]]:
    """The extensions of ``element`` (a resource, or an extension) whose ``url`` is ``url``."""
    extensions = map(_as_dict, _as_list(_as_dict(element).get("extension")))
    return (e for e in extensions if e.get("url") == url)


def _extension_value(resource: dict[str, Any], url: str) -> str | None:
    for extension in _as_list(resource.get("extension")):
        if isinstance(extension, dict) and extension.get("url") == url:
            for key in ("valueUrl", "valueUri", "valueString"):
                if value := text_value(extension.get(key)):
                    return value
    return None


def _phone(value: str | None) -> str | None:
    return None if value is None else _checked_phone(value)


@lru_cache(maxsize=4096)
def _checked_phone(value: str) -> str | None:
    """A phone as written, if it looks like one (the same few are read for many slots)."""
    value = value.removeprefix("tel:").strip()
    return value if 3 <= len(value) <= 40 and re.fullmatch(r"[\d\s()+.\-#*x]+", value) else None


# -- JSON primitives ------------------------------------------------------------------


def text_value(value: object) -> str | None:
    """A string, stripped; None when it is not one, is blank or is unreasonably long."""
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


__all__ = [
    "ACCEPTING_PATIENTS_SYSTEM",
    "APPOINTMENT_TYPE_SYSTEM",
    "BOOKING_DEEP_LINK_URL",
    "BOOKING_PHONE_URL",
    "LANGUAGE_SYSTEM",
    "LOCATION_COMMUNICATION_URL",
    "NEW_PATIENTS_URL",
    "V2_APPOINTMENT_REASON",
    "V2_APPOINTMENT_REASON_SYSTEM",
    "appointment_type",
    "clinic_record",
    "declared_time_zone",
    "identifiers",
    "location_in_quebec",
    "location_languages",
    "location_place",
    "location_point",
    "physician_record",
    "postal_code",
    "practitioner_languages",
    "primary_language",
    "ref_id",
    "refs",
    "slot_booking_phone",
    "slot_booking_url",
    "text_value",
]
