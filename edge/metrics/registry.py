"""The app's metrics: one :class:`~prometheus_client.CollectorRegistry` per app (never
the process-wide default: several apps live in one test process), the counters the
edge moves as it serves, and the collectors that read the pool and the watch when
Prometheus scrapes.

Labels never carry an id of a clinic, slot, physician or alert, nor a client's
address or key: an operation is named by its trusted document's operation name, else
``anonymous``; both labels are bounded (:class:`~edge.metrics.labels.BoundedLabel`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from edge.metrics.collectors import EdgeCollector, SourceCollector
from edge.metrics.labels import BoundedLabel
from schema.error_codes import code_of

if TYPE_CHECKING:
    from strawberry.types.execution import ExecutionResult

    from edge.documents.apq import PersistedQueries
    from edge.middleware.rate_limit import RateGuard
    from edge.subscriptions.hub import Subscriptions
    from sources.pool.fanout import SourcePool
    from sources.watch import SlotWatch
    from sources.webhooks.delivery import DeliveryWorker

__all__ = ["ANONYMOUS", "GatewayMetrics", "outcome_of"]

ANONYMOUS = "anonymous"
# From a cached answer (a few ms) to the operation deadline.
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def outcome_of(result: ExecutionResult) -> str:
    """``ok``, or the first error's ``extensions.code`` (schema/error_codes.py)."""
    return str(code_of(result.errors[0])) if result.errors else "ok"


class GatewayMetrics:
    """What ``/metrics`` shows of one app; the parts given are read at scrape time only
    (by :class:`SourceCollector` and :class:`EdgeCollector`)."""

    def __init__(
        self,
        *,
        pool: SourcePool | None = None,
        subscriptions: Subscriptions | None = None,
        watch: SlotWatch | None = None,
        rate_guard: RateGuard | None = None,
        persisted: PersistedQueries | None = None,
        webhooks: DeliveryWorker | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operations = BoundedLabel()
        self.outcomes = BoundedLabel()
        registry = self.registry
        self.requests = Counter(
            "passerelle_requests",
            "GraphQL operations executed or refused, by operation and outcome (ok or code)",
            ["operation", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "passerelle_request_duration_seconds",
            "Time from admission to result of a GraphQL operation",
            ["operation"],
            buckets=BUCKETS_S,
            registry=registry,
        )
        self.response_cache = Counter(
            "passerelle_response_cache_lookups",
            "Response-cache lookups of persisted operations, by result (hit or miss)",
            ["result"],
            registry=registry,
        )
        if pool is not None:
            registry.register(SourceCollector(pool))
        registry.register(EdgeCollector(subscriptions, watch, rate_guard, persisted, webhooks))

    def observe_request(self, operation: str, outcome: str, seconds: float) -> None:
        label = self.operations(operation)
        self.requests.labels(label, self.outcomes(outcome)).inc()
        self.duration.labels(label).observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)
