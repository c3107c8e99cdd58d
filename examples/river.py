"""A coarse polyline of the St. Lawrence, and which shore of it a point is on.

Source: drawn by hand (December 2026) from the cities' positions (GeoNames, see
``examples.quebec``) and the river's known course: Lake Saint-Francis above
Salaberry-de-Valleyfield, Lake Saint-Louis, the Lachine rapids, the river between
Montreal island and Longueuil/Brossard (the Jacques-Cartier bridge), Sorel, Lac
Saint-Pierre, Trois-Rivières (the Laviolette bridge), the Quebec bridge, mid-river between
Québec's Old Port and Lévis' ferry (the river is about 1 km wide there), then the estuary
to the Gaspé peninsula. Coarse: a point within a few hundred metres of a shore may be
put on the wrong side, and the river's width is one figure (``MIN_SHORE_KM``), not its
own at each place. The polyline runs downstream, so the north shore is on its left.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

Point = tuple[float, float]  # (latitude, longitude)
# Downstream.
ST_LAWRENCE: tuple[Point, ...] = (
    (45.100, -74.600),  # Lake Saint-Francis
    (45.220, -74.250),
    (45.290, -74.100),  # north of Salaberry-de-Valleyfield
    (45.360, -73.950),  # Lake Saint-Louis
    (45.400, -73.820),
    (45.420, -73.700),  # off Lachine, Kahnawake on the south shore
    (45.423, -73.640),  # Lachine rapids
    (45.445, -73.530),  # off Verdun and Nuns' Island, the La Prairie basin
    (45.500, -73.530),  # Old Port of Montreal / Saint-Lambert
    (45.525, -73.527),  # Jacques-Cartier bridge
    (45.555, -73.512),  # off Longueuil
    (45.600, -73.485),  # Îles de Boucherville
    (45.660, -73.462),  # Pointe-aux-Trembles / Varennes
    (45.715, -73.405),  # off Repentigny
    (45.800, -73.330),
    (45.900, -73.240),  # Contrecoeur / Lanoraie
    (46.050, -73.130),  # Sorel
    (46.150, -72.980),  # Lac Saint-Pierre
    (46.220, -72.830),
    (46.270, -72.690),
    (46.315, -72.560),  # Trois-Rivières, the Laviolette bridge
    (46.390, -72.400),  # Bécancour
    (46.540, -72.150),
    (46.650, -71.920),  # Portneuf / Lotbinière
    (46.660, -71.740),
    (46.685, -71.580),
    (46.725, -71.400),
    (46.745, -71.288),  # the Quebec bridge
    (46.772, -71.232),  # Sillery / Saint-Romuald
    (46.797, -71.204),
    (46.8105, -71.1915),  # between Québec's Old Port and Lévis' ferry
    (46.850, -71.120),
    (46.950, -70.900),  # Île d'Orléans
    (47.150, -70.600),
    (47.400, -70.250),
    (47.750, -69.850),
    (48.100, -69.300),  # Rivière-du-Loup / Tadoussac
    (48.600, -68.700),  # Rimouski
    (49.000, -67.800),  # Baie-Comeau
    (49.300, -66.500),  # Matane
    (49.600, -65.500),  # Sept-Îles
    (49.400, -64.300),  # the estuary's mouth, north of Gaspé
)
MIN_SHORE_KM = 0.6  # a point nearer the polyline than this is in the river
_KM_PER_DEG = 111.2
_WEST = min(lon for _, lon in ST_LAWRENCE)
_EAST = max(lon for _, lon in ST_LAWRENCE)
# The north half: the polyline closed by a cap far north of it.
_NORTH = (*ST_LAWRENCE, (89.0, ST_LAWRENCE[-1][1]), (89.0, ST_LAWRENCE[0][1]))


def in_polygon(polygon: Sequence[Point], latitude: float, longitude: float) -> bool:
    """Whether the point is inside the polygon (closed from its last point to its first)."""
    inside = False
    for (y1, x1), (y2, x2) in itertools.pairwise((*polygon, polygon[0])):
        if (x1 > longitude) != (x2 > longitude):
            if latitude < y1 + (longitude - x1) * (y2 - y1) / (x2 - x1):
                inside = not inside
    return inside


def line_distance_km(
    points: Sequence[Point], latitude: float, longitude: float, *, closed: bool = False
) -> float:
    """The distance to a polyline (``closed``: a polygon's edge), in an equirectangular
    plane around the point."""
    scale = math.cos(math.radians(latitude))
    best = math.inf
    ends = (*points, points[0]) if closed else points
    for (y1, x1), (y2, x2) in itertools.pairwise(ends):
        ax, ay = (x1 - longitude) * scale, y1 - latitude
        bx, by = (x2 - longitude) * scale, y2 - latitude
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, -(ax * dx + ay * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best * _KM_PER_DEG


def side(latitude: float, longitude: float) -> str | None:
    """``"north"`` or ``"south"`` of the river; None outside the longitudes it covers."""
    if not _WEST <= longitude <= _EAST:
        return None
    return "north" if in_polygon(_NORTH, latitude, longitude) else "south"


def river_distance_km(latitude: float, longitude: float) -> float:
    """The distance to the polyline (an equirectangular plane around the point)."""
    return line_distance_km(ST_LAWRENCE, latitude, longitude)


__all__ = [
    "MIN_SHORE_KM",
    "ST_LAWRENCE",
    "Point",
    "in_polygon",
    "line_distance_km",
    "river_distance_km",
    "side",
]
