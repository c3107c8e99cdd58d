"""One health model: the status a client sees of a source, decided in one place.

``source_status`` reads, in this order, what the registry, the circuit breaker
(``sources.pool.breaker``, the only judge of ``DOWN``), the adapter and the
recent calls (``SourceHealth``) say::

    DISABLED   switched off in the registry, or its adapter could not be built
    DOWN       its circuit is open: ``SourceBreakers.THRESHOLD`` failures in a row,
               not called for ``SourceBreakers.TTL_S``
    DEGRADED   the current data lack slots the source published: a ``LOSS`` problem
               (its circuit half-open, an incomplete search, a failed file, a bulk
               feed not loaded yet or serving an older copy...); or the adapter says
               so; or one of its last ``WINDOW`` calls failed; or it has not answered
               yet (no call nor probe answered since the gateway started:
               ``lastSuccessAt`` is null)
    UP         it answered its last calls (or, a bulk feed, holds a current copy);
               ``WARNING`` problems (records malformed per the specification, a
               request it refused as unsupported) leave it UP

A source is UP once it has shown it answers, never by default. Its problems are
the adapter's (``Source.problems``) and the pool's own (``pool_problems``: the
circuit, the requests it refused).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sources.problems import MAX_SAMPLES, ProblemBook, ProblemCode, problem
from sources.records import ProblemSeverity, SourceStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sources.errors import SourceError, SourceRefusedRequest
    from sources.records import SourceProblem

__all__ = [
    "BULKHEAD_WAIT_BUCKETS_S",
    "WINDOW",
    "SourceHealth",
    "merge_problems",
    "pool_problems",
    "source_status",
]

# A failure is remembered for the next ten calls: the source reads DEGRADED
# until they all answered.
WINDOW = 10
# The upper bounds of the bulkhead waits' histogram (its last bucket: every wait).
BULKHEAD_WAIT_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


@dataclass(slots=True)
class SourceHealth:
    """What the gateway has seen of one source's calls; no upstream data is kept here."""

    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))
    last_success_at: datetime | None = None
    latency_ms: float | None = None
    problems: ProblemBook = field(default_factory=ProblemBook)
    # Running totals, read by the metrics at scrape time (edge/metrics/): a few adds a call.
    calls: int = 0
    call_seconds: float = 0.0
    failures: Counter[type[SourceError]] = field(default_factory=Counter)
    # Requests of its calls tried again (sources.transport.retry), calls refused at once
    # by its open circuit, and calls that found its bulkhead full: how long they waited
    # (counts per bucket of ``BULKHEAD_WAIT_BUCKETS_S``, not cumulative, and the sum).
    retries: int = 0
    breaker_refusals: int = 0
    bulkhead_waits: list[int] = field(
        default_factory=lambda: [0] * (len(BULKHEAD_WAIT_BUCKETS_S) + 1)
    )
    bulkhead_wait_seconds: float = 0.0

    def waited(self, seconds: float) -> None:
        """A call waited ``seconds`` for a slot of the source's bulkhead (or gave up)."""
        self.bulkhead_wait_seconds += seconds
        for i, bound in enumerate(BULKHEAD_WAIT_BUCKETS_S):
            if seconds <= bound:
                self.bulkhead_waits[i] += 1
                return
        self.bulkhead_waits[-1] += 1

    def refused(self, error: SourceRefusedRequest) -> bool:
        """A request the source refused as unsupported: it answered, and said no.
        True when it is news to log (the first in the problem book's ``ttl_s``)."""
        return self.problems.note(
            ProblemCode.REQUEST_REFUSED,
            "the source refused a request as unsupported (HTTP 400/422 OperationOutcome); "
            "its slots for such searches are missing until its adapter uses another plan",
            diagnostics=error.diagnostics or None,
        )

    def served_as_one(self, folded: int) -> None:
        """A search found ``folded`` free slots of the source with the same clinic,
        physician (or none), type, start and end as another of its slots."""
        self.problems.note(
            ProblemCode.SAME_TIME_SLOTS,
            "free slots had the same clinic, physician (or none), type, start and end as "
            "another slot of the source: each such group is served as one slot, its seats "
            "the sum of theirs, with the first one's booking link and phone (count: the "
            "most slots one search served as part of another, over the last 10 minutes)",
            count=folded,
            largest=True,
        )

    def record(self, ok: bool, latency_ms: float, failure: type[SourceError] | None = None) -> None:
        """A call's outcome; ``failure``: the kind of error it failed with."""
        self.outcomes.append(ok)
        self.calls += 1
        self.call_seconds += latency_ms / 1000
        if failure is not None:
            self.failures[failure] += 1
        if ok:
            self.last_success_at = datetime.now(UTC)
            self.latency_ms = round(latency_ms, 1)

    @property
    def answering(self) -> bool:
        """Called at least once, and every recent call answered."""
        return bool(self.outcomes) and all(self.outcomes)


def pool_problems(circuit: SourceStatus | None, health: SourceHealth) -> tuple[SourceProblem, ...]:
    """The problems the pool itself sees: an open or half-open circuit, refused requests."""
    found = list(health.problems.current())
    if circuit is SourceStatus.DOWN:
        found.append(
            problem(
                ProblemCode.BREAKER_OPEN,
                "the source failed repeatedly and is not called until its circuit half-opens; "
                "see the log for its failures",
            )
        )
    elif circuit is SourceStatus.DEGRADED:
        found.append(
            problem(
                ProblemCode.BREAKER_HALF_OPEN,
                "the source failed repeatedly; the next call probes it and a success closes "
                "its circuit",
            )
        )
    return tuple(found)


def merge_problems(*groups: Sequence[SourceProblem]) -> tuple[SourceProblem, ...]:
    """One problem per code, as a source shows them: the adapter and the pool may both
    note one (a refusal the adapter worked around, then one it could not), counted
    together; the first noted message and diagnostics win."""
    merged: dict[str, SourceProblem] = {}
    for found in (p for group in groups for p in group):
        seen = merged.get(found.code)
        if seen is None:
            merged[found.code] = found
            continue
        samples = (*seen.samples, *(s for s in found.samples if s not in seen.samples))
        merged[found.code] = replace(
            seen,
            count=seen.count + found.count,
            samples=samples[:MAX_SAMPLES],
            diagnostics=seen.diagnostics or found.diagnostics,
        )
    return tuple(merged.values())


def source_status(
    *,
    enabled: bool,
    circuit: SourceStatus | None,
    hint: SourceStatus | None,
    health: SourceHealth,
    problems: Sequence[SourceProblem] = (),
    probed: bool = False,
) -> SourceStatus:
    """The status of a source: ``enabled`` (registry switch and a built adapter),
    ``circuit`` (``SourceBreakers.status``: DOWN, DEGRADED or None when closed),
    ``hint`` (``Source.status_hint``), its ``problems`` and its recent calls;
    ``probed``: the adapter's own probe answered (``Source.probed_at``), which counts as
    having answered until a call says otherwise."""
    if not enabled:
        return SourceStatus.DISABLED
    if circuit is not None:
        return circuit
    if any(p.severity is ProblemSeverity.LOSS for p in problems):
        return SourceStatus.DEGRADED
    if hint is not None:
        return hint
    answered = health.answering or (probed and not health.outcomes)
    return SourceStatus.UP if answered else SourceStatus.DEGRADED
