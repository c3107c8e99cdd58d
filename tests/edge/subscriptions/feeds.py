"""A bulk feed that republishes, near the whereabouts the tests subscribe with: what
makes the slot alerts of a test (``publisher.add(3)``: three new free slots)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from examples.demo_ssl import build_app
from examples.demo_ssl.publisher import Publisher
from examples.world import World
from sources.base import SourceConfig
from sources.geo import GeoPoint, distance_km
from sources.records import SourceProtocol
from sources.smart_scheduling.adapter import SmartSchedulingSource
from tests.conftest import TEST_NOW, serve
from tests.edge.subscriptions.wire import LATITUDE, LONGITUDE

RADIUS_KM = 25
# Near the tests' whereabouts, over every day the publisher may add a slot to.
FILTER: dict[str, Any] = {
    "near": {"latitude": LATITUDE, "longitude": LONGITUDE},
    "radiusKm": RADIUS_KM,
    "startsAfter": TEST_NOW.isoformat(),
    "startsBefore": (TEST_NOW + timedelta(days=15)).isoformat(),
}


def fast_feeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bulk feeds polled every 100 ms (the once-a-minute rule off), for this test."""
    monkeypatch.setattr(SmartSchedulingSource, "MIN_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(SmartSchedulingSource, "DEFAULT_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(SmartSchedulingSource, "MIN_FILE_INTERVAL_S", 0.0)


@contextlib.asynccontextmanager
async def nearby_feed(
    world: World, directory: Path
) -> AsyncIterator[tuple[Publisher, SourceConfig]]:
    """The demo publisher of the SMART Scheduling Links clinics within ``RADIUS_KM`` of
    the tests' whereabouts, served on loopback, and its source's definition."""
    here = GeoPoint(LATITUDE, LONGITUDE)
    nearby = [
        c
        for c in world.clinics_for("ssl")
        if distance_km(here, GeoPoint(c.latitude, c.longitude)) <= RADIUS_KM
    ]
    assert len(nearby) >= 2
    publisher = Publisher(world, directory, clinics=nearby)
    async with serve(build_app(publisher, max_age_s=0)) as feed:
        yield (
            publisher,
            SourceConfig(
                id="demo-ssl",
                name="Demo SSL",
                protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
                url=str(feed.make_url("/$bulk-publish")),
            ),
        )
