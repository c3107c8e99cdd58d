"""A deterministic synthetic Quebec: clinics, physicians and 14 days of slots.

``World(scale=1.0)`` has about 1,600 clinics and 12,500 physicians spread over
the 17 administrative regions by population, in real cities with plausible
coordinates and postal codes. Each clinic is listed by one or more of the three
demo booking systems (``"fhir"``, ``"rest"``, ``"ssl"``); a clinic listed by
several has the same slots published by each, under each system's own ids.
The first 1,300 clinics and 10,000 physicians are those of ``"fhir"`` and
``"rest"`` (one or both), a tenth of which ``"ssl"`` lists too; ``"ssl"`` also
has clinics of its own, a fifth of the world, with their own physicians. They
come from a random stream of their own, so that what ``"fhir"`` and ``"rest"``
list is what they listed before the third system came. Slots are generated
lazily per clinic and are a mix of free and busy, so that the gateway's
filtering can be tested.

Two density knobs feed benchmarks: ``sessions_per_day`` (1 to 3 four-hour
sessions per working day of a physician at a clinic) and ``free_share`` (the
chance that a slot is free). ``World(1.0)`` has about 1.02 million slots,
307,000 of them free; ``World(1.0, sessions_per_day=2, free_share=0.75)`` about
2.04 million slots, 1.53 million free. :meth:`World.iter_slots` generates a
clinic's slots without keeping them, to write a whole province without holding it.

The same ``(scale, seed, day, sessions_per_day, free_share)`` always gives the
same world; the defaults give the slots the world had before the knobs existed.
"""

from __future__ import annotations

import bisect
import random
import zlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sources.records import AppointmentType, Region
from sources.timeutil import MONTREAL

if TYPE_CHECKING:
    from collections.abc import Iterator

QUEBEC_CLINICS = 1300
QUEBEC_PHYSICIANS = 10000
DAYS = 14
CLINIC_PERMIT_SYSTEM = "urn:passerelle:demo:clinic-permit"
PHYSICIAN_LICENCE_SYSTEM = "urn:passerelle:demo:physician-licence"
SYSTEMS = ("fhir", "rest", "ssl")
SSL_ONLY_SHARE = 0.2  # of all clinics: listed by "ssl" alone
SSL_ALSO_SHARE = 0.1  # of the clinics the other systems list
MAX_SESSIONS_PER_DAY = 3
_SESSION_HOURS = (8, 9, 13, 18)  # four-hour sessions

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
# The weights are whole numbers, so a table indexed by int(random * 100) draws exactly as
# bisecting the cumulative weights would, only faster.
_TYPE_TABLE = tuple(
    _TYPES[bisect.bisect(_CUMULATIVE_TYPE_WEIGHTS, n)] for n in range(_CUMULATIVE_TYPE_WEIGHTS[-1])
)


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


_City = tuple[str, Region, float, float, tuple[str, ...], int]
_CITY_WEIGHTS = [c[5] for c in CITIES]


def _clinic(rng: random.Random, i: int, city: _City, systems: tuple[str, ...]) -> WorldClinic:
    name, region, lat, lon, fsas, population = city
    spread = 0.09 if population > 300 else 0.04
    fsa = rng.choice(fsas)
    postal = f"{fsa} {rng.randint(1, 9)}{rng.choice('ABCEGHJKLMNPRSTVWXYZ')}{rng.randint(0, 9)}"
    languages = (
        ("fr", "en")
        if (region in (_R.MONTREAL, _R.OUTAOUAIS) and rng.random() < 0.6) or rng.random() < 0.15
        else ("fr",)
    )
    return WorldClinic(
        id=f"C{i + 1:05d}",
        permit=f"{rng.randint(10000, 99999)}-{i + 1:04d}",
        name=f"{rng.choice(CLINIC_KINDS)} {rng.choice(FAMILY)} {name}",
        line=f"{rng.randint(10, 9999)} {rng.choice(STREETS)}",
        city=name,
        postal_code=postal,
        region=region,
        latitude=round(lat + rng.uniform(-spread, spread), 6),
        longitude=round(lon + rng.uniform(-spread, spread) * 1.4, 6),
        phone=f"+1-{rng.choice(AREA_CODES)}-555-{rng.randint(0, 9999):04d}",
        languages=languages,
        systems=systems,
    )


def _physician(
    rng: random.Random, j: int, home: WorldClinic, clinics: list[WorldClinic]
) -> WorldPhysician:
    """A physician at ``home`` and, one time in five, at another of ``clinics`` too."""
    clinic_ids = [home.id]
    if rng.random() < 0.2:
        other = rng.choice(clinics)
        if other.id != home.id:
            clinic_ids.append(other.id)
    spoken = ["fr"]
    if "en" in home.languages or rng.random() < 0.3:
        spoken.append("en")
    if rng.random() < 0.08:
        spoken.append(rng.choice(("es", "ar", "zh", "vi", "it")))
    return WorldPhysician(
        id=f"P{j + 1:05d}",
        licence=f"{rng.randint(1, 9)}-{j + 1:05d}",
        given=rng.choice(GIVEN),
        family=rng.choice(FAMILY),
        languages=tuple(spoken),
        clinic_ids=tuple(clinic_ids),
        accepting_new_patients=rng.random() < 0.25,
    )


class World:
    """The synthetic province. Clinics and physicians are built eagerly; slots lazily."""

    def __init__(
        self,
        scale: float = 1.0,
        *,
        seed: int = 2026,
        first_day: date | None = None,
        sessions_per_day: int = 1,
        free_share: float = 0.3,
    ) -> None:
        if not 0 < scale <= 10:
            raise ValueError("scale must be in (0, 10]")
        if not 1 <= sessions_per_day <= MAX_SESSIONS_PER_DAY:
            raise ValueError(f"sessions_per_day must be in [1, {MAX_SESSIONS_PER_DAY}]")
        if not 0 <= free_share <= 1:
            raise ValueError("free_share must be in [0, 1]")
        self.scale = scale
        self.seed = seed
        self.sessions_per_day = sessions_per_day
        self.free_share = free_share
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
        # Every region gets at least one clinic when the world is big enough for it.
        cities = list(CITIES) if n_clinics >= len(CITIES) else []
        cities += rng.choices(CITIES, weights=_CITY_WEIGHTS, k=n_clinics - len(cities))
        # The third system draws from its own stream and brings its own clinics and
        # physicians, so that what the first two list is what they listed before it came.
        ssl_rng = _rng("ssl", self.seed)
        for i, city in enumerate(cities):
            roll = rng.random()
            systems: tuple[str, ...] = (
                ("fhir", "rest") if roll < 0.15 else ("fhir",) if roll < 0.6 else ("rest",)
            )
            if ssl_rng.random() < SSL_ALSO_SHARE:
                systems = (*systems, "ssl")
            self.clinics.append(_clinic(rng, i, city, systems))
        for j in range(n_physicians):
            home = self.clinics[j % n_clinics] if j < n_clinics else rng.choice(self.clinics)
            self.physicians.append(_physician(rng, j, home, self.clinics))

        ratio = SSL_ONLY_SHARE / (1 - SSL_ONLY_SHARE)
        n_ssl = max(1, round(n_clinics * ratio))
        n_ssl_physicians = max(2, round(n_physicians * ratio))
        ssl_cities = ssl_rng.choices(CITIES, weights=_CITY_WEIGHTS, k=n_ssl)
        ssl_only = [
            _clinic(ssl_rng, n_clinics + k, city, ("ssl",)) for k, city in enumerate(ssl_cities)
        ]
        self.clinics += ssl_only
        for k in range(n_ssl_physicians):
            home = ssl_only[k % n_ssl] if k < n_ssl else ssl_rng.choice(ssl_only)
            self.physicians.append(_physician(ssl_rng, n_physicians + k, home, ssl_only))

    def clinics_for(self, system: str) -> list[WorldClinic]:
        """The clinics a demo booking system lists."""
        return [c for c in self.clinics if system in c.systems]

    def slots_for_clinic(self, clinic_id: str) -> list[WorldSlot]:
        """All slots (free and busy) of a clinic over the 14 days, ordered by start."""
        slots = self._slots.get(clinic_id)
        if slots is None:
            slots = sorted(self.iter_slots(clinic_id), key=lambda s: (s.start, s.id))
            self._slots[clinic_id] = slots
            self._slot_starts[clinic_id] = [s.start for s in slots]
        return slots

    def slots_between(self, clinic_id: str, start: datetime, end: datetime) -> list[WorldSlot]:
        """The clinic's slots starting in ``[start, end)``, by bisection."""
        slots = self.slots_for_clinic(clinic_id)
        starts = self._slot_starts[clinic_id]
        return slots[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)]

    def iter_slots(self, clinic_id: str) -> Iterator[WorldSlot]:
        """The clinic's slots, generated afresh and kept nowhere.

        The same slots as :meth:`slots_for_clinic`, ordered by physician then start
        rather than by start: a writer streaming a whole province holds one at a time.
        """
        for physician in self.physicians_by_clinic[clinic_id]:
            yield from self._physician_slots(clinic_id, physician.id)

    def _physician_slots(self, clinic_id: str, physician_id: str) -> Iterator[WorldSlot]:
        rng = _rng("slots", self.seed, clinic_id, physician_id, self.first_day)
        random_ = rng.random
        table = _TYPE_TABLE
        n_kinds = len(table)
        free_share = self.free_share
        extra_sessions = self.sessions_per_day - 1
        for day_index in range(DAYS):
            day = self.first_day + timedelta(days=day_index)
            weekday = day.weekday()
            if weekday == 6 or (weekday == 5 and random_() < 0.8) or random_() < 0.45:
                continue
            # (begin hour, slot length in minutes); the first draw order is the historic one.
            length = (15, 20, 30)[int(random_() * 3)]
            sessions = [(_SESSION_HOURS[int(random_() * 4)], length)]
            for _ in range(extra_sessions):
                free_hours = [
                    h for h in _SESSION_HOURS if all(abs(h - b) >= 4 for b, _ in sessions)
                ]
                hour = free_hours[int(random_() * len(free_hours))]
                sessions.append((hour, (15, 20, 30)[int(random_() * 3)]))
            sessions.sort()
            prefix = f"{clinic_id}-{physician_id}-{day_index:02d}-"
            k = 0
            for hour, minutes in sessions:
                begin = datetime.combine(day, time(hour), MONTREAL)
                step = timedelta(minutes=minutes)
                for n in range(4 * 60 // minutes):
                    start = begin + n * step
                    yield WorldSlot(
                        prefix + str(k),
                        clinic_id,
                        physician_id,
                        start,
                        start + step,
                        table[int(random_() * n_kinds)],
                        random_() < free_share,
                    )
                    k += 1
