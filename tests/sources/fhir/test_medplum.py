"""The gateway over a real FHIR engine it did not write: Medplum's fhir-router (issue 12).

Every search the API offers must serve exactly the free slots the tests count themselves
in the data set (``medplum/expected.py``), with both variants of the data set.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from tests.conftest import TEST_NOW
from tests.sources.fhir.medplum import make_dataset
from tests.sources.fhir.medplum.expected import DataSet, ExpectedSlot

if TYPE_CHECKING:
    from tests.conftest import Gateway, GatewayFactory
    from tests.sources.fhir.conftest import Engine

WINDOW_END = TEST_NOW + timedelta(days=2)
DOWNTOWN = (45.5017, -73.5673)
SLOTS = """query($f: SlotFilter!, $first: Int, $after: String) {
  slots(filter: $f, first: $first, after: $after) {
    totalCount
    totalCountKind
    pageInfo { hasNextPage endCursor }
    edges { node { start appointmentType clinic { id name } physician { id displayName } } }
  }
}"""


# -- the engine and the data set, as the tests assume them ---------------------------


def test_the_data_set_is_valid_fhir_r4(medplum: Engine) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    resources = _resources(medplum)
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    kinds = Counter(r["resourceType"] for r in resources)
    assert kinds["Location"] == 20 and kinds["Practitioner"] == 40
    assert 300 <= sum(1 for r in resources if r.get("status") == "free") <= 600


def test_the_data_set_script_is_deterministic(tmp_path: Any, dataset_folder: Any) -> None:
    make_dataset.write(tmp_path)
    for name in (make_dataset.LOCAL_FILE, make_dataset.UTC_FILE):
        assert (tmp_path / name).read_bytes() == (dataset_folder / name).read_bytes()


def test_both_variants_hold_the_same_instants(dataset_folder: Any) -> None:
    local = DataSet.read(dataset_folder / make_dataset.LOCAL_FILE)
    utc = DataSet.read(dataset_folder / make_dataset.UTC_FILE)
    assert Counter(s.key for s in local.slots) == Counter(s.key for s in utc.slots)
    stored_utc = [r for r in _lines(dataset_folder / make_dataset.UTC_FILE) if _is_utc(r)]
    schedules = {r["schedule"]["reference"].split("/")[1] for r in stored_utc}
    assert schedules and all(s.startswith(f"sched-{make_dataset.UTC_CLINIC}-") for s in schedules)


async def test_the_engine_behaves_as_the_issue_says(medplum: Engine) -> None:
    """What the adapter must cope with; if a Medplum upgrade changes it, these tests move."""
    async with aiohttp.ClientSession() as session:
        page = await _get(session, f"{medplum.url}/Slot?status=free&_count=10")
        assert "link" not in page and len(page["entry"]) == 10
        assert page["total"] == sum(1 for s in medplum.data.slots)
        included = await _get(session, f"{medplum.url}/Slot?_count=5&_include=Slot:schedule")
        assert {e["resource"]["resourceType"] for e in included["entry"]} == {"Slot"}
        chained = await _get(session, f"{medplum.url}/Slot?schedule.actor=Location/x&_count=5")
        assert chained.get("entry", []) == [] and chained["total"] == 0
        near = f"{medplum.url}/Location?near=45.5|-73.57|10|km"
        async with session.get(near) as response:
            assert response.status == 400
            outcome = await response.json(content_type=None)
            assert outcome["resourceType"] == "OperationOutcome"


# -- every search the API offers ------------------------------------------------------

SEARCHES = [
    pytest.param({}, {}, id="window"),
    pytest.param(
        {"near": DOWNTOWN, "radiusKm": 3}, {"near": DOWNTOWN, "radius_km": 3}, id="near-3km"
    ),
    pytest.param(
        {"near": DOWNTOWN, "radiusKm": 20}, {"near": DOWNTOWN, "radius_km": 20}, id="near-20km"
    ),
    pytest.param({"region": "MONTREAL"}, {"region": "MONTREAL"}, id="region"),
    pytest.param({"region": "ESTRIE"}, {"region": "ESTRIE"}, id="region-small"),
    pytest.param({"languages": ["es"]}, {"languages": {"es"}}, id="languages"),
    pytest.param({"appointmentTypes": ["WALK_IN"]}, {"types": {"WALK_IN"}}, id="types"),
    pytest.param(
        {"appointmentTypes": ["ROUTINE"]}, {"types": {"ROUTINE"}}, id="types-routine-uncoded"
    ),
    pytest.param(
        {"region": "MONTREAL", "languages": ["en"], "appointmentTypes": ["ROUTINE", "CHECKUP"]},
        {"region": "MONTREAL", "languages": {"en"}, "types": {"ROUTINE", "CHECKUP"}},
        id="combined",
    ),
]


@pytest.mark.parametrize(("api_filter", "expected_filter"), SEARCHES)
async def test_a_search_serves_every_free_slot(
    gateway_for: GatewayFactory,
    medplum: Engine,
    api_filter: dict[str, Any],
    expected_filter: dict[str, Any],
) -> None:
    near = expected_filter.get("near")
    assert near is None or medplum.data.clear_of_radius(near, expected_filter["radius_km"])
    api_filter = {**api_filter, "startsBefore": WINDOW_END.isoformat()}
    if "near" in api_filter:
        api_filter["near"] = {"latitude": near[0], "longitude": near[1]}
    expected = medplum.data.free_slots(TEST_NOW, WINDOW_END, **expected_filter)
    assert expected
    async with gateway_for(medplum.definition()) as gateway:
        await assert_serves(gateway, api_filter, expected)


async def test_a_clinic_ids_search_serves_every_free_slot(
    gateway_for: GatewayFactory, medplum: Engine
) -> None:
    wanted = {make_dataset.UTC_CLINIC, "loc-mtl-cdn", "loc-qc-vieux"}
    async with gateway_for(medplum.definition()) as gateway:
        ids = [await clinic_id(gateway, medplum.data, lid) for lid in sorted(wanted)]
        expected = medplum.data.free_slots(TEST_NOW, WINDOW_END, clinic_ids=wanted)
        f = {"clinicIds": ids, "startsBefore": WINDOW_END.isoformat()}
        await assert_serves(gateway, f, expected)


async def test_a_physician_ids_search_serves_every_free_slot(
    gateway_for: GatewayFactory, medplum: Engine
) -> None:
    # prac-02 works at two clinics, prac-03 speaks no French, prac-09 is named by
    # its Schedule as a Practitioner (no role).
    wanted = {"prac-02", "prac-03", "prac-09"}
    async with gateway_for(medplum.definition()) as gateway:
        ids = [await physician_id(gateway, medplum.data, pid) for pid in sorted(wanted)]
        expected = medplum.data.free_slots(TEST_NOW, WINDOW_END, physician_ids=wanted)
        f = {"physicianIds": ids, "startsBefore": WINDOW_END.isoformat()}
        await assert_serves(gateway, f, expected)


# -- helpers -----------------------------------------------------------------------------


async def assert_serves(gateway: Gateway, f: dict[str, Any], expected: list[ExpectedSlot]) -> None:
    """Every page of the search, in order, holds exactly ``expected``, counted exactly
    (the same ``totalCount`` on every page, said to be ``EXACT``)."""
    nodes, totals = await every_page(gateway, f)
    served = [_key(n) for n in nodes]
    assert Counter(served) == Counter(s.key for s in expected), (
        f"served {len(served)} of {len(expected)} free slots"
    )
    assert [n["start"] for n in nodes] == sorted((n["start"] for n in nodes), key=_instant)
    assert set(totals) == {(len(expected), "EXACT")}, f"{totals} for {len(expected)} slots"


async def every_page(
    gateway: Gateway, f: dict[str, Any], first: int = 100
) -> tuple[list[dict[str, Any]], list[tuple[int | None, str | None]]]:
    nodes: list[dict[str, Any]] = []
    totals: list[tuple[int | None, str | None]] = []
    after = None
    for _ in range(50):
        result = await gateway.query(SLOTS, {"f": f, "first": first, "after": after})
        assert "errors" not in result, result["errors"]
        connection = result["data"]["slots"]
        nodes += [e["node"] for e in connection["edges"]]
        totals.append((connection["totalCount"], connection["totalCountKind"]))
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes, totals
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("more than 50 pages")


async def clinic_id(gateway: Gateway, data: DataSet, location_id: str) -> str:
    """The gateway's id of a Location, found by its (unique) name."""
    name = data.clinics[location_id].name
    query = """query($n: String) { clinics(filter: {nameContains: $n}, first: 10) {
        edges { node { id name } } } }"""
    result = await gateway.query(query, {"n": name})
    ids = [e["node"]["id"] for e in result["data"]["clinics"]["edges"] if e["node"]["name"] == name]
    assert len(ids) == 1, result
    return ids[0]


async def physician_id(gateway: Gateway, data: DataSet, practitioner_id: str) -> str:
    """The gateway's id of a Practitioner, from the slots of one of their clinics."""
    slot = next(s for s in data.slots if s.physician_id == practitioner_id)
    f = {"clinicIds": [await clinic_id(gateway, data, slot.clinic.id)]}
    nodes, _ = await every_page(gateway, {**f, "startsBefore": WINDOW_END.isoformat()})
    physicians = [n["physician"] for n in nodes if n["physician"]]
    ids = {p["id"] for p in physicians if p["displayName"] == slot.physician_name}
    assert len(ids) == 1, ids
    return ids.pop()


def _key(node: dict[str, Any]) -> tuple[str, str | None, datetime, str]:
    physician = node["physician"]
    name = physician["displayName"] if physician else None
    return (node["clinic"]["name"], name, _instant(node["start"]), node["appointmentType"])


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def _get(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json(content_type=None)
        return body


def _resources(engine: Engine) -> list[dict[str, Any]]:
    if engine.path.suffix == ".ndjson":
        return _lines(engine.path)
    return [e["resource"] for e in json.loads(engine.path.read_text("utf-8"))["entry"]]


def _lines(path: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def _is_utc(resource: dict[str, Any]) -> bool:
    return resource["resourceType"] == "Slot" and resource["start"].endswith("Z")
