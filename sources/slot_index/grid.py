"""A latitude/longitude grid over clinic positions, for radius searches.

``ClinicGrid.within`` answers exactly as ``sources.geo.distance_km`` does (the
federation re-checks with it): the grid only narrows the candidates to a
bounding box that holds the whole circle, then each candidate is measured
with the same haversine inlined on precomputed radians, and any clinic within
a hair of the radius is measured again with ``distance_km`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sources.geo import EARTH_RADIUS_KM, distance_km
from sources.records import GeoPoint

CELL_DEG = 0.1
# The bounding box is widened by this much (relative and absolute, in degrees)
# so that rounding can never exclude a point distance_km puts inside the circle.
_SLACK = 1e-6
# Inlined distances this close to the radius (relative, and absolute in km) are
# left to distance_km: the two may round differently in the last bits.
_DOUBT = 1e-9


# (clinic number, latitude, longitude, latitude in radians, its cosine)
_Place = tuple[int, float, float, float, float]


class ClinicGrid:
    """Positions (by clinic number) bucketed in ``CELL_DEG`` cells; immutable."""

    __slots__ = ("_all", "_cells", "_lon_max", "_lon_min", "_points")

    def __init__(self, points: Iterable[tuple[int, GeoPoint]]) -> None:
        cells: dict[tuple[int, int], list[_Place]] = {}
        self._points: dict[int, GeoPoint] = {}
        for number, point in points:
            self._points[number] = point
            lat, lon = point.latitude, point.longitude
            cell = (math.floor(lat / CELL_DEG), math.floor(lon / CELL_DEG))
            radians = math.radians(lat)
            place = (number, lat, lon, radians, math.cos(radians))
            cells.setdefault(cell, []).append(place)
        self._cells = {k: tuple(v) for k, v in cells.items()}
        self._all = tuple(sorted(self._points))
        longitudes = [p.longitude for p in self._points.values()]
        self._lon_min = min(longitudes, default=0.0)
        self._lon_max = max(longitudes, default=0.0)

    def within(self, near: GeoPoint, radius_km: float | None) -> list[int]:
        """Clinics at most ``radius_km`` from ``near`` (any located one when None)."""
        if radius_km is None:
            return list(self._all)
        return sorted(self.measured(near, radius_km))

    def measured(self, near: GeoPoint, radius_km: float) -> dict[int, float]:
        """Clinics at most ``radius_km`` from ``near``, each with its distance: the one
        ``distance_km`` gives, to the last bit (the same operations, in the same order)."""
        if not radius_km >= 0 or not self._all:  # negative or NaN: nothing is that close
            return {}
        box = self._box(near, radius_km)
        if box is None:
            every = {n: distance_km(near, self._points[n]) for n in self._all}
            return {n: d for n, d in every.items() if d <= radius_km}
        lat1 = math.radians(near.latitude)
        cos1, lon0 = math.cos(lat1), near.longitude
        sure = radius_km * (1 - _DOUBT) - _DOUBT
        doubtful = radius_km * (1 + _DOUBT) + _DOUBT
        sin, asin, sqrt, radians = math.sin, math.asin, math.sqrt, math.radians
        diameter = 2 * EARTH_RADIUS_KM
        found: dict[int, float] = {}
        for number, _lat, lon, lat2, cos2 in self._in_box(*box):
            h = sin((lat2 - lat1) / 2) ** 2 + cos1 * cos2 * sin(radians(lon - lon0) / 2) ** 2
            distance = diameter * asin(min(1.0, sqrt(h)))
            if distance <= sure:
                found[number] = distance
            elif distance <= doubtful:
                distance = distance_km(near, self._points[number])
                if distance <= radius_km:
                    found[number] = distance
        return found

    def _box(
        self, near: GeoPoint, radius_km: float
    ) -> tuple[float, float, list[tuple[float, float]]] | None:
        """(lat_lo, lat_hi, longitude ranges) holding the circle; None: search everything."""
        angle = radius_km / EARTH_RADIUS_KM
        lat0, lon0 = near.latitude, near.longitude
        if not (math.isfinite(lat0) and math.isfinite(lon0)) or angle >= math.pi / 2:
            return None
        dlat = math.degrees(angle) * (1 + _SLACK) + _SLACK
        lat_lo, lat_hi = lat0 - dlat, lat0 + dlat
        full = [(self._lon_min, self._lon_max)]
        if lat_lo <= -90 or lat_hi >= 90:
            return lat_lo, lat_hi, full  # the circle holds a pole: every longitude
        # Widest longitude offset on a circle that holds no pole (J. P. Matuschek,
        # "Finding Points Within a Distance of a Latitude/Longitude").
        reach = math.sin(angle) / math.cos(math.radians(lat0))
        if reach >= 1:
            return lat_lo, lat_hi, full
        dlon = math.degrees(math.asin(reach)) * (1 + _SLACK) + _SLACK
        ranges = []
        for shift in (-360.0, 0.0, 360.0):  # the circle may cross the antimeridian
            lo = max(lon0 - dlon + shift, self._lon_min)
            hi = min(lon0 + dlon + shift, self._lon_max)
            if lo <= hi:
                ranges.append((lo, hi))
        return lat_lo, lat_hi, ranges

    def _in_box(
        self, lat_lo: float, lat_hi: float, ranges: list[tuple[float, float]]
    ) -> list[_Place]:
        lat_cells = range(math.floor(lat_lo / CELL_DEG), math.floor(lat_hi / CELL_DEG) + 1)
        cells = self._cells
        found: list[_Place] = []
        for lon_lo, lon_hi in ranges:
            lon_cells = range(math.floor(lon_lo / CELL_DEG), math.floor(lon_hi / CELL_DEG) + 1)
            if len(lat_cells) * len(lon_cells) <= len(cells):
                keys: Iterable[tuple[int, int]] = (
                    (a, o) for a in lat_cells for o in lon_cells if (a, o) in cells
                )
            else:
                keys = (k for k in cells if k[0] in lat_cells and k[1] in lon_cells)
            for key in keys:
                found.extend(
                    p for p in cells[key] if lat_lo <= p[1] <= lat_hi and lon_lo <= p[2] <= lon_hi
                )
        return found
