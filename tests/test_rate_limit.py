"""Token buckets per client key or IP, in process or shared through Redis."""

from __future__ import annotations

import ipaddress
import socket
import uuid

import pytest

from edge.rate_limit import Budget, RateLimiter, client_ip

REDIS_URL = "redis://127.0.0.1:6379/0"
BUDGET = Budget(rate=2.0, burst=3.0)


async def test_a_bucket_lets_its_burst_through_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter()
    waits = [await limiter.take("key-a", BUDGET) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.4 < waits[3] <= 0.5  # one token every 0.5 s
    assert await limiter.take("key-b", BUDGET) == 0.0  # another key has its own bucket


async def test_redis_buckets_are_shared_by_every_instance() -> None:
    namespace = f"passerelle-test:rl:{uuid.uuid4().hex}"
    one, two = RateLimiter(REDIS_URL, namespace), RateLimiter(REDIS_URL, namespace)
    waits = [await one.take("k", BUDGET), await two.take("k", BUDGET), await one.take("k", BUDGET)]
    assert waits == [0.0, 0.0, 0.0]
    assert await two.take("k", BUDGET) > 0.3  # the fourth, on either instance, waits
    await one.aclose()
    await two.aclose()


async def test_with_redis_down_the_instance_keeps_limiting_on_its_own() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limiter = RateLimiter(f"redis://127.0.0.1:{port}/0")
    waits = [await limiter.take("k", BUDGET) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0.3
    await limiter.aclose()


PROXIES = [ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "1.2.3.4, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # spoofed left part
        ("10.0.0.5", "not-an-ip, 10.0.0.7", "not-an-ip"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_the_client_ip_comes_from_x_forwarded_for_only_behind_trusted_proxies(
    peer: str | None, forwarded: str | None, expected: str
) -> None:
    assert client_ip(peer, forwarded, PROXIES) == expected
