"""A webhook receiver for the tests: https on 127.0.0.1 with a certificate made by
``trustme``, verifying every delivery with the ``standardwebhooks`` package."""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    verified: bool
    body: Any


@dataclass
class Receiver:
    url: str
    ca_file: str
    # Statuses to answer, in order; then 204.
    script: list[int] = field(default_factory=list)
    secret: str | None = None
    received: list[Received] = field(default_factory=list)

    def verified(self) -> list[Received]:
        return [r for r in self.received if r.verified]


@contextlib.asynccontextmanager
async def https_receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_file = tmp_path / "webhook-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    receiver = Receiver(url="", ca_file=str(ca_file))

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verified = False
        if receiver.secret is not None:
            try:
                Webhook(receiver.secret).verify(body, dict(request.headers))
                verified = True
            except WebhookVerificationError:
                verified = False
        receiver.received.append(
            Received(request.headers.get("webhook-id", ""), verified, json.loads(body))
        )
        status = receiver.script.pop(0) if receiver.script else 204
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": "https://127.0.0.1:1/x"})
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"https://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()
