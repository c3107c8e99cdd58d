"""HTTP for SMART Scheduling Links feeds: the manifest, and NDJSON files streamed line by line.

Both calls send the validators they are given (``If-None-Match``/``If-Modified-Since``),
accept ``304 Not Modified``, and return what the answer says about caching
(:class:`Fetched`). Failures are mapped by ``sources.transport.failures``, as for every
adapter, and bodies read by the capped reader of ``sources.transport.body``.

A file is never held whole in memory: each complete line goes to ``on_line`` as it
arrives, a line longer than ``max_line_bytes`` is dropped (and counted) without being
buffered, and a file past ``max_bytes`` is refused with ``AnswerTooLarge``.

What real publishers send is read all the same, and said in ``Fetched.tolerated``: a
UTF-8 byte-order mark, a body gzip'd without ``Content-Encoding`` (recognised by its
magic bytes; ``max_bytes`` then also caps what it inflates to) and, for NDJSON, a last
line without its newline.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import orjson

from sources.errors import AnswerTooLarge, SourceBadResponse
from sources.transport.body import MAX_BODY_BYTES, iter_capped, read_capped
from sources.transport.failures import map_errors, raise_for_status

BOM = "a UTF-8 byte-order mark"
GZIP_UNLABELLED = "gzip without Content-Encoding"
NO_FINAL_NEWLINE = "no newline after the last line"
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"

_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE_RE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:[=,]|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Fetched:
    """What an answer says about itself: ``not_modified`` for a 304, the validators to
    send next time, how long it stays fresh (None when the answer does not say) and its
    ``Content-Encoding`` (aiohttp inflates what it names)."""

    not_modified: bool
    etag: str | None = None
    last_modified: str | None = None
    fresh_for_s: float | None = None
    oversized_lines: int = 0
    tolerated: tuple[str, ...] = ()
    encoding: str | None = None


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
            body = await read_capped(response, source_id)
    tolerated = []
    if body.startswith(_GZIP_MAGIC):
        tolerated.append(GZIP_UNLABELLED)
        inflater = _Inflater(source_id, MAX_BODY_BYTES)
        body = b"".join([*inflater.feed(body), *inflater.finish()])
    if body.startswith(_UTF8_BOM):
        tolerated.append(BOM)
        body = body[len(_UTF8_BOM) :]
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceBadResponse(source_id, "the manifest is not valid JSON") from exc
    return replace(fetched, tolerated=tuple(tolerated)), decoded


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
            inflater: _Inflater | None = None
            first = True
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if first and chunk.startswith(_GZIP_MAGIC):
                        inflater = _Inflater(source_id, max_bytes)
                    first = False
                    for piece in inflater.feed(chunk) if inflater else (chunk,):
                        lines.feed(piece)
            for piece in inflater.finish() if inflater else ():
                lines.feed(piece)
    lines.finish()
    tolerated = [GZIP_UNLABELLED] if inflater else []
    tolerated += [BOM] if lines.bom else []
    tolerated += [NO_FINAL_NEWLINE] if lines.unterminated else []
    return Fetched(
        False,
        fetched.etag,
        fetched.last_modified,
        fetched.fresh_for_s,
        oversized_lines=lines.oversized,
        tolerated=tuple(tolerated),
        encoding=fetched.encoding,
    )


class _Inflater:
    """A gzip body (of one member or more) inflated piece by piece, each piece at most
    ``_PIECE`` bytes, refused with ``AnswerTooLarge`` once it inflates past ``max_bytes``."""

    _PIECE = 256 * 1024

    def __init__(self, source_id: str, max_bytes: int) -> None:
        self._source_id = source_id
        self._max = max_bytes
        self._size = 0
        self._inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        try:
            while data:
                piece = self._inflate.decompress(data, self._PIECE)
                self._count(piece, out)
                if self._inflate.eof:  # another member may follow
                    data = self._inflate.unused_data
                    self._inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                else:
                    data = self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise SourceBadResponse(self._source_id, "the gzip'd answer is corrupt") from exc
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        self._count(self._inflate.flush(), out)
        return out

    def _count(self, piece: bytes, out: list[bytes]) -> None:
        self._size += len(piece)
        if self._size > self._max:
            raise AnswerTooLarge(
                self._source_id, f"upstream answer too large (over {self._max} bytes inflated)"
            )
        if piece:
            out.append(piece)


class _Lines:
    """Chunks cut into lines: each non-blank line to ``on_line``, a line longer than
    ``max_line_bytes`` counted in ``oversized`` and dropped without being buffered."""

    def __init__(self, max_line_bytes: int, on_line: Callable[[bytes], None]) -> None:
        self._max = max_line_bytes
        self._on_line = on_line
        self._buffer = bytearray()
        self._discarding = False  # inside a line already known to be too long
        self.oversized = 0
        self.bom = False
        self.unterminated = False

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
        elif self._buffer.strip():
            self.unterminated = True
            self._emit(self._buffer)
        self._buffer.clear()

    def _emit(self, line: bytearray) -> None:
        data = bytes(line).strip()
        if data.startswith(_UTF8_BOM):
            self.bom = True
            data = data[len(_UTF8_BOM) :].strip()
        if data:
            self._on_line(data)


def _fetched(source_id: str, response: aiohttp.ClientResponse) -> Fetched:
    """What a 2xx or 304 answer says about caching; any other status raises."""
    raise_for_status(source_id, response, not_modified_ok=True)
    return Fetched(
        not_modified=response.status == 304,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        fresh_for_s=fresh_for(response.headers),
        encoding=response.headers.get("Content-Encoding"),
    )


__all__ = [
    "Fetched",
    "conditional_headers",
    "fetch_manifest",
    "fresh_for",
    "stream_ndjson",
]
