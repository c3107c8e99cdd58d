"""The page rendered from a snapshot: before the first count, without sources, and the
operator view, whose samples and diagnostics (upstream words) are escaped too."""

from __future__ import annotations

from typing import Any

from edge.status.page import render_page
from edge.status.texts import TEXTS, choose_language


def snapshot(**more: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "generatedAt": "2026-11-16T12:30:00+00:00",
        "sources": [],
        "coverage": None,
        "operator": None,
    } | more


def test_before_the_first_count_and_without_sources_the_page_says_so() -> None:
    page = render_page(snapshot(), "fr")
    assert 'id="coverage-pending"' in page and "Couverture en cours de calcul." in page
    assert TEXTS["fr"]["no_sources"] in page
    assert "<table" not in page


def test_the_operator_view_escapes_samples_and_diagnostics_and_keeps_itself_on_switch() -> None:
    problem = {
        "code": "FILE_FAILED",
        "severity": "LOSS",
        "count": 2,
        "message": "a file <failed>",
        "samples": ["https://x.test/a.ndjson?<b>"],
        "diagnostics": "<img src=x onerror=alert(1)>",
    }
    source = {
        "id": "feed",
        "name": "Feed",
        "protocol": "SMART_SCHEDULING_LINKS",
        "status": "DEGRADED",
        "freshnessSeconds": 7200,
        "latencyMs": 12.4,
        "problems": [problem],
    }
    ops = {
        "coverageRuns": 3,
        "coverageDurationMs": 1.5,
        "countedBy": {"feed": "index"},
        "registryChanges": [
            {"at": "2026-11-16T12:29:00+00:00", "sourceId": "feed", "change": "added"}
        ],
    }
    page = render_page(
        snapshot(sources=[source], operator=ops), "en", operator_link="&view=operator"
    )
    assert "<img" not in page and "<failed>" not in page and "?<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="?lang=fr&amp;view=operator"' in page
    assert 'data-status="DEGRADED">Degraded<' in page
    assert 'data-field="freshness">2 h ago<' in page
    assert "FILE_FAILED\u00a0\u00d72" in page and "feed: added" in page


def test_the_language_is_the_asked_one_else_the_preferred_one_else_french() -> None:
    assert choose_language("en", "fr") == "en"
    assert choose_language("de", None) == "fr"
    assert choose_language(None, "de-DE, en;q=0.7, fr;q=0.6") == "en"
    assert choose_language(None, "en;q=0, fr;q=0.1") == "fr"
    assert choose_language(None, "en-US;q=bad, fr;q=0.5") == "fr"
    assert choose_language(None, "") == "fr"
