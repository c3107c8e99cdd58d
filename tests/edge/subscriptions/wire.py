"""A bare graphql-transport-ws client and a multipart reader, to test the gateway's side
of each message (the real clients are tested in ``test_clients.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.conftest import Gateway

PROTOCOL = "graphql-transport-ws"
MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
ALERTS = (
    "subscription Alerts($filter: SlotFilter!) "
    "{ slotAlerts(filter: $filter) { opened { id start } goneIds seenAt } }"
)
# Whereabouts with digits of their own: the logs are searched for them.
LATITUDE, LONGITUDE = 45.50873, -73.55418
NEAR_ME = {"filter": {"near": {"latitude": LATITUDE, "longitude": LONGITUDE}, "radiusKm": 10}}


def ws_url(gateway: Gateway) -> str:
    return gateway.url.replace("http://", "ws://", 1)


class Socket:
    """One graphql-transport-ws connection: what it sent and what it heard."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.pings = 0

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.ws.send_json({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(
        self, op_id: str, query: str | None = ALERTS, variables: Any = NEAR_ME, **more: Any
    ) -> None:
        payload = {"query": query, "variables": variables, **more}
        await self.ws.send_json({"id": op_id, "type": "subscribe", "payload": payload})

    async def complete(self, op_id: str) -> None:
        await self.ws.send_json({"id": op_id, "type": "complete"})

    async def receive(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next message that is not a ping (pings are counted, and answered)."""
        while True:
            message = await self.ws.receive(timeout=timeout_s)
            if message.type != aiohttp.WSMsgType.TEXT:
                return {"type": "closed", "code": self.ws.close_code, "reason": message.extra}
            data: dict[str, Any] = json.loads(message.data)
            if data["type"] == "ping":
                self.pings += 1
                await self.ws.send_json({"type": "pong"})
                continue
            return data

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """What arrives within ``seconds`` (pings aside): nothing, for an open subscription."""
        heard: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    heard.append(await self.receive(seconds))
        return heard


@contextlib.asynccontextmanager
async def socket(
    gateway: Gateway, *, headers: dict[str, str] | None = None, init: dict[str, Any] | None = None
) -> AsyncIterator[Socket]:
    """A connection acknowledged by the gateway (``init``: connection_init's payload)."""
    async with gateway.session.ws_connect(
        ws_url(gateway), protocols=[PROTOCOL], headers=headers or {}
    ) as ws:
        assert ws.protocol == PROTOCOL
        connection = Socket(ws)
        ack = await connection.init(init)
        assert ack["type"] == "connection_ack", ack
        yield connection


def codes(message: dict[str, Any]) -> list[str]:
    """The codes of an ``error`` message's errors."""
    assert message["type"] == "error", message
    return [e["extensions"]["code"] for e in message["payload"]]


async def multipart(
    gateway: Gateway, body: dict[str, Any], **headers: str
) -> aiohttp.ClientResponse:
    """A multipart subscription's response, its body not read yet (close it when done)."""
    return await gateway.session.post(
        gateway.url, json=body, headers={"Accept": MULTIPART, **headers}
    )


async def parts(response: aiohttp.ClientResponse, count: int | None = None) -> list[Any]:
    """The first ``count`` parts of a multipart stream (all, until its closing boundary,
    when None), decoded: ``{}`` is a heartbeat, ``{"payload": ...}`` an event."""
    buffer, found = b"", []
    while count is None or len(found) < count:
        chunk = await asyncio.wait_for(response.content.readany(), 10)
        if not chunk and count is None:
            assert buffer.endswith(b"--\r\n"), buffer  # the closing boundary
            return found
        assert chunk, f"the stream ended after {found}"
        buffer += chunk
        *complete, buffer = buffer.split(b"\r\n--graphql")
        for part in complete:
            _, _, body = part.partition(b"\r\n\r\n")
            if body.strip():
                found.append(json.loads(body))
    return found[:count]
