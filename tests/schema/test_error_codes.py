"""The catalogue of error codes: one declaration per code, agreeing with the README,
one envelope, and codes applied once per response."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from graphql import GraphQLError

import sources.errors
from resolvers.errors import UserInputError
from schema.error_codes import (
    REQUEST_ERROR,
    ErrorCode,
    code_of,
    envelope,
    source_code,
    with_code,
)
from sources.errors import SourceError

ROOT = Path(__file__).parents[2]
PACKAGES = ("edge", "schema", "resolvers", "sources")
CATALOGUE = ROOT / "schema" / "error_codes.py"


def _modules() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def readme_table() -> dict[str, str]:
    """``code -> HTTP cell`` of the README's section "Error codes"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    assert rows, "the README's error-code table was not found"
    return {code: http.strip() for code, http in rows}


def readme_status(cell: str) -> int | None:
    if cell.startswith("request error"):
        return REQUEST_ERROR
    found = re.match(r"\d{3}\b", cell)
    assert found, f"HTTP cell {cell!r} is neither 'request error' nor a status"
    return int(found.group())


def test_the_readme_table_lists_exactly_the_catalogue_with_its_statuses() -> None:
    table = readme_table()
    assert list(table) == [code.value for code in ErrorCode]  # same codes, same order
    assert {code: readme_status(cell) for code, cell in table.items()} == {
        code.value: code.status for code in ErrorCode
    }


def test_the_readme_check_fails_on_a_status_that_drifted() -> None:
    assert readme_status("request error, or 200 when raised during execution") is REQUEST_ERROR
    assert readme_status("429, `Retry-After`") == 429
    assert readme_status("200, with `data`") != ErrorCode.RATE_LIMITED.status


def test_each_code_is_written_out_only_in_the_catalogue() -> None:
    literal = re.compile(r"[\"'](" + "|".join(code.value for code in ErrorCode) + r")[\"']")
    elsewhere = [
        f"{path.relative_to(ROOT)}: {found.group()}"
        for path in _modules()
        if path != CATALOGUE
        for found in literal.finditer(path.read_text(encoding="utf-8"))
    ]
    assert elsewhere == []


def test_the_error_envelope_is_built_only_by_the_catalogue() -> None:
    by_hand = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if path != CATALOGUE and re.search(r"[\"']errors[\"']\s*:", path.read_text("utf-8"))
    ]
    assert by_hand == []
    assert orjson.loads(envelope(ErrorCode.RATE_LIMITED, "slow down", retryAfter=2)) == {
        "errors": [
            {"message": "slow down", "extensions": {"code": "RATE_LIMITED", "retryAfter": 2}}
        ]
    }


def test_codes_are_applied_in_one_place() -> None:
    calls = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _modules()
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if re.search(r"\bwith_code\(", line) and not line.lstrip().startswith("def ")
    ]
    assert calls == ["schema/__init__.py:" + calls[0].split(":")[1]], calls


def _subclasses(kind: type[SourceError]) -> list[type[SourceError]]:
    return [kind, *(sub for child in kind.__subclasses__() for sub in _subclasses(child))]


@pytest.mark.parametrize("kind", _subclasses(SourceError), ids=lambda kind: kind.__name__)
def test_every_source_failure_has_its_code(kind: type[SourceError]) -> None:
    # Adapters' own subclasses (a file too large...) have the code of their public kind.
    if issubclass(kind, sources.errors.SourceTimeout):
        expected = ErrorCode.SOURCE_TIMEOUT
    elif issubclass(kind, sources.errors.SourceBadResponse):
        expected = ErrorCode.SOURCE_BAD_RESPONSE
    else:
        expected = ErrorCode.SOURCE_UNAVAILABLE
    assert source_code(kind("s", "failed")) is expected


def test_raised_errors_get_the_code_of_their_kind() -> None:
    located = GraphQLError("first is wrong", path=["slots"], original_error=UserInputError("x"))
    assert code_of(located) is ErrorCode.BAD_USER_INPUT
    assert code_of(UserInputError("first is wrong")) is ErrorCode.BAD_USER_INPUT
    assert code_of(GraphQLError("Syntax Error: Unexpected Name")) is ErrorCode.GRAPHQL_PARSE_FAILED
    assert code_of(GraphQLError("Cannot query field 'x'")) is ErrorCode.GRAPHQL_VALIDATION_FAILED
    missing = GraphQLError("Variable '$f' of required type 'Int!' was not provided.")
    assert code_of(missing) is ErrorCode.BAD_USER_INPUT


def test_an_unexpected_error_is_masked_with_an_id() -> None:
    crash = GraphQLError("secret path /etc", path=["slots"], original_error=KeyError("k"))
    masked = with_code(crash)
    assert masked.extensions is not None
    assert masked.extensions["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in masked.message and masked.extensions["errorId"] in masked.message
