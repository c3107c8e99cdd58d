"""Every example query runs against the gateway and the demo systems without error."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.graphql_view import EXAMPLE_QUERY
from tests.conftest import Gateway

# examples/queries/ and the one GraphiQL opens with, which ships with the edge.
EXAMPLE_QUERIES = sorted(
    [
        *(Path(__file__).resolve().parents[2] / "examples" / "queries").glob("*.graphql"),
        EXAMPLE_QUERY,
    ]
)
QUERIES = {path.stem: path.read_text(encoding="utf-8") for path in EXAMPLE_QUERIES}


def test_graphiql_example_query_is_package_data_of_the_edge() -> None:
    assert EXAMPLE_QUERY.is_file()
    assert EXAMPLE_QUERY.is_relative_to(Path(__file__).resolve().parents[2] / "edge")
    assert "example_query" in QUERIES


def _leaves(value: object) -> int:
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(_leaves(v) for v in value)
    return 0 if value is None else 1


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_example_query_answers_without_error(gateway: Gateway, name: str) -> None:
    result = await gateway.query(QUERIES[name])
    assert "errors" not in result, result["errors"]
    assert _leaves(result["data"]) > 3


async def test_clinic_next_slots_and_physicians_come_back_for_a_page_of_clinics(
    gateway: Gateway,
) -> None:
    result = await gateway.query(
        """{ clinics(filter: {region: LAVAL}, first: 10) { edges { node {
             physicians { id displayName clinics { id } nextSlots(first: 2) { start } }
             nextSlots(first: 3) { start clinic { id } } id } } } }"""
    )
    assert "errors" not in result, result["errors"]
    clinics = [e["node"] for e in result["data"]["clinics"]["edges"]]
    assert clinics
    for clinic in clinics:
        starts = [s["start"] for s in clinic["nextSlots"]]
        assert len(starts) == 3 and starts == sorted(starts)
        assert {s["clinic"]["id"] for s in clinic["nextSlots"]} == {clinic["id"]}
        assert clinic["physicians"]
        for physician in clinic["physicians"]:
            assert clinic["id"] in {c["id"] for c in physician["clinics"]}
