"""The demo world's clinics, physicians and slots written as FHIR R4 resources.

The encoding is the one ``sources.fhir.resources`` reads: Locations with their IANA time
zone (the core ``timezone`` extension), one ``PractitionerRole`` per physician and clinic,
one ``Schedule`` per clinic and physician, and ``Slot``s carrying their appointment type
and, when free, the SMART Scheduling Links booking extensions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from examples.world import CLINIC_PERMIT_SYSTEM, PHYSICIAN_LICENCE_SYSTEM
from sources.fhir.resources import (
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
from sources.time_zones import TIMEZONE_EXTENSION_URL

if TYPE_CHECKING:
    from examples.world import WorldClinic, WorldPhysician, WorldSlot

BOOKING_BASE = "https://fhir-demo.passerelle.example/book/"


def role_id(physician_id: str, clinic_id: str) -> str:
    """The id of the ``PractitionerRole`` of a physician at a clinic."""
    return f"{physician_id}-{clinic_id}"


def schedule_id(clinic_id: str, physician_id: str) -> str:
    """The id of the ``Schedule`` of a clinic and physician."""
    return f"{clinic_id}-{physician_id}"


def render_location(clinic: WorldClinic) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": clinic.id,
        "extension": [
            *(
                {"url": LOCATION_COMMUNICATION_URL, "valueCodeableConcept": _language(code)}
                for code in clinic.languages
            ),
            {"url": TIMEZONE_EXTENSION_URL, "valueCode": clinic.time_zone},
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


def render_practitioner(physician: WorldPhysician) -> dict[str, Any]:
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


def render_role(physician: WorldPhysician, clinic: WorldClinic) -> dict[str, Any]:
    code = "newpt" if physician.accepting_new_patients else "nopt"
    return {
        "resourceType": "PractitionerRole",
        "id": role_id(physician.id, clinic.id),
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


def render_schedule(clinic: WorldClinic, physician: WorldPhysician) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": schedule_id(clinic.id, physician.id),
        "active": True,
        "actor": [
            {"reference": f"Location/{clinic.id}", "display": clinic.name},
            {
                "reference": f"PractitionerRole/{role_id(physician.id, clinic.id)}",
                "display": physician.display_name,
            },
        ],
    }


def render_slot(slot: WorldSlot, booking_phone: str | None) -> dict[str, Any]:
    """A Slot; a free one also gets its booking link and ``booking_phone``."""
    kind = slot.appointment_type
    coding = [{"system": APPOINTMENT_TYPE_SYSTEM, "code": kind.value}]
    if kind in V2_APPOINTMENT_REASON:
        coding.insert(
            0, {"system": V2_APPOINTMENT_REASON_SYSTEM, "code": V2_APPOINTMENT_REASON[kind]}
        )
    resource: dict[str, Any] = {
        "resourceType": "Slot",
        "id": slot.id,
        "schedule": {"reference": f"Schedule/{schedule_id(slot.clinic_id, slot.physician_id)}"},
        "status": "free" if slot.free else "busy",
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
        "appointmentType": {"coding": coding},
    }
    if slot.free:
        resource["extension"] = [
            {"url": BOOKING_DEEP_LINK_URL, "valueUrl": BOOKING_BASE + slot.id},
            {"url": BOOKING_PHONE_URL, "valueString": booking_phone},
        ]
    return resource


def _language(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LANGUAGE_SYSTEM, "code": code}]}


__all__ = [
    "BOOKING_BASE",
    "render_location",
    "render_practitioner",
    "render_role",
    "render_schedule",
    "render_slot",
    "role_id",
    "schedule_id",
]
