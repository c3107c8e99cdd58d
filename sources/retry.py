"""Retries of a source call: idempotent reads only, jittered backoff, within the deadline.

Every call the gateway makes to a booking source is a read, so one that failed
in a way a later try may fix (connection refused or reset, 5xx, 429) is tried
again, at most ``ATTEMPTS`` times in all, after a jittered exponential pause,
or after the upstream's ``Retry-After`` when it gave one and it ends before the
call's deadline. 401/403, timeouts and bad answers are not retried: trying
again would not help, or would not fit.

The retry policy is tenacity's (a well-kept library) rather than a loop of ours.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from sources.errors import SourceUnavailable

if TYPE_CHECKING:
    from sources.base import Source

T = TypeVar("T")

ATTEMPTS = 3
_BACKOFF = wait_random_exponential(multiplier=0.05, max=0.5)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, SourceUnavailable) and error.retry_after_s is not None:
        return error.retry_after_s
    return _BACKOFF(state)


async def call_with_retries(
    source: Source, call: Callable[[Source], Awaitable[T]], deadline: float
) -> T:
    """``call(source)``, tried again on a retryable failure while it fits before
    ``deadline`` (a ``time.monotonic()`` instant)."""

    def worth_retrying(error: BaseException) -> bool:
        if not isinstance(error, SourceUnavailable) or not error.retryable:
            return False
        pause = error.retry_after_s or 0.0
        return time.monotonic() + pause < deadline

    def log(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        source.logger.info("retrying in %.2f s after: %s", wait, error)

    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=_wait,
        retry=retry_if_exception(worth_retrying),
        before_sleep=log,
        reraise=True,
    ):
        with attempt:
            return await call(source)
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover
