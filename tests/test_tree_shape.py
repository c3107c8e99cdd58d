"""The tree keeps the shape a newcomer can find their way in.

Folders of at most 15 modules, modules of at most 400 lines unless their docstring
says why they stay whole past 400 lines, a docstring in every package's ``__init__``, and a README
read in ten minutes (at most 450 lines).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("edge", "schema", "resolvers", "sources", "examples", "migrations")
MAX_MODULES = 15
MAX_LINES = 400
MAX_README_LINES = 450
# The words a long module's docstring carries, with the reason it is not split.
STAYS_WHOLE = "past 400 lines"


def _packages() -> list[Path]:
    return sorted(
        init.parent
        for top in PRODUCT
        for init in (ROOT / top).rglob("__init__.py")
        if "node_modules" not in init.parts
    )


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def overfull_folders(packages: list[Path]) -> list[str]:
    return [
        f"{_name(p)}: {n} modules"
        for p in packages
        if (n := len(list(p.glob("*.py")))) > MAX_MODULES
    ]


def unexplained_long_modules(modules: list[Path]) -> list[str]:
    long = []
    for module in modules:
        lines = len(module.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and STAYS_WHOLE not in " ".join(_docstring(module).split()):
            long.append(f"{_name(module)}: {lines} lines")
    return long


def test_no_folder_of_the_product_holds_more_than_15_modules() -> None:
    packages = _packages()
    assert len(packages) >= 15
    assert overfull_folders(packages) == []


def test_long_modules_say_why_they_stay_whole() -> None:
    modules = [ROOT / "app.py", *(m for p in _packages() for m in p.glob("*.py"))]
    assert unexplained_long_modules(modules) == []


@pytest.mark.parametrize("package", _packages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_package_says_what_it_holds(package: Path) -> None:
    assert len(_docstring(package / "__init__.py")) > 40


def test_the_checks_can_fail(tmp_path: Path) -> None:
    crowded = tmp_path / "crowded"
    crowded.mkdir()
    for n in range(MAX_MODULES + 1):
        (crowded / f"m{n}.py").write_text("")
    long = tmp_path / "long.py"
    long.write_text('"""Long."""\n' + "x = 1\n" * MAX_LINES)
    explained = tmp_path / "explained.py"
    explained.write_text(
        '"""Long: it stays one module\n past 400 lines, being one class."""\n'
        + "x = 1\n" * MAX_LINES
    )

    assert overfull_folders([crowded]) == [f"{crowded}: 16 modules"]
    assert unexplained_long_modules([long, explained]) == [f"{long}: {MAX_LINES + 1} lines"]


def test_the_readme_is_read_in_ten_minutes() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES
