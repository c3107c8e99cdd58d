"""GraphiQL works on a closed network: served whole by the gateway, it renders and runs
its example query, and a subscription over the gateway's WebSocket, in headless Chromium
without asking any other host for anything.

The browser is Debian's Chromium (``apt-get install chromium``; ``.ci/run`` installs it),
driven by ``playwright-core`` from npm (``tests/edge/browser/``, installed with ``npm ci`` on
first use). A missing tool fails the test, never skips it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer

from edge.graphql_view import EXAMPLE_QUERY
from edge.services import services_of
from examples.world import World
from tests.conftest import Gateway, GatewayFactory, fhir_definition, rest_definition
from tests.edge.subscriptions.feeds import FILTER, fast_feeds, nearby_feed
from tests.node_tools import install_lock

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = Path(__file__).parent / "browser"
ASSETS_DIR = ROOT / "edge" / "static" / "graphiql"
EXAMPLE = EXAMPLE_QUERY.read_text(encoding="utf-8")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ASSET_URL = re.compile(r'(?:src|href)="(/graphql/static/[0-9a-f]{16}/[^"]+)"')


def _pinned_playwright() -> str:
    lock = json.loads((BROWSER_DIR / "package-lock.json").read_text(encoding="utf-8"))
    version: str = lock["packages"]["node_modules/playwright-core"]["version"]
    return version


@pytest.fixture(scope="session")
def browser_driver() -> Path:
    """``tests/edge/browser/graphiql_check.mjs``, with Node, Chromium and playwright-core ready."""
    missing = [
        f"{what} ({how})"
        for what, found, how in (
            ("node", shutil.which("node"), "Debian package nodejs"),
            ("npm", shutil.which("npm"), "Debian package npm"),
            (CHROMIUM, os.access(CHROMIUM, os.X_OK), "apt-get install chromium"),
        )
        if not found
    ]
    if missing:
        pytest.fail(f"the GraphiQL browser test needs {', '.join(missing)}; .ci/run installs them")
    installed = BROWSER_DIR / "node_modules" / "playwright-core" / "package.json"
    with install_lock(BROWSER_DIR):
        if (
            not installed.exists()
            or json.loads(installed.read_text(encoding="utf-8"))["version"] != _pinned_playwright()
        ):
            done = subprocess.run(
                ["npm", "ci", "--prefix", str(BROWSER_DIR), "--no-audit", "--no-fund"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"npm ci in tests/edge/browser failed:\n{done.stderr}"
    return BROWSER_DIR / "graphiql_check.mjs"


async def _open_in_chromium(script: Path, url: str, *more: str) -> dict[str, Any]:
    argv = ["node", str(script), url, *more]
    if screenshot := os.environ.get("PASSERELLE_GRAPHIQL_SCREENSHOT"):
        argv += ["--screenshot", screenshot]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, f"graphiql_check.mjs failed:\n{err.decode()}"
    report: dict[str, Any] = json.loads(out)
    return report


def _literal(value: Any) -> str:
    """A GraphQL input value, as one types it: ``{near: {latitude: 45.5}}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_literal(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


# Slot alerts near the tests' whereabouts, as one types them in GraphiQL.
SUBSCRIPTION = (
    f"subscription Near {{ slotAlerts(filter: {_literal(FILTER)}) {{ opened {{ start }} }} }}"
)


async def test_graphiql_renders_runs_the_example_query_and_a_subscription_from_the_gateway_alone(
    gateway_for: GatewayFactory,
    fhir_server: TestServer,
    rest_server: TestServer,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    browser_driver: Path,
) -> None:
    fast_feeds(monkeypatch)
    async with (
        nearby_feed(world, tmp_path / "feed") as (publisher, feed),
        gateway_for(fhir_definition(fhir_server), rest_definition(rest_server), feed) as gateway,
    ):
        # The page runs the example query, then the subscription; once it is open, the
        # feed publishes three slots, and the page must show them.
        browsing = asyncio.create_task(
            _open_in_chromium(
                browser_driver, gateway.url, "--subscription", SUBSCRIPTION, "--expect", '"start"'
            )
        )
        hub = services_of(gateway.app).subscriptions
        async with asyncio.timeout(60):
            while hub.limits.open_count() == 0 and not browsing.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the subscription's first read of the feed
        added = publisher.add(3)
        report = await browsing

    assert report["error"] is None, report
    assert report["editorQuery"] == EXAMPLE
    result = json.loads(report["resultText"])
    assert "errors" not in result, result["errors"]
    edges = result["data"]["slots"]["edges"]
    assert edges and all(edge["node"]["start"] and edge["node"]["clinic"] for edge in edges)
    # The subscription ran over the gateway's own WebSocket, and showed an alert.
    assert report["websockets"] == [gateway.url.replace("http://", "ws://")]
    opened = json.loads(report["subscriptionResult"])["data"]["slotAlerts"]["opened"]
    assert {o["start"] for o in opened} <= {s.start.isoformat() for s in added} and opened
    # Closed network: the page, its assets and its queries all come from the gateway.
    assert report["externalRequests"] == []
    requested = [r.split(" ", 1)[1] for r in report["requests"]]
    assert {urlsplit(u).hostname for u in requested if not u.startswith("data:")} == {"127.0.0.1"}
    assert any(u.endswith("/graphiql.min.js") for u in requested)
    assert report["failedRequests"] == []
    # ... and it needed nothing its Content-Security-Policy forbids.
    assert report["dialogOpened"] is True
    assert report["cspViolations"] == [] and report["pageErrors"] == []
    assert report["consoleErrors"] == []


def _vendored_checksums() -> dict[str, str]:
    rows = (
        line.split()
        for line in (ASSETS_DIR / "VERSIONS").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {local: sha256 for _spec, _inner, local, sha256 in rows}


async def test_graphiql_assets_are_the_vendored_npm_files_cached_for_a_year(
    gateway: Gateway,
) -> None:
    checksums = _vendored_checksums()
    for name, sha256 in checksums.items():  # the tree holds exactly what npm published
        assert hashlib.sha256((ASSETS_DIR / name).read_bytes()).hexdigest() == sha256, name
    async with gateway.session.get(gateway.url, headers={"Accept": "text/html"}) as page:
        html = await page.text()
        assert page.headers["Cache-Control"] == "no-store"
        csp = page.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'self' 'nonce-[\w-]{24}'", csp) and "unsafe" not in csp
    assert "connect-src 'self'" in csp and "default-src 'none'" in csp
    urls = ASSET_URL.findall(html)
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == [
        "graphiql.min.css",
        "graphiql.min.js",
        "react-dom.production.min.js",
        "react.production.min.js",
    ]
    origin = gateway.url.removesuffix("/graphql")
    for url in urls:
        async with gateway.session.get(origin + url) as response:
            body = await response.read()  # aiohttp undoes the gzip
            assert response.status == 200
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            kind = "text/css" if url.endswith(".css") else "text/javascript"
            assert response.headers["Content-Type"] == f"{kind}; charset=utf-8"
            etag = response.headers["ETag"]
        assert hashlib.sha256(body).hexdigest() == checksums[url.rsplit("/", 1)[1]]
        async with gateway.session.get(origin + url, headers={"If-None-Match": etag}) as again:
            assert again.status == 304
    stale = re.sub(r"/[0-9a-f]{16}/", "/0000000000000000/", urls[0])
    async with gateway.session.get(origin + stale) as response:
        assert response.status == 404
