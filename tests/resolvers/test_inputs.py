"""Argument validation: each refusal is a BAD_USER_INPUT that says what to fix."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from resolvers.errors import UserInputError
from resolvers.ids import decode_slot_cursor, encode_slot_cursor, from_global_id, to_global_id
from resolvers.inputs import (
    check_first,
    check_ids,
    check_languages,
    check_point,
    check_radius,
    check_window,
)
from resolvers.slots import SlotRequest, slot_request
from schema.error_codes import ErrorCode, code_of
from sources.records import AppointmentType, GeoPoint, Region
from sources.search import SlotIdentity, SlotPosition

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def refused(call: object, *args: object) -> str:
    with pytest.raises(UserInputError) as caught:
        call(*args)  # type: ignore[operator]
    assert code_of(caught.value) is ErrorCode.BAD_USER_INPUT
    return caught.value.message


def test_window_defaults_to_now_and_seven_days() -> None:
    assert check_window(NOW, None, None) == (NOW, NOW + 7 * DAY)


def test_window_never_starts_in_the_past() -> None:
    assert check_window(NOW, NOW - DAY, NOW + DAY) == (NOW, NOW + DAY)


def test_window_default_end_follows_a_later_start() -> None:
    assert check_window(NOW, NOW + 10 * DAY, None) == (NOW + 10 * DAY, NOW + 17 * DAY)


@pytest.mark.parametrize(
    ("after", "before", "message"),
    [
        (NOW + DAY, NOW, "startsBefore must be later than startsAfter"),
        (NOW, NOW + 32 * DAY, "must not exceed 31 days"),
        (datetime(9999, 12, 30, tzinfo=UTC), None, "startsAfter must be within 366 days"),
        (None, datetime(9999, 12, 30, tzinfo=UTC), "startsBefore must be within 366 days"),
        (NOW - 3 * DAY, NOW - DAY, "startsBefore is in the past"),
    ],
)
def test_bad_windows_are_refused(
    after: datetime | None, before: datetime | None, message: str
) -> None:
    assert message in refused(check_window, NOW, after, before)


def test_radius_defaults_to_25_km_with_near_and_needs_near() -> None:
    point = GeoPoint(45.5, -73.6)
    assert check_radius(point, None) == 25
    assert check_radius(None, None) is None
    assert "radiusKm needs near" in refused(check_radius, None, 5.0)
    assert "between 0 and 200" in refused(check_radius, point, 201.0)
    assert "between 0 and 200" in refused(check_radius, point, 0.0)
    assert "between 0 and 200" in refused(check_radius, point, float("nan"))


def test_points_must_be_on_earth() -> None:
    assert check_point(GeoPoint(45.5, -73.6)) == GeoPoint(45.5, -73.6)
    assert "latitude" in refused(check_point, GeoPoint(91.0, 0.0))
    assert "longitude" in refused(check_point, GeoPoint(0.0, -181.0))
    assert "latitude" in refused(check_point, GeoPoint(float("inf"), 0.0))


def test_first_is_capped_at_100() -> None:
    assert check_first(None, 20, "slots") == 20
    assert check_first(0, 20, "slots") == 0
    assert refused(check_first, 101, 20, "slots") == (
        "first must be between 0 and 100, got 101 (on slots)"
    )
    assert refused(check_first, -1, 20, "slots") == (
        "first must be between 0 and 100, got -1 (on slots)"
    )


def test_languages_are_normalized_to_primary_tags() -> None:
    assert check_languages(["FR", "en-CA"]) == frozenset({"fr", "en"})
    assert check_languages(None) is None
    assert "not a language code" in refused(check_languages, ["français"])
    assert "at most 20" in refused(check_languages, ["fr"] * 21)


def test_ids_must_be_ours_and_of_the_right_type() -> None:
    clinic = to_global_id("Clinic", "i:urn:x|1")
    assert check_ids([clinic, clinic], "Clinic", "clinicIds") == ("i:urn:x|1",)
    physician = to_global_id("Physician", "i:urn:y|2")
    assert "expects Clinic ids" in refused(check_ids, [physician], "Clinic", "clinicIds")
    assert "not a valid id" in refused(check_ids, ["%%%"], "Clinic", "clinicIds")
    assert "not a valid id" in refused(from_global_id, to_global_id("User", "1"))


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    identity = SlotIdentity("i:urn:x|1", None, NOW, NOW + DAY, AppointmentType.ROUTINE)
    position = SlotPosition(NOW, 1.5, identity, 40)
    assert decode_slot_cursor(encode_slot_cursor(position, "f"), "f") == position
    resume = SlotPosition(NOW, -1.0, None, 0)
    assert decode_slot_cursor(encode_slot_cursor(resume, "f"), "f") == resume
    for bad in (
        SlotPosition(NOW, 1.5, identity, 2**40),  # offset past Int
        SlotPosition(datetime(9999, 1, 1, tzinfo=UTC), None, identity, 1),
    ):
        assert "not a valid cursor" in refused(
            decode_slot_cursor, encode_slot_cursor(bad, "f"), "f"
        )
    assert "not a valid cursor" in refused(decode_slot_cursor, "bm90LWpzb24", "f")
    assert "not a valid cursor" in refused(decode_slot_cursor, "", "f")


# A cursor as the gateway wrote them before they carried their search's fingerprint.
OLD_CURSOR = (
    "WyJzIiwiMjAyNi0xMS0yNVQxMjowMDowMCswMDowMCIsMS41LFsiYyIsIiIsMTAsMjAsIlJPVVRJTkUiXSw0MF0"
)


def test_a_cursor_of_another_search_or_from_before_fingerprints_says_to_start_again() -> None:
    position = SlotPosition(NOW, 1.5, None, 40)
    message = refused(decode_slot_cursor, encode_slot_cursor(position, "near"), "region")
    assert message == "after is a cursor of a search with other filters; start again without after"
    assert refused(decode_slot_cursor, OLD_CURSOR, "region") == (
        "after is a cursor from an earlier version of the gateway; start again without after"
    )


def _forged(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-14:00"])
def test_an_instant_that_overflows_in_utc_is_a_bad_id_or_cursor_never_a_crash(
    instant: str,
) -> None:
    identity = orjson.dumps(["c", None, instant, instant, "ROUTINE"]).decode()
    assert SlotIdentity.decode(identity) is None
    for cursor in (
        _forged(["s", instant, None, None, 0, "f"]),
        _forged(["s", NOW.isoformat(), None, identity, 0, "f"]),
    ):
        assert "not a valid cursor" in refused(decode_slot_cursor, cursor, "f")


FILTER_FIELDS = (
    "near radius_km region starts_after starts_before "
    "appointment_types languages clinic_ids physician_ids"
).split()


def request(now: datetime = NOW, first: int | None = None, **given: Any) -> SlotRequest:
    return slot_request(now, first, **(dict.fromkeys(FILTER_FIELDS) | given))


def test_a_search_keeps_its_fingerprint_while_its_default_window_moves() -> None:
    page_one, page_two = request(NOW), request(NOW + timedelta(minutes=3), first=5)
    assert page_one.query.starts_after != page_two.query.starts_after
    assert page_one.fingerprint == page_two.fingerprint
    near = GeoPoint(45.5, -73.6)
    assert request(near=near).fingerprint == request(near=near, radius_km=25.0).fingerprint


@pytest.mark.parametrize(
    "other",
    [
        {"near": GeoPoint(45.5, -73.6)},
        {"region": Region.MONTREAL},
        {"starts_before": NOW + 2 * DAY},
        {"starts_after": NOW + DAY},
        {"appointment_types": [AppointmentType.URGENT]},
        {"languages": ["en"]},
        {"clinic_ids": [to_global_id("Clinic", "i:urn:x|1")]},
    ],
)
def test_other_filters_make_another_fingerprint(other: dict[str, object]) -> None:
    assert request(**other).fingerprint != request().fingerprint
