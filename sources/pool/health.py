"""One health model: the status a client sees of a source, decided in one place.

``source_status`` reads, in this order, what the registry, the circuit breaker
(``sources.pool.breaker``, the only judge of ``DOWN``), the adapter and the
recent calls (``SourceHealth``) say::

    DISABLED   switched off in the registry, or its adapter could not be built
    DOWN       its circuit is open: ``SourceBreakers.THRESHOLD`` failures in a row,
               not called for ``SourceBreakers.TTL_S``
    DEGRADED   its circuit is half-open (the next call probes it); or the adapter
               says so (a bulk feed before its first load, or serving an older copy);
               or one of its last ``WINDOW`` calls failed; or it has not answered
               yet (no call since the gateway started: ``lastSuccessAt`` is null)
    UP         it answered its last calls (or, a bulk feed, holds a current copy)

A source is UP once it has shown it answers, never by default.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sources.records import SourceStatus

__all__ = ["WINDOW", "SourceHealth", "source_status"]

# A failure is remembered for the next ten calls: the source reads DEGRADED
# until they all answered.
WINDOW = 10


@dataclass(slots=True)
class SourceHealth:
    """What the gateway has seen of one source's calls; no upstream data is kept here."""

    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))
    last_success_at: datetime | None = None
    latency_ms: float | None = None

    def record(self, ok: bool, latency_ms: float) -> None:
        self.outcomes.append(ok)
        if ok:
            self.last_success_at = datetime.now(UTC)
            self.latency_ms = round(latency_ms, 1)

    @property
    def answering(self) -> bool:
        """Called at least once, and every recent call answered."""
        return bool(self.outcomes) and all(self.outcomes)


def source_status(
    *,
    enabled: bool,
    circuit: SourceStatus | None,
    hint: SourceStatus | None,
    health: SourceHealth,
) -> SourceStatus:
    """The status of a source: ``enabled`` (registry switch and a built adapter),
    ``circuit`` (``SourceBreakers.status``: DOWN, DEGRADED or None when closed),
    ``hint`` (``Source.status_hint``) and its recent calls."""
    if not enabled:
        return SourceStatus.DISABLED
    if circuit is not None:
        return circuit
    if hint is not None:
        return hint
    return SourceStatus.UP if health.answering else SourceStatus.DEGRADED
