"""Bounded labels: at most 200 values a label, the rest folded into ``other``."""

from __future__ import annotations

import pytest

from edge.metrics import OTHER, BoundedLabel, GatewayMetrics
from edge.metrics.labels import MAX_VALUES


def test_a_label_keeps_its_first_values_and_folds_the_rest_into_other() -> None:
    label = BoundedLabel(limit=3)
    assert [label(v) for v in ("a", "b", "a", "c", "d", OTHER)] == [
        "a",
        "b",
        "a",
        OTHER,
        OTHER,
        OTHER,
    ]
    assert len(label) == 3


def test_a_label_needs_room_for_one_value() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BoundedLabel(limit=0)


def test_the_operation_label_never_takes_more_than_200_values() -> None:
    metrics = GatewayMetrics()
    for n in range(500):
        metrics.observe_request(f"Operation{n}", f"CODE_{n}", 0.01)
    operations = {
        sample.labels["operation"]
        for sample in metrics.requests.collect()[0].samples
        if sample.name == "passerelle_requests_total"
    }
    outcomes = {
        sample.labels["outcome"]
        for sample in metrics.requests.collect()[0].samples
        if sample.name == "passerelle_requests_total"
    }
    assert len(operations) == len(outcomes) == MAX_VALUES == 200
    assert OTHER in operations and "Operation0" in operations and "Operation499" not in operations
    # Everything was counted: the folded operations went to "other".
    total = sum(s.value for s in metrics.requests.collect()[0].samples if s.name.endswith("_total"))
    assert total == 500
