"""Collectors read at scrape time, so that serving pays nothing for them: the sources'
calls, failures, breaker, status, freshness and problems (``SourcePool``), and the open
subscriptions and watch groups.

The ``source`` label is a source's registry id (a booking system, set by the operator,
bounded by the registry): never a clinic's, slot's or physician's.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from schema.error_codes import source_code
from sources.pool.health import BULKHEAD_WAIT_BUCKETS_S
from sources.records import SourceStatus

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from edge.documents.apq import PersistedQueries
    from edge.middleware.rate_limit import RateGuard
    from edge.subscriptions.hub import Subscriptions
    from sources.pool.fanout import SourcePool
    from sources.watch import SlotWatch
    from sources.webhooks.delivery import DeliveryWorker

__all__ = ["BREAKER_STATES", "EdgeCollector", "SourceCollector"]

# passerelle_source_breaker_state: 0 closed, 1 half-open, 2 open.
BREAKER_STATES = {None: 0.0, SourceStatus.DEGRADED: 1.0, SourceStatus.DOWN: 2.0}


class SourceCollector(Collector):
    """Every registered source's counts, as the pool holds them now."""

    def __init__(self, pool: SourcePool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "passerelle_source_calls", "Calls made to a source", labels=["source"]
        )
        failures = CounterMetricFamily(
            "passerelle_source_failures",
            "Calls to a source that failed, by error code (SOURCE_TIMEOUT, ...)",
            labels=["source", "code"],
        )
        seconds = CounterMetricFamily(
            "passerelle_source_call_seconds",
            "Time spent in calls to a source (divide by calls for the mean latency)",
            labels=["source"],
        )
        breaker = GaugeMetricFamily(
            "passerelle_source_breaker_state",
            "A source's circuit: 0 closed, 1 half-open, 2 open",
            labels=["source"],
        )
        status = GaugeMetricFamily(
            "passerelle_source_status",
            "1 for a source's current status (UP, DEGRADED, DOWN, DISABLED)",
            labels=["source", "status"],
        )
        age = GaugeMetricFamily(
            "passerelle_source_data_age_seconds",
            "Age of a source's data: since its copy's data_as_of, else its last success",
            labels=["source"],
        )
        retries = CounterMetricFamily(
            "passerelle_source_retries",
            "Requests to a source tried again after a retryable failure (5xx, 429, reset)",
            labels=["source"],
        )
        refusals = CounterMetricFamily(
            "passerelle_source_breaker_refusals",
            "Calls to a source refused at once because its circuit was open",
            labels=["source"],
        )
        waits = HistogramMetricFamily(
            "passerelle_source_bulkhead_wait_seconds",
            "Time calls waited for a free slot of a source's bulkhead (only calls that "
            "found it full)",
            labels=["source"],
        )
        problems = GaugeMetricFamily(
            "passerelle_source_problems",
            "A source's current problems, by code (their count)",
            labels=["source", "code"],
        )
        now = time.time()
        for view in self.pool.views():
            health = self.pool.health(view.id)
            calls.add_metric([view.id], health.calls)
            seconds.add_metric([view.id], health.call_seconds)
            by_code: Counter[str] = Counter()
            for kind, count in health.failures.items():
                by_code[str(source_code(kind))] += count
            for code, count in sorted(by_code.items()):
                failures.add_metric([view.id, code], count)
            breaker.add_metric([view.id], BREAKER_STATES[self.pool.breakers.status(view.id)])
            retries.add_metric([view.id], health.retries)
            refusals.add_metric([view.id], health.breaker_refusals)
            waits.add_metric(
                [view.id], _buckets(health.bulkhead_waits), health.bulkhead_wait_seconds
            )
            for state in SourceStatus:
                status.add_metric([view.id, state.name], 1.0 if view.status is state else 0.0)
            fresh = view.data_as_of or view.last_success_at
            if fresh is not None:
                age.add_metric([view.id], max(0.0, now - fresh.timestamp()))
            for found in view.problems:
                problems.add_metric([view.id, str(found.code)], found.count)
        cache = CounterMetricFamily(
            "passerelle_source_cache_lookups",
            "Reads of a source looked up in the source cache, by result (fresh, stale, miss)",
            labels=["source", "result"],
        )
        for (source_id, result), count in sorted(self.pool.cache.lookups.items()):
            cache.add_metric([source_id, result], count)
        yield from (calls, failures, seconds, breaker, status, age, problems, cache)
        yield from (retries, refusals, waits)


def _buckets(counts: list[int]) -> list[tuple[str, float]]:
    """Prometheus' cumulative buckets from counts per bucket (the last one: +Inf)."""
    bounds = [*(str(b) for b in BULKHEAD_WAIT_BUCKETS_S), "+Inf"]
    total = 0
    out = []
    for bound, count in zip(bounds, counts, strict=True):
        total += count
        out.append((bound, float(total)))
    return out


class EdgeCollector(Collector):
    """Open subscriptions (their transports), the watch's groups, rate-limit refusals
    and APQ lookups: counts their owners keep as plain integers."""

    def __init__(
        self,
        subscriptions: Subscriptions | None,
        watch: SlotWatch | None,
        rate_guard: RateGuard | None = None,
        persisted: PersistedQueries | None = None,
        webhooks: DeliveryWorker | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.watch = watch
        self.rate_guard = rate_guard
        self.persisted = persisted
        self.webhooks = webhooks

    def collect(self) -> Iterator[Metric]:
        if self.webhooks is not None:
            deliveries = CounterMetricFamily(
                "passerelle_webhook_deliveries",
                "Webhook delivery attempts, by result (delivered, failed)",
                labels=["result"],
            )
            deliveries.add_metric(["delivered"], self.webhooks.successes)
            deliveries.add_metric(["failed"], self.webhooks.failures)
            yield deliveries
        if self.rate_guard is not None:
            refusals = CounterMetricFamily(
                "passerelle_rate_limit_refusals",
                "Requests refused with a 429, by kind of client (partner or anonymous)",
                labels=["client"],
            )
            for kind in ("anonymous", "partner"):
                refusals.add_metric([kind], self.rate_guard.refusals[kind])
            yield refusals
        if self.persisted is not None:
            lookups = CounterMetricFamily(
                "passerelle_apq_lookups",
                "Automatic persisted queries looked up by hash alone, by result (hit, miss)",
                labels=["result"],
            )
            for result in ("hit", "miss"):
                lookups.add_metric([result], self.persisted.lookups[result])
            yield lookups
        if self.subscriptions is not None:
            yield GaugeMetricFamily(
                "passerelle_subscription_transports",
                "Open subscription transports (WebSockets and multipart streams)",
                value=self.subscriptions.open_transports,
            )
        if self.watch is not None:
            yield GaugeMetricFamily(
                "passerelle_watch_groups",
                "Slot-alert groups watched (subscribers grouped by a coarse key)",
                value=len(self.watch.groups),
            )
