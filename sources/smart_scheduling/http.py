"""HTTP for SMART Scheduling Links feeds: the manifest, and NDJSON files streamed line by line.

Both calls send the validators they are given (``If-None-Match``/``If-Modified-Since``),
accept ``304 Not Modified``, and return what the answer says about caching
(:class:`Fetched`). Failures are mapped exactly as ``sources.transport.http.request_json`` maps
them: ``SourceTimeout`` past a timeout, ``SourceUnavailable`` when the publisher cannot
be reached or answers 401/403/429/5xx, ``SourceBadResponse`` for anything else.

A file is never held whole in memory: each complete line goes to ``on_line`` as it
arrives, a line longer than ``max_line_bytes`` is dropped (and counted) without being
buffered, and a file past ``max_bytes`` is refused with :class:`FileTooLarge`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from sources.errors import SourceBadResponse, SourceTimeout, SourceUnavailable
from sources.transport.http import MAX_BODY_BYTES

CHUNK_BYTES = 64 * 1024
_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE_RE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:[=,]|$)", re.IGNORECASE)


class FileTooLarge(SourceBadResponse):
    """A file past the size cap: refused, never buffered."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """What an answer says about itself: ``not_modified`` for a 304, the validators to
    send next time, and how long it stays fresh (None when the answer does not say)."""

    not_modified: bool
    etag: str | None = None
    last_modified: str | None = None
    fresh_for_s: float | None = None
    oversized_lines: int = 0


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def fresh_for(headers: Mapping[str, str]) -> float | None:
    """Seconds the answer stays fresh by ``Cache-Control`` (less its ``Age``), else None."""
    cache_control = headers.get("Cache-Control", "")
    if _NO_CACHE_RE.search(cache_control):
        return 0.0
    match = _MAX_AGE_RE.search(cache_control)
    if match is None:
        return None
    try:
        age = max(0.0, float(headers.get("Age", "0")))
    except ValueError:
        age = 0.0
    return max(0.0, int(match.group(1)) - age)


async def fetch_manifest(
    session: aiohttp.ClientSession,
    source_id: str,
    url: str,
    *,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str],
    timeout_s: float,
) -> tuple[Fetched, Any]:
    """GET the manifest; its decoded JSON, or None on a 304."""
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=timeout_s, sock_read=timeout_s)
    with mapped_errors(source_id, f"no answer within {timeout_s:g} s"):
        async with session.get(url, params=params, headers=headers, timeout=timeout) as response:
            fetched = _check(source_id, response)
            if fetched.not_modified:
                return fetched, None
            if response.content_length is not None and response.content_length > MAX_BODY_BYTES:
                raise SourceBadResponse(source_id, "manifest too large")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise SourceBadResponse(source_id, "manifest too large")
                chunks.append(chunk)
    try:
        return fetched, orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise SourceBadResponse(source_id, "manifest is not valid JSON") from exc


async def stream_ndjson(
    session: aiohttp.ClientSession,
    source_id: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout_s: float,
    deadline_s: float,
    max_bytes: int,
    max_line_bytes: int,
    on_line: Callable[[bytes], None],
) -> Fetched:
    """GET an NDJSON file and hand each non-blank line to ``on_line`` as it arrives.

    ``timeout_s`` bounds the connection and every read, ``deadline_s`` the whole file.
    """
    timeout = aiohttp.ClientTimeout(total=deadline_s, sock_connect=timeout_s, sock_read=timeout_s)
    with mapped_errors(
        source_id, f"file not read within {timeout_s:g} s per read, {deadline_s:g} s"
    ):
        async with session.get(url, headers=headers, timeout=timeout) as response:
            fetched = _check(source_id, response)
            if fetched.not_modified:
                return fetched
            if response.content_length is not None and response.content_length > max_bytes:
                raise FileTooLarge(source_id, f"file larger than {max_bytes} bytes")
            buffer = bytearray()
            size = oversized = 0
            discarding = False  # inside a line already known to be too long
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(source_id, f"file larger than {max_bytes} bytes")
                if discarding:
                    end = chunk.find(b"\n")
                    if end < 0:
                        continue
                    chunk, discarding = chunk[end + 1 :], False
                buffer += chunk
                start = 0
                while (end := buffer.find(b"\n", start)) >= 0:
                    if end - start > max_line_bytes:
                        oversized += 1
                    elif end > start:
                        _emit(buffer[start:end], on_line)
                    start = end + 1
                del buffer[:start]
                if len(buffer) > max_line_bytes:
                    oversized += 1
                    buffer.clear()
                    discarding = True
            if len(buffer) > max_line_bytes:
                oversized += 1
            elif buffer:
                _emit(buffer, on_line)
    return Fetched(
        False, fetched.etag, fetched.last_modified, fetched.fresh_for_s, oversized_lines=oversized
    )


def _emit(line: bytearray, on_line: Callable[[bytes], None]) -> None:
    data = bytes(line).strip()
    if data:
        on_line(data.removeprefix(b"\xef\xbb\xbf"))


def _check(source_id: str, response: aiohttp.ClientResponse) -> Fetched:
    status = response.status
    if status in (401, 403, 429) or status >= 500:
        raise SourceUnavailable(source_id, f"upstream answered HTTP {status}")
    if status >= 300 and status != 304:
        raise SourceBadResponse(source_id, f"upstream answered HTTP {status}")
    return Fetched(
        not_modified=status == 304,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        fresh_for_s=fresh_for(response.headers),
    )


@contextlib.contextmanager
def mapped_errors(source_id: str, timeout_message: str) -> Iterator[None]:
    """Map aiohttp and socket failures to ``SourceError``s, as ``sources.transport.http`` does."""
    try:
        yield
    except TimeoutError as exc:
        raise SourceTimeout(source_id, timeout_message) from exc
    except aiohttp.ClientResponseError as exc:
        raise SourceBadResponse(source_id, f"malformed HTTP answer ({exc.status})") from exc
    except aiohttp.ClientPayloadError as exc:
        raise SourceBadResponse(source_id, "truncated or corrupt HTTP body") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise SourceUnavailable(source_id, f"cannot reach upstream ({type(exc).__name__})") from exc


__all__ = [
    "Fetched",
    "FileTooLarge",
    "conditional_headers",
    "fetch_manifest",
    "fresh_for",
    "mapped_errors",
    "stream_ndjson",
]
