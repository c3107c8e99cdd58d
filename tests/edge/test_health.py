"""``/health`` and ``/ready``: liveness, readiness with what is wrong, and the drain a
SIGTERM starts (``edge/health.py``)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

from edge.health import draining, stopping
from tests.conftest import Gateway, GatewayFactory
from tests.ports import REDIS_URL, free_port
from tests.test_app import app_process


async def get(gw: Gateway, path: str) -> tuple[int, Any]:
    url = gw.url.removesuffix("/graphql") + path
    async with gw.session.get(url) as response:
        return response.status, await response.json()


async def test_a_started_gateway_is_alive_and_ready_and_says_what_it_checked(
    gateway_for: GatewayFactory,
) -> None:
    async with gateway_for(cache="redis", redis_url=REDIS_URL) as gw:
        for path in ("/health", "/healthz"):
            assert await get(gw, path) == (200, {"status": "ok"})
        status, body = await get(gw, "/ready")
        assert status == 200
        assert body == {
            "ready": True,
            "checks": {"registry": "ok", "redis": "ok", "shutdown": "ok"},
        }
        # Draining (a SIGTERM): not ready, though alive and still answering.
        await draining(gw.app, 0)
        status, body = await get(gw, "/ready")
        assert status == 503 and body["checks"]["shutdown"] == "draining"
        assert (await get(gw, "/health"))[0] == 200


async def test_a_gateway_whose_redis_is_gone_is_not_ready_and_says_so_without_its_url(
    gateway_for: GatewayFactory,
) -> None:
    dead = f"redis://:secret-pw@127.0.0.1:{free_port()}/0"  # nothing listens there
    async with gateway_for(cache="redis", redis_url=dead) as gw:
        status, body = await get(gw, "/ready")
        assert status == 503
        assert body["ready"] is False and body["checks"]["redis"] == "unreachable"
        assert body["checks"]["registry"] == "ok"
        assert "secret" not in str(body) and str(dead) not in str(body)


async def test_sigterm_turns_the_instance_not_ready_then_closes_it_within_its_drain(
    tmp_path: Path,
) -> None:
    async with app_process("--no-demo", "--drain-s", "1.5", cwd=tmp_path, demo=False) as app:
        base = app.url.removesuffix("/graphql")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/ready") as response:
                assert response.status == 200
            app.process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            await asyncio.sleep(0.3)
            async with session.get(f"{base}/ready") as response:
                assert response.status == 503  # the listener still open, not ready
            async with session.post(app.url, json={"query": "{ sources { id } }"}) as response:
                assert response.status == 200  # requests still served while draining
        code = await asyncio.to_thread(app.process.wait, 15)
        assert code == 0 and time.monotonic() - sent >= 1.5


async def test_once_stopping_every_answer_closes_its_connection(
    gateway_for: GatewayFactory,
) -> None:
    # A proxy's keep-alive pool (nginx's upstream keepalive) must let go of a stopping
    # instance's connections before they are closed (examples/deploy/README.md).
    async with gateway_for() as gw:
        query = {"query": "{ sources { id } }"}
        await draining(gw.app, 0)  # not ready, but its connections stay open meanwhile
        async with gw.session.post(gw.url, json=query) as response:
            assert response.status == 200
            assert response.headers.get("Connection", "").lower() != "close"
        stopping(gw.app)
        for method, path in (("POST", "/graphql"), ("GET", "/health"), ("GET", "/graphql")):
            url = gw.url.removesuffix("/graphql") + path
            body = query if method == "POST" else None
            params = query if path == "/graphql" and method == "GET" else None
            async with gw.session.request(method, url, json=body, params=params) as response:
                assert response.status == 200, (method, path)
                assert response.headers["Connection"].lower() == "close", (method, path)
