"""GraphiQL served by the gateway itself: its page and every file that page loads.

Hospital networks often block public CDNs, so React, ReactDOM and GraphiQL are
vendored from npm into ``edge/static/graphiql/`` (``VERSIONS`` pins each file's
package, version and sha256; ``vendor.sh`` re-fetches and verifies them). They
are held in memory and served under content-hashed URLs, so browsers may cache
them for a year. The page itself is never stored: it carries a strict
Content-Security-Policy with a nonce good for that one response (scripts and
styles from this origin plus the inline ones bearing the nonce; requests only
to this origin, its WebSocket included: GraphiQL runs subscriptions over
``graphql-transport-ws``, with the graphql-ws client its bundle carries).

    routes = [Route("/graphql", view), *graphiql_routes()]
    response = graphiql_response("/graphql", default_query="{ sources { id } }")
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from starlette.requests import Request

ASSETS_DIR = Path(__file__).parent / "static" / "graphiql"
ASSETS_PATH = "/graphql/static"
IMMUTABLE = "public, max-age=31536000, immutable"

_CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_REACT, _REACT_DOM = "react.production.min.js", "react-dom.production.min.js"
_GRAPHIQL_JS, _GRAPHIQL_CSS = "graphiql.min.js", "graphiql.min.css"


@dataclass(frozen=True, slots=True)
class Asset:
    """One vendored file, as served: its bytes, type and content digest."""

    name: str
    body: bytes
    content_type: str
    digest: str  # 16 hex digits of its sha256: part of its URL and its ETag


class GraphiQLAssets:
    """The vendored files under ``prefix/<digest>/<name>``, answered from memory.

    A URL names one exact content, so it is cached as immutable; a stale digest
    (a page from before an upgrade) is a 404 rather than the wrong file.
    Compressed with gzip on first request when the browser accepts it.
    """

    def __init__(self, directory: Path = ASSETS_DIR, prefix: str = ASSETS_PATH) -> None:
        self.prefix = prefix.rstrip("/")
        self._assets: dict[str, Asset] = {}
        for path in sorted(directory.iterdir()):
            content_type = _CONTENT_TYPES.get(path.suffix)
            if content_type is None:  # licences, VERSIONS, vendor.sh stay on disk
                continue
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:16]
            self._assets[path.name] = Asset(path.name, body, content_type, digest)
        missing = {_REACT, _REACT_DOM, _GRAPHIQL_JS, _GRAPHIQL_CSS} - set(self._assets)
        if missing:
            raise RuntimeError(
                f"GraphiQL assets missing from {directory}: {', '.join(sorted(missing))} "
                "(run edge/static/graphiql/vendor.sh)"
            )
        self._gzipped: dict[str, bytes] = {}

    def url(self, name: str) -> str:
        return f"{self.prefix}/{self._assets[name].digest}/{name}"

    def routes(self) -> list[Route]:
        return [Route(f"{self.prefix}/{{digest}}/{{name}}", self.serve, methods=["GET", "HEAD"])]

    async def serve(self, request: Request) -> Response:
        asset = self._assets.get(request.path_params["name"])
        if asset is None or request.path_params["digest"] != asset.digest:
            return PlainTextResponse("Not Found", status_code=404)
        etag = f'"{asset.digest}"'
        headers = {
            "Cache-Control": IMMUTABLE,
            "ETag": etag,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        if etag in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        body = asset.body
        if _accepts_gzip(request.headers.get("accept-encoding", "")):
            body = self._gzipped.get(asset.name) or await self._gzip(asset)
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.content_type, headers=headers)

    async def _gzip(self, asset: Asset) -> bytes:
        # ~30 ms for GraphiQL's bundle, once per process: off the event loop.
        body = await asyncio.to_thread(gzip.compress, asset.body, 9, mtime=0)
        self._gzipped[asset.name] = body
        return body


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def _accepts_gzip(header: str) -> bool:
    for part in header.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


# The one inline script: it mounts GraphiQL. The dialogs' scroll lock (react-remove-scroll)
# injects a <style> element, which it tags with the global __webpack_nonce__ if set: hence
# a per-response nonce rather than hashes, and no 'unsafe-inline' anywhere.
_BOOTSTRAP = """\
"use strict";
window.__webpack_nonce__ = document.currentScript.nonce;
// Subscriptions over graphql-transport-ws, at the same path on this origin (GraphiQL's
// bundle carries the graphql-ws client); the headers editor's headers (a partner's
// Authorization) go in connection_init's payload, since a browser cannot set them.
const endpoint = new URL(%(endpoint)s, window.location.href);
const subscriptionUrl = new URL(endpoint);
subscriptionUrl.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: subscriptionUrl.href }),
    defaultQuery: %(query)s,
    defaultEditorToolsVisibility: true,
    isHeadersEditorEnabled: true,
    // Headers may carry a partner's API key: never write them to localStorage.
    shouldPersistHeaders: false,
  }),
);
"""

_PAGE = """\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Passerelle · GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="%(css)s">
    <style nonce="%(nonce)s">%(style)s</style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="%(react)s"></script>
    <script src="%(react_dom)s"></script>
    <script src="%(graphiql)s"></script>
    <script nonce="%(nonce)s">%(bootstrap)s</script>
  </body>
</html>
"""

_STYLE = "html, body { height: 100%; margin: 0; } #graphiql { height: 100vh; }"


def _js_string(text: str) -> str:
    """A JavaScript string literal that cannot end the ``<script>`` element it sits in."""
    return (
        json.dumps(text, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


@functools.cache
def default_assets() -> GraphiQLAssets:
    """The vendored files, read once per process."""
    return GraphiQLAssets()


def graphiql_routes() -> list[Route]:
    """The routes that serve GraphiQL's files, for the app's routes list."""
    return default_assets().routes()


def graphiql_response(endpoint: str, default_query: str) -> HTMLResponse:
    """The GraphiQL page, talking to ``endpoint``, with ``default_query`` in its editor."""
    assets = default_assets()
    nonce = secrets.token_urlsafe(18)
    bootstrap = _BOOTSTRAP % {"endpoint": _js_string(endpoint), "query": _js_string(default_query)}
    html = _PAGE % {
        "css": assets.url(_GRAPHIQL_CSS),
        "style": _STYLE,
        "react": assets.url(_REACT),
        "react_dom": assets.url(_REACT_DOM),
        "graphiql": assets.url(_GRAPHIQL_JS),
        "bootstrap": bootstrap,
        "nonce": nonce,
    }
    csp = "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "font-src 'self' data:",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-store",  # a nonce is good for one response
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
