"""JSON over HTTP for the request/answer adapters (FHIR, REST JSON): one call,
retried within its deadline, its failures mapped by ``sources.transport.failures``
and its body read by ``sources.transport.body``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp
from yarl import URL

from sources.transport.body import read_json
from sources.transport.failures import map_errors, raise_for_answer
from sources.transport.retry import CALL_DEADLINE, CALL_STATS, with_retries

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
    absent: frozenset[int] = frozenset(),
) -> Any:
    """Send one request (tried again on a retryable failure, within the current
    call's deadline: ``sources.transport.retry``) and return its decoded JSON body;
    None when the answer's status is one of ``absent`` (a read of something gone:
    404, 410).

    Every request to a booking source is a read (FHIR's ``POST _search``
    included), so retrying is safe.
    """
    deadline = CALL_DEADLINE.get()
    if deadline is None:
        deadline = time.monotonic() + timeout_s
    timeout = _timeout(timeout_s, connect_timeout_s, read_timeout_s)
    body: bytes | None = None
    if data is not None:
        # A form, encoded once here (as aiohttp's FormData would, without its machinery
        # on every call, and once for all the tries).
        body = _form(data)
        headers = {**(headers or {}), "Content-Type": _FORM}
    target = _url(url)
    return await with_retries(
        lambda: _request_once(
            session, source_id, method, target, timeout,
            params=params, data=body, headers=headers, absent=absent,
        ),
        deadline,
        _logger(source_id),
    )  # fmt: skip


_FORM = "application/x-www-form-urlencoded"


@lru_cache(maxsize=256)
def _timeout(
    timeout_s: float, connect_timeout_s: float | None, read_timeout_s: float | None
) -> aiohttp.ClientTimeout:
    """The timeouts of a request: ``timeout_s`` bounds the whole exchange,
    ``connect_timeout_s`` the connection and ``read_timeout_s`` each read (both default
    to ``timeout_s``). One frozen value per source's settings, not one per call."""
    return aiohttp.ClientTimeout(
        total=timeout_s,
        sock_connect=connect_timeout_s or timeout_s,
        sock_read=read_timeout_s or timeout_s,
    )


def _form(data: Mapping[str, str] | list[tuple[str, str]]) -> bytes:
    """``urlencode(data, doseq=True)``, each name and value quoted once per text (a
    search sends the same few names, and values that repeat from call to call)."""
    pairs = data.items() if isinstance(data, Mapping) else data
    try:
        return "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in pairs).encode()
    except TypeError:  # not text: urlencode's own rules
        return urlencode(data, doseq=True).encode()


@lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(text)
    return quote_plus(text)


@lru_cache(maxsize=1024)
def _url(text: str) -> URL | str:
    """The URL parsed once per text (a source's few endpoints); a text yarl refuses is
    left to aiohttp, which refuses it as it always did (an invalid URL)."""
    try:
        return URL(text)
    except (ValueError, TypeError):
        return text


@lru_cache(maxsize=256)
def _logger(source_id: str) -> logging.Logger:
    return logging.getLogger(f"passerelle.sources.{source_id}")


async def _request_once(
    session: aiohttp.ClientSession,
    source_id: str,
    method: str,
    url: URL | str,
    limits: aiohttp.ClientTimeout,
    *,
    params: Params,
    data: bytes | None,
    headers: Mapping[str, str] | None,
    absent: frozenset[int] = frozenset(),
) -> Any:
    """Send one request and return its decoded JSON body (None: a status in ``absent``).

    Failures raise the ``SourceError`` that ``sources.transport.failures`` maps
    them to; an oversized body or bad JSON raise ``SourceBadResponse``.
    """
    with map_errors(source_id, limits):
        # Redirects are not followed: one to another host would carry the API key
        # there, and would skip the adapters' own same-origin checks.
        async with session.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=limits,
            allow_redirects=False,
        ) as response:
            stats = CALL_STATS.get()
            if stats is not None:
                stats.status = response.status
            if response.status in absent:
                return None
            await raise_for_answer(source_id, response)
            return await read_json(response, source_id)


__all__ = ["request_json"]
