"""``pip install .`` gives a whole gateway: the wheel carries every package and data file.

Packages are found in the source tree (every directory with an ``__init__.py`` outside
``tests/``), so a new subpackage that ``[tool.setuptools.packages.find]`` misses, or a data
file that ``package-data`` misses, fails here instead of in production.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "benchmarks"}
# What a copy of the tree leaves behind: environments, caches, earlier builds.
_SKIPPED = shutil.ignore_patterns(
    ".*", "__pycache__", "node_modules", "build", "dist", "*.egg-info", "data"
)


def _shipped_packages() -> list[Path]:
    """Every package of the source tree that a wheel must carry, as directories."""
    tops = [
        top
        for top in ROOT.iterdir()
        if (top / "__init__.py").is_file()
        and top.name not in NOT_SHIPPED
        and not top.name.startswith(".")
    ]
    return sorted(
        init.parent.relative_to(ROOT) for top in tops for init in top.rglob("__init__.py")
    )


def _data_files() -> list[Path]:
    """Files read at run time that are not Python: GraphiQL's page assets, its example
    query, the template alembic writes new revisions from, and the table of Quebec
    municipalities with the README giving its licence."""
    static = [p for p in (ROOT / "edge" / "static").rglob("*") if p.is_file()]
    places = [ROOT / "sources" / "places" / n for n in ("quebec_municipalities.tsv", "README.md")]
    return sorted(
        p.relative_to(ROOT) for p in [*static, ROOT / "migrations" / "script.py.mako", *places]
    )


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The file list of a wheel built from a copy of the tree (no ``build/`` left here)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_SKIPPED)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*pip_wheel, "--quiet", "--wheel-dir", str(tmp / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp / "dist").glob("passerelle-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_tree_has_the_packages_this_test_looks_for() -> None:
    packages = {path.as_posix() for path in _shipped_packages()}
    assert {"edge", "schema", "resolvers", "sources", "migrations", "examples"} <= packages
    assert {"sources/fhir", "migrations/versions", "examples/demo_fhir"} <= packages


def test_the_wheel_carries_every_module_of_every_package(wheel_files: set[str]) -> None:
    expected = {"app.py"} | {
        module.relative_to(ROOT).as_posix()
        for package in _shipped_packages()
        for module in (ROOT / package).glob("*.py")
    }
    assert sorted(expected - wheel_files) == []


def test_the_wheel_carries_graphiql_its_example_query_alembics_template_and_places(
    wheel_files: set[str],
) -> None:
    expected = {path.as_posix() for path in _data_files()}
    assert "edge/static/example_query.graphql" in expected
    assert "sources/places/quebec_municipalities.tsv" in expected
    assert "edge/static/graphiql/graphiql.min.js" in expected
    assert sorted(expected - wheel_files) == []


def test_the_wheel_carries_no_tests(wheel_files: set[str]) -> None:
    assert sorted(name for name in wheel_files if name.split("/")[0] in NOT_SHIPPED) == []
