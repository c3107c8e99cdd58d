"""The gateway's exception tree.

    GatewayError
    ├── SourceError                  a booking source failed this call (carries ``source_id``)
    │   ├── SourceTimeout            no answer within the source's timeout
    │   ├── SourceUnavailable        connection refused/reset, 5xx, 429, auth refused
    │   │   ├── SourceNotReady       our own copy is not there yet (a bulk feed's first load)
    │   │   └── SourceBusy           not called: a background call found no free slot
    │   └── SourceBadResponse        an answer we cannot trust: bad JSON, wrong shape
    │       ├── AnswerTooLarge       a body past its cap, refused as it arrived
    │       └── SourceRefusedRequest a 400/422 OperationOutcome: "this request is not supported"
    └── ConfigError                  a source definition or config file is wrong
        └── UnknownProtocol          no adapter registered for that protocol name

Lower-level exceptions are mapped to these in one place, always with
``raise ... from exc``: aiohttp and socket exceptions and HTTP statuses in
``sources.transport.failures`` (``map_errors``, ``raise_for_status``), which also
decides which failures are retried; bodies and their JSON in
``sources.transport.body``.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class SourceError(GatewayError):
    """A booking source failed. What a client sees of it (its ``extensions.code``) is
    mapped in the schema's catalogue of error codes, not here.

    ``counts_against_source``: whether the failure says the upstream is failing, and
    so counts toward its circuit breaker; a failure on our side does not.
    """

    counts_against_source: ClassVar[bool] = True

    def __init__(self, source_id: str, message: str) -> None:
        super().__init__(message)
        self.source_id = source_id
        self.message = message

    def __str__(self) -> str:
        return f"source {self.source_id!r}: {self.message}"


class SourceTimeout(SourceError):
    """No answer in time."""


class SourceUnavailable(SourceError):
    """Unreachable, overloaded or refusing. ``retryable``: a later try may succeed
    (5xx, 429, connection errors; not 401/403), set by ``sources.transport.failures``
    and False unless said; ``retry_after_s``: when the upstream said to come back
    (``Retry-After``); ``status``: the HTTP status it answered, if it answered (a 429
    slows the watch down)."""

    def __init__(
        self,
        source_id: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(source_id, message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status = status


class SourceBadResponse(SourceError):
    """An answer the adapter cannot trust: bad JSON, a wrong shape."""


class AnswerTooLarge(SourceBadResponse):
    """A body past its cap (``sources.transport.body``): refused, never buffered."""


class SourceRefusedRequest(SourceBadResponse):
    """The upstream refused this request as unsupported (HTTP 400 or 422 with a FHIR
    ``OperationOutcome``: a parameter it does not implement, such as ``near``). A fact
    about what the server can do, not an outage: it never counts toward the breaker.
    ``diagnostics``: the OperationOutcome's own words, sanitized and bounded, for the
    operator (the log and the source's problems), never for clients."""

    counts_against_source: ClassVar[bool] = False

    def __init__(self, source_id: str, message: str, *, diagnostics: str = "") -> None:
        super().__init__(source_id, message)
        self.diagnostics = diagnostics


class ConfigError(GatewayError):
    """A source definition, a config file or a registry entry is invalid."""


class UnknownProtocol(ConfigError):
    pass


class SourceNotReady(SourceUnavailable):
    """The gateway's own copy of the source is not there yet (a bulk feed before its
    first load): the upstream has not failed, so the breaker does not count it."""

    counts_against_source: ClassVar[bool] = False


class SourceBusy(SourceUnavailable):
    """Not called: a background call (the watch's) found every slot of the source's
    bulkhead taken by requests, and waits for its next turn. Never shown to a client,
    never counted by the breaker."""

    counts_against_source: ClassVar[bool] = False
