"""Request logs: one line per HTTP request on ``passerelle.requests`` (:class:`RequestLog`).

Outermost of the app, so every answer is counted and carries its ``X-Request-Id``
(a 413, a 429, a cached hit of the fast path alike). The id is the client's only when
the peer is a trusted proxy and the id is at most 128 of ``[A-Za-z0-9._-]``; else a
new one. In production each line is one JSON object::

    {"request_id": "…", "time": "2026-12-07T05:40:00.123Z", "method": "GET",
     "route": "/graphql", "operation": "NearMe", "operation_type": "query",
     "duration_ms": 4.2, "status": 200, "error_codes": [], "cache": "hit",
     "sources": [{"id": "fhir-a", "outcome": "ok", "from_cache": true}]}

in development a short human line of the same facts. Never in it: a query string,
variables, a query's text, a key or a slot id, only the route's template
(``/go/{slot_id:path}``) and the name of a trusted document (``anonymous`` for any
other operation). A WebSocket connection gets one line when it ends (``socket_log.py``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from edge.access_log import route_of
from edge.exchange import exchange_in
from edge.middleware.rate_limit import peer_trusted
from edge.middleware.socket_log import log_socket
from schema.error_codes import source_code

if TYPE_CHECKING:
    from starlette.datastructures import State
    from starlette.types import Message, Receive, Scope, Send

    from edge.exchange import Exchange
    from edge.middleware.cached_hits import CachedHits
    from edge.operation import Operation
    from edge.settings import Settings

__all__ = ["LOGGER", "RequestLog", "install", "operation_type", "request_id"]

LOGGER = "passerelle.requests"
logger = logging.getLogger(LOGGER)

_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_KIND = re.compile(r"\b(query|mutation|subscription)\b")
_BODY_KEPT = 16 * 1024  # of a refusal's body, read for its error code


def request_id(given: bytes | None, trusted: bool) -> str:
    """The client's id when ``trusted`` (its peer is a trusted proxy) and well formed,
    else a new one."""
    if trusted and given is not None:
        text = given.decode("latin-1")
        if _ID.fullmatch(text):
            return text
    return os.urandom(16).hex()  # as random as a uuid4's hex, without building a UUID


def operation_type(operation: Operation) -> str:
    """``query``, ``mutation`` or ``subscription``: a trusted document's, else the first
    keyword of its text (a bare selection set is a query)."""
    if operation.trusted is not None:
        return operation.trusted[1]
    text = operation.query or ""
    if operation.operation_name:
        named = re.search(
            rf"\b(query|mutation|subscription)\s+{re.escape(operation.operation_name)}\b", text
        )
        if named:
            return named.group(1)
    head = text.lstrip()
    if head.startswith("{"):
        return "query"
    found = _KIND.search(text)
    return found.group(1) if found else "unknown"


class RequestLog:
    """ASGI middleware: ``X-Request-Id`` on every answer, one log line per request."""

    def __init__(self, app: CachedHits, settings: Settings) -> None:
        self.app = app
        self.production = settings.production
        self.trusted_proxies = settings.trusted_proxies

    @property
    def state(self) -> State:
        """The app's state, where its lifespan keeps its services (``services_of``)."""
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        at = datetime.now(UTC)
        headers = dict(scope["headers"])
        peer = scope.get("client")
        trusted = peer is not None and peer_trusted(peer[0], self.trusted_proxies)
        rid = request_id(headers.get(b"x-request-id"), trusted)
        if scope["type"] == "websocket":
            await log_socket(self.app, scope, receive, send, rid=rid, production=self.production)
            return
        scope.setdefault("state", {})  # the exchange, begun inside, lands in this dict
        seen: dict[str, Any] = {"status": 500, "hit": False, "body": b""}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                kept = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
                seen["hit"] = (b"x-cache", b"HIT") in kept
                message["headers"] = [*kept, (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body" and seen["status"] >= 400:
                if len(seen["body"]) < _BODY_KEPT:
                    seen["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            line = _line(scope, rid, at, duration_ms, seen)
            if self.production:
                write(orjson.dumps(line).decode())
            else:
                logger.info("%s", _human(line))


def _line(
    scope: Scope, rid: str, at: datetime, duration_ms: float, seen: dict[str, Any]
) -> dict[str, Any]:
    exchange = exchange_in(scope)
    ran = exchange.ran if exchange is not None else []
    names = [(op.trusted[0] or "anonymous") if op.trusted else "anonymous" for op in ran]
    kinds = [operation_type(op) for op in ran]
    codes = list(exchange.error_codes) if exchange is not None else []
    if not codes and seen["status"] >= 400:
        codes = _codes_in(seen["body"])
    cache = "hit" if seen["hit"] else "none"
    if cache == "none" and exchange is not None and exchange.cache_key is not None:
        cache = "miss"
    return {
        "request_id": rid,
        "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": scope["method"],
        "route": _route(scope, seen["status"]),
        "operation": names[0] if len(names) == 1 else ("batch" if names else None),
        "operation_type": kinds[0] if len(kinds) == 1 else ("batch" if kinds else None),
        "duration_ms": round(duration_ms, 2),
        "status": seen["status"],
        "error_codes": codes,
        "cache": cache,
        "sources": _sources(exchange),
    }


def _route(scope: Scope, status: int) -> str:
    """The route's template (``/go/{slot_id:path}``: no slot id), else the path without
    its query string; a path no route matched is not written (it could be anything)."""
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    return route_of(scope["path"]) if status != 404 else "(unmatched)"


def _sources(exchange: Exchange | None) -> list[dict[str, Any]]:
    """Each source asked: ``ok`` or its failure's code, and whether from the cache."""
    try:
        context = exchange.context if exchange is not None else None
    except LookupError:
        context = None
    if context is None:
        return []
    failed = {r.error.source_id: str(source_code(r.error)) for r in context.reported}
    return [
        {"id": source_id, "outcome": failed.get(source_id, "ok"), "from_cache": use.from_cache}
        for source_id, use in context.federation.asked.items()
    ]


def _codes_in(body: bytes) -> list[str]:
    """The ``extensions.code`` of a refusal's JSON body (a 413, a 429), if it has one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    codes: list[str] = []
    for error in errors if isinstance(errors, list) else ():
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        if isinstance(code, str) and code not in codes:
            codes.append(code)
    return codes


def _human(line: dict[str, Any]) -> str:
    sources = " ".join(
        f"{s['id']}={s['outcome']}{'(cached)' if s['from_cache'] else ''}" for s in line["sources"]
    )
    operation = f" {line['operation_type']} {line['operation']}" if line["operation"] else ""
    codes = f" [{','.join(line['error_codes'])}]" if line["error_codes"] else ""
    return (
        f"{line['method']} {line['route']}{operation} -> {line['status']}{codes} "
        f"{line['duration_ms']:.1f} ms cache={line['cache']}"
        f"{' ' + sources if sources else ''} id={line['request_id']}"
    )


def write(text: str) -> None:
    """One production line out. When the logger holds only the handler :func:`install`
    put there (no filter, no other handler: the production setup), straight to its
    stream: ``logging``'s record, caller lookup and formatter cost more than the line
    itself on a cached hit. Anything else (a test's capture, an operator's own
    handlers) goes through ``logging`` as usual."""
    handlers = logger.handlers
    if (
        len(handlers) == 1
        and getattr(handlers[0], "_passerelle", False)
        and not logger.filters
        and not handlers[0].filters
        and logger.isEnabledFor(logging.INFO)
    ):
        handler: Any = handlers[0]
        with handler.lock:
            try:
                handler.stream.write(text + "\n")
                handler.stream.flush()
            except Exception:  # as StreamHandler.emit: a broken stream is not the request's
                handler.handleError(logging.makeLogRecord({"msg": text}))
        return
    logger.info("%s", text)


def install(production: bool) -> None:
    """In production, lines go out bare (one JSON object each) on stderr, whatever the
    root logger's format; once: installing again changes nothing."""
    if not production or any(getattr(h, "_passerelle", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._passerelle = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
