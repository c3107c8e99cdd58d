"""A deterministic synthetic Quebec: clinics, physicians and 14 days of slots.

``World(scale=1.0)`` has about 1,600 clinics and 12,500 physicians spread over the 17
administrative regions by population, in real cities: each clinic within a few km of its
city's centre (``quebec.CITY_RADIUS_KM``), on its city's shore of the St. Lawrence and
out of the river (``examples.river``), clear of the sea, lakes, other rivers and
neighbours' land (``examples.waters``), on a street its city has (``LOCAL_STREETS``),
with its city's postal codes and its region's area codes. Each clinic is listed by one
or more of the three demo booking systems (``"fhir"``, ``"rest"``, ``"ssl"``); a clinic
listed by several has the same slots published by each, under each system's own ids. The
first 1,300 clinics and 10,000 physicians are those of ``"fhir"`` and ``"rest"`` (one or
both), a tenth of which ``"ssl"`` lists too; ``"ssl"`` also has clinics of its own, a
fifth of the world, with their own physicians. They come from a random stream of their
own, so that what ``"fhir"`` and ``"rest"`` list is what they listed before the third
system came. Last, at any scale, one clinic in each place on Atlantic time
(``ATLANTIC_PLACES``: Cap-aux-Meules in the Îles-de-la-Madeleine, Blanc-Sablon on the
Basse-Côte-Nord), listed by all three systems, with physicians of their own, from a
third stream. Slots are generated lazily per clinic, in its own local business hours
(``WorldClinic.time_zone``: a 09:00 opening in Blanc-Sablon is 08:00 in Montreal in
winter), and are a mix of free and busy, so that the gateway's filtering can be tested.

Two density knobs feed benchmarks: ``sessions_per_day`` (1 to 3 four-hour
sessions per working day of a physician at a clinic) and ``free_share`` (the
chance that a slot is free). ``World(1.0)`` has about 1.02 million slots,
307,000 of them free; ``World(1.0, sessions_per_day=2, free_share=0.75)`` about
2.04 million slots, 1.53 million free. :meth:`World.iter_slots` generates a
clinic's slots without keeping them, to write a whole province without holding it.

The same ``(scale, seed, day, sessions_per_day, free_share)`` always gives the
same world; the defaults give the slots the world had before the knobs existed. The places
and names it draws from are the tables of ``examples.quebec``.
"""

from __future__ import annotations

import bisect
import math
import random
import zlib
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from examples.quebec import (
    AREA_CODES,
    ATLANTIC_PLACES,
    CITIES,
    CITY_RADIUS_KM,
    CLINIC_KINDS,
    DEFAULT_RADIUS_KM,
    FAMILY,
    GENERIC_STREETS,
    GIVEN,
    LOCAL_STREETS,
    STREETS,
    TIME_ZONES,
    City,
)
from examples.river import MIN_SHORE_KM, river_distance_km, side
from examples.waters import SHORE_MARGIN_KM, water_at
from sources.records import AppointmentType, Region
from sources.timeutil import MONTREAL, zone_info

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
ATLANTIC_PHYSICIANS = 3  # at each clinic of ATLANTIC_PLACES
MAX_SESSIONS_PER_DAY = 3
_SESSION_HOURS = (8, 9, 13, 18)  # four-hour sessions

_R = Region

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
    time_zone: str = "America/Montreal"  # IANA: its slots are in its local hours


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


_CITY_WEIGHTS = [c[5] for c in CITIES]


_PLACING_TRIES = 200


def _place(rng: random.Random, city: City) -> tuple[float, float]:
    """A point uniform in the disk of the city's radius, on its side of the St. Lawrence,
    clear of the waters and neighbours of ``examples.waters``.

    Rejection sampling, deterministic for a seed: the first try takes the two draws of
    ``rng`` the world always made for a position, so what the world draws after it (names,
    physicians, slots) is what it was; a point on the other shore or in the river is drawn
    again from a stream seeded by those two draws, as is one in other water. After
    ``_PLACING_TRIES`` misses, the centre itself.
    """
    name, _, lat, lon, _, _ = city
    radius = CITY_RADIUS_KM.get(name, DEFAULT_RADIUS_KM)
    shore = side(lat, lon)
    km_per_deg_lon = 111.2 * math.cos(math.radians(lat))
    u, v = rng.random(), rng.random()
    retry = random.Random(f"{u!r}|{v!r}")
    for _ in range(_PLACING_TRIES):
        r = radius * math.sqrt(u)
        angle = 2 * math.pi * v
        y = lat + r * math.cos(angle) / 111.2
        x = lon + r * math.sin(angle) / km_per_deg_lon
        on_shore = shore is None or (
            side(y, x) == shore and river_distance_km(y, x) >= MIN_SHORE_KM
        )
        if on_shore and water_at(y, x, SHORE_MARGIN_KM) is None:
            return round(y, 6), round(x, 6)
        u, v = retry.random(), retry.random()
    return lat, lon


def _in_town(rng: random.Random, city: City) -> tuple[float, float]:
    """A point within about 500 m of a town's centre and clear of its water, drawn as
    ``_place`` draws (two draws of ``rng``, then a stream of their own)."""
    u, v = rng.uniform(-0.005, 0.005), rng.uniform(-0.005, 0.005)
    retry = random.Random(f"{u!r}|{v!r}")
    for _ in range(_PLACING_TRIES):
        y, x = round(city[2] + u, 6), round(city[3] + v, 6)
        if water_at(y, x, SHORE_MARGIN_KM / 2) is None:
            return y, x
        u, v = retry.uniform(-0.005, 0.005), retry.uniform(-0.005, 0.005)
    return city[2], city[3]


def _clinic(rng: random.Random, i: int, city: City, systems: tuple[str, ...]) -> WorldClinic:
    name, region, _, _, fsas, _ = city
    fsa = rng.choice(fsas)
    postal = f"{fsa} {rng.randint(1, 9)}{rng.choice('ABCEGHJKLMNPRSTVWXYZ')}{rng.randint(0, 9)}"
    languages = (
        ("fr", "en")
        if (region in (_R.MONTREAL, _R.OUTAOUAIS) and rng.random() < 0.6) or rng.random() < 0.15
        else ("fr",)
    )
    # In the order the fields drew them before the placing loop came.
    permit, kind, family = rng.randint(10000, 99999), rng.choice(CLINIC_KINDS), rng.choice(FAMILY)
    line, street = rng.randint(10, 9999), rng.choice(STREETS)
    if name not in LOCAL_STREETS.get(street, (name,)):
        street = GENERIC_STREETS[line % len(GENERIC_STREETS)]
    latitude, longitude = _place(rng, city)
    # The region's own codes, from the one draw among five the world always made for it.
    codes, code = AREA_CODES[region], rng.randrange(5)
    return WorldClinic(
        id=f"C{i + 1:05d}",
        permit=f"{permit}-{i + 1:04d}",
        name=f"{kind} {family} {name}",
        line=f"{line} {street}",
        city=name,
        postal_code=postal,
        region=region,
        latitude=latitude,
        longitude=longitude,
        phone=f"+1-{codes[code % len(codes)]}-555-{rng.randint(0, 9999):04d}",
        languages=languages,
        systems=systems,
        time_zone=TIME_ZONES.get(name, "America/Montreal"),
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

        # The places on Atlantic time, from a stream of their own: what came before is
        # as it was. Their clinics sit in town, with the town's own postal code.
        atlantic_rng = _rng("atlantic", self.seed)
        first_id = len(self.clinics)
        for k, (city, postal_code) in enumerate(ATLANTIC_PLACES):
            clinic = _clinic(atlantic_rng, first_id + k, city, SYSTEMS)
            latitude, longitude = _in_town(atlantic_rng, city)
            clinic = replace(
                clinic, latitude=latitude, longitude=longitude, postal_code=postal_code
            )
            self.clinics.append(clinic)
            for _ in range(ATLANTIC_PHYSICIANS):
                j = len(self.physicians)
                self.physicians.append(_physician(atlantic_rng, j, clinic, [clinic]))

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
        zone = zone_info(self.clinics_by_id[clinic_id].time_zone)
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
                begin = datetime.combine(day, time(hour), zone)
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
