"""Token buckets per client key or IP, in process or shared through Redis."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid

import pytest
from aiohttp.test_utils import TestServer

from edge.middleware.rate_limit import Budget, RateLimiter, client_ip
from sources.kv import RedisLink
from sources.registry.partners import PartnerStore
from tests.conftest import Gateway, GatewayFactory, fhir_definition
from tests.ports import REDIS_URL, free_port

BUDGET = Budget(rate=2.0, burst=3.0)


async def test_a_bucket_lets_its_burst_through_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter()
    waits = [await limiter.take("key-a", BUDGET) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.4 < waits[3] <= 0.5  # one token every 0.5 s
    assert await limiter.take("key-b", BUDGET) == 0.0  # another key has its own bucket


async def test_redis_buckets_are_shared_by_every_instance() -> None:
    namespace = f"passerelle-test:rl:{uuid.uuid4().hex}"
    links = [RedisLink.from_url(REDIS_URL), RedisLink.from_url(REDIS_URL)]
    one, two = (RateLimiter(link, namespace) for link in links)
    waits = [await one.take("k", BUDGET), await two.take("k", BUDGET), await one.take("k", BUDGET)]
    assert waits == [0.0, 0.0, 0.0]
    assert await two.take("k", BUDGET) > 0.3  # the fourth, on either instance, waits
    for link in links:
        await link.aclose()


async def test_with_redis_down_the_instance_keeps_limiting_on_its_own() -> None:
    link = RedisLink.from_url(f"redis://127.0.0.1:{free_port()}/0")
    limiter = RateLimiter(link)
    waits = [await limiter.take("k", BUDGET) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0.3
    assert not link.available  # paused after the first failure, for every user of it
    await link.aclose()


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


# -- through a live gateway ------------------------------------------------------------------

QUERY = {"query": "{ sources { id } }"}


async def statuses(gw: Gateway, count: int, headers: dict[str, str]) -> list[int]:
    async def one() -> int:
        async with gw.session.post(gw.url, json=QUERY, headers=headers) as response:
            if response.status == 429:
                body = await response.json()
                assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
                assert int(response.headers["Retry-After"]) >= 1
            return response.status

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def test_a_flooding_key_is_held_to_its_budget_while_another_is_served(
    gateway_for: GatewayFactory, fhir_server: TestServer, registry_url: str
) -> None:
    with PartnerStore(registry_url) as store:
        _, flooder = store.create_client("flooder", rate_limit_rps=2)
        _, calm = store.create_client("calm", rate_limit_rps=50)
    async with gateway_for(fhir_definition(fhir_server), env="production") as gw:
        flood = await statuses(gw, 20, {"Authorization": f"Bearer {flooder}"})
        served = await statuses(gw, 20, {"Authorization": f"Bearer {calm}"})
    assert flood.count(200) == 4 and flood.count(429) == 16  # burst of twice 2/s
    assert served == [200] * 20


async def test_anonymous_clients_are_limited_per_address_in_production(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    async with gateway_for(
        fhir_definition(fhir_server), env="production", anonymous_rate=1.0
    ) as gw:
        first = await statuses(gw, 4, {})
    assert sorted(first) == [200, 200, 429, 429]


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    loopback = (ipaddress.ip_network("127.0.0.1/32"),)
    async with gateway_for(
        fhir_definition(fhir_server), anonymous_rate=0.5, trusted_proxies=loopback
    ) as gw:
        a = await statuses(gw, 2, {"X-Forwarded-For": "198.51.100.1"})
        b = await statuses(gw, 2, {"X-Forwarded-For": "198.51.100.2"})
    assert sorted(a) == sorted(b) == [200, 429]  # one bucket per forwarded address


async def test_no_limit_in_development_unless_configured(gateway: Gateway) -> None:
    assert await statuses(gateway, 30, {}) == [200] * 30


def test_a_slow_anonymous_rate_still_lets_one_request_through() -> None:
    from edge.settings import Settings

    budget = Settings(anonymous_rate=0.4).anonymous_budget()
    assert budget is not None and budget.burst == 1.0 and budget.rate == 0.4
