"""The house's import rules (``[tool.importlinter]`` in pyproject.toml) hold, and can fail.

import-linter checks every import of the product, function-level ones included,
against the contracts; the second test breaks three of them in a copy of the tree
to show that the check sees a violation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "schema", "resolvers", "sources", "examples", "migrations")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_import_contracts_hold() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and "KEPT" in done.stdout


def _copy_tree(to: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            to / package,
            ignore=shutil.ignore_patterns("__pycache__", "static", "node_modules"),
        )
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")
    return to


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_a_deliberate_violation_breaks_the_contracts(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    assert _lint_imports(tree).returncode == 0  # the copy alone is clean

    # An adapter reaching for the registry, a resolver for an adapter's internals,
    # the merged search for the demo.
    _append(tree / "sources" / "fhir" / "adapter.py", "import sources.registry.store")
    _append(tree / "resolvers" / "slots.py", "from sources.fhir import adapter as _fhir")
    _append(tree / "sources" / "search" / "merge.py", "import examples.world")
    done = _lint_imports(tree)

    assert done.returncode != 0
    out = done.stdout
    assert "Adapters never import the pool, the merged search or the registry BROKEN" in out
    assert "sources.fhir.adapter -> sources.registry.store" in out
    assert "resolvers.slots -> sources.fhir.adapter" in out
    assert "sources.search.merge -> examples.world" in out
