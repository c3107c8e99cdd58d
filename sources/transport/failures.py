"""Transport failures mapped to our errors, in one place for every adapter.

Whatever the protocol (FHIR, REST JSON, SMART Scheduling Links), an HTTP call runs
inside ``map_errors`` (aiohttp and socket exceptions) and its answer goes through
``raise_for_status``; both raise ``from`` the original failure. Whether a later try
may succeed is decided here too (``SourceUnavailable.retryable``, read by
``sources.transport.retry``)::

    failure                                           error               retried
    timeout: connecting, a read, the whole exchange   SourceTimeout       no
    HTTP 408                                          SourceTimeout       no
    refused, reset, closed, DNS, other socket errors  SourceUnavailable   yes
    HTTP 429 and 5xx (``Retry-After`` honoured)       SourceUnavailable   yes
    HTTP 401, 403                                     SourceUnavailable   no
    certificate refused, invalid URL, unknown kind    SourceUnavailable   no
    HTTP 400, 422 with a FHIR OperationOutcome        SourceRefusedRequest no
    HTTP 1xx, 3xx (not followed), other 4xx, a bad
    redirect, malformed HTTP, a truncated body        SourceBadResponse   no

A refused request (``SourceRefusedRequest``, a kind of ``SourceBadResponse``) says
"this request is not supported", not "this server is failing": it never counts
toward the breaker, and its diagnostics (``sanitize_diagnostics``) go to the
operator. Telling it apart needs the body: ``raise_for_answer`` reads it (capped)
for a 400/422, ``raise_for_status`` only looks at the status line.

Modelled on httpx's ``map_exceptions``.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import aiohttp
import orjson

from sources.errors import (
    SourceBadResponse,
    SourceError,
    SourceRefusedRequest,
    SourceTimeout,
    SourceUnavailable,
)
from sources.transport.body import read_capped

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = [
    "error_for_exception",
    "error_for_status",
    "map_errors",
    "raise_for_answer",
    "raise_for_status",
    "refusal_for",
    "retry_after",
    "retryable_status",
    "sanitize_diagnostics",
    "shape_error",
]

# The statuses with which a FHIR server refuses a search it does not support.
REFUSAL_STATUSES = frozenset({400, 422})
# An OperationOutcome is small; a bigger error body is not read further.
MAX_REFUSAL_BYTES = 64 * 1024
# What the operator gets of an upstream's own words.
MAX_DIAGNOSTICS_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")

# A certificate or a pinned fingerprint refused now is refused again a moment later.
_TLS_REFUSED = (
    ssl.SSLCertVerificationError,
    aiohttp.ClientConnectorCertificateError,
    aiohttp.ServerFingerprintMismatch,
)


def retryable_status(status: int) -> bool:
    """Whether an answer with this HTTP status may be followed by a better one:
    429 (too many requests) and 5xx. Every request to a booking source is a read,
    so trying again is safe."""
    return status == 429 or 500 <= status < 600


def error_for_status(
    source_id: str,
    status: int,
    headers: Mapping[str, str],
    *,
    not_modified_ok: bool = False,
) -> SourceError | None:
    """The error an answer with ``status`` stands for, or None for a 2xx (and for a
    304 when ``not_modified_ok``: the caller sent validators)."""
    if 200 <= status < 300 or (status == 304 and not_modified_ok):
        return None
    message = f"upstream answered HTTP {status}"
    if status == 408:
        return SourceTimeout(source_id, message)
    if status in (401, 403):
        # Credentials refused: trying again would be refused again (and could lock them).
        return SourceUnavailable(source_id, message, retryable=False, status=status)
    if retryable_status(status):
        return SourceUnavailable(
            source_id,
            message,
            retryable=True,
            retry_after_s=retry_after(headers.get("Retry-After")),
            status=status,
        )
    return SourceBadResponse(source_id, message)


def raise_for_status(
    source_id: str, response: aiohttp.ClientResponse, *, not_modified_ok: bool = False
) -> None:
    """Raise the ``SourceError`` a non-2xx answer stands for (see ``error_for_status``)."""
    error = error_for_status(
        source_id, response.status, response.headers, not_modified_ok=not_modified_ok
    )
    if error is not None:
        raise error


async def raise_for_answer(source_id: str, response: aiohttp.ClientResponse) -> None:
    """``raise_for_status``, and for a 400/422 whose body is an OperationOutcome, the
    ``SourceRefusedRequest`` it stands for (the body is read, capped, only then)."""
    if response.status in REFUSAL_STATUSES:
        try:
            body = await read_capped(response, source_id, MAX_REFUSAL_BYTES)
        except SourceError:
            body = b""
        refusal = refusal_for(source_id, response.status, body)
        if refusal is not None:
            raise refusal
    raise_for_status(source_id, response)


def refusal_for(source_id: str, status: int, body: bytes) -> SourceRefusedRequest | None:
    """The refusal a 400/422 answer stands for when its body is a FHIR OperationOutcome."""
    if status not in REFUSAL_STATUSES:
        return None
    try:
        outcome = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return None
    said = []
    for issue in outcome.get("issue") or ():
        if not isinstance(issue, dict):
            continue
        details = issue.get("details")
        text = details.get("text") if isinstance(details, dict) else None
        for value in (issue.get("diagnostics"), text):
            if isinstance(value, str) and value.strip() and value not in said:
                said.append(value)
    diagnostics = sanitize_diagnostics("; ".join(said))
    return SourceRefusedRequest(
        source_id,
        f"upstream refused the request as unsupported (HTTP {status})",
        diagnostics=diagnostics,
    )


def sanitize_diagnostics(text: str) -> str:
    """An upstream's words made safe for a log line: control and bidirectional
    characters replaced by spaces, whitespace collapsed, at most
    ``MAX_DIAGNOSTICS_CHARS`` characters."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) > MAX_DIAGNOSTICS_CHARS:
        text = text[: MAX_DIAGNOSTICS_CHARS - 1].rstrip() + "…"
    return text


_LOCATING = re.compile(
    r"-?\d+\.\d+"  # a decimal number: a coordinate, a distance
    r"|\b[A-Za-z]\d[A-Za-z][ -]?\d[A-Za-z]\d\b"  # a Canadian postal code
)


def redact_for_log(text: str) -> str:
    """Diagnostics fit for the log: an upstream may echo what it refused, and what
    a request carried may locate a person (coordinates, a postal code): masked."""
    return _LOCATING.sub("…", text)


def _seconds(*limits: float | None) -> str:
    limit = next((value for value in limits if value), None)
    return f"{limit:g} s" if limit is not None else "its timeout"


def error_for_exception(
    source_id: str, exc: BaseException, timeout: aiohttp.ClientTimeout
) -> SourceError:
    """The ``SourceError`` an aiohttp or socket exception stands for; ``timeout`` is
    the one the request ran with, to say which limit was passed."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        limit = _seconds(timeout.sock_connect, timeout.connect, timeout.total)
        return SourceTimeout(source_id, f"no connection within {limit}")
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return SourceTimeout(
            source_id, f"the answer stalled for {_seconds(timeout.sock_read, timeout.total)}"
        )
    if isinstance(exc, TimeoutError):
        return SourceTimeout(source_id, f"no answer within {_seconds(timeout.total)}")
    if isinstance(exc, _TLS_REFUSED):
        return SourceUnavailable(source_id, f"TLS refused ({name})", retryable=False)
    if isinstance(exc, aiohttp.RedirectClientError):
        return SourceBadResponse(source_id, f"redirected to an unusable URL ({name})")
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return SourceUnavailable(source_id, f"invalid URL ({name})", retryable=False)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return SourceUnavailable(
            source_id,
            f"the proxy answered HTTP {exc.status}",
            retryable=retryable_status(exc.status),
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        return SourceBadResponse(source_id, f"malformed HTTP answer ({exc.status})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return SourceBadResponse(source_id, "truncated or corrupt HTTP body")
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.UploadAbortedError | OSError):
        return SourceUnavailable(source_id, f"cannot reach upstream ({name})", retryable=True)
    # A kind this table does not know yet: reported, not retried.
    return SourceUnavailable(source_id, f"HTTP call failed ({name})", retryable=False)


@contextlib.contextmanager
def map_errors(source_id: str, timeout: aiohttp.ClientTimeout) -> Iterator[None]:
    """Turn aiohttp and socket exceptions raised inside into ``SourceError``s.

    >>> with map_errors("clinic-a", timeout):  # doctest: +SKIP
    ...     async with session.get(url, timeout=timeout) as response: ...
    """
    try:
        yield
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError and ssl errors included
        raise error_for_exception(source_id, exc, timeout) from exc


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
