"""Request size and batching limits at the HTTP edge."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp.test_utils import TestServer

from examples import demo_fhir
from examples.faults import Faults
from examples.faults import install as install_faults
from examples.world import World
from tests.conftest import Gateway, GatewayFactory, fhir_definition, serve

SMALL = b'{"query": "{ __typename }"}'
JSON = {"Content-Type": "application/json"}
SLOTS = "{ slots(filter: {region: MONTREAL}, first: 5) { edges { node { start } } } }"


async def test_a_body_over_100_kb_gets_a_413_announced_or_streamed(gateway: Gateway) -> None:
    big = b'{"query": "{ __typename }", "pad": "' + b"x" * 110_000 + b'"}'
    headers = {"Content-Type": "application/json"}
    async with gateway.session.post(gateway.url, data=big, headers=headers) as response:
        assert response.status == 413
        error = (await response.json())["errors"][0]
    assert error["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert "100 KB" in error["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield b'{"query": "{ __typename }", "pad": "'
        for _ in range(12):
            yield b"x" * 10_000
        yield b'"}'

    async with gateway.session.post(gateway.url, data=chunks(), headers=headers) as response:
        assert response.status == 413
    async with gateway.session.post(gateway.url, data=SMALL, headers=headers) as response:
        assert response.status == 200  # the server is fine afterwards


async def test_batching_is_off_by_default(gateway: Gateway) -> None:
    batch = b"[" + b",".join([SMALL] * 2) + b"]"
    headers = {"Content-Type": "application/json"}
    async with gateway.session.post(gateway.url, data=batch, headers=headers) as response:
        assert (response.status, await response.text()) == (400, "Batching is not enabled")


async def test_batching_when_enabled_takes_at_most_ten_operations(
    gateway_for: GatewayFactory, fhir_server: TestServer
) -> None:
    headers = {"Content-Type": "application/json"}
    async with gateway_for(fhir_definition(fhir_server), batching=True) as gw:
        ten = b"[" + b",".join([SMALL] * 10) + b"]"
        async with gw.session.post(gw.url, data=ten, headers=headers) as response:
            assert response.status == 200
            answers = await response.json()
        eleven = b"[" + b",".join([SMALL] * 11) + b"]"
        async with gw.session.post(gw.url, data=eleven, headers=headers) as response:
            assert (response.status, await response.text()) == (400, "Too many operations")
    assert answers == [{"data": {"__typename": "Query"}}] * 10


async def test_an_operation_past_its_deadline_is_cancelled_with_operation_timeout(
    gateway_for: GatewayFactory, world: World
) -> None:
    app = demo_fhir.build_app(world)
    install_faults(app, Faults(hang=True))
    async with serve(app) as hanging:
        patient = replace(fhir_definition(hanging), timeout_s=30.0)
        async with gateway_for(
            patient, fanout_deadline_s=30.0, operation_timeout_s=0.5, cache="off"
        ) as gw:
            started = time.monotonic()
            async with gw.session.post(gw.url, json={"query": SLOTS}) as response:
                status, result = response.status, await response.json()
            elapsed = time.monotonic() - started
            # The worker is free again at once: another request is answered.
            async with gw.session.post(gw.url, data=SMALL, headers=JSON) as response:
                assert response.status == 200
    assert status == 504 and 0.4 < elapsed < 2.0, (status, elapsed, result)
    assert result["errors"][0]["extensions"]["code"] == "OPERATION_TIMEOUT"
    assert result["errors"][0]["message"] == (
        "The operation took longer than 0.5 s and was cancelled"
    )
