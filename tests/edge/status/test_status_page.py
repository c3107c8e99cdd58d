"""``/status`` and ``/status.json``: each booking system's status, freshness, problem
codes and latency; the coverage by region, counted in the background from the bulk
feed's index and the live sources' cached answers; the operator view kept to operators
in production; everything escaped."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from edge.services import services_of
from examples.world import World
from sources.coverage import RegionCoverage
from sources.records import Region
from sources.registry.partners import PartnerStore
from tests.conftest import Gateway, GatewayFactory
from tests.edge.status.demo import (
    SEARCHED,
    Expected,
    expected_after_search,
    fast_counts,
    search_until_the_down_source_is_down,
    status_gateway,
    status_url,
    world_counts,
)


async def get_json(gateway: Gateway, path: str = "/status.json", **headers: str) -> Any:
    async with gateway.session.get(status_url(gateway, path), headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["content-type"] == "application/json"
        return await response.json()


async def get_page(gateway: Gateway, query: str = "", **headers: str) -> tuple[str, Any]:
    async with gateway.session.get(status_url(gateway) + query, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.text(), response.headers


async def counted_after(gateway: Gateway, runs: int) -> None:
    """Wait for the background count to run past ``runs``."""
    coverage = services_of(gateway.app).coverage
    async with asyncio.timeout(10):
        while coverage.runs <= runs:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _text(markup: str) -> str:
    """What a reader sees of ``markup``: its text, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def regions_of(snapshot: dict[str, Any]) -> dict[Region, Expected]:
    return {
        Region(r["region"]): Expected(r["clinics"], r["freeSlots"])
        for r in snapshot["coverage"]["regions"]
    }


async def test_counts_by_region_are_the_feeds_index_and_what_the_cache_holds_of_live_sources(
    gateway_for: GatewayFactory,
    world: World,
    fhir_server: TestServer,
    rest_server: TestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast_counts(monkeypatch)
    async with status_gateway(gateway_for, world, fhir_server, rest_server, tmp_path) as gw:
        coverage = services_of(gw.app).coverage
        await counted_after(gw, 0)
        before = await get_json(gw)
        await search_until_the_down_source_is_down(gw)
        await counted_after(gw, coverage.runs)
        after = await get_json(gw)
        page, headers = await get_page(gw, "?lang=fr")

    # Before any search, the live sources' cache is empty: the feed's index alone.
    assert regions_of(before) == world_counts(world, "ssl", with_slots_only=False)
    # After one, their cached answers add the searched region's clinics and slots.
    expected = expected_after_search(world)
    assert regions_of(after) == expected
    assert expected[SEARCHED] != world_counts(world, "ssl", with_slots_only=False)[SEARCHED]
    assert sum(e.free_slots for e in expected.values()) > 0
    # Live sources cannot be counted whole: every count is a lower bound.
    assert all(r["atLeast"] for r in after["coverage"]["regions"])
    assert [r["number"] for r in after["coverage"]["regions"]] == [f"{n:02d}" for n in range(1, 18)]
    # The page says so, with the same numbers, in each region's row.
    for region, counts in expected.items():
        row = re.search(rf'<tr data-region="{region.value}">(.*?)</tr>', page, re.S)
        assert row, region
        cells = re.findall(r'data-field="(clinics|slots)">(.*?)</td>', row.group(1))
        shown = {field: _text(cell).replace("\u202f", "") for field, cell in cells}
        assert shown == {
            "clinics": f"au moins {counts.clinics}",
            "slots": f"au moins {counts.free_slots}",
        }
    assert headers["Content-Language"] == "fr"


async def test_each_source_shows_its_status_freshness_latency_and_problem_codes(
    gateway_for: GatewayFactory,
    world: World,
    fhir_server: TestServer,
    rest_server: TestServer,
    tmp_path: Path,
) -> None:
    async with status_gateway(gateway_for, world, fhir_server, rest_server, tmp_path) as gw:
        await search_until_the_down_source_is_down(gw)
        snapshot = await get_json(gw)
        page, headers = await get_page(gw, "?lang=en")
        negotiated = await get_json(gw, "/status", Accept="application/json")

    sources = {s["id"]: s for s in snapshot["sources"]}
    assert list(sources) == ["demo-fhir", "demo-rest", "demo-ssl", "down-fhir"]
    for source_id in ("demo-fhir", "demo-rest", "demo-ssl"):
        source = sources[source_id]
        assert source["status"] == "UP", source
        assert source["freshnessSeconds"] is not None and source["freshnessSeconds"] < 60
        assert source["latencyMs"] is not None and source["latencyMs"] >= 0
    # The failing source is shown failing: its circuit open, never answered.
    down = sources["down-fhir"]
    assert down["status"] == "DOWN"
    assert down["freshnessSeconds"] is None and down["lastSuccessAt"] is None
    assert "BREAKER_OPEN" in {p["code"] for p in down["problems"]}
    assert down["calls"] >= 5
    # Public: codes and counts, no message, sample or diagnostics; no operator part.
    assert all(
        set(p) == {"code", "severity", "count"} for s in sources.values() for p in s["problems"]
    )
    assert snapshot["operator"] is None
    assert set(negotiated) == set(snapshot) and negotiated["version"] == 1
    # The page shows the same, in English.
    card = re.search(r'<li class="card" data-source="down-fhir">(.*?)</li>', page, re.S)
    assert card
    assert 'data-status="DOWN">Down<' in card.group(1)
    assert 'data-field="freshness">never<' in card.group(1)
    assert 'data-code="BREAKER_OPEN"' in card.group(1)
    up = re.search(r'<li class="card" data-source="demo-ssl">(.*?)</li>', page, re.S)
    assert up and 'data-status="UP">Operational<' in up.group(1)
    assert re.search(r'data-field="freshness">\d+ s ago<', up.group(1))
    assert re.search(r'data-field="latency">\d+ ms<', up.group(1))
    assert headers["Content-Language"] == "en" and 'lang="en"' in page


async def test_the_page_is_french_first_then_follows_accept_language_and_the_switch(
    gateway: Gateway,
) -> None:
    default, headers = await get_page(gateway)
    assert '<html lang="fr">' in default and "État du service" in default
    english, _ = await get_page(gateway, **{"Accept-Language": "en-CA,en;q=0.9,fr;q=0.5"})
    assert '<html lang="en">' in english and "Service status" in english
    preferred, _ = await get_page(gateway, **{"Accept-Language": "en;q=0.4, fr-CA;q=0.8"})
    assert '<html lang="fr">' in preferred
    switched, _ = await get_page(gateway, "?lang=fr", **{"Accept-Language": "en"})
    assert '<html lang="fr">' in switched
    assert 'id="lang-switch" href="?lang=en"' in switched
    assert 'id="lang-switch" href="?lang=fr"' in english
    # No script at all, one stylesheet allowed by its hash, nothing from elsewhere.
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe" not in csp
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/]+=*'", csp)
    assert "<script" not in default
    assert not re.search(r'(?:src|href)="(?:https?:)?//', default)
    assert headers["Cache-Control"] == "no-store"


async def test_the_count_runs_in_the_background_not_per_request(gateway: Gateway) -> None:
    coverage = services_of(gateway.app).coverage
    assert isinstance(coverage, RegionCoverage) and coverage.INTERVAL_S == 60.0
    async with asyncio.timeout(10):
        while coverage.runs == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    for _ in range(5):
        await get_page(gateway)
        await get_json(gateway)
    assert coverage.runs == 1


async def test_a_source_name_from_the_config_is_escaped(
    gateway_for: GatewayFactory,
    world: World,
    fhir_server: TestServer,
    rest_server: TestServer,
    tmp_path: Path,
) -> None:
    name = '<script>alert("x")</script> & <b>'
    async with status_gateway(
        gateway_for, world, fhir_server, rest_server, tmp_path, name=name
    ) as gw:
        page, _ = await get_page(gw)
        operator_page, _ = await get_page(gw, "?view=operator")
        snapshot = await get_json(gw)
    for shown in (page, operator_page):
        assert "<script" not in shown and "<b>" not in shown
        assert html.escape(name) in shown
    assert snapshot["sources"][0]["name"] == name


async def test_in_production_the_operator_view_needs_an_operator_key(
    gateway_for: GatewayFactory,
    world: World,
    fhir_server: TestServer,
    rest_server: TestServer,
    tmp_path: Path,
    registry_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast_counts(monkeypatch)
    with PartnerStore(registry_url) as store:
        _, operator = store.create_client("ops", operator=True)
        _, partner = store.create_client("partner")
    async with status_gateway(
        gateway_for, world, fhir_server, rest_server, tmp_path, env="production"
    ) as gw:
        await search_until_the_down_source_is_down(gw)
        gw.store.set_enabled("demo-rest", False)
        coverage = services_of(gw.app).coverage
        async with asyncio.timeout(10):
            while not coverage.changes:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        public, _ = await get_page(gw)
        public_json = await get_json(gw)
        refusals = []
        for path in ("/status?view=operator", "/status.json?view=operator"):
            for key in (None, "nope", partner):
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                async with gw.session.get(status_url(gw, path), headers=headers) as response:
                    refusals.append(response.status)
        bearer = {"Authorization": f"Bearer {operator}"}
        ops_json = await get_json(gw, "/status.json?view=operator", **bearer)
        ops_page, _ = await get_page(gw, "?view=operator", **bearer)

    assert refusals == [401, 401, 403] * 2
    # The public view: codes only; no message, sample, diagnostics nor registry change.
    assert public_json["operator"] is None
    assert 'id="operator"' not in public and "registry-changes" not in public
    down_public = next(s for s in public_json["sources"] if s["id"] == "down-fhir")
    assert down_public["problems"] and "message" not in down_public["problems"][0]
    # The operator's: messages, samples and diagnostics, how each source was counted,
    # and the registry's changes.
    down = next(s for s in ops_json["sources"] if s["id"] == "down-fhir")
    assert all({"message", "samples", "diagnostics"} <= set(p) for p in down["problems"])
    assert ops_json["operator"]["countedBy"]["demo-ssl"] == "index"
    assert ops_json["operator"]["countedBy"]["demo-fhir"] == "cache"
    changes = ops_json["operator"]["registryChanges"]
    assert {"sourceId": "demo-rest", "change": "disabled"}.items() <= changes[0].items()
    assert 'id="operator"' in ops_page and "demo-rest: disabled" in ops_page
    assert operator not in ops_page and partner not in ops_page
