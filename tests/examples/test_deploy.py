"""examples/deploy/: two gateway instances behind Debian's nginx, as shipped.

The shipped site file, rendered for loopback ports, must pass ``nginx -t``; through it,
queries are answered by both instances (nginx's access log names the instance of each
request id), a WebSocket subscription is acknowledged and a multipart one streams, and a
SIGTERM to one instance fails no query of a load running meanwhile and closes its
subscribers' sockets with 1001. nginx missing is a failure that says what
to install, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from examples.deploy import Cluster, Nginx, nginx_problem, render_site
from sources.registry.store import SourceStore
from tests.conftest import fhir_definition
from tests.ports import REDIS_URL, free_port

SLOTS = "{ slots(filter: {}, first: 3) { edges { node { source { id } } } } }"
SUBSCRIPTION = "subscription { slotAlerts(filter: {}) { goneIds seenAt } }"
PROTOCOL = "graphql-transport-ws"
MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
# Short: nginx never asks /ready; a drain also gives nginx's kept-alive connections time
# to close before the instance closes them (edge/health.py).
DRAIN_S = 1.0


@pytest.fixture(autouse=True)
def nginx_installed() -> None:
    problem = nginx_problem()
    if problem is not None:
        pytest.fail(f"{problem}; .ci/run installs it")


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, fhir_server: TestServer) -> AsyncIterator[Cluster]:
    database = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    with SourceStore(database) as store:
        store.add(fhir_definition(fhir_server))
    ports = [free_port(), free_port()]
    running = Cluster(tmp_path, database, REDIS_URL, ports, listen=free_port(), drain_s=DRAIN_S)
    # The instances' start waits for processes: off the loop that serves the FHIR demo.
    await asyncio.to_thread(running.__enter__)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.__exit__)


async def post(session: aiohttp.ClientSession, url: str, query: str = SLOTS) -> tuple[int, str]:
    async with session.post(url, json={"query": query}) as response:
        text = await response.text()
        if response.status == 200:
            assert "errors" not in json.loads(text), text
        return response.status, response.headers.get("X-Request-Id", "")


async def instance_of(nginx: Nginx, request_ids: list[str]) -> dict[str, list[str]]:
    """Each request id's instances, from nginx's access log (written once it answered)."""
    for _ in range(40):
        found = nginx.upstreams()
        if all(rid in found for rid in request_ids):
            break
        await asyncio.sleep(0.05)
    return {rid: found[rid] for rid in request_ids if rid in found}


def test_the_shipped_site_passes_nginx_t_for_any_ports(tmp_path: Path) -> None:
    ports = [free_port(), free_port(), free_port()]
    text = render_site(listen=8443, instances=ports, access_log=tmp_path / "access.log")
    assert all(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" in text for p in ports)
    assert text.count("server 127.0.0.1:") == 3 and "listen 127.0.0.1:8443;" in text
    assert "proxy_next_upstream error timeout http_502 http_503;" in text
    # A POST sent to an instance is never sent to another: mutations are not replayed.
    directives = [line.split("#", 1)[0] for line in text.splitlines()]
    assert not any("non_idempotent" in line for line in directives)
    checked = Nginx(tmp_path / "nginx", free_port(), ports).check()
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


async def test_both_instances_answer_through_nginx_and_subscriptions_stream(
    tmp_path: Path, fhir_server: TestServer
) -> None:
    async with cluster(tmp_path, fhir_server) as running, aiohttp.ClientSession() as session:
        answers = [await post(session, running.url) for _ in range(6)]
        assert {status for status, _ in answers} == {200}
        # The id the instance returned is the one nginx made and logged beside the
        # instance it chose: round-robin over both.
        assert running.nginx is not None
        chosen = await instance_of(running.nginx, [rid for _, rid in answers])
        assert len(chosen) == 6, chosen
        expected = {f"127.0.0.1:{p}" for p in running.ports}
        assert {hops[-1] for hops in chosen.values()} == expected
        ws_url = running.url.replace("http://", "ws://", 1)
        async with session.ws_connect(ws_url, protocols=[PROTOCOL]) as ws:
            assert ws.protocol == PROTOCOL
            await ws.send_json({"type": "connection_init", "payload": {}})
            assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
            with contextlib.suppress(TimeoutError):  # alerts come only on changes
                message = await ws.receive(timeout=1)
                assert message.type is aiohttp.WSMsgType.TEXT, message
                assert json.loads(message.data)["type"] == "next", message.data
        # A multipart subscription streams through nginx: its first part (a heartbeat)
        # arrives at once, not when the stream ends. (Whether nginx buffers it for a
        # slow reader, which X-Accel-Buffering: no prevents, a fast reader cannot see.)
        async with session.post(
            running.url, json={"query": SUBSCRIPTION}, headers={"Accept": MULTIPART}
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("multipart/mixed")
            received = b""
            async with asyncio.timeout(3):
                while b"{}" not in received:
                    received += await response.content.readany()


async def test_sigterm_on_one_instance_fails_no_query_and_says_goodbye_to_its_subscribers(
    tmp_path: Path, fhir_server: TestServer
) -> None:
    async with cluster(tmp_path, fhir_server) as running, aiohttp.ClientSession() as session:
        ws_url = running.url.replace("http://", "ws://", 1)
        sockets = []
        for n in range(4):  # round-robin: two on each instance
            ws = await session.ws_connect(ws_url, protocols=[PROTOCOL])
            await ws.send_json({"type": "connection_init", "payload": {}})
            assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
            await ws.send_json(
                {"id": str(n), "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
            )
            sockets.append(ws)
        outcomes: list[Any] = []
        stop_at = time.monotonic() + DRAIN_S + 4.0

        async def load(kind: str) -> None:
            while time.monotonic() < stop_at:
                try:
                    if kind == "GET":
                        async with session.get(running.url, params={"query": SLOTS}) as r:
                            await r.read()
                            outcomes.append((kind, r.status))
                    else:
                        outcomes.append((kind, (await post(session, running.url))[0]))
                except (aiohttp.ClientError, AssertionError) as exc:
                    outcomes.append((kind, repr(exc)))

        loaders = [asyncio.create_task(load(k)) for k in ("GET", "POST", "GET", "POST")]
        await asyncio.sleep(1.0)
        leaving = running.instances[0]
        leaving.terminate()
        closes = []
        for ws in sockets:
            with contextlib.suppress(TimeoutError):
                message = await ws.receive(timeout=0.1 if closes else DRAIN_S + 4)
                if message.type is aiohttp.WSMsgType.CLOSE:
                    # The code of the close frame received (RFC 6455's close code): nginx
                    # drops the TCP connection before aiohttp's reply, so ws.close_code
                    # says 1006 even so.
                    closes.append(message.data)
        await asyncio.gather(*loaders)
        assert await asyncio.to_thread(leaving.wait, 20) == 0
        failed = [o for o in outcomes if o[1] != 200]
        assert len(outcomes) > 50 and failed == [], (len(outcomes), failed[:5])
        # Its subscribers were told "going away" (1001), the other instance's stay open.
        assert closes == [1001, 1001], closes
        assert sum(not ws.closed for ws in sockets) == 2
        for ws in sockets:
            await ws.close()
