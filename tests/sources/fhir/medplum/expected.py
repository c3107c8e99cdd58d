"""The tests' own reading of the data set: which free slots a search must serve.

It reads the files the engine loads (a Bundle or NDJSON) and applies the API's rules as
the README states them, importing nothing from the project, so that the gateway's answers
are compared with an independent count:

    data = DataSet.read(path)
    expected = data.free_slots(after, before, near=(45.50, -73.57), radius_km=5)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The forward sortation areas the data set uses, and their administrative region.
FSA_REGIONS = {
    "H1W": "MONTREAL", "H2W": "MONTREAL", "H2X": "MONTREAL", "H3G": "MONTREAL",
    "H3T": "MONTREAL", "H4A": "MONTREAL", "H7M": "LAVAL", "H7W": "LAVAL",
    "G1G": "CAPITALE_NATIONALE", "G1R": "CAPITALE_NATIONALE", "G1V": "CAPITALE_NATIONALE",
    "J4H": "MONTEREGIE", "J4Z": "MONTEREGIE", "J1H": "ESTRIE", "J1X": "ESTRIE",
    "J8Y": "OUTAOUAIS", "J9H": "OUTAOUAIS", "G7H": "SAGUENAY_LAC_SAINT_JEAN",
    "G9A": "MAURICIE", "G5L": "BAS_SAINT_LAURENT",
}  # fmt: skip
TYPE_SYSTEM = "urn:passerelle:appointment-type"
V2_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
FROM_V2 = {
    "WALKIN": "WALK_IN",
    "ROUTINE": "ROUTINE",
    "FOLLOWUP": "FOLLOW_UP",
    "CHECKUP": "CHECKUP",
    "EMERGENCY": "URGENT",
}
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Clinic:
    id: str
    name: str
    region: str
    latitude: float
    longitude: float
    languages: frozenset[str]


@dataclass(frozen=True)
class ExpectedSlot:
    """What the gateway shows of a slot, enough to tell every slot apart."""

    id: str
    clinic: Clinic
    physician_id: str | None
    physician_name: str | None
    languages: frozenset[str]  # the physician's, else the clinic's (the README's rule)
    start: datetime
    end: datetime
    appointment_type: str

    @property
    def key(self) -> tuple[str, str | None, datetime, str]:
        return (self.clinic.name, self.physician_name, self.start, self.appointment_type)


class DataSet:
    """Every free slot of a data set file, with its clinic and physician."""

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        by_type: dict[str, dict[str, dict[str, Any]]] = {}
        for resource in resources:
            by_type.setdefault(resource["resourceType"], {})[resource["id"]] = resource
        self.clinics = {lid: _clinic(r) for lid, r in by_type["Location"].items()}
        practitioners = by_type["Practitioner"]
        names = {pid: _name(r) for pid, r in practitioners.items()}
        spoken = {pid: _languages(r.get("communication", [])) for pid, r in practitioners.items()}
        role_of = {rid: _ref(r["practitioner"]) for rid, r in by_type["PractitionerRole"].items()}
        self.slots: list[ExpectedSlot] = []
        for slot in by_type["Slot"].values():
            if slot["status"] != "free":
                continue
            actors = [_ref(a) for a in by_type["Schedule"][_ref(slot["schedule"])[1]]["actor"]]
            clinic = self.clinics[next(i for t, i in actors if t == "Location")]
            physician = next((i for t, i in actors if t == "Practitioner"), None)
            for kind, rid in actors:
                if kind == "PractitionerRole":
                    physician = role_of[rid][1]
            self.slots.append(
                ExpectedSlot(
                    id=slot["id"],
                    clinic=clinic,
                    physician_id=physician,
                    physician_name=names[physician] if physician else None,
                    languages=spoken[physician] if physician else clinic.languages,
                    start=_instant(slot["start"]),
                    end=_instant(slot["end"]),
                    appointment_type=_type(slot.get("appointmentType")),
                )
            )

    @classmethod
    def read(cls, path: Path) -> DataSet:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ndjson":
            return cls([json.loads(line) for line in text.splitlines() if line.strip()])
        return cls([entry["resource"] for entry in json.loads(text)["entry"]])

    def free_slots(
        self,
        after: datetime,
        before: datetime,
        *,
        near: tuple[float, float] | None = None,
        radius_km: float = 25,
        region: str | None = None,
        clinic_ids: set[str] | None = None,
        physician_ids: set[str] | None = None,
        languages: set[str] | None = None,
        types: set[str] | None = None,
    ) -> list[ExpectedSlot]:
        """The free slots a search must serve, by start then id (Location, Practitioner ids)."""
        out = []
        for slot in self.slots:
            if not after <= slot.start < before:
                continue
            if near is not None and distance_km(near, slot.clinic) > radius_km:
                continue
            if region is not None and slot.clinic.region != region:
                continue
            if clinic_ids is not None and slot.clinic.id not in clinic_ids:
                continue
            if physician_ids is not None and slot.physician_id not in physician_ids:
                continue
            if languages is not None and not languages & slot.languages:
                continue
            if types is not None and slot.appointment_type not in types:
                continue
            out.append(slot)
        return sorted(out, key=lambda s: (s.start, s.id))

    def clear_of_radius(self, near: tuple[float, float], radius_km: float) -> bool:
        """No clinic within 100 m of the circle, where rounding could decide either way."""
        return all(abs(distance_km(near, c) - radius_km) > 0.1 for c in self.clinics.values())


def distance_km(near: tuple[float, float], clinic: Clinic) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(
        math.radians, (near[0], near[1], clinic.latitude, clinic.longitude)
    )
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def _clinic(location: dict[str, Any]) -> Clinic:
    postal = location["address"]["postalCode"].replace(" ", "").upper()
    languages = [e["valueCodeableConcept"] for e in location.get("extension", [])]
    return Clinic(
        id=location["id"],
        name=location["name"],
        region=FSA_REGIONS[postal[:3]],
        latitude=location["position"]["latitude"],
        longitude=location["position"]["longitude"],
        languages=_languages(languages),
    )


def _languages(concepts: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(c["coding"][0]["code"].split("-")[0].lower() for c in concepts)


def _name(practitioner: dict[str, Any]) -> str:
    name = practitioner["name"][0]
    return name.get("text") or " ".join([*name.get("prefix", []), *name["given"], name["family"]])


def _ref(reference: dict[str, Any]) -> tuple[str, str]:
    kind, _, rid = reference["reference"].partition("/")
    return kind, rid


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _type(concept: dict[str, Any] | None) -> str:
    """Our own code first, then v2-0276; not coded at all is ROUTINE (v2-0276's default)."""
    if concept is None:
        return "ROUTINE"
    codes = {(c["system"], c["code"]) for c in concept["coding"]}
    own = [code for system, code in codes if system == TYPE_SYSTEM]
    return own[0] if own else next(FROM_V2[code] for system, code in codes if system == V2_SYSTEM)
