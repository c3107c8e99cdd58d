"""The shortcuts of the FHIR reading (issue 17 item 1) read exactly as the long way did:
plain booking links without yarl, references and phones once per text, Locations and
physicians once per content across calls, each with its per-call side effects."""

from __future__ import annotations

import random
import string
from typing import Any

from yarl import URL

from sources.fhir import found as found_module
from sources.fhir.found import Found
from sources.fhir.resources import (
    _PLAIN_WEB_LINK,
    BOOKING_DEEP_LINK_URL,
    BOOKING_PHONE_URL,
    ref_id,
    refs,
    slot_booking_phone,
    slot_booking_url,
)


def by_yarl(value: str) -> str | None:
    """The reading before the shortcut: an http(s) URL with a host, as yarl parses it."""
    try:
        url = URL(value)
    except (ValueError, TypeError):
        return None
    return value if url.scheme in ("http", "https") and url.host else None


def linked(value: object) -> dict[str, Any]:
    return {"extension": [{"url": BOOKING_DEEP_LINK_URL, "valueUrl": value}]}


def test_every_link_the_shortcut_takes_is_one_yarl_reads_as_http_with_a_host() -> None:
    rng = random.Random(17)
    host_chars = string.ascii_letters + string.digits + ".-"
    taken = 0
    for _ in range(20_000):
        host = "".join(rng.choice(host_chars) for _ in range(rng.randint(1, 12)))
        path = "".join(chr(rng.randint(33, 126)) for _ in range(rng.randint(0, 16)))
        value = f"{rng.choice(('http', 'https'))}://{host}" + (
            f"/{path}" if rng.random() < 0.8 else ""
        )
        if _PLAIN_WEB_LINK.match(value):
            taken += 1
            assert by_yarl(value) == value, value
        assert slot_booking_url(linked(value)) == by_yarl(value), value
    assert taken > 10_000  # the shortcut is the common case, not a corner


def test_links_off_the_shortcut_are_still_read_by_yarl() -> None:
    for value in (
        "HTTPS://Book.example/x",
        "https://book.example:8443/x",
        "https://user@book.example/x",
        "https://bücher.example/x",
        "https://book.example/a b",
        "https://",
        "javascript:alert(1)",
        "ftp://book.example/x",
        "//book.example/x",
        "https://[::1]/x",
    ):
        assert slot_booking_url(linked(value)) == by_yarl(value), value
    assert slot_booking_url(linked(None)) is None
    assert slot_booking_url(linked("  https://book.example/x  ")) == "https://book.example/x"


def test_phones_and_references_read_the_same_each_time() -> None:
    for _ in range(2):
        assert slot_booking_phone(
            {"extension": [{"url": BOOKING_PHONE_URL, "valueString": "tel:+1-514-555-0100"}]}
        ) == ("+1-514-555-0100")
        assert (
            slot_booking_phone(
                {"extension": [{"url": BOOKING_PHONE_URL, "valueString": "call us"}]}
            )
            is None
        )
        assert ref_id({"reference": "Schedule/s-1"}, "Schedule") == "s-1"
        assert ref_id({"reference": "Schedule/s-1"}, "Location") is None
        assert ref_id({"reference": "http://x/fhir/Location/l-2/_history/3"}, "Location") == "l-2"
        assert ref_id({"reference": "Location/l-2?x=1"}, "Location") == "l-2"
        assert ref_id({"reference": "Location/"}, "Location") is None
        assert ref_id("Location/l-2", "Location") is None
        assert refs(
            [
                {"reference": "Location/a"},
                "junk",
                {"reference": "Location/a"},
                {"reference": "Location/b"},
            ],
            "Location",
        ) == ("a", "b")
        assert refs({"reference": "Location/a"}, "Location") == ("a",)


def location(lid: str, name: str | None = "Clinique du Parc", **fields: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": lid,
        "address": {"city": "Montréal", "postalCode": "H2X 1Y4", "state": "QC", "country": "CA"},
        "position": {"latitude": 45.51, "longitude": -73.57},
        **fields,
    }
    if name is not None:
        resource["name"] = name
    return resource


def found_with(*resources: dict[str, Any]) -> Found:
    found = Found("fhir-a")
    found.add({"entry": [{"resource": r} for r in resources]}, "Slot")
    return found


def test_a_location_read_again_gives_the_same_record_and_the_same_side_effects() -> None:
    first = found_with(location("l-1"), location("l-bad", name=None))
    second = found_with(location("l-1"), location("l-bad", name=None))
    for found in (first, second):
        assert found.clinic("l-1") is not None
        assert found.clinic("l-bad") is None  # no name: malformed, counted every call
        assert found.skipped["Location"] == 1
        assert set(found.places.places) == set(first.places.places)
    assert second.clinic("l-1") == first.clinic("l-1")
    renamed = found_with(location("l-1", name="Clinique du Mont"))
    record = renamed.clinic("l-1")
    assert record is not None and record.name == "Clinique du Mont"


def test_an_unknown_zone_is_noted_on_every_call_that_reads_it() -> None:
    zone = [
        {"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "Mars/Olympus"}
    ]
    for _ in range(2):
        found = found_with(location("l-z", extension=zone))
        assert found.clinic("l-z") is not None
        assert found.unknown_zones == {"l-z": "Mars/Olympus"}


def practitioner(pid: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "name": [{"family": family, "given": ["Ana"]}],
    }


def role(rid: str, pid: str, location_id: str) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": rid,
        "practitioner": {"reference": f"Practitioner/{pid}"},
        "location": [{"reference": f"Location/{location_id}"}],
    }


def test_a_physician_is_read_again_only_when_the_practitioner_or_a_role_changed() -> None:
    one = found_with(practitioner("p-1", "Roy"), role("r-1", "p-1", "l-1"))
    again = found_with(practitioner("p-1", "Roy"), role("r-1", "p-1", "l-1"))
    assert one.physician("p-1") == again.physician("p-1")
    assert again.physician("p-1").clinic_local_ids == ("l-1",)  # type: ignore[union-attr]
    moved = found_with(practitioner("p-1", "Roy"), role("r-1", "p-1", "l-2"))
    assert moved.physician("p-1").clinic_local_ids == ("l-2",)  # type: ignore[union-attr]
    renamed = found_with(practitioner("p-1", "Côté"), role("r-1", "p-1", "l-1"))
    assert renamed.physician("p-1").display_name == "Ana Côté"  # type: ignore[union-attr]
    assert found_with(role("r-1", "p-1", "l-1")).physician("p-1") is None  # no name at all


def test_the_readings_kept_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(found_module, "_MAX_READINGS", 3)
    monkeypatch.setattr(found_module, "_LOCATIONS", {})
    for i in range(10):
        assert found_with(location(f"l-{i}")).clinic(f"l-{i}") is not None
        assert len(found_module._LOCATIONS) <= 3


def test_a_schedules_actors_follow_a_role_read_after_them() -> None:
    """The clinic and physician of a Schedule, remembered for its slots, are forgotten
    when a later page brings one of its roles."""
    schedule = {
        "resourceType": "Schedule",
        "id": "s-1",
        "actor": [{"reference": "Location/l-1"}, {"reference": "PractitionerRole/r-1"}],
    }
    found = found_with(schedule, location("l-1"), practitioner("p-1", "Roy"))
    assert found._actors_of("s-1", schedule) == ("l-1", None)
    found.add({"entry": [{"resource": role("r-1", "p-1", "l-1")}]}, "Slot")
    assert found._actors_of("s-1", schedule) == ("l-1", "p-1")
