"""Geography: distances, and the region of a clinic from its postal code or position.

Canadian postal codes start with a forward sortation area (FSA, e.g. ``H2X``)
that maps to a Quebec administrative region closely enough to fill in
``Region`` when a booking system does not say. The table below resolves by the
longest matching prefix (3, then 2, then 1 characters). Where a postal code is
missing or unknown, the nearest regional anchor city decides.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from functools import lru_cache

from sources.records import GeoPoint, Region

EARTH_RADIUS_KM = 6371.0088

_R = Region
# Longest prefix wins. Rural FSAs (second character 0) straddle regions; each is
# assigned to the region that holds most of its population.
_FSA_REGIONS: dict[str, Region] = {
    # G: eastern Quebec
    "G": _R.CAPITALE_NATIONALE,
    "G0A": _R.CAPITALE_NATIONALE,
    "G0C": _R.GASPESIE_ILES_DE_LA_MADELEINE,
    "G0E": _R.GASPESIE_ILES_DE_LA_MADELEINE,
    "G0G": _R.COTE_NORD,
    "G0H": _R.COTE_NORD,
    "G0J": _R.BAS_SAINT_LAURENT,
    "G0K": _R.BAS_SAINT_LAURENT,
    "G0L": _R.BAS_SAINT_LAURENT,
    "G0M": _R.CHAUDIERE_APPALACHES,
    "G0N": _R.CHAUDIERE_APPALACHES,
    "G0P": _R.CENTRE_DU_QUEBEC,
    "G0R": _R.CHAUDIERE_APPALACHES,
    "G0S": _R.CHAUDIERE_APPALACHES,
    "G0T": _R.CAPITALE_NATIONALE,
    "G0V": _R.SAGUENAY_LAC_SAINT_JEAN,
    "G0W": _R.SAGUENAY_LAC_SAINT_JEAN,
    "G0X": _R.MAURICIE,
    "G0Y": _R.ESTRIE,
    "G0Z": _R.CENTRE_DU_QUEBEC,
    "G1": _R.CAPITALE_NATIONALE,
    "G2": _R.CAPITALE_NATIONALE,
    "G3": _R.CAPITALE_NATIONALE,
    "G4R": _R.COTE_NORD,
    "G4S": _R.COTE_NORD,
    "G4Z": _R.COTE_NORD,
    "G4T": _R.GASPESIE_ILES_DE_LA_MADELEINE,
    "G4V": _R.GASPESIE_ILES_DE_LA_MADELEINE,
    "G4X": _R.GASPESIE_ILES_DE_LA_MADELEINE,
    "G4W": _R.BAS_SAINT_LAURENT,
    "G5": _R.BAS_SAINT_LAURENT,
    "G5B": _R.GASPESIE_ILES_DE_LA_MADELEINE,
    "G5C": _R.COTE_NORD,
    "G5V": _R.CHAUDIERE_APPALACHES,
    "G5X": _R.CHAUDIERE_APPALACHES,
    "G5Y": _R.CHAUDIERE_APPALACHES,
    "G5Z": _R.CHAUDIERE_APPALACHES,
    "G6": _R.CHAUDIERE_APPALACHES,
    "G6B": _R.ESTRIE,
    "G6P": _R.CENTRE_DU_QUEBEC,
    "G6R": _R.CENTRE_DU_QUEBEC,
    "G6S": _R.CENTRE_DU_QUEBEC,
    "G6T": _R.CENTRE_DU_QUEBEC,
    "G7": _R.SAGUENAY_LAC_SAINT_JEAN,
    "G8": _R.SAGUENAY_LAC_SAINT_JEAN,
    "G8P": _R.NORD_DU_QUEBEC,
    "G8T": _R.MAURICIE,
    "G8V": _R.MAURICIE,
    "G8W": _R.MAURICIE,
    "G8Y": _R.MAURICIE,
    "G8Z": _R.MAURICIE,
    "G9": _R.MAURICIE,
    "G9H": _R.CENTRE_DU_QUEBEC,
    # H: Montreal and Laval
    "H": _R.MONTREAL,
    "H7": _R.LAVAL,
    # J: western and southern Quebec
    "J": _R.MONTEREGIE,
    "J0A": _R.CENTRE_DU_QUEBEC,
    "J0B": _R.ESTRIE,
    "J0C": _R.CENTRE_DU_QUEBEC,
    "J0E": _R.ESTRIE,
    "J0G": _R.CENTRE_DU_QUEBEC,
    "J0K": _R.LANAUDIERE,
    "J0M": _R.NORD_DU_QUEBEC,
    "J0N": _R.LAURENTIDES,
    "J0R": _R.LAURENTIDES,
    "J0T": _R.LAURENTIDES,
    "J0V": _R.OUTAOUAIS,
    "J0W": _R.LAURENTIDES,
    "J0X": _R.OUTAOUAIS,
    "J0Y": _R.ABITIBI_TEMISCAMINGUE,
    "J0Z": _R.ABITIBI_TEMISCAMINGUE,
    "J1": _R.ESTRIE,
    "J2A": _R.CENTRE_DU_QUEBEC,
    "J2B": _R.CENTRE_DU_QUEBEC,
    "J2C": _R.CENTRE_DU_QUEBEC,
    "J2E": _R.CENTRE_DU_QUEBEC,
    "J5T": _R.LANAUDIERE,
    "J5W": _R.LANAUDIERE,
    "J5X": _R.LANAUDIERE,
    "J5Y": _R.LANAUDIERE,
    "J5Z": _R.LANAUDIERE,
    "J6A": _R.LANAUDIERE,
    "J6E": _R.LANAUDIERE,
    "J6V": _R.LANAUDIERE,
    "J6W": _R.LANAUDIERE,
    "J6X": _R.LANAUDIERE,
    "J6Y": _R.LANAUDIERE,
    "J7K": _R.LANAUDIERE,
    "J7A": _R.LAURENTIDES,
    "J7B": _R.LAURENTIDES,
    "J7C": _R.LAURENTIDES,
    "J7E": _R.LAURENTIDES,
    "J7G": _R.LAURENTIDES,
    "J7H": _R.LAURENTIDES,
    "J7J": _R.LAURENTIDES,
    "J7M": _R.LAURENTIDES,
    "J7N": _R.LAURENTIDES,
    "J7P": _R.LAURENTIDES,
    "J7R": _R.LAURENTIDES,
    "J7Y": _R.LAURENTIDES,
    "J7Z": _R.LAURENTIDES,
    "J8": _R.OUTAOUAIS,
    "J8A": _R.LAURENTIDES,
    "J8B": _R.LAURENTIDES,
    "J8C": _R.LAURENTIDES,
    "J8E": _R.LAURENTIDES,
    "J8H": _R.LAURENTIDES,
    "J9": _R.ABITIBI_TEMISCAMINGUE,
    "J9A": _R.OUTAOUAIS,
    "J9B": _R.OUTAOUAIS,
    "J9E": _R.OUTAOUAIS,
    "J9H": _R.OUTAOUAIS,
    "J9J": _R.OUTAOUAIS,
    "J9L": _R.LAURENTIDES,
}

# A few anchor cities per region, for clinics that give a position but no
# usable postal code: the nearest anchor's region is taken.
_ANCHORS: tuple[tuple[float, float, Region], ...] = (
    (48.449, -68.524, _R.BAS_SAINT_LAURENT),
    (47.835, -69.536, _R.BAS_SAINT_LAURENT),
    (48.428, -71.068, _R.SAGUENAY_LAC_SAINT_JEAN),
    (48.550, -71.650, _R.SAGUENAY_LAC_SAINT_JEAN),
    (46.813, -71.208, _R.CAPITALE_NATIONALE),
    (47.440, -70.500, _R.CAPITALE_NATIONALE),
    (46.343, -72.543, _R.MAURICIE),
    (46.566, -72.745, _R.MAURICIE),
    (45.404, -71.893, _R.ESTRIE),
    (45.267, -72.149, _R.ESTRIE),
    (45.502, -73.567, _R.MONTREAL),
    (45.450, -73.750, _R.MONTREAL),
    (45.477, -75.701, _R.OUTAOUAIS),
    (46.380, -75.970, _R.OUTAOUAIS),
    (48.239, -79.019, _R.ABITIBI_TEMISCAMINGUE),
    (48.097, -77.783, _R.ABITIBI_TEMISCAMINGUE),
    (50.218, -66.381, _R.COTE_NORD),
    (49.217, -68.150, _R.COTE_NORD),
    (49.913, -74.366, _R.NORD_DU_QUEBEC),
    (53.800, -77.000, _R.NORD_DU_QUEBEC),
    (48.831, -64.487, _R.GASPESIE_ILES_DE_LA_MADELEINE),
    (47.380, -61.860, _R.GASPESIE_ILES_DE_LA_MADELEINE),
    (46.803, -71.177, _R.CHAUDIERE_APPALACHES),
    (46.118, -70.670, _R.CHAUDIERE_APPALACHES),
    (45.606, -73.712, _R.LAVAL),
    (46.021, -73.440, _R.LANAUDIERE),
    (45.700, -73.640, _R.LANAUDIERE),
    (45.780, -74.003, _R.LAURENTIDES),
    (46.118, -74.596, _R.LAURENTIDES),
    (45.537, -73.510, _R.MONTEREGIE),
    (45.307, -73.262, _R.MONTEREGIE),
    (46.055, -72.080, _R.CENTRE_DU_QUEBEC),
    (45.880, -72.484, _R.CENTRE_DU_QUEBEC),
)

_POSTAL_RE = re.compile(r"^[A-Z]\d[A-Z]\s?\d[A-Z]\d$")


@lru_cache(maxsize=65536)
def normalize_postal_code(text: str | None) -> str | None:
    """``"h2x 1y4"`` -> ``"H2X 1Y4"``; anything that is not a Canadian postal code -> None."""
    if not text:
        return None
    compact = re.sub(r"[\s-]", "", text.upper())
    if not _POSTAL_RE.match(compact):
        return None
    return f"{compact[:3]} {compact[3:]}"


# A point prepared for many distance computations: (latitude in radians, its
# cosine, longitude in degrees).
Prepared = tuple[float, float, float]


def prepare(point: GeoPoint) -> Prepared:
    latitude = math.radians(point.latitude)
    return (latitude, math.cos(latitude), point.longitude)


def distance_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle (haversine) distance between two points, in kilometres."""
    return distances_km(a, (prepare(b),))[0]


def distances_km(origin: GeoPoint, points: Iterable[Prepared]) -> list[float]:
    """``distance_km`` from ``origin`` to many prepared points, to the last bit the same."""
    lat1, cos1, lon1 = prepare(origin)
    sin, asin, sqrt, radians = math.sin, math.asin, math.sqrt, math.radians
    out = []
    for lat2, cos2, lon2 in points:
        h = sin((lat2 - lat1) / 2) ** 2 + cos1 * cos2 * sin(radians(lon2 - lon1) / 2) ** 2
        out.append(2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h))))
    return out


def region_for_postal_code(postal_code: str | None) -> Region | None:
    """The region of a Quebec postal code, or None when it is not a Quebec code."""
    code = normalize_postal_code(postal_code)
    if code is None or code[0] not in "GHJ":
        return None
    for length in (3, 2, 1):
        region = _FSA_REGIONS.get(code[:length])
        if region is not None:
            return region
    return None  # pragma: no cover - every G/H/J prefix has a 1-letter default


def region_for_position(point: GeoPoint) -> Region:
    """The region of the nearest anchor city."""
    return min(_ANCHORS, key=lambda a: distance_km(point, GeoPoint(a[0], a[1])))[2]


def infer_region(postal_code: str | None, location: GeoPoint | None) -> Region | None:
    """Region from the postal code, else from the position; None when neither is usable."""
    region = region_for_postal_code(postal_code)
    if region is None and location is not None:
        region = region_for_position(location)
    return region


def valid_point(latitude: object, longitude: object) -> GeoPoint | None:
    """A GeoPoint when both values are finite numbers in range, else None."""
    if isinstance(latitude, bool) or isinstance(longitude, bool):
        return None
    if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
        return None
    lat, lon = float(latitude), float(longitude)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return GeoPoint(lat, lon)
