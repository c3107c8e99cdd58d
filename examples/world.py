"""A deterministic synthetic Quebec: clinics, physicians and 14 days of slots.

``World(scale=1.0)`` has about 1,300 clinics and 10,000 physicians spread over
the 17 administrative regions by population, in real cities with plausible
coordinates and postal codes. Each clinic is listed by one demo booking system
(``"fhir"`` or ``"rest"``) or, for a share of them, by both, which then publish
the same slots under their own ids. Slots are generated lazily per clinic and
are a mix of free and busy, so that the gateway's filtering can be tested.

The same ``(scale, seed, day)`` always gives the same world.
"""

from __future__ import annotations

import bisect
import random
import zlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sources.records import AppointmentType, Region
from sources.timeutil import MONTREAL

QUEBEC_CLINICS = 1300
QUEBEC_PHYSICIANS = 10000
DAYS = 14
CLINIC_PERMIT_SYSTEM = "urn:passerelle:demo:clinic-permit"
PHYSICIAN_LICENCE_SYSTEM = "urn:passerelle:demo:physician-licence"
SYSTEMS = ("fhir", "rest")

_R = Region
# (city, region, latitude, longitude, FSAs, population in thousands)
CITIES: tuple[tuple[str, Region, float, float, tuple[str, ...], int], ...] = (
    ("Rimouski", _R.BAS_SAINT_LAURENT, 48.4490, -68.5240, ("G5L", "G5M", "G5N"), 49),
    ("Rivière-du-Loup", _R.BAS_SAINT_LAURENT, 47.8350, -69.5360, ("G5R",), 20),
    ("Matane", _R.BAS_SAINT_LAURENT, 48.8460, -67.5330, ("G4W",), 14),
    ("Saguenay", _R.SAGUENAY_LAC_SAINT_JEAN, 48.4280, -71.0680, ("G7H", "G7J", "G7S", "G7X"), 145),
    ("Alma", _R.SAGUENAY_LAC_SAINT_JEAN, 48.5500, -71.6500, ("G8B",), 31),
    ("Roberval", _R.SAGUENAY_LAC_SAINT_JEAN, 48.5200, -72.2300, ("G8H",), 10),
    ("Québec", _R.CAPITALE_NATIONALE, 46.8130, -71.2080, ("G1R", "G1K", "G1S", "G1V", "G2J"), 550),
    ("Baie-Saint-Paul", _R.CAPITALE_NATIONALE, 47.4400, -70.5000, ("G3Z",), 7),
    ("Trois-Rivières", _R.MAURICIE, 46.3430, -72.5430, ("G8T", "G8Y", "G9A"), 140),
    ("Shawinigan", _R.MAURICIE, 46.5660, -72.7450, ("G9N", "G9P"), 50),
    ("Sherbrooke", _R.ESTRIE, 45.4040, -71.8930, ("J1E", "J1H", "J1J", "J1L"), 172),
    ("Magog", _R.ESTRIE, 45.2670, -72.1490, ("J1X",), 28),
    (
        "Montréal",
        _R.MONTREAL,
        45.5017,
        -73.5673,
        ("H2X", "H2L", "H2J", "H3H", "H3A", "H2T", "H1V", "H4A", "H3T", "H2S"),
        1760,
    ),
    ("Dollard-des-Ormeaux", _R.MONTREAL, 45.4940, -73.8240, ("H9A", "H9B"), 50),
    ("Gatineau", _R.OUTAOUAIS, 45.4770, -75.7010, ("J8T", "J8Y", "J8Z", "J9H"), 290),
    ("Maniwaki", _R.OUTAOUAIS, 46.3800, -75.9700, ("J9E",), 4),
    ("Rouyn-Noranda", _R.ABITIBI_TEMISCAMINGUE, 48.2390, -79.0190, ("J9X", "J9Y"), 43),
    ("Val-d'Or", _R.ABITIBI_TEMISCAMINGUE, 48.0970, -77.7830, ("J9P",), 33),
    ("Sept-Îles", _R.COTE_NORD, 50.2180, -66.3810, ("G4R", "G4S"), 25),
    ("Baie-Comeau", _R.COTE_NORD, 49.2170, -68.1500, ("G4Z", "G5C"), 21),
    ("Chibougamau", _R.NORD_DU_QUEBEC, 49.9130, -74.3660, ("G8P",), 7),
    ("Gaspé", _R.GASPESIE_ILES_DE_LA_MADELEINE, 48.8310, -64.4870, ("G4X",), 15),
    ("Les Îles-de-la-Madeleine", _R.GASPESIE_ILES_DE_LA_MADELEINE, 47.3800, -61.8600, ("G4T",), 12),
    ("Lévis", _R.CHAUDIERE_APPALACHES, 46.8030, -71.1770, ("G6V", "G6W", "G6Z"), 150),
    ("Saint-Georges", _R.CHAUDIERE_APPALACHES, 46.1180, -70.6700, ("G5Y", "G5Z"), 33),
    ("Thetford Mines", _R.CHAUDIERE_APPALACHES, 46.0930, -71.3050, ("G6G",), 26),
    ("Laval", _R.LAVAL, 45.6060, -73.7120, ("H7N", "H7T", "H7V", "H7W", "H7G"), 440),
    ("Joliette", _R.LANAUDIERE, 46.0210, -73.4400, ("J6E",), 21),
    ("Terrebonne", _R.LANAUDIERE, 45.7000, -73.6400, ("J6W", "J6X", "J6Y"), 120),
    ("Repentigny", _R.LANAUDIERE, 45.7420, -73.4500, ("J5Y", "J5Z", "J6A"), 86),
    ("Saint-Jérôme", _R.LAURENTIDES, 45.7800, -74.0030, ("J7Y", "J7Z"), 80),
    ("Blainville", _R.LAURENTIDES, 45.6700, -73.8800, ("J7B", "J7C"), 60),
    ("Mont-Tremblant", _R.LAURENTIDES, 46.1180, -74.5960, ("J8E",), 10),
    ("Longueuil", _R.MONTEREGIE, 45.5370, -73.5100, ("J4H", "J4J", "J4K", "J4M"), 250),
    ("Brossard", _R.MONTEREGIE, 45.4580, -73.4660, ("J4W", "J4X", "J4Y", "J4Z"), 90),
    ("Saint-Jean-sur-Richelieu", _R.MONTEREGIE, 45.3070, -73.2620, ("J2W", "J3A", "J3B"), 98),
    ("Saint-Hyacinthe", _R.MONTEREGIE, 45.6300, -72.9560, ("J2R", "J2S", "J2T"), 57),
    ("Granby", _R.MONTEREGIE, 45.4000, -72.7330, ("J2G", "J2H", "J2J"), 70),
    ("Châteauguay", _R.MONTEREGIE, 45.3800, -73.7500, ("J6J", "J6K"), 50),
    ("Vaudreuil-Dorion", _R.MONTEREGIE, 45.4000, -74.0330, ("J7V",), 40),
    ("Drummondville", _R.CENTRE_DU_QUEBEC, 45.8800, -72.4840, ("J2A", "J2B", "J2C"), 80),
    ("Victoriaville", _R.CENTRE_DU_QUEBEC, 46.0550, -71.9580, ("G6P", "G6S", "G6T"), 48),
)

AREA_CODES = ("514", "450", "418", "819", "438")
STREETS = (
    "rue Saint-Denis",
    "boulevard Saint-Laurent",
    "rue Sherbrooke",
    "rue Principale",
    "boulevard René-Lévesque",
    "rue Notre-Dame",
    "chemin du Roy",
    "avenue du Parc",
    "rue King Ouest",
    "boulevard Taschereau",
    "rue des Érables",
    "avenue Cartier",
    "rue Wellington",
    "boulevard de la Concorde",
    "rue Racine",
    "boulevard Talbot",
)
CLINIC_KINDS = (
    "Clinique médicale",
    "GMF",
    "Centre médical",
    "Polyclinique",
    "Clinique familiale",
    "Médecine familiale",
)
GIVEN = (
    "Marie",
    "Louis",
    "Sophie",
    "Jean",
    "Isabelle",
    "Mathieu",
    "Catherine",
    "Olivier",
    "Nathalie",
    "Alexandre",
    "Julie",
    "François",
    "Émilie",
    "Samuel",
    "Amira",
    "Karim",
    "Mei",
    "David",
    "Sarah",
    "Gabriel",
    "Chloé",
    "Antoine",
    "Fatima",
    "Nguyen",
)
FAMILY = (
    "Tremblay",
    "Gagnon",
    "Roy",
    "Côté",
    "Bouchard",
    "Gauthier",
    "Morin",
    "Lavoie",
    "Fortin",
    "Gagné",
    "Ouellet",
    "Pelletier",
    "Bélanger",
    "Lévesque",
    "Bergeron",
    "Leblanc",
    "Paquette",
    "Girard",
    "Simard",
    "Boucher",
    "Caron",
    "Beaulieu",
    "Nguyen",
    "Haddad",
    "Smith",
    "Cohen",
    "Benali",
    "Chen",
)
_TYPES = tuple(AppointmentType)
_TYPE_WEIGHTS = (15, 8, 7, 30, 15, 10, 5, 5, 5)  # in AppointmentType order
_CUMULATIVE_TYPE_WEIGHTS = tuple(sum(_TYPE_WEIGHTS[: i + 1]) for i in range(len(_TYPE_WEIGHTS)))


@dataclass(frozen=True, slots=True)
class WorldClinic:
    id: str
    permit: str
    name: str
    line: str
    city: str
    postal_code: str
    region: Region
    latitude: float
    longitude: float
    phone: str
    languages: tuple[str, ...]
    systems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WorldPhysician:
    id: str
    licence: str
    given: str
    family: str
    languages: tuple[str, ...]
    clinic_ids: tuple[str, ...]
    accepting_new_patients: bool

    @property
    def display_name(self) -> str:
        return f"Dr {self.given} {self.family}"


@dataclass(frozen=True, slots=True)
class WorldSlot:
    id: str
    clinic_id: str
    physician_id: str
    start: datetime
    end: datetime
    appointment_type: AppointmentType
    free: bool


def _rng(*parts: object) -> random.Random:
    return random.Random(zlib.crc32("|".join(map(str, parts)).encode()))


class World:
    """The synthetic province. Clinics and physicians are built eagerly; slots lazily."""

    def __init__(
        self, scale: float = 1.0, *, seed: int = 2026, first_day: date | None = None
    ) -> None:
        if not 0 < scale <= 10:
            raise ValueError("scale must be in (0, 10]")
        self.scale = scale
        self.seed = seed
        self.first_day = first_day or datetime.now(MONTREAL).date()
        self.clinics: list[WorldClinic] = []
        self.physicians: list[WorldPhysician] = []
        self._slots: dict[str, list[WorldSlot]] = {}
        self._slot_starts: dict[str, list[datetime]] = {}
        self._build()
        self.clinics_by_id = {c.id: c for c in self.clinics}
        self.physicians_by_id = {p.id: p for p in self.physicians}
        self.physicians_by_clinic: dict[str, list[WorldPhysician]] = {
            c.id: [] for c in self.clinics
        }
        for p in self.physicians:
            for cid in p.clinic_ids:
                self.physicians_by_clinic[cid].append(p)

    def _build(self) -> None:
        rng = _rng("world", self.seed)
        n_clinics = max(2, round(QUEBEC_CLINICS * self.scale))
        n_physicians = max(4, round(QUEBEC_PHYSICIANS * self.scale))
        weights = [c[5] for c in CITIES]
        # Every region gets at least one clinic when the world is big enough for it.
        cities = list(CITIES) if n_clinics >= len(CITIES) else []
        cities += rng.choices(CITIES, weights=weights, k=n_clinics - len(cities))
        for i, (city, region, lat, lon, fsas, _pop) in enumerate(cities):
            spread = 0.09 if _pop > 300 else 0.04
            roll = rng.random()
            systems = ("fhir", "rest") if roll < 0.15 else ("fhir",) if roll < 0.6 else ("rest",)
            fsa = rng.choice(fsas)
            postal = (
                f"{fsa} {rng.randint(1, 9)}{rng.choice('ABCEGHJKLMNPRSTVWXYZ')}{rng.randint(0, 9)}"
            )
            languages = (
                ("fr", "en")
                if (region in (_R.MONTREAL, _R.OUTAOUAIS) and rng.random() < 0.6)
                or rng.random() < 0.15
                else ("fr",)
            )
            self.clinics.append(
                WorldClinic(
                    id=f"C{i + 1:05d}",
                    permit=f"{rng.randint(10000, 99999)}-{i + 1:04d}",
                    name=f"{rng.choice(CLINIC_KINDS)} {rng.choice(FAMILY)} {city}",
                    line=f"{rng.randint(10, 9999)} {rng.choice(STREETS)}",
                    city=city,
                    postal_code=postal,
                    region=region,
                    latitude=round(lat + rng.uniform(-spread, spread), 6),
                    longitude=round(lon + rng.uniform(-spread, spread) * 1.4, 6),
                    phone=f"+1-{rng.choice(AREA_CODES)}-555-{rng.randint(0, 9999):04d}",
                    languages=languages,
                    systems=systems,
                )
            )
        for j in range(n_physicians):
            home = self.clinics[j % n_clinics] if j < n_clinics else rng.choice(self.clinics)
            clinic_ids = [home.id]
            if rng.random() < 0.2:
                other = rng.choice(self.clinics)
                if other.id != home.id:
                    clinic_ids.append(other.id)
            languages = ["fr"]
            if "en" in home.languages or rng.random() < 0.3:
                languages.append("en")
            if rng.random() < 0.08:
                languages.append(rng.choice(("es", "ar", "zh", "vi", "it")))
            self.physicians.append(
                WorldPhysician(
                    id=f"P{j + 1:05d}",
                    licence=f"{rng.randint(1, 9)}-{j + 1:05d}",
                    given=rng.choice(GIVEN),
                    family=rng.choice(FAMILY),
                    languages=tuple(languages),
                    clinic_ids=tuple(clinic_ids),
                    accepting_new_patients=rng.random() < 0.25,
                )
            )

    def clinics_for(self, system: str) -> list[WorldClinic]:
        """The clinics a demo booking system lists."""
        return [c for c in self.clinics if system in c.systems]

    def slots_for_clinic(self, clinic_id: str) -> list[WorldSlot]:
        """All slots (free and busy) of a clinic over the 14 days, ordered by start."""
        slots = self._slots.get(clinic_id)
        if slots is None:
            slots = self._generate(clinic_id)
            self._slots[clinic_id] = slots
            self._slot_starts[clinic_id] = [s.start for s in slots]
        return slots

    def slots_between(self, clinic_id: str, start: datetime, end: datetime) -> list[WorldSlot]:
        """The clinic's slots starting in ``[start, end)``, by bisection."""
        slots = self.slots_for_clinic(clinic_id)
        starts = self._slot_starts[clinic_id]
        return slots[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)]

    def _generate(self, clinic_id: str) -> list[WorldSlot]:
        out: list[WorldSlot] = []
        cumulative = _CUMULATIVE_TYPE_WEIGHTS
        for physician in self.physicians_by_clinic[clinic_id]:
            rng = _rng("slots", self.seed, clinic_id, physician.id, self.first_day)
            random_ = rng.random
            for day_index in range(DAYS):
                day = self.first_day + timedelta(days=day_index)
                weekday = day.weekday()
                if weekday == 6 or (weekday == 5 and random_() < 0.8) or random_() < 0.45:
                    continue
                length = (15, 20, 30)[int(random_() * 3)]
                begin = datetime.combine(day, time((8, 9, 13, 18)[int(random_() * 4)]), MONTREAL)
                step = timedelta(minutes=length)
                prefix = f"{clinic_id}-{physician.id}-{day_index:02d}-"
                for k in range(4 * 60 // length):
                    start = begin + k * step
                    kind = _TYPES[bisect.bisect(cumulative, random_() * cumulative[-1])]
                    out.append(
                        WorldSlot(
                            prefix + str(k),
                            clinic_id,
                            physician.id,
                            start,
                            start + step,
                            kind,
                            random_() < 0.3,
                        )
                    )
        out.sort(key=lambda s: (s.start, s.id))
        return out
