"""WebSocket logs: one line per WebSocket connection on ``passerelle.requests``, when it ends.

``RequestLog`` hands WebSocket scopes here. A connection may last hours (a citizen
waiting for a slot), so its line is written when it closes, as a proxy logs a
stream: its id (the trusted proxy's ``X-Request-Id``, else a new one, sent back on
the handshake's answer), when it opened, how long it lasted, ``101`` if accepted
(``403`` if refused at the handshake), who closed it and with which code. In
production one JSON object::

    {"request_id": "…", "time": "2026-12-07T05:40:00.123Z", "method": "WEBSOCKET",
     "route": "/graphql", "status": 101, "duration_ms": 61234.5, "closed_by": "client",
     "close_code": 1000}

in development a short human line. Never a message's content: a subscription's filter
is where someone is.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from edge.access_log import route_of

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["log_socket"]


async def log_socket(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, rid: str, production: bool
) -> None:
    """Run ``app`` on a WebSocket ``scope``, then log its one line on ``passerelle.requests``."""
    started = time.perf_counter()
    at = datetime.now(UTC)
    seen: dict[str, Any] = {"status": None, "closed_by": None, "close_code": None}

    async def sending(message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            seen["status"] = 101
            kept = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
            message = {**message, "headers": [*kept, (b"x-request-id", rid.encode())]}
        elif kind == "websocket.close" and seen["closed_by"] is None:
            seen["closed_by"] = "server"
            seen["close_code"] = message.get("code", 1000)
            if seen["status"] is None:
                seen["status"] = 403  # closed before it was accepted: refused
        elif kind == "websocket.http.response.start" and seen["status"] is None:
            seen["status"] = message["status"]
        await send(message)

    async def receiving() -> Message:
        message = await receive()
        if message["type"] == "websocket.disconnect" and seen["closed_by"] is None:
            seen["closed_by"] = "client"
            seen["close_code"] = message.get("code", 1005)
        return message

    try:
        await app(scope, receiving, sending)
    finally:
        line = {
            "request_id": rid,
            "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": "WEBSOCKET",
            "route": _route(scope),
            "status": seen["status"] if seen["status"] is not None else 500,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "closed_by": seen["closed_by"],
            "close_code": seen["close_code"],
        }
        logger = logging.getLogger("passerelle.requests")
        if production:
            logger.info("%s", orjson.dumps(line).decode())
        else:
            logger.info(
                "WEBSOCKET %s -> %s %.1f ms closed by %s (%s) id=%s",
                line["route"],
                line["status"],
                line["duration_ms"],
                line["closed_by"] or "nobody",
                line["close_code"],
                rid,
            )


def _route(scope: Scope) -> str:
    template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else route_of(scope["path"])
