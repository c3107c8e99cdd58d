"""HTTP for SMART Scheduling Links feeds: the manifest, and NDJSON files streamed line by line.

Both calls send the validators they are given (``If-None-Match``/``If-Modified-Since``),
accept ``304 Not Modified``, and return what the answer says about caching
(:class:`Fetched`). Failures are mapped by ``sources.transport.failures``, as for every
adapter, and bodies read by the capped reader of ``sources.transport.body``.

A file is never held whole in memory: each complete line goes to ``on_line`` as it
arrives, a line longer than ``max_line_bytes`` is dropped (and counted) without being
buffered, and a file past ``max_bytes`` is refused with ``AnswerTooLarge``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from sources.transport.body import iter_capped, read_json
from sources.transport.failures import map_errors, raise_for_status

_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE_RE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:[=,]|$)", re.IGNORECASE)


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
    with map_errors(source_id, timeout):
        async with session.get(url, params=params, headers=headers, timeout=timeout) as response:
            fetched = _fetched(source_id, response)
            if fetched.not_modified:
                return fetched, None
            return fetched, await read_json(response, source_id)


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
    lines = _Lines(max_line_bytes, on_line)
    with map_errors(source_id, timeout):
        async with session.get(url, headers=headers, timeout=timeout) as response:
            fetched = _fetched(source_id, response)
            if fetched.not_modified:
                return fetched
            chunks = iter_capped(response, source_id, max_bytes)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    lines.feed(chunk)
    lines.finish()
    return Fetched(
        False,
        fetched.etag,
        fetched.last_modified,
        fetched.fresh_for_s,
        oversized_lines=lines.oversized,
    )


class _Lines:
    """Chunks cut into lines: each non-blank line to ``on_line``, a line longer than
    ``max_line_bytes`` counted in ``oversized`` and dropped without being buffered."""

    def __init__(self, max_line_bytes: int, on_line: Callable[[bytes], None]) -> None:
        self._max = max_line_bytes
        self._on_line = on_line
        self._buffer = bytearray()
        self._discarding = False  # inside a line already known to be too long
        self.oversized = 0

    def feed(self, chunk: bytes) -> None:
        if self._discarding:
            end = chunk.find(b"\n")
            if end < 0:
                return
            chunk, self._discarding = chunk[end + 1 :], False
        buffer = self._buffer
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            if end - start > self._max:
                self.oversized += 1
            elif end > start:
                self._emit(buffer[start:end])
            start = end + 1
        del buffer[:start]
        if len(buffer) > self._max:
            self.oversized += 1
            buffer.clear()
            self._discarding = True

    def finish(self) -> None:
        """The last line, which may end without a newline."""
        if len(self._buffer) > self._max:
            self.oversized += 1
        elif self._buffer:
            self._emit(self._buffer)
        self._buffer.clear()

    def _emit(self, line: bytearray) -> None:
        data = bytes(line).strip()
        if data:
            self._on_line(data.removeprefix(b"\xef\xbb\xbf"))


def _fetched(source_id: str, response: aiohttp.ClientResponse) -> Fetched:
    """What a 2xx or 304 answer says about caching; any other status raises."""
    raise_for_status(source_id, response, not_modified_ok=True)
    return Fetched(
        not_modified=response.status == 304,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        fresh_for_s=fresh_for(response.headers),
    )


__all__ = [
    "Fetched",
    "conditional_headers",
    "fetch_manifest",
    "fresh_for",
    "stream_ndjson",
]
