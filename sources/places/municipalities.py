"""Quebec municipalities' positions, from GeoNames: a city name to a point, approximately.

The table (``quebec_municipalities.tsv``, beside this module; its ``README.md`` says where
it comes from, its licence and how to rebuild it) lists GeoNames' populated places of
Quebec with at least 500 inhabitants: about 500 names. It is read once per process, the
first time a name is looked up.

Names are compared by :func:`place_key`: accents, case, hyphens, apostrophes and dots do
not count, and ``St``/``Ste`` are ``Saint``/``Sainte``, so ``"ST-JEROME"``,
``"Saint-Jérôme"`` and ``"st jerome"`` are one name. A name the table lists more than
once (``Sainte-Catherine``, ``Ville-Marie``...) is ambiguous: :func:`municipality` then
answers only when the place's region (from its postal code) keeps exactly one of them,
and otherwise none, rather than guess by population (the largest ``Ville-Marie`` is a
Montreal borough, whose clinics give their city as Montréal).

    municipality("St-Jérôme")  # Municipality(name='Saint-Jérôme', ...)
    municipality("Ville-Marie", Region.ABITIBI_TEMISCAMINGUE)  # the town, not the borough
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from sources.geo import region_for_position
from sources.records import GeoPoint, Region

__all__ = ["TABLE", "Municipality", "municipalities", "municipality", "place_key"]

TABLE = "quebec_municipalities.tsv"
COLUMNS = ("key", "name", "latitude", "longitude", "population", "geonameid")

_ABBREVIATIONS = {"st": "saint", "ste": "sainte"}
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE"})
_WORD = re.compile(r"[a-z0-9]+")
_ASIDE = re.compile(r"\(.*?\)|,.*$")  # "Montréal (Québec)", "Laval, QC": the city alone


@dataclass(frozen=True, slots=True)
class Municipality:
    """One row of the table: a GeoNames populated place of Quebec."""

    key: str
    name: str
    latitude: float
    longitude: float
    population: int
    geonameid: int

    @property
    def point(self) -> GeoPoint:
        """Its position, marked approximate: a municipality's centre, not a clinic's door."""
        return GeoPoint(self.latitude, self.longitude, approximate=True)

    @property
    def region(self) -> Region:
        return region_for_position(self.point)


def place_key(name: str) -> str:
    """The form names are compared in: ``"Ste-Anne-des-Plaines"`` and ``"sainte anne
    des plaines"`` -> ``"sainte anne des plaines"``."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_LIGATURES))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(_ABBREVIATIONS.get(w, w) for w in _WORD.findall(plain))


@cache
def municipalities() -> dict[str, tuple[Municipality, ...]]:
    """The table by :func:`place_key`, read once (the first call), most populous first."""
    text = resources.files("sources.places").joinpath(TABLE).read_text(encoding="utf-8")
    table: dict[str, list[Municipality]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or line.startswith("key\t"):
            continue
        key, name, latitude, longitude, population, geonameid = line.split("\t")
        row = Municipality(
            key, name, float(latitude), float(longitude), int(population), int(geonameid)
        )
        table.setdefault(key, []).append(row)
    return {
        key: tuple(sorted(rows, key=lambda m: (-m.population, m.geonameid)))
        for key, rows in table.items()
    }


@lru_cache(maxsize=4096)
def municipality(city: str | None, region: Region | None = None) -> Municipality | None:
    """The municipality named ``city``; None when the table does not have it, or lists it
    more than once and ``region`` does not tell which (see the module docstring)."""
    if not city:
        return None
    found = municipalities().get(place_key(_ASIDE.sub(" ", city)), ())
    if len(found) > 1 and region is not None:
        found = tuple(m for m in found if m.region is region)
    return found[0] if len(found) == 1 else None
