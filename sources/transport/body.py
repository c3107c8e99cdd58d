"""The one capped reader of upstream answers: a body past its cap is refused as it
arrives, never buffered whole, whatever the ``Content-Length`` said (or did not say).

``iter_capped`` hands the body on chunk by chunk (a streamed NDJSON file),
``read_capped`` returns it whole, ``read_json`` decodes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from sources.errors import AnswerTooLarge, SourceBadResponse

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    import aiohttp

__all__ = ["CHUNK_BYTES", "MAX_BODY_BYTES", "iter_capped", "read_capped", "read_json"]

# An answer bigger than this is refused rather than buffered: a hostile or
# broken upstream must not exhaust the gateway's memory.
MAX_BODY_BYTES = 32 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


async def iter_capped(
    response: aiohttp.ClientResponse, source_id: str, max_bytes: int | None = None
) -> AsyncGenerator[bytes, None]:
    """The body's chunks as they arrive; ``AnswerTooLarge`` once past ``max_bytes``
    (``MAX_BODY_BYTES`` by default). Close it (``contextlib.aclosing``) when the
    consumer may stop early."""
    limit = MAX_BODY_BYTES if max_bytes is None else max_bytes
    too_large = f"upstream answer too large (over {limit} bytes)"
    if response.content_length is not None and response.content_length > limit:
        raise AnswerTooLarge(source_id, too_large)
    # content.read(n) returns what is buffered so far, not the whole body: read
    # to the end, stopping as soon as the cap is passed.
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(source_id, too_large)
        yield chunk


async def read_capped(
    response: aiohttp.ClientResponse, source_id: str, max_bytes: int | None = None
) -> bytes:
    """The whole body, refused with ``AnswerTooLarge`` past ``max_bytes``."""
    limit = MAX_BODY_BYTES if max_bytes is None else max_bytes
    length = response.content_length
    headers = response.headers
    if (
        length is not None
        and length <= limit
        and "Content-Encoding" not in headers
        and "Transfer-Encoding" not in headers
    ):
        # aiohttp's parser delivers no more than Content-Length bytes of a plain body
        # (a shorter one fails as truncated): read in one go, without the chunk by
        # chunk generator, the cap already holds. Anything else is counted as it comes.
        return await response.read()
    return b"".join([chunk async for chunk in iter_capped(response, source_id, limit)])


async def read_json(
    response: aiohttp.ClientResponse, source_id: str, max_bytes: int | None = None
) -> Any:
    """The body, capped, decoded as JSON; ``SourceBadResponse`` when it is not JSON."""
    body = await read_capped(response, source_id, max_bytes)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceBadResponse(source_id, "upstream answer is not valid JSON") from exc
