"""A circuit breaker per source: stop calling a source that keeps failing, probe it later.

After ``THRESHOLD`` failures in a row (timeouts, unavailable, bad answers; not
our own adapter bugs, nor a bulk feed's first load still running) a source's
circuit opens: calls are refused at once, with ``SOURCE_UNAVAILABLE``, for
``TTL_S`` seconds, and the source shows ``DOWN``. Then the circuit half-opens:
the next calls go through as probes and the source shows ``DEGRADED``; one
success closes it, one failure opens it again. The breaker is the only judge of
``DOWN`` (``sources.pool.health.source_status``).

The state machine is purgatory's (a maintained asyncio circuit breaker), kept
in process: each gateway instance judges its upstreams by what it sees.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from sources.errors import SourceError
from sources.records import SourceStatus

if TYPE_CHECKING:
    from purgatory.domain.model import Context
    from purgatory.service._async.circuitbreaker import AsyncCircuitBreaker

__all__ = ["CircuitOpen", "SourceBreakers"]

CircuitOpen = OpenedState


def _not_a_failure(error: BaseException) -> bool:
    """Only the upstream's failures count: an adapter bug is ours, and so is a copy
    not loaded yet (``SourceError.counts_against_source``)."""
    if isinstance(error, SourceError):
        return not error.counts_against_source
    return not isinstance(error, TimeoutError)


class SourceBreakers:
    THRESHOLD: ClassVar[int] = 5
    TTL_S: ClassVar[float] = 30.0

    def __init__(self) -> None:
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=self.THRESHOLD,
            default_ttl=self.TTL_S,
            exclude=[(Exception, _not_a_failure)],
        )
        self._contexts: dict[str, Context] = {}
        self._breakers: dict[str, AsyncCircuitBreaker] = {}

    async def breaker(self, source_id: str) -> AsyncCircuitBreaker:
        """The breaker to enter around a call; entering an open one raises ``CircuitOpen``.

        Made once per source: purgatory's in-memory repository keeps one ``Context`` per
        circuit and changes it in place, so the same breaker serves every call."""
        breaker = self._breakers.get(source_id)
        if breaker is None:
            breaker = await self._factory.get_breaker(source_id)
            self._breakers[source_id] = breaker
            self._contexts[source_id] = breaker.context
        return breaker

    def reopens_in(self, source_id: str) -> float:
        context = self._contexts.get(source_id)
        if context is None or context.opened_at is None:
            return 0.0
        return max(0.0, context.opened_at + context.ttl - time.time())

    def status(self, source_id: str) -> SourceStatus | None:
        """DOWN while open, DEGRADED while half-open (or due to probe); None when closed."""
        context = self._contexts.get(source_id)
        if context is None or context.state == "closed":
            return None
        if context.state == "opened" and self.reopens_in(source_id) > 0:
            return SourceStatus.DOWN
        return SourceStatus.DEGRADED
