"""The callback URL and address rules."""

from __future__ import annotations

import ipaddress

import pytest

from resolvers.webhooks import ROUNDING_KM_AT_45N, rounding_km, stored_filter
from sources.records import GeoPoint
from sources.webhooks import CallbackRefused, check_callback_url, refused_address


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "0.0.0.0", "169.254.169.254",
        "100.64.0.1", "100.127.255.254", "224.0.0.1", "255.255.255.255", "::1", "::",
        "fe80::1", "fc00::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
        "2002:0a00:0001::1", "fec0::1",
    ],
)  # fmt: skip
def test_inside_addresses_are_refused(address: str) -> None:
    assert refused_address(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refused_address(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example/a", "must be https"),
        ("https:///a", "no host"),
        ("https://user:pw@hooks.example/a", "user or password"),
        ("https://10.0.0.7/a", "private address"),
        ("https://[::ffff:127.0.0.1]/a", "IPv6 address embedding"),
        ("https://100.64.1.1/a", "CGNAT"),
        ("https://localhost/a", "local name"),
        ("https://hooks.example/" + "a" * 2100, "longer than 2048"),
        ("not a url", "must be https"),
    ],
)
def test_bad_callback_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason):
        check_callback_url(url)


def test_an_allowed_host_lifts_only_the_address_rule() -> None:
    assert check_callback_url("https://127.0.0.1:8443/h", {"127.0.0.1"}).port == 8443
    with pytest.raises(CallbackRefused, match="https"):
        check_callback_url("http://127.0.0.1:8443/h", {"127.0.0.1"})


def test_the_point_is_kept_rounded_and_the_documented_distance_holds() -> None:
    kept = stored_filter({"near": GeoPoint(45.50174, -73.56731), "radius_km": 5.0})
    assert kept == {"near": [45.5, -73.57], "radius_km": 5.0}
    # Quebec's southern edge is where rounding moves a point farthest.
    assert rounding_km(45.0) == pytest.approx(ROUNDING_KM_AT_45N, abs=0.005)
    assert rounding_km(50.0) < rounding_km(45.0) < 0.7
