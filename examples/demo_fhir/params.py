"""The FHIR search parameters the demo server accepts, parsed and checked.

Everything a request may ask for is here: the parameters of each resource type, the
``_include`` names, the value syntaxes (comma lists, ``system|code`` tokens, references,
dates) and the opaque page token that carries a search to its next page. A request the
server refuses raises :class:`BadRequest`.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from sources.fhir.resources import (
    APPOINTMENT_TYPE_SYSTEM,
    V2_APPOINTMENT_REASON,
    V2_APPOINTMENT_REASON_SYSTEM,
)
from sources.records import AppointmentType
from sources.timeutil import MONTREAL

MAX_COUNT = 1000
DEFAULT_COUNT = 100
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
    | {"status", "start", "appointment-type", "appointment-type:missing", "schedule", "_sort"}
    | {"schedule.actor", "schedule.actor:Location", "schedule.actor:PractitionerRole"},
}

Params = list[tuple[str, str]]
Ref = tuple[str, str]  # (resource type, id)


class BadRequest(Exception):
    """A search the server refuses: becomes a 400 OperationOutcome."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What one search request asks for; after the first page, as its page token says."""

    params: Params
    position: Any  # where the page starts, as the previous page left it; None on the first
    count: int
    total_mode: str  # none, estimate or accurate
    includes: list[str]
    iterate: list[str]


def parse_search(rtype: str, params: Params) -> SearchRequest:
    """Check the parameters common to every search of ``rtype`` and unwrap a page token."""
    token = _all_values(params, "_page_token")
    position: Any = None
    if token:
        if len(params) != 1:
            raise BadRequest("_page_token must be used alone")
        rtype_in_token, params, position = _decode_page_token(token[0])
        if rtype_in_token != rtype:
            raise BadRequest("page token belongs to another search")
    for name, _ in params:
        if name not in PARAMS[rtype]:
            raise BadRequest(f"unknown or unsupported search parameter {name!r} for {rtype}")
    count = min(_int_value(params, "_count", DEFAULT_COUNT), MAX_COUNT)
    total_mode = _one_value(params, "_total") or "accurate"
    if total_mode not in ("none", "estimate", "accurate"):
        raise BadRequest("_total must be none, estimate or accurate")
    includes = _all_values(params, "_include")
    iterate = _all_values(params, "_include:iterate")
    for name in includes + iterate:
        if name not in INCLUDES:
            raise BadRequest(f"unsupported _include {name!r}")
    if rtype == "Slot" and any(v != "start" for v in _all_values(params, "_sort")):
        raise BadRequest("only _sort=start is supported")
    return SearchRequest(params, position, count, total_mode, includes, iterate)


def encode_page_token(rtype: str, params: Params, position: Any) -> str:
    """The search and where the next page starts, compressed: reference lists repeat a lot."""
    # Level 6 packs a long reference list as tightly as 9, in a seventh of the time.
    raw = zlib.compress(orjson.dumps({"t": rtype, "p": params, "at": position}), 6)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str) -> tuple[str, Params, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(zlib.decompressobj().decompress(raw, 1 << 20))
        params = [(str(k), str(v)) for k, v in data["p"]]
        return str(data["t"]), params, data["at"]
    except (ValueError, TypeError, KeyError, zlib.error):
        raise BadRequest("invalid page token") from None


# -- values ---------------------------------------------------------------------------


def split_values(value: str) -> list[str]:
    """Comma-separated values, honouring FHIR's ``\\,`` escape."""
    if "\\" not in value:  # no escape: a plain split (long reference lists)
        return [p.strip() for p in value.split(",") if p.strip()]
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",").strip() for p in parts if p.strip()]


def split_token(token: str) -> tuple[str, bool, str]:
    """``system|code`` -> (system, True, code); a bare ``code`` -> ("", False, code)."""
    match = re.fullmatch(r"(.*?)(?<!\\)\|(.*)", token)
    return (match.group(1), True, match.group(2)) if match else ("", False, token)


def parse_reference(text: str, typed: str | None) -> Ref:
    """``Type/id`` (or a URL ending so); a bare ``id`` only when the parameter is ``typed``."""
    parts = text.rstrip("/").split("/")
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    if typed:
        return typed, parts[-1]
    raise BadRequest(f"reference {text!r} needs a type, as Location/{text}")


def parse_appointment_types(token: str) -> set[AppointmentType]:
    """The types an ``appointment-type`` token names, in our system or in v2-0276."""
    system, has_system, code = split_token(token)
    out = set()
    if system == APPOINTMENT_TYPE_SYSTEM or not has_system:
        if code in AppointmentType.__members__:
            out.add(AppointmentType[code])
    if system == V2_APPOINTMENT_REASON_SYSTEM or not has_system:
        out.update(k for k, v in V2_APPOINTMENT_REASON.items() if v == code)
    return out


def date_range(text: str) -> tuple[float, float]:
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


def _all_values(params: Params, name: str) -> list[str]:
    return [v for k, v in params if k == name]


def _one_value(params: Params, name: str) -> str | None:
    values = _all_values(params, name)
    if len(values) > 1:
        raise BadRequest(f"{name} may appear once")
    return values[0] if values else None


def _int_value(params: Params, name: str, default: int) -> int:
    text = _one_value(params, name)
    if text is None:
        return default
    if not text.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(text)


__all__ = [
    "DEFAULT_COUNT",
    "INCLUDES",
    "MAX_COUNT",
    "PARAMS",
    "RESOURCE_TYPES",
    "BadRequest",
    "Params",
    "Ref",
    "SearchRequest",
    "date_range",
    "encode_page_token",
    "parse_appointment_types",
    "parse_reference",
    "parse_search",
    "split_token",
    "split_values",
]
