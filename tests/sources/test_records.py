"""The records as the shared cache stores them: an approximate position survives the trip."""

from __future__ import annotations

import msgspec

from sources.records import Address, ClinicRecord, GeoPoint, Region


def test_an_approximate_position_round_trips_and_older_entries_read_as_exact() -> None:
    clinic = ClinicRecord(
        "s",
        "c1",
        "Clinique",
        Address("Rimouski", Region.BAS_SAINT_LAURENT),
        GeoPoint(48.4488, -68.524, approximate=True),
    )
    encoded = msgspec.msgpack.encode(clinic)
    assert msgspec.msgpack.decode(encoded, type=ClinicRecord) == clinic
    # An entry written before GeoPoint had ``approximate`` (a rolling upgrade).
    before = msgspec.msgpack.encode({"latitude": 45.5, "longitude": -73.6})
    assert msgspec.msgpack.decode(before, type=GeoPoint) == GeoPoint(45.5, -73.6)
    assert GeoPoint(45.5, -73.6).approximate is False
