"""The status page on a phone, in headless Chromium (Debian's, driven by playwright-core:
``tests/edge/browser/status_check.mjs``), in French and in English: it shows each
source's name, status and freshness and each region's counts, fits the screen's width,
logs no error and asks nothing of any host but the gateway's own."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer

from edge.services import services_of
from edge.status.texts import STATUS_LABELS
from examples.world import World
from sources.records import SourceStatus
from tests.conftest import GatewayFactory
from tests.edge.status.demo import (
    expected_after_search,
    fast_counts,
    search_until_the_down_source_is_down,
    status_gateway,
    status_url,
)
from tests.edge.status.png import distinct_colours
from tests.edge.test_graphiql_browser import CHROMIUM, browser_driver

__all__ = ["browser_driver"]  # the fixture: Node, Chromium and playwright-core ready

WIDTH, HEIGHT = 390, 844
AT_LEAST = {"fr": "au moins {}", "en": "at least {}"}
NEVER = {"fr": "jamais", "en": "never"}


async def open_on_a_phone(script: Path, url: str, screenshot: Path) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        url,
        "--screenshot",
        str(screenshot),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, f"status_check.mjs failed:\n{err.decode()}"
    report: dict[str, Any] = json.loads(out)
    return report


def number(text: str) -> int:
    """``"au moins 1 234"`` -> 1234 (French groups digits with a narrow space)."""
    return int("".join(c for c in text if c.isdigit()))


async def test_the_status_page_reads_on_a_phone_in_french_and_in_english(
    gateway_for: GatewayFactory,
    world: World,
    fhir_server: TestServer,
    rest_server: TestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    browser_driver: Path,
) -> None:
    fast_counts(monkeypatch)
    script = browser_driver.parent / "status_check.mjs"
    reports: dict[str, dict[str, Any]] = {}
    async with status_gateway(gateway_for, world, fhir_server, rest_server, tmp_path) as gw:
        await search_until_the_down_source_is_down(gw)
        coverage = services_of(gw.app).coverage
        runs = coverage.runs
        async with asyncio.timeout(10):
            while coverage.runs <= runs:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        for lang in ("fr", "en"):
            shot = tmp_path / f"status-{lang}.png"
            report = await open_on_a_phone(script, status_url(gw, f"/status?lang={lang}"), shot)
            reports[lang] = report | {"screenshot": shot}
        async with gw.session.get(status_url(gw, "/status.json")) as response:
            snapshot = await response.json()

    expected = expected_after_search(world)
    by_id = {s["id"]: s for s in snapshot["sources"]}
    for lang, report in reports.items():
        assert report["error"] is None, report
        assert report["lang"] == lang
        # Each source: its name, its status (as the API says it) and its freshness.
        assert [s["id"] for s in report["sources"]] == list(by_id)
        for shown in report["sources"]:
            source = by_id[shown["id"]]
            assert shown["visible"] and shown["name"] == source["name"]
            assert shown["status"] == source["status"]
            assert shown["statusText"] == STATUS_LABELS[lang][SourceStatus(source["status"])]
            assert shown["freshness"]
        assert by_id["down-fhir"]["status"] == "DOWN"
        down = next(s for s in report["sources"] if s["id"] == "down-fhir")
        assert down["freshness"] == NEVER[lang]
        ssl = next(s for s in report["sources"] if s["id"] == "demo-ssl")
        assert ssl["status"] == "UP" and ssl["freshness"] != NEVER[lang]
        # Each region's counts: what the test read of the demo world, as lower bounds.
        assert len(report["regions"]) == 17
        for row in report["regions"]:
            counts = expected[next(r for r in expected if r.value == row["region"])]
            assert number(row["clinics"]) == counts.clinics, row
            assert number(row["slots"]) == counts.free_slots, row
            shown = " ".join(row["slots"].split())  # on a phone, "au moins" above the number
            assert shown.startswith(AT_LEAST[lang].split("{")[0]), row
            # Each row within its table, the table within the screen.
            assert row["right"] <= report["tableRight"] <= WIDTH, row
        # No error, and only the gateway asked: the page alone (no script, no asset).
        assert report["consoleErrors"] == [] and report["pageErrors"] == []
        assert report["cspViolations"] == [] and report["failedRequests"] == []
        assert report["externalRequests"] == []
        hosts = {urlsplit(r.split(" ", 1)[1]).hostname for r in report["requests"]}
        assert hosts == {"127.0.0.1"}, report["requests"]
        # It fits the phone's width: no horizontal scroll.
        assert report["clientWidth"] == WIDTH
        assert report["scrollWidth"] <= report["clientWidth"], report
        # The screenshot shows something: a phone-wide page, in many colours.
        width, height, colours = await asyncio.to_thread(distinct_colours, report["screenshot"])
        assert width == WIDTH and height >= HEIGHT
        assert colours > 20, colours
    assert reports["fr"]["title"] == "État du service"
    assert reports["en"]["title"] == "Service status"
    assert reports["fr"]["switchText"] == "English" and reports["en"]["switchText"] == "Français"
    if keep := os.environ.get("PASSERELLE_STATUS_SCREENSHOT"):
        await asyncio.to_thread(shutil.copyfile, reports["fr"]["screenshot"], keep)
