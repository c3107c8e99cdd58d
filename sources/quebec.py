"""Whether a place is in Quebec: Passerelle serves Quebec, and only Quebec.

The rule, first decisive step wins:

1. a Canadian postal code: in Quebec when its first letter is G, H or J (Canada Post's
   letters for Quebec), outside for any other letter;
2. else a country that is not Canada (``US``, ``USA``, ``United States``...): outside;
3. else a province or state: in Quebec when it is ``QC``/``PQ``/``Québec``/``Quebec``,
   outside when it is anything else (``NJ``, ``ON``...);
4. else a position: in Quebec when it falls inside :data:`QUEBEC_OUTLINE`;
5. else unknown (None): nothing says where the place is.

:data:`QUEBEC_OUTLINE` is a coarse outline (about 40 vertices, drawn for this module from
the province's borders: the 45th parallel, the Maine and New Brunswick borders, the
Gulf with the Îles-de-la-Madeleine, the Labrador border along 52° N and the height of
land, the Hudson and James Bay coasts, the Ottawa River). It is right to a few
kilometres away from the borders and may be wrong within them (Gatineau and Ottawa face
each other across the river; Fermont and Labrador City are 15 km apart), which is why a
postal code or a province, when given, decides first.

    in_quebec("H2X 1Y4", None, None, None)  # True
    in_quebec("07001", "NJ", "US", GeoPoint(40.58, -74.27))  # False
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from sources.geo import normalize_postal_code

if TYPE_CHECKING:
    from sources.records import GeoPoint

__all__ = ["QUEBEC_OUTLINE", "in_quebec", "inside_outline"]

# (latitude, longitude), a closed ring (the last vertex joins the first).
QUEBEC_OUTLINE: tuple[tuple[float, float], ...] = (
    (45.00, -74.68),  # the St Lawrence at the 45th parallel
    (45.00, -71.50),  # Halls Stream: the end of the 45th parallel border
    (45.30, -71.08),
    (46.40, -70.05),
    (47.46, -69.22),  # Estcourt / Pohénégamook
    (47.30, -69.05),
    (48.00, -67.60),  # the Restigouche
    (48.02, -66.60),  # Chaleur Bay
    (47.95, -65.00),
    (48.15, -64.50),
    (47.00, -62.30),  # south of the Îles-de-la-Madeleine
    (47.00, -61.30),
    (49.00, -61.30),
    (51.40, -57.10),  # Blanc-Sablon
    (52.00, -57.10),
    (52.00, -66.20),  # along 52° N
    (52.70, -67.00),  # between Fermont and Labrador City
    (53.20, -67.00),
    (54.00, -67.60),
    (54.80, -66.90),  # Schefferville
    (55.30, -66.50),
    (56.50, -65.00),
    (58.50, -64.00),
    (60.40, -64.50),  # Cape Chidley
    (61.50, -69.00),  # Hudson Strait
    (62.30, -73.00),
    (62.70, -78.30),  # Ivujivik
    (60.80, -78.60),
    (58.00, -78.80),
    (55.50, -78.50),  # east of the Belcher Islands (Nunavut)
    (55.00, -79.00),
    (51.50, -79.52),  # James Bay, at the Ontario border
    (47.80, -79.52),
    (47.00, -79.45),  # Lake Timiskaming
    (46.70, -79.20),
    (46.35, -78.70),  # the Ottawa River, downstream
    (46.10, -77.60),
    (45.83, -76.95),
    (45.50, -76.35),
    (45.38, -75.85),
    (45.43, -75.70),  # Gatineau / Ottawa
    (45.50, -75.55),
    (45.57, -75.30),
    (45.60, -74.60),
    (45.56, -74.39),  # Pointe-Fortune
    (45.17, -74.36),
)

_QUEBEC_NAMES = frozenset({"qc", "pq", "que", "quebec", "province de quebec"})
_CANADA_NAMES = frozenset({"ca", "can", "canada"})


def in_quebec(
    postal_code: str | None,
    state: str | None,
    country: str | None,
    position: GeoPoint | None,
) -> bool | None:
    """The module's rule: True in Quebec, False outside, None when nothing says."""
    code = normalize_postal_code(postal_code)
    if code is not None:
        return code[0] in "GHJ"
    if country and _plain(country) not in _CANADA_NAMES:
        return False
    if state:
        return _plain(state) in _QUEBEC_NAMES
    if position is not None:
        return inside_outline(position.latitude, position.longitude)
    return None


def inside_outline(latitude: float, longitude: float) -> bool:
    """Whether the point falls inside :data:`QUEBEC_OUTLINE` (even-odd ray casting)."""
    inside = False
    previous = QUEBEC_OUTLINE[-1]
    for vertex in QUEBEC_OUTLINE:
        (lat1, lon1), (lat2, lon2) = previous, vertex
        if (lat1 > latitude) != (lat2 > latitude):
            crossing = lon1 + (latitude - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if longitude < crossing:
                inside = not inside
        previous = vertex
    return inside


def _plain(text: str) -> str:
    """``" Québec "`` -> ``"quebec"``: lower case, without accents, dots or extra spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.replace(".", "").lower().split())
