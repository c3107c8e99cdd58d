"""Where a location is, as the gateway serves it: one rule for every adapter.

:func:`locate` takes what an upstream says of a place (postal code, province or state,
country, city, position) and decides, first decisive step wins:

1. outside Quebec (``sources.quebec``: the postal code, else the country, else the
   province, else the position): not served, and never given a Quebec region;
2. its own position: served, positioned;
3. nothing says it is in Quebec (no postal code, province, country or position): not
   served, as a record that cannot be placed; a city name alone never makes a place
   Quebec's (there is a Laval in France, a Sherbrooke in Nova Scotia);
4. in Quebec, its city in the table of municipalities (``municipalities``): served at
   the municipality's centre, a position marked ``approximate``;
5. in Quebec otherwise: served by every search but ``near``, without a position.

    locate("G1R 4P5", "QC", None, "Québec", None).kind  # PlaceKind.APPROXIMATE
    locate("07102", "NJ", "US", "Newark", GeoPoint(40.73, -74.17)).kind  # OUTSIDE_QUEBEC
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sources.geo import region_for_postal_code
from sources.places.municipalities import municipality
from sources.quebec import in_quebec
from sources.records import GeoPoint

__all__ = ["Place", "PlaceKind", "locate"]


class PlaceKind(enum.Enum):
    OUTSIDE_QUEBEC = "OUTSIDE_QUEBEC"
    UNKNOWN = "UNKNOWN"
    POSITIONED = "POSITIONED"
    APPROXIMATE = "APPROXIMATE"
    NO_POSITION = "NO_POSITION"


@dataclass(frozen=True, slots=True)
class Place:
    """The rule's decision, and the position to serve (None without one)."""

    kind: PlaceKind
    position: GeoPoint | None = None

    @property
    def served(self) -> bool:
        return self.kind not in (PlaceKind.OUTSIDE_QUEBEC, PlaceKind.UNKNOWN)


_OUTSIDE = Place(PlaceKind.OUTSIDE_QUEBEC)
_UNKNOWN = Place(PlaceKind.UNKNOWN)
_NO_POSITION = Place(PlaceKind.NO_POSITION)


def locate(
    postal_code: str | None,
    state: str | None,
    country: str | None,
    city: str | None,
    position: GeoPoint | None,
) -> Place:
    """The module's rule; ``position`` is the upstream's own, when it gave one."""
    quebec = in_quebec(postal_code, state, country, position)
    if quebec is False:
        return _OUTSIDE
    if position is not None:
        return Place(PlaceKind.POSITIONED, position)
    if quebec is None:
        return _UNKNOWN
    found = municipality(city, region_for_postal_code(postal_code))
    if found is None:
        return _NO_POSITION
    return Place(PlaceKind.APPROXIMATE, found.point)
