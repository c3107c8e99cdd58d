"""Write the Quebec FHIR R4 data set the Medplum engine is loaded with, in two variants.

    python tests/sources/fhir/medplum/make_dataset.py OUT_DIR

writes ``OUT_DIR/quebec-local.json`` (a Bundle, every time with its local offset) and
``OUT_DIR/quebec-utc.ndjson`` (the same resources, one per line, but the slots of one
clinic, :data:`UTC_CLINIC`, stored in UTC with ``Z``). Deterministic: the same files on
every run, around the pinned first day of the tests (Monday 2026-11-16, standard time).

It is written as a clinic system would hold its data, with the codes the FHIR adapter
documents (sources/fhir/README.md), but imports nothing from the project: the tests
compare the gateway with their own reading of these files (``expected.py``).
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

FIRST_DAY = date(2026, 11, 16)
DAYS = 3
LOCAL = timezone(timedelta(hours=-5), "EST")  # America/Montreal in November
UTC_CLINIC = "loc-mtl-centre"  # it has a walk-in desk opening at 07:00
LOCAL_FILE = "quebec-local.json"
UTC_FILE = "quebec-utc.ndjson"

PERMIT_SYSTEM = "urn:passerelle:demo:clinic-permit"
LICENCE_SYSTEM = "urn:passerelle:demo:physician-licence"
TYPE_SYSTEM = "urn:passerelle:appointment-type"
V2_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
V2_CODES = {
    "WALK_IN": "WALKIN",
    "ROUTINE": "ROUTINE",
    "FOLLOW_UP": "FOLLOWUP",
    "CHECKUP": "CHECKUP",
    "URGENT": "EMERGENCY",
}
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
LOCATION_COMMUNICATION = "http://hl7.org/fhir/StructureDefinition/location-communication"
NEW_PATIENTS = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/newpatients"
ACCEPTING_SYSTEM = "http://terminology.hl7.org/CodeSystem/accepting-patients"
DEEP_LINK = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link"
BOOKING_PHONE = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-phone"

# id | name | street | city | postal code | latitude | longitude | languages
_CLINIC_TABLE = """
mtl-plateau|Clinique médicale du Plateau|4100 rue Saint-Denis|Montréal|H2W 2M7|45.5205|-73.58|fr en
mtl-centre|Clinique Centre-Ville|1538 rue Sherbrooke Ouest|Montréal|H3G 1L5|45.4985|-73.579|fr en
mtl-latin|Clinique du Quartier latin|1001 rue Saint-Denis|Montréal|H2X 3H9|45.512|-73.559|fr
mtl-ndg|Clinique Notre-Dame-de-Grâce|5600 chemin Upper-Lachine|Montréal|H4A 2A7|45.472|-73.61|en fr
mtl-hochelaga|Clinique Hochelaga|3500 rue Ontario Est|Montréal|H1W 1R3|45.544|-73.544|fr
mtl-cdn|Clinique Côte-des-Neiges|5700 ch. Côte-des-Neiges|Montréal|H3T 1Y7|45.496|-73.623|fr en es
lav-chomedey|Clinique Chomedey|3900 boul. Notre-Dame|Laval|H7W 1S8|45.555|-73.748|fr
lav-vimont|Polyclinique Vimont|2000 boul. des Laurentides|Laval|H7M 2R1|45.6|-73.71|fr en
qc-vieux|Clinique du Vieux-Québec|1 côte du Palais|Québec|G1R 2J6|46.815|-71.208|fr
qc-ste-foy|Clinique Sainte-Foy|2600 boul. Laurier|Québec|G1V 4T3|46.77|-71.285|fr en
qc-charlesbourg|Clinique Charlesbourg|8000 boul. Henri-Bourassa|Québec|G1G 4C7|46.86|-71.27|fr
mrg-longueuil|Clinique de Longueuil|100 rue Saint-Charles O.|Longueuil|J4H 1C6|45.537|-73.51|fr en
mrg-brossard|Clinique Brossard|7000 boul. Taschereau|Brossard|J4Z 1A7|45.45|-73.465|fr en es
est-sherbrooke|Clinique de Sherbrooke|300 rue King Ouest|Sherbrooke|J1H 1R1|45.401|-71.893|fr
est-magog|Clinique de Magog|50 rue Principale Ouest|Magog|J1X 2A4|45.266|-72.148|fr en
out-gatineau|Clinique de Hull|200 boul. Saint-Joseph|Gatineau|J8Y 3X3|45.438|-75.73|fr en
out-aylmer|Clinique d'Aylmer|180 rue Principale|Gatineau|J9H 3M1|45.397|-75.843|en fr
sag-chicoutimi|Clinique de Chicoutimi|500 rue Racine Est|Saguenay|G7H 1T1|48.428|-71.06|fr
mau-trois-rivieres|Clinique Trois-Rivières|1200 rue Royale|Trois-Rivières|G9A 4J2|46.345|-72.542|fr
bsl-rimouski|Clinique de Rimouski|150 avenue de la Cathédrale|Rimouski|G5L 5J1|48.449|-68.524|fr
"""
CLINICS = [
    ("loc-" + row[0], *row[1:5], float(row[5]), float(row[6]), tuple(row[7].split()))
    for row in (line.split("|") for line in _CLINIC_TABLE.strip().splitlines())
]
GIVEN = (
    "Marie Jean Sophie Luc Isabelle Marc Nathalie Pierre Julie François Chantal Alain Mélanie "
    "Daniel Geneviève Carlos Lucía Ahmed Mei Olivier"
).split()
FAMILY = (
    "Tremblay Gagnon Roy Côté Bouchard Gauthier Morin Lavoie Fortin Gagné Ouellet Pelletier "
    "Bélanger Lévesque Bergeron García Rodríguez Haddad Chen Nguyen"
).split()
TYPES = [
    "ROUTINE",
    "ROUTINE",
    "ROUTINE",
    "FOLLOW_UP",
    "CHECKUP",
    "WALK_IN",
    "URGENT",
    "NEW_PATIENT",
    "PREGNANCY_FOLLOW_UP",
]


def build() -> list[dict[str, Any]]:
    """Every resource of the data set, with times at their local offset."""
    rng = random.Random(12)
    resources: list[dict[str, Any]] = [_location(*clinic) for clinic in CLINICS]
    practitioners = []
    for n in range(40):
        languages = ["fr-CA"]
        if n % 2 == 0:
            languages.append("en-CA")
        if n % 7 == 3:  # six Spanish speakers; one of them speaks no French
            languages = ["es", "en-CA"] if n == 3 else [*languages, "es"]
        pid = f"prac-{n:02d}"
        practitioners.append(pid)
        resources.append(_practitioner(pid, n, languages))
    for index, clinic in enumerate(CLINICS):
        location = clinic[0]
        staff = [practitioners[(2 * index + k) % 40] for k in range(3 if index < 6 else 2)]
        for k, pid in enumerate(staff):
            role = f"role-{pid}-{location}"
            resources.append(_role(role, pid, location, accepting=(index + k) % 3 != 0))
            # Most clinics list the role; some systems name the Practitioner itself.
            actor = f"Practitioner/{pid}" if index % 5 == 4 else f"PractitionerRole/{role}"
            schedule = f"sched-{location}-{pid}"
            resources.append(_schedule(schedule, [f"Location/{location}", actor]))
            hours = (8, 11) if k % 2 == 0 else (13, 16)
            resources += _slots(rng, schedule, hours=hours, off_day=(index + k) % DAYS)
        if index % 4 == 1:  # a walk-in desk: slots with no physician
            schedule = f"sched-{location}-walk-in"
            resources.append(_schedule(schedule, [f"Location/{location}"]))
            resources += _slots(rng, schedule, hours=(7, 9), kinds=["WALK_IN"])
    return resources


def utc_variant(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same resources, but the slots of :data:`UTC_CLINIC` with UTC times (``Z``)."""
    prefix = f"Schedule/sched-{UTC_CLINIC}-"
    out = []
    for resource in resources:
        if resource["resourceType"] == "Slot" and resource["schedule"]["reference"].startswith(
            prefix
        ):
            resource = {**resource}
            for key in ("start", "end"):
                instant = datetime.fromisoformat(resource[key]).astimezone(UTC)
                resource[key] = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(resource)
    return out


def write(folder: Path) -> tuple[Path, Path]:
    """Both variants in ``folder``: the Bundle (local offsets), the NDJSON (one clinic UTC)."""
    resources = build()
    folder.mkdir(parents=True, exist_ok=True)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:quebec:{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }
    local = folder / LOCAL_FILE
    local.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    utc = folder / UTC_FILE
    lines = (json.dumps(r, ensure_ascii=False) for r in utc_variant(resources))
    utc.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return local, utc


def _location(
    lid: str,
    name: str,
    line: str,
    city: str,
    postal: str,
    lat: float,
    lon: float,
    languages: tuple[str, ...],
) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": lid,
        "extension": [
            {"url": LOCATION_COMMUNICATION, "valueCodeableConcept": _language(code)}
            for code in languages
        ],
        "identifier": [{"system": PERMIT_SYSTEM, "value": f"QC-{_stable_hash(lid) % 10**6:06d}"}],
        "status": "active",
        "name": name,
        "mode": "instance",
        "telecom": [{"system": "phone", "value": f"+1 514 555 {_stable_hash(name) % 10**4:04d}"}],
        "address": {
            "use": "work",
            "line": [line],
            "city": city,
            "state": "QC",
            "postalCode": postal,
            "country": "CA",
        },
        "position": {"latitude": lat, "longitude": lon},
    }


def _practitioner(pid: str, n: int, languages: list[str]) -> dict[str, Any]:
    given, family = GIVEN[n % 20], FAMILY[(n * 7) % 20]
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": LICENCE_SYSTEM, "value": f"{1_00_000 + n * 37}"}],
        "active": True,
        "name": [
            {
                "use": "official",
                "family": family,
                "given": [given],
                "prefix": ["Dre" if n % 2 else "Dr"],
            }
        ],
        "communication": [_language(code) for code in languages],
    }


def _role(rid: str, pid: str, location: str, *, accepting: bool) -> dict[str, Any]:
    code = "newpt" if accepting else "existptonly"
    concept = {"coding": [{"system": ACCEPTING_SYSTEM, "code": code}]}
    return {
        "resourceType": "PractitionerRole",
        "id": rid,
        "extension": [
            {
                "url": NEW_PATIENTS,
                "extension": [{"url": "acceptingPatients", "valueCodeableConcept": concept}],
            }
        ],
        "active": True,
        "practitioner": {"reference": f"Practitioner/{pid}"},
        "location": [{"reference": f"Location/{location}"}],
    }


def _schedule(sid: str, actors: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": sid,
        "active": True,
        "actor": [{"reference": a} for a in actors],
    }


def _slots(
    rng: random.Random,
    schedule: str,
    *,
    hours: tuple[int, int],
    kinds: list[str] | None = None,
    off_day: int | None = None,
) -> list[dict[str, Any]]:
    minutes = rng.choice([20, 30])
    out = []
    for day in range(DAYS):
        if day == off_day:  # physicians work two days of three here
            continue
        start = datetime.combine(FIRST_DAY + timedelta(days=day), time(hours[0]), LOCAL)
        close = start.replace(hour=hours[1])
        while start < close:
            end = start + timedelta(minutes=minutes)
            kind = rng.choice(kinds or TYPES)
            free = rng.random() < 0.6
            sid = f"slot-{schedule.removeprefix('sched-')}-{start:%m%d%H%M}"
            slot: dict[str, Any] = {
                "resourceType": "Slot",
                "id": sid,
                "schedule": {"reference": f"Schedule/{schedule}"},
                "status": "free" if free else rng.choice(["busy", "busy-unavailable"]),
                "start": start.isoformat(),
                "end": end.isoformat(),
            }
            coding = _type_coding(kind, rng)
            if coding is not None:
                slot["appointmentType"] = coding
            if free:
                slot["extension"] = [
                    {"url": DEEP_LINK, "valueUrl": f"https://rdv.example.qc.ca/book/{sid}"},
                    {"url": BOOKING_PHONE, "valueString": "+1 514 555 0100"},
                ]
            out.append(slot)
            start = end
    return out


def _type_coding(kind: str, rng: random.Random) -> dict[str, Any] | None:
    """Our coding, with v2-0276 where it has the code; some systems write v2 only, and a
    routine slot is sometimes not coded at all (v2-0276: ROUTINE is the default)."""
    roll = rng.random()
    if kind == "ROUTINE" and roll < 0.15:
        return None
    if kind in V2_CODES and roll < 0.35:
        return {"coding": [{"system": V2_SYSTEM, "code": V2_CODES[kind]}]}
    coding = [{"system": TYPE_SYSTEM, "code": kind}]
    if kind in V2_CODES:
        coding.insert(0, {"system": V2_SYSTEM, "code": V2_CODES[kind]})
    return {"coding": coding}


def _language(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LANGUAGE_SYSTEM, "code": code}]}


def _stable_hash(text: str) -> int:
    """A stable hash (Python's own is salted per process)."""
    value = 0
    for char in text:
        value = (value * 31 + ord(char)) % 2**31
    return value


if __name__ == "__main__":
    for path in write(Path(sys.argv[1])):
        print(path)
