"""What the status page shows, as one JSON-ready value: the page renders it, and
``/status.json`` serves it as it is (its fields are listed in ``edge/status/README.md``;
``version`` changes if one ever changes meaning).

Nothing here calls a source: the sources' state is the pool's (``SourcePool.views`` and
its health counts), the coverage the last background count (``sources.coverage``).
Problem messages, samples and diagnostics, how each source was counted and the registry's
changes are added only for operators (``operator=True``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from edge.status.texts import REGION_NAMES

if TYPE_CHECKING:
    from sources.coverage import RegionCoverage
    from sources.pool.fanout import SourcePool, SourceView

__all__ = ["VERSION", "status_snapshot"]

VERSION = 1


def status_snapshot(
    pool: SourcePool, coverage: RegionCoverage | None, *, operator: bool, now: datetime
) -> dict[str, Any]:
    """The page's data; ``now``: the wall-clock time ages are measured from."""
    report = coverage.report if coverage is not None else None
    regions = None
    if report is not None:
        regions = {
            "computedAt": _iso(report.computed_at),
            "startsAfter": _iso(report.starts_after),
            "startsBefore": _iso(report.starts_before),
            "regions": [
                {
                    "region": count.region.value,
                    "number": REGION_NAMES[count.region][0],
                    "name": REGION_NAMES[count.region][1],
                    "clinics": count.clinics,
                    "freeSlots": count.free_slots,
                    "atLeast": count.at_least,
                }
                for count in report.regions
            ],
        }
    snapshot: dict[str, Any] = {
        "version": VERSION,
        "generatedAt": _iso(now),
        "sources": [_source(pool, view, now, operator) for view in pool.views()],
        "coverage": regions,
        "operator": None,
    }
    if operator:
        snapshot["operator"] = {
            "coverageRuns": coverage.runs if coverage is not None else 0,
            "coverageDurationMs": report.duration_ms if report is not None else None,
            "countedBy": dict(report.counted_by) if report is not None else {},
            "registryChanges": [
                {"at": _iso(c.at), "sourceId": c.source_id, "change": c.change}
                for c in (coverage.changes if coverage is not None else ())
            ],
        }
    return snapshot


def _source(pool: SourcePool, view: SourceView, now: datetime, operator: bool) -> dict[str, Any]:
    health = pool.health(view.id)
    fresh = view.data_as_of or view.last_success_at
    problems = []
    for found in view.problems:
        problem: dict[str, Any] = {
            "code": found.code,
            "severity": found.severity.value,
            "count": found.count,
        }
        if operator:
            problem |= {
                "message": found.message,
                "samples": list(found.samples),
                "diagnostics": found.diagnostics,
            }
        problems.append(problem)
    return {
        "id": view.id,
        "name": view.name,
        "protocol": view.protocol.value,
        "status": view.status.value,
        "lastSuccessAt": _iso(view.last_success_at),
        "dataAsOf": _iso(view.data_as_of),
        "freshnessSeconds": (
            None if fresh is None else round(max(0.0, (now - fresh).total_seconds()))
        ),
        "latencyMs": view.latency_ms,
        "meanLatencyMs": (
            round(health.call_seconds / health.calls * 1000, 1) if health.calls else None
        ),
        "calls": health.calls,
        "problems": problems,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")
