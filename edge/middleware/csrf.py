"""CSRF prevention, as Apollo Router and Apollo Server do it.

A browser sends a cross-site POST without asking first (no CORS preflight) only
with a "simple" content type (``text/plain``, ``application/x-www-form-urlencoded``,
``multipart/form-data``) or none, and without custom headers. Such a POST is
refused with a 400, unless it carries ``x-apollo-operation-name`` or
``apollo-require-preflight``; a JSON POST (what every GraphQL client sends)
needs nothing. GET requests are not checked: they run queries only, whose
answers a cross-site page cannot read without CORS.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from schema.error_codes import ErrorCode, envelope

SIMPLE_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
PREFLIGHT_HEADERS = (b"x-apollo-operation-name", b"apollo-require-preflight")
MESSAGE = (
    "This request has been blocked as a potential Cross-Site Request Forgery (CSRF). "
    "Send it with a content-type header that is not one of "
    "application/x-www-form-urlencoded, multipart/form-data or text/plain "
    "(application/json works), or with one of the headers "
    "x-apollo-operation-name or apollo-require-preflight."
)
_BODY = envelope(ErrorCode.CSRF_PREVENTION, MESSAGE)


def needs_preflight_proof(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a POST with these headers could have been sent cross-site without a preflight."""
    content_type = b""
    for name, value in headers:
        if name in PREFLIGHT_HEADERS and value.strip():
            return False
        if name == b"content-type":
            content_type = value
    media = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
    return not media or media in SIMPLE_TYPES


class CSRFPrevention:
    """Pure ASGI middleware (no per-request object beyond the check) for ``paths``."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...] = ("/graphql",)) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.paths
            and needs_preflight_proof(scope["headers"])
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": ErrorCode.CSRF_PREVENTION.http_status,
                    "headers": [
                        (b"content-type", b"application/json; charset=utf-8"),
                        (b"content-length", str(len(_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _BODY})
            return
        await self.app(scope, receive, send)
