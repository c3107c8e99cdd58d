"""The gateway over Medplum's engine made lenient by a test proxy, and over its refusals.

A lenient server (links dropped, ``_include`` ignored, unknown parameters ignored, another
order) must still yield every free slot; a server with no way past its first page must
say the answer is incomplete; a refused parameter is a capability, not an outage.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from tests.conftest import TEST_NOW, serve
from tests.sources.fhir.medplum.proxies import Leniency, lenient_proxy
from tests.sources.fhir.test_medplum import DOWNTOWN, SLOTS, WINDOW_END, assert_serves

if TYPE_CHECKING:
    from tests.conftest import GatewayFactory
    from tests.sources.fhir.conftest import Engine

NEAR = {"near": {"latitude": DOWNTOWN[0], "longitude": DOWNTOWN[1]}, "radiusKm": 3}
INCOMPLETE = """query($f: SlotFilter!) {
  slots(filter: $f, first: 100) {
    totalCount totalCountKind pageInfo { hasNextPage }
    edges { node { start } }
  }
  sources { id status problems { code severity count } }
}"""


async def test_the_proxy_makes_the_engine_lenient(medplum_local: Engine) -> None:
    leniency = Leniency(drop_include=True, ignore_unknown=True, reorder=True)
    async with (
        serve(lenient_proxy(medplum_local.url, leniency)) as proxy,
        aiohttp.ClientSession() as session,
    ):
        base = str(proxy.make_url("/fhir"))
        near = await _post(session, f"{base}/Location/_search", [("near", "45.5|-73.5|1|km")])
        assert near["total"] == 20  # near ignored, not refused
        form = [("status", "free"), ("_sort", "start"), ("_count", "5"), ("_include", "*")]
        page = await _post(session, f"{base}/Slot/_search", form)
        starts = [e["resource"]["start"] for e in page["entry"]]
        assert len(starts) == 5 and starts != sorted(starts)
    assert leniency.requests[0] == ("Location/_search", [("near", "45.5|-73.5|1|km")])
    capped = Leniency(first_page_only=20)
    async with (
        serve(lenient_proxy(medplum_local.url, capped)) as proxy,
        aiohttp.ClientSession() as session,
    ):
        form = [("status", "free"), ("_count", "100"), ("_offset", "20")]
        page = await _post(session, f"{proxy.make_url('/fhir')}/Slot/_search", form)
        first = await _post(session, f"{proxy.make_url('/fhir')}/Slot/_search", form[:2])
        assert page["entry"] == first["entry"] and len(page["entry"]) == 20
        assert page["total"] == len(medplum_local.data.slots) and "link" not in page


LENIENCIES = {
    "no-links": Leniency(drop_links=True),
    "no-include": Leniency(drop_include=True),
    "unknown-ignored": Leniency(ignore_unknown=True),
    "other-order": Leniency(reorder=True),
    "all-at-once": Leniency(drop_links=True, drop_include=True, ignore_unknown=True, reorder=True),
}
CASES = [
    pytest.param(search, leniency, id=f"{name}-{kind}")
    for name, search in (("window", {}), ("near", NEAR))
    for kind, leniency in LENIENCIES.items()
]


@pytest.mark.parametrize(("search", "leniency"), CASES)
async def test_a_lenient_server_still_yields_every_free_slot(
    gateway_for: GatewayFactory,
    medplum_local: Engine,
    leniency: Leniency,
    search: dict[str, Any],
) -> None:
    near = {"near": DOWNTOWN, "radius_km": 3} if search else {}
    expected = medplum_local.data.free_slots(TEST_NOW, WINDOW_END, **near)
    async with (
        serve(lenient_proxy(medplum_local.url, leniency)) as proxy,
        gateway_for(medplum_local.definition(str(proxy.make_url("/fhir")))) as gateway,
    ):
        await assert_serves(gateway, {**search, "startsBefore": WINDOW_END.isoformat()}, expected)


async def test_a_server_with_no_way_past_its_first_page_says_the_answer_is_incomplete(
    gateway_for: GatewayFactory, medplum_local: Engine
) -> None:
    expected = medplum_local.data.free_slots(TEST_NOW, WINDOW_END)
    async with (
        serve(lenient_proxy(medplum_local.url, Leniency(first_page_only=50))) as proxy,
        gateway_for(medplum_local.definition(str(proxy.make_url("/fhir")))) as gateway,
    ):
        result = await gateway.query(INCOMPLETE, {"f": {"startsBefore": WINDOW_END.isoformat()}})
    assert "errors" not in result, result["errors"]
    slots = result["data"]["slots"]
    assert slots["pageInfo"]["hasNextPage"] is True
    assert slots["totalCountKind"] == "AT_LEAST"
    assert len(slots["edges"]) <= slots["totalCount"] <= len(expected)
    (source,) = result["data"]["sources"]
    assert source["status"] == "DEGRADED"
    assert "LOSS" in {p["severity"] for p in source["problems"]}


async def test_a_refused_near_never_opens_the_breaker_and_its_diagnostics_are_logged(
    gateway_for: GatewayFactory, medplum_local: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    expected = medplum_local.data.free_slots(TEST_NOW, WINDOW_END, types={"WALK_IN"})
    window = {"startsBefore": WINDOW_END.isoformat()}
    async with gateway_for(medplum_local.definition()) as gateway:
        with caplog.at_level(logging.INFO):
            for radius in range(1, 8):  # more refusals than the breaker's threshold
                near = {**NEAR, "radiusKm": radius / 10, **window}
                result = await gateway.query(SLOTS, {"f": near, "first": 10})
                assert "errors" not in result, result["errors"]
        await assert_serves(gateway, {"appointmentTypes": ["WALK_IN"], **window}, expected)
    assert "Unrecognized search parameter type" in caplog.text


async def _post(
    session: aiohttp.ClientSession, url: str, form: list[tuple[str, str]]
) -> dict[str, Any]:
    async with session.post(url, data=form) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json(content_type=None)
        return body
