"""The cheaper request path (issue 17 item 1) sends and reads what the long one did:
a form as aiohttp's FormData wrote it, a body capped whatever its Content-Length or
encoding says, a first try outside tenacity that still hands retries to it."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
from aiohttp import web

from sources.errors import AnswerTooLarge, SourceBadResponse, SourceUnavailable
from sources.transport import body, http, retry
from sources.transport.retry import CALL_STATS, CallStats, with_retries
from tests.conftest import serve

FORM = [("status", "free"), ("start", "ge2026-12-07T10:00:00+00:00"), ("_include", "Slot:schedule")]


async def echo_form(request: web.Request) -> web.Response:
    return web.json_response(
        {"type": request.headers.get("Content-Type"), "body": (await request.read()).decode()}
    )


async def gzipped(request: web.Request) -> web.Response:
    packed = gzip.compress(orjson.dumps({"items": ["x" * 100] * 2000}))  # ~200 KB unpacked
    return web.Response(
        body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )


async def small(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@pytest.fixture
async def base() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/form", echo_form)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/small", small)
    async with serve(app) as server:
        yield str(server.make_url("")).rstrip("/")


async def test_a_form_is_sent_as_formdata_sent_it(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        ours = await http.request_json(
            session, "s1", "POST", base + "/form", timeout_s=2, data=FORM
        )
        async with session.post(base + "/form", data=FORM) as response:
            theirs = await response.json()
    assert ours == theirs
    assert ours["type"] == "application/x-www-form-urlencoded"
    assert "start=ge2026-12-07T10%3A00%3A00%2B00%3A00" in ours["body"]


async def test_an_encoded_body_is_capped_on_what_it_unpacks_to(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its Content-Length is the packed size, well under the cap: read chunk by chunk."""
    monkeypatch.setattr(body, "MAX_BODY_BYTES", 50_000)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AnswerTooLarge):
            await http.request_json(session, "s1", "GET", base + "/gzip", timeout_s=2)
    monkeypatch.setattr(body, "MAX_BODY_BYTES", 1_000_000)
    async with aiohttp.ClientSession() as session:
        answer = await http.request_json(session, "s1", "GET", base + "/gzip", timeout_s=2)
    assert len(answer["items"]) == 2000


async def test_a_body_within_its_content_length_is_read_whole(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        assert await http.request_json(session, "s1", "GET", base + "/small", timeout_s=2) == {
            "ok": True
        }


def failing(times: int, retryable: bool = True) -> tuple[list[int], object]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(len(calls) + 1)
        if len(calls) <= times:
            raise SourceUnavailable("s1", f"try {len(calls)}", retryable=retryable)
        return "answer"

    return calls, attempt


async def test_a_first_try_that_answers_needs_no_retry_machinery() -> None:
    calls, attempt = failing(0)
    stats = CallStats()
    token = CALL_STATS.set(stats)
    try:
        assert await with_retries(attempt, 1e12, logging.getLogger("t")) == "answer"  # type: ignore[arg-type]
    finally:
        CALL_STATS.reset(token)
    assert calls == [1] and stats.retries == 0


async def test_a_failed_first_try_is_retried_and_counted_as_before(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(retry, "_BACKOFF", lambda state: 0.0)
    calls, attempt = failing(2)
    stats = CallStats()
    token = CALL_STATS.set(stats)
    try:
        with caplog.at_level(logging.INFO, logger="t"):
            assert await with_retries(attempt, 1e12, logging.getLogger("t")) == "answer"  # type: ignore[arg-type]
    finally:
        CALL_STATS.reset(token)
    assert calls == [1, 2, 3] and stats.retries == 2
    assert [r.getMessage() for r in caplog.records] == [
        "retrying in 0.00 s after: source 's1': try 1",
        "retrying in 0.00 s after: source 's1': try 2",
    ]


async def test_three_tries_at_most_and_the_last_error_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retry, "_BACKOFF", lambda state: 0.0)
    calls, attempt = failing(5)
    with pytest.raises(SourceUnavailable, match="try 3"):
        await with_retries(attempt, 1e12, logging.getLogger("t"))  # type: ignore[arg-type]
    assert calls == [1, 2, 3]


async def test_no_retry_when_not_retryable_or_when_the_call_may_not_retry() -> None:
    calls, attempt = failing(1, retryable=False)
    with pytest.raises(SourceUnavailable, match="try 1"):
        await with_retries(attempt, 1e12, logging.getLogger("t"))  # type: ignore[arg-type]
    assert calls == [1]
    calls, attempt = failing(1)
    token = retry.CALL_RETRIES.set(False)
    try:
        with pytest.raises(SourceUnavailable, match="try 1"):
            await with_retries(attempt, 1e12, logging.getLogger("t"))  # type: ignore[arg-type]
    finally:
        retry.CALL_RETRIES.reset(token)
    assert calls == [1]


@pytest.mark.parametrize(
    "data",
    [
        FORM,
        [("x", "é ü/&=+,|$\\~"), ("", ""), ("a b", "c~d"), ("x", "é ü/&=+,|$\\~")],
        {"a": "b c", "é": "ü"},
        [("n", 3), ("flag", True)],  # not text: urlencode's own rules
        {"k": ["a", "b"]},
    ],
)
def test_a_form_is_encoded_as_urlencode_encodes_it(data: object) -> None:
    assert http._form(data) == urlencode(data, doseq=True).encode()  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://[not-an-ip/x", "ftp://example.invalid/x", "/relative"])
async def test_a_url_aiohttp_refuses_is_still_refused_as_invalid(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SourceUnavailable, match="invalid URL") as caught:
            await http.request_json(session, "s1", "GET", url, timeout_s=1)
    assert caught.value.retryable is False


async def test_a_body_both_sized_and_chunked_is_never_read_past_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hostile upstream announcing a small Content-Length over a long chunked body."""
    monkeypatch.setattr(body, "MAX_BODY_BYTES", 10_000)
    chunk = b"x" * 4096

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            for _ in range(64):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(hostile, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(SourceBadResponse):
                await http.request_json(
                    session, "s1", "GET", f"http://127.0.0.1:{port}/", timeout_s=2
                )
    finally:
        server.close()
        await server.wait_closed()
