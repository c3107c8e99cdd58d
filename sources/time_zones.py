"""Each Quebec clinic's time zone, as an IANA name.

Quebec keeps three kinds of time (Loi sur le temps légal, RLRQ c. T-5.1, in force since
2007; the tz database's ``northamerica`` file and ``zone1970.tab`` follow it):

- Eastern time (``America/Montreal``) west of 63° W, and in all of the MRC de Minganie
  (which straddles that meridian: Havre-Saint-Pierre, Natashquan, Anticosti);
- Atlantic time with daylight saving (``America/Halifax``) in the Îles-de-la-Madeleine,
  and in the Listuguj reserve (on the Restigouche, facing New Brunswick: too close to
  Pointe-à-la-Croix, on Eastern time, to be told by a position, so a clinic there
  should declare its zone);
- Atlantic Standard Time all year (``America/Blanc-Sablon``) elsewhere east of 63° W:
  the Basse-Côte-Nord, from Kegaska to Blanc-Sablon (Côte-Nord-du-Golfe-du-Saint-Laurent,
  Gros-Mécatina, Saint-Augustin, Bonne-Espérance, Blanc-Sablon). A local 09:00 there is
  08:00 in Montreal in winter, 09:00 in summer.

The rule, first decisive step wins:

1. the zone the upstream declares (FHIR's core extension :data:`TIMEZONE_EXTENSION_URL`
   on a ``Location``; SMART Scheduling Links Locations are FHIR's), when it is an IANA
   name this machine knows; a name it does not know is ignored (the adapters report it);
2. else the position: the Îles-de-la-Madeleine (47.1 to 47.9° N, 62.1 to 61.3° W) are
   ``America/Halifax``; the north shore of the Gulf from 50° N and east of 61.5° W (the
   Minganie ends between Natashquan, 61.8° W, and Kegaska, 61.3° W) is
   ``America/Blanc-Sablon``; anywhere else ``America/Montreal``;
3. else the postal code's forward sortation area: ``G4T`` is the Îles-de-la-Madeleine
   (the Basse-Côte-Nord shares ``G0G`` with the rest of the Côte-Nord: no answer there);
4. else the city: :data:`ATLANTIC_CITIES` (the Îles' municipalities and villages) and
   :data:`LOWER_NORTH_SHORE_CITIES` (the Basse-Côte-Nord's, east of the Minganie), each
   only with no postal code or one of its own area (``G4T``, ``G0G``): a Saint-Augustin
   also lies in the Lac-Saint-Jean, in ``G0W``;
5. else ``America/Montreal``.

Sources: the Act (LégisQuébec, T-5.1, articles 1 and 2); the tz database's comments on
Quebec (``northamerica``, "Blanc-Sablon", 2006); Canada Post's forward sortation areas;
the municipalities of the MRC Le Golfe-du-Saint-Laurent and Les Îles-de-la-Madeleine.

    time_zone_of(position=GeoPoint(47.38, -61.86))  # "America/Halifax"
    time_zone_of(postal_code="G0G 1W0", city="Blanc-Sablon")  # "America/Blanc-Sablon"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sources.geo import normalize_postal_code
from sources.names import normalize_name
from sources.timeutil import zone_info

if TYPE_CHECKING:
    from sources.records import GeoPoint

__all__ = [
    "ATLANTIC",
    "ATLANTIC_CITIES",
    "ATLANTIC_STANDARD",
    "EASTERN",
    "LOWER_NORTH_SHORE_CITIES",
    "QUEBEC_ZONES",
    "TIMEZONE_EXTENSION_URL",
    "known_zone",
    "time_zone_of",
]

TIMEZONE_EXTENSION_URL = "http://hl7.org/fhir/StructureDefinition/timezone"
EASTERN = "America/Montreal"
ATLANTIC = "America/Halifax"
ATLANTIC_STANDARD = "America/Blanc-Sablon"
# The zones this rule gives; an upstream naive time is in one of them unless declared.
QUEBEC_ZONES = (EASTERN, ATLANTIC, ATLANTIC_STANDARD)

# (south, north, west, east) in degrees.
_MAGDALEN_ISLANDS = (47.1, 47.9, -62.1, -61.3)
_LOWER_NORTH_SHORE = (50.0, 52.1, -61.5, -57.0)

# The Îles' municipalities and villages (all in G4T).
ATLANTIC_CITIES = frozenset(
    normalize_name(name)
    for name in (
        "Les Îles-de-la-Madeleine",
        "Îles-de-la-Madeleine",
        "Cap-aux-Meules",
        "L'Étang-du-Nord",
        "Fatima",
        "Havre-aux-Maisons",
        "Havre-Aubert",
        "L'Île-du-Havre-Aubert",
        "Grande-Entrée",
        "Grosse-Île",
        "L'Île-d'Entrée",
    )
)
# The Basse-Côte-Nord's municipalities, villages and reserves east of the Minganie (G0G).
LOWER_NORTH_SHORE_CITIES = frozenset(
    normalize_name(name)
    for name in (
        "Blanc-Sablon",
        "Lourdes-de-Blanc-Sablon",
        "Brador",
        "Bonne-Espérance",
        "Rivière-Saint-Paul",
        "Vieux-Fort",
        "Old Fort",
        "Middle Bay",
        "Saint-Augustin",
        "Pakuashipi",
        "Gros-Mécatina",
        "La Tabatière",
        "Mutton Bay",
        "Côte-Nord-du-Golfe-du-Saint-Laurent",
        "Tête-à-la-Baleine",
        "Harrington Harbour",
        "Chevery",
        "La Romaine",
        "Unamen Shipu",
        "Kegaska",
    )
)
# A city's zone, and the forward sortation area its postal codes are in: the name
# decides only with no postal code or one of that area.
_CITIES: dict[str, tuple[str, str]] = {
    **{name: (ATLANTIC, "G4T") for name in ATLANTIC_CITIES},
    **{name: (ATLANTIC_STANDARD, "G0G") for name in LOWER_NORTH_SHORE_CITIES},
}


def known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        zone_info(name)
    except ValueError:
        return False
    return True


def time_zone_of(
    *,
    declared: str | None = None,
    position: GeoPoint | None = None,
    postal_code: str | None = None,
    city: str | None = None,
) -> str:
    """The IANA zone of a Quebec place, by the module's rule."""
    if declared is not None and known_zone(declared):
        return declared
    if position is not None:
        return _zone_of_position(position.latitude, position.longitude)
    code = normalize_postal_code(postal_code)
    if code is not None and code.startswith("G4T"):
        return ATLANTIC
    known = _CITIES.get(normalize_name(city)) if city else None
    if known is not None and (code is None or code.startswith(known[1])):
        return known[0]
    return EASTERN


def _zone_of_position(latitude: float, longitude: float) -> str:
    if _inside(_MAGDALEN_ISLANDS, latitude, longitude):
        return ATLANTIC
    if _inside(_LOWER_NORTH_SHORE, latitude, longitude):
        return ATLANTIC_STANDARD
    return EASTERN


def _inside(box: tuple[float, float, float, float], latitude: float, longitude: float) -> bool:
    south, north, west, east = box
    return south <= latitude <= north and west <= longitude <= east
