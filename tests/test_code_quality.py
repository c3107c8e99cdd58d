"""The tree keeps its shape: lint, format, types, and the demo imported lazily (the other
import rules: tests/test_import_contracts.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What may be imported only inside a function, and where: the demo is started by the
# command line alone, and loading it must not slow down ``python app.py --help``.
LAZY_ONLY = {"examples": ("app.py", "edge/cli")}


def _names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return {node.module.split(".")[0]}
    return set()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return set().union(*(_names(node) for node in ast.walk(tree)))


def _eager_imports(source: str) -> set[str]:
    """What a module imports when it is loaded: everything outside function bodies
    (class bodies and ``if`` blocks run at import, so they count)."""
    found: set[str] = set()
    pending: list[ast.AST] = [ast.parse(source)]
    while pending:
        node = pending.pop()
        found |= _names(node)
        pending.extend(
            child
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        )
    return found


def _files(where: str) -> list[Path]:
    path = ROOT / where
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def test_the_command_line_never_imports_app() -> None:
    # app.main passes create_app in: edge/cli/ stays below app, even lazily.
    assert [str(p.relative_to(ROOT)) for p in _files("edge/cli") if "app" in _imports(p)] == []


@pytest.mark.parametrize(("name", "where"), [(n, w) for n, ws in LAZY_ONLY.items() for w in ws])
def test_lazy_only_imports_are_made_inside_functions(name: str, where: str) -> None:
    files = _files(where)
    assert files
    offenders = [
        str(path.relative_to(ROOT))
        for path in files
        if name in _eager_imports(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "eager"),
    [
        ("import examples.launcher\n", True),
        ("from examples.faults import parse_demo_faults\n", True),
        ("if True:\n    from examples import launcher\n", True),
        ("class Demo:\n    import examples\n", True),
        ("def serve():\n    from examples.launcher import DemoProviders\n", False),
        ("async def serve():\n    import examples.launcher\n", False),
        ("from examplesque import x\nimport sources.examples\n", False),
    ],
)
def test_the_lazy_import_check_tells_module_level_from_function_level(
    source: str, eager: bool
) -> None:
    assert ("examples" in _eager_imports(source)) is eager


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint_is_clean() -> None:
    done = _run(sys.executable, "-m", "ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = _run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_is_clean() -> None:
    done = _run(sys.executable, "-m", "mypy")
    assert done.returncode == 0, done.stdout + done.stderr
