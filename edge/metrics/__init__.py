"""Prometheus metrics at ``/metrics``: a registry per app, what the edge counts as it
serves, and what the pool and the watch already hold, read at scrape time
([README](README.md)).

    metrics = GatewayMetrics(pool=pool, subscriptions=subscriptions, watch=watch)
    metrics.observe_request(operation_label, outcome, seconds)
"""

from edge.metrics.collectors import EdgeCollector, SourceCollector
from edge.metrics.endpoint import metrics_endpoint
from edge.metrics.labels import OTHER, BoundedLabel
from edge.metrics.listener import MetricsListener
from edge.metrics.registry import ANONYMOUS, GatewayMetrics, outcome_of

__all__ = [
    "ANONYMOUS",
    "OTHER",
    "BoundedLabel",
    "EdgeCollector",
    "GatewayMetrics",
    "MetricsListener",
    "SourceCollector",
    "metrics_endpoint",
    "outcome_of",
]
