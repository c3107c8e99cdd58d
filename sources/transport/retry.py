"""Retries of a source call: idempotent reads only, jittered backoff, within the deadline.

Every request the gateway makes to a booking source is a read, so one that failed
in a way a later try may fix (connection refused or reset, 5xx, 429) is tried
again, at most ``ATTEMPTS`` times in all, after a jittered exponential pause,
or after the upstream's ``Retry-After`` when it gave one and it ends before the
call's deadline. 401/403, timeouts and bad answers are not retried: trying
again would not help, or would not fit.

The retry policy is tenacity's (a well-kept library) rather than a loop of ours; the
first try is made before it, so that a call that answers pays nothing for retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from sources.errors import SourceUnavailable

T = TypeVar("T")

ATTEMPTS = 3
_BACKOFF = wait_random_exponential(multiplier=0.05, max=0.5)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, SourceUnavailable) and error.retry_after_s is not None:
        return error.retry_after_s
    return _BACKOFF(state)


# When the source call under way must be over (a ``time.monotonic()`` instant): set
# by the pool around each call, read by every request the adapter makes for it.
CALL_DEADLINE: ContextVar[float | None] = ContextVar("passerelle_call_deadline", default=None)


@dataclass(slots=True)
class CallStats:
    """What the requests of one source call did, for its metrics and its span: how many
    times one was tried again, and the HTTP status of the last answer (None: none came)."""

    retries: int = 0
    status: int | None = None


# The stats of the source call under way: set by the pool around each call, moved by
# every request the adapter makes for it (``with_retries``, ``sources.transport.http``).
CALL_STATS: ContextVar[CallStats | None] = ContextVar("passerelle_call_stats", default=None)


# Whether the source call under way may retry: False for the watch's background calls,
# which come again at their own pace (each request is one of its calls per minute).
CALL_RETRIES: ContextVar[bool] = ContextVar("passerelle_call_retries", default=True)


async def with_retries(
    attempt: Callable[[], Awaitable[T]], deadline: float, logger: logging.Logger
) -> T:
    """``attempt()``, made again on a retryable failure while the retry fits before
    ``deadline``. Each upstream request is retried on its own: a call made of several
    requests does not start over because its last one failed."""

    def worth_retrying(error: BaseException) -> bool:
        if not isinstance(error, SourceUnavailable) or not error.retryable:
            return False
        pause = error.retry_after_s or 0.0
        return time.monotonic() + pause < deadline

    def log(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.info("retrying in %.2f s after: %s", wait, error)
        stats = CALL_STATS.get()
        if stats is not None:
            stats.retries += 1

    attempts = ATTEMPTS if CALL_RETRIES.get() else 1
    # The first try is made as is: most answer, and tenacity's state machine then costs
    # more than the call's own work. A failure it may retry is handed to tenacity as
    # that first try's outcome, so that the tries, pauses and logs are tenacity's.
    try:
        return await attempt()
    except SourceUnavailable as error:
        if attempts == 1 or not worth_retrying(error):
            raise
        first: SourceUnavailable | None = error

    async def again() -> T:
        nonlocal first
        if first is not None:
            error, first = first, None
            raise error
        return await attempt()

    async for try_ in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=_wait,
        retry=retry_if_exception(worth_retrying),
        before_sleep=log,
        reraise=True,
    ):
        with try_:
            return await again()
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover
