"""The report of ``sources check``: outcomes, exit codes, text and JSON (the protocols'
checks are tested in their packages, the command in tests/edge/cli)."""

from __future__ import annotations

import json

import pytest

from sources.check import CheckReport, Outcome, percentile


def _report() -> CheckReport:
    report = CheckReport("demo-ssl", "SMART_SCHEDULING_LINKS", "http://127.0.0.1:1/$bulk-publish")
    report.passed("manifest", "transactionTime and 3 output files")
    report.warned(
        "files", "slots.ndjson is gzip without Content-Encoding", "send Content-Encoding: gzip"
    )
    report.served = 120
    report.not_served_for("OUTSIDE_QUEBEC", 8, loss=False, detail="2 locations in NJ")
    return report


def test_warnings_and_slots_outside_quebec_pass() -> None:
    report = _report()
    assert report.exit_code == 0 and report.lost == 0
    text = report.text()
    assert "  warn  files     slots.ndjson is gzip without Content-Encoding\n" in text
    assert "fix: send Content-Encoding: gzip" in text
    assert "free slots the gateway would serve: 120" in text
    assert "free slots not served: 8, OUTSIDE_QUEBEC (2 locations in NJ)" in text
    assert text.endswith("result: PASS (1 passed, 1 warnings, 0 failed)")


@pytest.mark.parametrize("lose", ["a failed check", "lost slots"])
def test_a_failed_check_or_a_lost_slot_fails(lose: str) -> None:
    report = _report()
    if lose == "a failed check":
        report.failed("reachable", "connection refused", "make the URL answer")
    else:
        report.not_served_for("FILE_FAILED", 3, loss=True, detail="slots-2.ndjson: HTTP 404")
    assert report.exit_code == 1
    assert report.text().splitlines()[-1].startswith("  result: FAIL")
    assert json.loads(report.dumps())["result"] == "fail"


def test_no_slots_not_served_is_not_a_line() -> None:
    report = _report()
    report.not_served_for("MALFORMED", 0, loss=True)
    assert [n.reason for n in report.not_served] == ["OUTSIDE_QUEBEC"]


def test_json_holds_every_part_of_the_report() -> None:
    report = _report()
    report.latencies_ms = [5.0, 1.0, 3.0, 2.0, 4.0, 100.0]
    data = json.loads(report.dumps())
    assert data["checks"][1] == {
        "name": "files",
        "outcome": Outcome.WARN.value,
        "detail": "slots.ndjson is gzip without Content-Encoding",
        "fix": "send Content-Encoding: gzip",
    }
    assert data["slots"] == {
        "served": 120,
        "notServed": [
            {"reason": "OUTSIDE_QUEBEC", "slots": 8, "loss": False, "detail": "2 locations in NJ"}
        ],
    }
    assert data["latencyMs"] == {"requests": 6, "p50": 3.0, "p95": 100.0}


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (
        50.0,
        95.0,
        100.0,
    )
    assert percentile([7.0], 95) == 7.0
