"""ClinicGrid.measured: the clinics of a radius with their distances, each the one
``sources.geo.distance_km`` gives to the last bit (the index orders ties by it)."""

from __future__ import annotations

import random

import pytest

from sources.geo import distance_km
from sources.records import GeoPoint
from sources.slot_index.grid import ClinicGrid


def points(rng: random.Random, count: int, around: GeoPoint, spread: float) -> list[GeoPoint]:
    return [
        GeoPoint(
            max(-90.0, min(90.0, around.latitude + rng.uniform(-spread, spread))),
            around.longitude + rng.uniform(-spread, spread),
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    ("seed", "around", "spread"),
    [
        (1, GeoPoint(45.5017, -73.5673), 0.3),  # Montreal, clinics a few km apart
        (2, GeoPoint(46.8139, -71.2080), 2.0),
        (3, GeoPoint(89.5, 0.0), 1.0),  # near a pole: the box holds every longitude
        (4, GeoPoint(0.0, 179.9), 0.5),  # across the antimeridian
    ],
)
def test_measured_distances_are_distance_km_s(seed: int, around: GeoPoint, spread: float) -> None:
    rng = random.Random(seed)
    located = points(rng, 400, around, spread)
    grid = ClinicGrid(enumerate(located))
    for near in points(rng, 30, around, spread):
        for radius in (0.0, 0.5, 3.0, 10.0, 25.0, 20_000.0):
            expected = {
                n: d for n, p in enumerate(located) if (d := distance_km(near, p)) <= radius
            }
            got = grid.measured(near, radius)
            assert got == expected  # floats compared exactly
            assert grid.within(near, radius) == sorted(expected)


def test_a_clinic_exactly_on_the_circle_is_in_it() -> None:
    near, clinic = GeoPoint(45.5, -73.6), GeoPoint(45.55, -73.6)
    grid = ClinicGrid([(0, clinic)])
    radius = distance_km(near, clinic)
    assert grid.measured(near, radius) == {0: radius}
    assert grid.measured(near, radius / 2) == {}
