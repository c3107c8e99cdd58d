"""HTTP calls to upstreams, with every low-level failure mapped to a ``SourceError``.

This is the one place where aiohttp and JSON exceptions become gateway errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from sources.errors import SourceBadResponse, SourceTimeout, SourceUnavailable
from sources.transport.retry import CALL_DEADLINE, with_retries

# An answer bigger than this is refused rather than buffered: a hostile or
# broken upstream must not exhaust the gateway's memory.
MAX_BODY_BYTES = 32 * 1024 * 1024

Params = Mapping[str, str] | list[tuple[str, str]] | None


async def request_json(
    session: aiohttp.ClientSession,
    source_id: str,
    method: str,
    url: str,
    *,
    timeout_s: float,
    connect_timeout_s: float | None = None,
    read_timeout_s: float | None = None,
    params: Params = None,
    data: Mapping[str, str] | list[tuple[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Send one request (tried again on a retryable failure, within the current
    call's deadline: ``sources.transport.retry``) and return its decoded JSON body.

    Every request to a booking source is a read (FHIR's ``POST _search``
    included), so retrying is safe.
    """
    deadline = CALL_DEADLINE.get()
    if deadline is None:
        deadline = time.monotonic() + timeout_s
    return await with_retries(
        lambda: _request_once(
            session, source_id, method, url,
            timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s, params=params, data=data, headers=headers,
        ),
        deadline,
        logging.getLogger(f"passerelle.sources.{source_id}"),
    )  # fmt: skip


async def _request_once(
    session: aiohttp.ClientSession,
    source_id: str,
    method: str,
    url: str,
    *,
    timeout_s: float,
    connect_timeout_s: float | None,
    read_timeout_s: float | None,
    params: Params,
    data: Mapping[str, str] | list[tuple[str, str]] | None,
    headers: Mapping[str, str] | None,
) -> Any:
    """Send one request and return its decoded JSON body.

    ``timeout_s`` bounds the whole exchange, ``connect_timeout_s`` the connection
    and ``read_timeout_s`` each read (both default to ``timeout_s``).

    Raises ``SourceTimeout`` past a timeout, ``SourceUnavailable`` when the
    upstream cannot be reached or answers 401/403/429/5xx, and
    ``SourceBadResponse`` for any other non-2xx, an oversized body or bad JSON.
    """
    timeout = aiohttp.ClientTimeout(
        total=timeout_s,
        sock_connect=connect_timeout_s or timeout_s,
        sock_read=read_timeout_s or timeout_s,
    )
    try:
        # Redirects are not followed: one to another host would carry the API key
        # there, and would skip the adapters' own same-origin checks.
        async with session.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            if response.status in (401, 403, 429) or response.status >= 500:
                raise SourceUnavailable(
                    source_id,
                    f"upstream answered HTTP {response.status}",
                    retryable=response.status not in (401, 403),
                    retry_after_s=retry_after(response.headers.get("Retry-After")),
                )
            if response.status >= 300:
                raise SourceBadResponse(source_id, f"upstream answered HTTP {response.status}")
            if response.content_length is not None and response.content_length > MAX_BODY_BYTES:
                raise SourceBadResponse(source_id, "upstream answer too large")
            # content.read(n) returns what is buffered so far, not the whole body:
            # read to the end, stopping as soon as the cap is passed.
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise SourceBadResponse(source_id, "upstream answer too large")
                chunks.append(chunk)
            body = b"".join(chunks)
    except aiohttp.ConnectionTimeoutError as exc:
        limit = connect_timeout_s or timeout_s
        raise SourceTimeout(source_id, f"no connection within {limit:g} s") from exc
    except aiohttp.SocketTimeoutError as exc:
        limit = read_timeout_s or timeout_s
        raise SourceTimeout(source_id, f"the answer stalled for {limit:g} s") from exc
    except TimeoutError as exc:
        raise SourceTimeout(source_id, f"no answer within {timeout_s:g} s") from exc
    except aiohttp.ClientResponseError as exc:
        raise SourceBadResponse(source_id, f"malformed HTTP answer ({exc.status})") from exc
    except aiohttp.ClientPayloadError as exc:
        raise SourceBadResponse(source_id, "truncated or corrupt HTTP body") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise SourceUnavailable(source_id, f"cannot reach upstream ({type(exc).__name__})") from exc
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceBadResponse(source_id, "upstream answer is not valid JSON") from exc


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def shape_error(source_id: str, what: str) -> SourceBadResponse:
    """The error for a payload whose JSON parses but whose shape is wrong."""
    return SourceBadResponse(source_id, f"unexpected payload: {what}")


__all__ = ["MAX_BODY_BYTES", "request_json", "retry_after", "shape_error"]
