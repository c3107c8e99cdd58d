"""Each demo system is a package that says what it offers: a sorted ``__all__`` of names it has."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ("examples.demo_fhir", "examples.demo_rest", "examples.demo_ssl")


def _isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, as ruff's RUF022 sorts ``__all__``."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_sorted_and_present(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__doc__
    assert package.__all__ == sorted(package.__all__, key=_isort_order)
    assert [n for n in package.__all__ if not hasattr(package, n)] == []
    assert callable(package.build_app) and callable(package.main)
