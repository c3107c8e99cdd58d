"""Every aiohttp exception kind and every HTTP status maps to its intended SourceError,
and whether it is retried is decided by ``sources.transport.failures`` alone.

The exception kinds are walked from aiohttp's (and ``ssl``'s, and the builtins')
modules, so a kind a new aiohttp release adds fails here until it is mapped on purpose.
"""

from __future__ import annotations

import builtins
import inspect
import socket
import ssl
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from sources.errors import SourceBadResponse, SourceError, SourceTimeout, SourceUnavailable
from sources.smart_scheduling.http import fetch_manifest, stream_ndjson
from sources.transport.failures import error_for_status, map_errors
from sources.transport.http import request_json
from tests.conftest import serve

TIMEOUT = aiohttp.ClientTimeout(total=3.0, sock_connect=1.0, sock_read=2.0)
Expected = tuple[type[SourceError], bool]  # the error, and whether it is retried
TIMED_OUT: Expected = (SourceTimeout, False)
UNREACHABLE: Expected = (SourceUnavailable, True)
REFUSED: Expected = (SourceUnavailable, False)
BAD: Expected = (SourceBadResponse, False)

# What each kind a client request can raise stands for. A kind missing here fails
# ``test_every_exception_kind_maps_to_its_intended_error``.
INTENDED: dict[str, Expected] = {
    # aiohttp's client errors
    "ClientError": REFUSED,  # the base, raised by no request: an unknown kind
    "ClientConnectionError": UNREACHABLE,
    "ClientConnectionResetError": UNREACHABLE,
    "ClientOSError": UNREACHABLE,
    "ClientConnectorError": UNREACHABLE,
    "ClientConnectorDNSError": UNREACHABLE,
    "ClientProxyConnectionError": UNREACHABLE,
    "ClientSSLError": UNREACHABLE,  # a handshake cut short may pass next time
    "ClientConnectorSSLError": UNREACHABLE,
    "ClientConnectorCertificateError": REFUSED,  # refused now, refused again
    "ServerFingerprintMismatch": REFUSED,
    "ServerConnectionError": UNREACHABLE,
    "ServerDisconnectedError": UNREACHABLE,
    "UploadAbortedError": UNREACHABLE,
    "ServerTimeoutError": TIMED_OUT,
    "ConnectionTimeoutError": TIMED_OUT,
    "SocketTimeoutError": TIMED_OUT,
    "ClientResponseError": BAD,  # malformed HTTP
    "ContentTypeError": BAD,
    "TooManyRedirects": BAD,
    "WSServerHandshakeError": BAD,
    "ClientHttpProxyError": UNREACHABLE,  # built with a 502 below
    "ClientPayloadError": BAD,
    "RedirectClientError": BAD,
    "InvalidUrlRedirectClientError": BAD,
    "NonHttpUrlRedirectClientError": BAD,
    "InvalidURL": REFUSED,
    "InvalidUrlClientError": REFUSED,
    "NonHttpUrlClientError": REFUSED,
    # the standard library's, raised through aiohttp
    "TimeoutError": TIMED_OUT,  # asyncio.TimeoutError is this one
    "ConnectionError": UNREACHABLE,
    "ConnectionRefusedError": UNREACHABLE,
    "ConnectionResetError": UNREACHABLE,
    "ConnectionAbortedError": UNREACHABLE,
    "BrokenPipeError": UNREACHABLE,
    "gaierror": UNREACHABLE,
    "SSLError": UNREACHABLE,
    "SSLZeroReturnError": UNREACHABLE,
    "SSLWantReadError": UNREACHABLE,
    "SSLWantWriteError": UNREACHABLE,
    "SSLSyscallError": UNREACHABLE,
    "SSLEOFError": UNREACHABLE,
    "SSLCertVerificationError": REFUSED,
}

# aiohttp exceptions a client request never raises (server side, WebSocket frames,
# header warnings, an internal end-of-stream marker).
NOT_FROM_A_REQUEST = {
    "BadContentDispositionHeader",
    "BadContentDispositionParam",
    "EofStream",
    "WSMessageTypeError",
    "WebSocketError",
}


def _kinds(module: ModuleType, base: type[BaseException]) -> set[type[BaseException]]:
    return {
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, base)
    }


def _walked() -> list[type[BaseException]]:
    from_aiohttp = {
        kind for kind in _kinds(aiohttp, BaseException) if kind.__name__ not in NOT_FROM_A_REQUEST
    }
    others = (
        _kinds(ssl, ssl.SSLError)
        | _kinds(builtins, ConnectionError)
        | {TimeoutError, socket.gaierror}
    )
    return sorted(from_aiohttp | others, key=lambda kind: kind.__name__)


_ARGUMENTS: dict[str, Any] = {
    "connection_key": ConnectionKey("example.org", 443, True, True, None, None, None),
    "os_error": ConnectionRefusedError(111, "Connection refused"),
    "certificate_error": ssl.SSLCertVerificationError("certificate verify failed"),
    "request_info": RequestInfo(
        URL("https://example.org/"),
        "GET",
        CIMultiDictProxy(CIMultiDict()),
        URL("https://example.org/"),
    ),
    "history": (),
    "expected": b"\x00" * 32,
    "got": b"\x01" * 32,
    "host": "example.org",
    "port": 443,
    "url": "http://exa mple.org/",
    "message": "gone",
}


def _instance(kind: type[BaseException]) -> BaseException:
    """An instance of ``kind`` built from its constructor's required arguments."""
    if issubclass(kind, aiohttp.ClientResponseError):
        return kind(_ARGUMENTS["request_info"], (), status=502)
    try:
        parameters = inspect.signature(kind).parameters
    except ValueError:  # the builtins' ``(*args)``: nothing required
        return kind()
    arguments = []
    for name, parameter in parameters.items():
        if parameter.default is not inspect.Parameter.empty or parameter.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            continue
        assert name in _ARGUMENTS, f"teach this test how to build a {kind.__name__} ({name})"
        arguments.append(_ARGUMENTS[name])
    return kind(*arguments)


def test_the_walk_finds_the_kinds_the_issue_names() -> None:
    names = {kind.__name__ for kind in _walked()}
    assert {
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ClientPayloadError",
        "TooManyRedirects",
        "InvalidURL",
        "ClientResponseError",
        "TimeoutError",
        "SSLError",
        "ClientConnectorCertificateError",
    } <= names
    assert len(names) >= 40


@pytest.mark.parametrize("kind", _walked(), ids=lambda kind: kind.__name__)
def test_every_exception_kind_maps_to_its_intended_error(kind: type[BaseException]) -> None:
    assert kind.__name__ in INTENDED, f"decide what {kind.__name__} stands for"
    error_kind, retried = INTENDED[kind.__name__]
    raised = _instance(kind)
    with pytest.raises(SourceError) as caught, map_errors("s1", TIMEOUT):
        raise raised
    error = caught.value
    assert type(error) is error_kind
    assert error.source_id == "s1"
    assert error.__cause__ is raised
    assert getattr(error, "retryable", False) is retried


def test_other_exceptions_pass_through_unmapped() -> None:
    with pytest.raises(KeyError), map_errors("s1", TIMEOUT):
        raise KeyError("an adapter bug stays an adapter bug")


def test_timeouts_say_which_limit_was_passed() -> None:
    messages = []
    for raised in (aiohttp.ConnectionTimeoutError(), aiohttp.SocketTimeoutError(), TimeoutError()):
        with pytest.raises(SourceTimeout) as caught, map_errors("s1", TIMEOUT):
            raise raised
        messages.append(caught.value.message)
    assert messages == [
        "no connection within 1 s",
        "the answer stalled for 2 s",
        "no answer within 3 s",
    ]


def _intended_status(status: int) -> Expected | None:
    """What the README promises: 429 and 5xx retried, 401/403 refused and not
    retried, 408 a timeout, any other non-2xx a bad answer."""
    if 200 <= status < 300:
        return None
    if status == 408:
        return TIMED_OUT
    if status in (401, 403):
        return REFUSED
    if status == 429 or status >= 500:
        return UNREACHABLE
    return BAD


@pytest.mark.parametrize("first", [100, 200, 300, 400, 500], ids=lambda s: f"{s // 100}xx")
def test_every_status_of_each_class_maps_to_its_intended_error(first: int) -> None:
    wrong = {}
    for status in range(first, first + 100):
        error = error_for_status("s1", status, {})
        got = None if error is None else (type(error), getattr(error, "retryable", False))
        if got != _intended_status(status):
            wrong[status] = got
    assert wrong == {}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (204, None),
        (304, BAD),  # no validators were sent
        (401, REFUSED),
        (403, REFUSED),
        (404, BAD),
        (408, TIMED_OUT),
        (429, UNREACHABLE),
        (503, UNREACHABLE),
    ],
)
def test_the_special_statuses(status: int, expected: Expected | None) -> None:
    error = error_for_status("s1", status, {})
    got = None if error is None else (type(error), getattr(error, "retryable", False))
    assert got == expected
    if error is not None:
        assert error.message == f"upstream answered HTTP {status}"


def test_a_304_answers_a_conditional_request() -> None:
    assert error_for_status("s1", 304, {}, not_modified_ok=True) is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_carried_by_the_error(status: int) -> None:
    error = error_for_status("s1", status, {"Retry-After": "7"})
    assert isinstance(error, SourceUnavailable)
    assert error.retryable and error.retry_after_s == 7.0
    dated = error_for_status("s1", status, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(dated, SourceUnavailable) and dated.retry_after_s == 0.0


# Every adapter's HTTP goes through the same mapping: the JSON call (FHIR, REST JSON)
# and both SMART Scheduling Links calls answer the same statuses with the same errors.
SPECIAL = (401, 403, 404, 408, 429, 500, 503)


@pytest.fixture
async def statuses() -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        return web.Response(status=status, headers={"Retry-After": "9"})

    app = web.Application()
    app.router.add_get("/{status:\\d+}", answer)
    async with serve(app) as server:
        yield str(server.make_url("")).rstrip("/")


async def _json(session: aiohttp.ClientSession, url: str) -> object:
    return await request_json(session, "s1", "GET", url, timeout_s=2.0)


async def _manifest(session: aiohttp.ClientSession, url: str) -> object:
    return await fetch_manifest(session, "s1", url, params=None, headers={}, timeout_s=2.0)


async def _ndjson(session: aiohttp.ClientSession, url: str) -> object:
    return await stream_ndjson(
        session,
        "s1",
        url,
        headers={},
        timeout_s=2.0,
        deadline_s=2.0,
        max_bytes=1 << 20,
        max_line_bytes=1 << 16,
        on_line=lambda line: None,
    )


@pytest.mark.parametrize("status", SPECIAL)
async def test_every_adapter_maps_a_status_the_same_way(statuses: str, status: int) -> None:
    expected = error_for_status("s1", status, {"Retry-After": "9"})
    assert expected is not None
    async with aiohttp.ClientSession() as session:
        for reader in (_json, _manifest, _ndjson):
            with pytest.raises(SourceError) as caught:
                await reader(session, f"{statuses}/{status}")
            error = caught.value
            assert (type(error), error.message) == (type(expected), expected.message), reader
            assert vars(error) == vars(expected), reader
