"""JSON over HTTP for the request/answer adapters (FHIR, REST JSON): one call,
retried within its deadline, its failures mapped by ``sources.transport.failures``
and its body read by ``sources.transport.body``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

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
    return await with_retries(
        lambda: _request_once(
            session, source_id, method, url,
            timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s, params=params, data=data, headers=headers,
            absent=absent,
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
    absent: frozenset[int] = frozenset(),
) -> Any:
    """Send one request and return its decoded JSON body (None: a status in ``absent``).

    ``timeout_s`` bounds the whole exchange, ``connect_timeout_s`` the connection
    and ``read_timeout_s`` each read (both default to ``timeout_s``).

    Failures raise the ``SourceError`` that ``sources.transport.failures`` maps
    them to; an oversized body or bad JSON raise ``SourceBadResponse``.
    """
    timeout = aiohttp.ClientTimeout(
        total=timeout_s,
        sock_connect=connect_timeout_s or timeout_s,
        sock_read=read_timeout_s or timeout_s,
    )
    with map_errors(source_id, timeout):
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
            stats = CALL_STATS.get()
            if stats is not None:
                stats.status = response.status
            if response.status in absent:
                return None
            await raise_for_answer(source_id, response)
            return await read_json(response, source_id)


__all__ = ["request_json"]
