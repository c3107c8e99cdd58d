"""Every way an upstream HTTP call can fail maps to one SourceError kind."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from sources.errors import SourceBadResponse, SourceError, SourceTimeout, SourceUnavailable
from sources.transport import body, http
from tests.conftest import serve

BIG = {"items": [{"id": i, "text": "x" * 100} for i in range(5000)]}  # ~600 KB


async def big(request: web.Request) -> web.Response:
    return web.json_response(BIG)


async def not_json(request: web.Request) -> web.Response:
    return web.Response(text="<html>maintenance</html>", content_type="text/html")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


async def stalling(request: web.Request) -> web.StreamResponse:
    """Headers and a first chunk at once, then nothing for a long while."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"items": [')
    await asyncio.sleep(5)
    return response


async def truncated(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": "1000"})
    await response.prepare(request)
    await response.write(b'{"partial": ')
    assert request.transport is not None
    request.transport.close()
    return response


def status(code: int) -> web.RequestHandler:  # type: ignore[type-arg]
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": code}, status=code)

    return handler


@pytest.fixture
async def base() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/html", not_json)
    app.router.add_get("/slow", slow)
    app.router.add_get("/truncated", truncated)
    app.router.add_get("/stalling", stalling)
    for code in (400, 401, 403, 404, 429, 500, 502, 503):
        app.router.add_get(f"/status/{code}", status(code))
    async with serve(app) as server:
        yield str(server.make_url("")).rstrip("/")


async def call(url: str, timeout_s: float = 2.0) -> object:
    async with aiohttp.ClientSession() as session:
        return await http.request_json(session, "s1", "GET", url, timeout_s=timeout_s)


async def test_a_large_body_is_read_whole(base: str) -> None:
    assert await call(base + "/big") == orjson.loads(orjson.dumps(BIG))


async def test_a_body_over_the_cap_is_refused(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body, "MAX_BODY_BYTES", 100_000)
    with pytest.raises(SourceBadResponse, match="too large"):
        await call(base + "/big")


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/html", SourceBadResponse),
        ("/truncated", SourceBadResponse),
        ("/status/400", SourceBadResponse),
        ("/status/404", SourceBadResponse),
        ("/status/401", SourceUnavailable),
        ("/status/403", SourceUnavailable),
        ("/status/429", SourceUnavailable),
        ("/status/500", SourceUnavailable),
        ("/status/502", SourceUnavailable),
        ("/status/503", SourceUnavailable),
    ],
)
async def test_upstream_failures_map_to_source_errors(
    base: str, path: str, kind: type[SourceError]
) -> None:
    with pytest.raises(kind) as caught:
        await call(base + path)
    assert type(caught.value) is kind
    assert caught.value.source_id == "s1"


async def test_a_slow_upstream_times_out(base: str) -> None:
    with pytest.raises(SourceTimeout):
        await call(base + "/slow", timeout_s=0.2)


async def test_an_answer_that_stalls_times_out_on_the_read_timeout(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        started = asyncio.get_running_loop().time()
        with pytest.raises(SourceTimeout) as caught:
            await http.request_json(
                session, "s1", "GET", base + "/stalling", timeout_s=3.0, read_timeout_s=0.2
            )
    assert str(caught.value) == "source 's1': the answer stalled for 0.2 s"
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceUnavailable):
        await call(f"http://127.0.0.1:{port}/")


async def test_a_server_that_closes_without_answering_is_unavailable() -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(SourceUnavailable):
            await call(f"http://127.0.0.1:{port}/")
    finally:
        server.close()
        await server.wait_closed()


async def test_redirects_are_not_followed_so_a_key_never_reaches_another_host() -> None:
    received: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        received.append(request.headers.get("X-Cle-Api", ""))
        return web.json_response({})

    other = web.Application()
    other.router.add_get("/{tail:.*}", elsewhere)
    async with serve(other) as target:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPFound(str(target.make_url("/steal")))

        app = web.Application()
        app.router.add_get("/", redirect)
        async with serve(app) as origin, aiohttp.ClientSession() as session:
            with pytest.raises(SourceBadResponse):
                await http.request_json(
                    session,
                    "s1",
                    "GET",
                    str(origin.make_url("/")),
                    timeout_s=2,
                    headers={"X-Cle-Api": "secret"},
                )
    assert received == []
