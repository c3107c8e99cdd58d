"""Water (and a neighbour's land) beside the demo's cities, where no clinic may go.

``examples.river`` says which shore of the St. Lawrence a point is on; it does not know
the estuary's own shores, lakes, or the Ottawa River, which is the border with Ontario.
This table closes that gap near the cities whose clinics' disk reaches such places: each
entry is a polygon drawn over the water (and over the land beyond it: another province,
another city), generously on its far side, so that only its near edge matters.

Sources, drawn by hand in December 2026:
- the sea's shores (the estuary at Rimouski and Baie-Comeau, the gulf at Sept-Îles,
  Gaspé's bay, Cap-aux-Meules, the Strait of Belle Isle at Blanc-Sablon) follow the
  GLOBE land mask (NOAA, public domain) as the ``global-land-mask`` package reads it, on
  a 125 m scan from each city's centre; tests/examples/test_world_map.py checks every
  clinic against that mask;
- the Ottawa River's north bank at Gatineau (Aylmer, the Chaudière, Hull, the Gatineau's
  mouth, Pointe-Gatineau, Masson), the Rivière des Mille Îles at Terrebonne
  (Bois-des-Filion, Île-des-Moulins), the Rivière des Prairies at Pierrefonds and
  Roxboro, Québec's north shore from the Old Port to the Montmorency, Lac Saint-Jean's
  shore at Roberval and Lake Memphrémagog's north end at Magog, from their known course;
  the Labrador border at Blanc-Sablon is the meridian due north of the Anse-au-Blanc-Sablon
  (the 1927 Privy Council line). The borders and rivers are checked against GeoNames'
  places on either side (tests/examples/test_world_map.py).
Coarse: each shore is a few points, so a clinic keeps ``SHORE_MARGIN_KM`` from it.
"""

from __future__ import annotations

from examples.river import Point, in_polygon, line_distance_km

Polygon = tuple[Point, ...]  # in order, closed from the last point to the first
SHORE_MARGIN_KM = 0.6

WATERS: dict[str, Polygon] = {
    # Quebec's north bank, west to east, then round the Ontario side.
    "the Ottawa River and Ontario at Gatineau": (
        (45.375, -75.900),
        (45.385, -75.850),
        (45.393, -75.806),
        (45.402, -75.770),
        (45.412, -75.735),
        (45.418, -75.722),
        (45.422, -75.712),
        (45.428, -75.705),
        (45.440, -75.697),
        (45.455, -75.683),
        (45.462, -75.655),
        (45.470, -75.620),
        (45.480, -75.580),
        (45.492, -75.540),
        (45.500, -75.500),
        (45.300, -75.500),
        (45.300, -75.900),
    ),
    # The Rivière des Mille Îles' north bank, west to east, then round Laval.
    "the Rivière des Mille Îles and Laval at Terrebonne": (
        (45.615, -73.810),
        (45.628, -73.790),
        (45.648, -73.765),
        (45.660, -73.745),
        (45.672, -73.700),
        (45.687, -73.650),
        (45.694, -73.628),
        (45.698, -73.600),
        (45.699, -73.550),
        (45.699, -73.500),
        (45.600, -73.500),
        (45.600, -73.810),
    ),
    # The Rivière des Prairies' south bank (Pierrefonds, Roxboro), west to east, then
    # round Île Bizard and Laval.
    "the Rivière des Prairies and Laval at Dollard-des-Ormeaux": (
        (45.486, -73.900),
        (45.499, -73.870),
        (45.506, -73.850),
        (45.511, -73.830),
        (45.514, -73.808),
        (45.519, -73.790),
        (45.525, -73.760),
        (45.600, -73.760),
        (45.600, -73.900),
    ),
    # From the mid-river line off the Old Port, up the north shore to the Montmorency,
    # and back down the mid-river line (south of it is examples.river's business).
    "the St. Lawrence off Québec's north shore": (
        (46.8105, -71.1915),
        (46.818, -71.199),
        (46.828, -71.200),
        (46.834, -71.202),
        (46.8415, -71.192),
        (46.849, -71.167),
        (46.859, -71.160),
        (46.866, -71.152),
        (46.874, -71.142),
        (46.885, -71.142),
        (46.895, -71.130),
        (46.900, -71.060),
        (46.850, -71.120),
    ),
    "the estuary at Rimouski": (
        (48.442, -68.620),
        (48.442, -68.585),
        (48.442, -68.565),
        (48.451, -68.558),
        (48.451, -68.531),
        (48.459, -68.524),
        (48.459, -68.517),
        (48.476, -68.510),
        (48.484, -68.504),
        (48.493, -68.497),
        (48.510, -68.480),
        (48.600, -68.450),
        (48.600, -68.620),
    ),
    "the estuary at Baie-Comeau": (
        (49.190, -68.250),
        (49.191, -68.204),
        (49.200, -68.197),
        (49.200, -68.170),
        (49.208, -68.149),
        (49.212, -68.140),
        (49.225, -68.135),
        (49.230, -68.132),
        (49.260, -68.132),
        (49.260, -68.050),
        (49.100, -68.050),
        (49.100, -68.250),
    ),
    "the bay of Sept-Îles": (
        (50.2136, -66.460),
        (50.2136, -66.403),
        (50.208, -66.396),
        (50.199, -66.384),
        (50.191, -66.368),
        (50.183, -66.361),
        (50.191, -66.354),
        (50.191, -66.340),
        (50.199, -66.333),
        (50.199, -66.300),
        (50.100, -66.300),
        (50.100, -66.460),
    ),
    "Gaspé's bay": (
        (48.876, -64.545),
        (48.867, -64.536),
        (48.867, -64.523),
        (48.859, -64.516),
        (48.859, -64.509),
        (48.850, -64.502),
        (48.850, -64.489),
        (48.842, -64.482),
        (48.842, -64.475),
        (48.8255, -64.468),
        (48.8255, -64.400),
        (48.900, -64.400),
        (48.900, -64.545),
    ),
    "the gulf round Cap-aux-Meules": (
        (47.420, -61.857),
        (47.4025, -61.866),
        (47.398, -61.848),
        (47.3755, -61.848),
        (47.371, -61.857),
        (47.3665, -61.867),
        (47.353, -61.867),
        (47.344, -61.875),
        (47.3395, -61.880),
        (47.3407, -61.920),
        (47.300, -61.920),
        (47.300, -61.780),
        (47.420, -61.780),
    ),
    "the Strait of Belle Isle at Blanc-Sablon": (
        (51.408, -57.200),
        (51.408, -57.160),
        (51.416, -57.153),
        (51.425, -57.145),
        (51.425, -57.124),
        (51.416, -57.117),
        (51.416, -57.070),
        (51.425, -57.066),
        (51.425, -57.000),
        (51.350, -57.000),
        (51.350, -57.200),
    ),
    "Labrador at Blanc-Sablon": (
        (51.410, -57.108),
        (51.600, -57.108),
        (51.600, -56.700),
        (51.410, -56.700),
    ),
    "Lac Saint-Jean at Roberval": (
        (48.470, -72.170),
        (48.500, -72.212),
        (48.517, -72.219),
        (48.535, -72.227),
        (48.555, -72.240),
        (48.600, -72.250),
        (48.700, -72.000),
        (48.450, -72.050),
    ),
    "Lake Memphrémagog at Magog": (
        (45.263, -72.145),
        (45.258, -72.162),
        (45.245, -72.185),
        (45.225, -72.205),
        (45.190, -72.225),
        (45.190, -72.150),
        (45.225, -72.130),
        (45.248, -72.128),
        (45.258, -72.135),
    ),
}


def _box(polygon: Polygon, margin_deg: float) -> tuple[float, float, float, float]:
    lats = [p[0] for p in polygon]
    lons = [p[1] for p in polygon]
    return (
        min(lats) - margin_deg,
        max(lats) + margin_deg,
        min(lons) - 2 * margin_deg,
        max(lons) + 2 * margin_deg,
    )


_BOXES = {name: _box(polygon, 0.02) for name, polygon in WATERS.items()}


def water_at(latitude: float, longitude: float, margin_km: float = 0.0) -> str | None:
    """The name of the water (or neighbour) at a point or within ``margin_km`` of it."""
    for name, polygon in WATERS.items():
        south, north, west, east = _BOXES[name]
        if not (south <= latitude <= north and west <= longitude <= east):
            continue
        if in_polygon(polygon, latitude, longitude):
            return name
        if margin_km and line_distance_km(polygon, latitude, longitude, closed=True) < margin_km:
            return name
    return None


__all__ = ["SHORE_MARGIN_KM", "WATERS", "water_at"]
