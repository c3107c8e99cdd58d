"""The exported schema keeps every type, field, argument and default of the contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    print_ast,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_SDL = (Path(__file__).parent / "contract.graphql").read_text()
CONTRACT = build_schema(CONTRACT_SDL)
BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


@pytest.fixture(scope="module")
def exported_sdl() -> str:
    """The schema as ``strawberry export-schema`` prints it."""
    done = subprocess.run(
        [sys.executable, "-m", "strawberry", "export-schema", "schema:schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _default(value: GraphQLArgument | GraphQLInputField) -> str | None:
    """The default as printed in SDL (graphql-core 3.3 keeps it on the AST node)."""
    node = value.ast_node
    return print_ast(node.default_value) if node and node.default_value else None


def differences(contract: GraphQLSchema, exported: GraphQLSchema, name: str) -> list[str]:
    """How type ``name`` of ``exported`` breaks the contract (empty when it keeps it)."""
    want = contract.type_map[name]
    got = exported.type_map.get(name)
    if got is None:
        return [f"type {name} missing"]
    if type(got) is not type(want):
        return [f"{name} changed kind"]
    if isinstance(want, GraphQLEnumType):
        return [] if list(got.values) == list(want.values) else [f"{name} values changed"]  # type: ignore[attr-defined]
    out = []
    if isinstance(want, GraphQLObjectType | GraphQLInterfaceType):
        missing = {i.name for i in want.interfaces} - {i.name for i in got.interfaces}  # type: ignore[attr-defined]
        out += [f"{name} no longer implements {i}" for i in sorted(missing)]
    if not isinstance(want, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
        return out
    for field_name, want_field in want.fields.items():
        got_field = got.fields.get(field_name)  # type: ignore[attr-defined]
        where = f"{name}.{field_name}"
        if got_field is None:
            out.append(f"{where} missing")
            continue
        if str(got_field.type) != str(want_field.type):
            out.append(f"{where} is {got_field.type}, contract says {want_field.type}")
        if isinstance(want, GraphQLInputObjectType):
            if _default(got_field) is not None:
                out.append(f"{where} shows a default")
            continue
        for arg_name, want_arg in want_field.args.items():
            got_arg = got_field.args.get(arg_name)
            if got_arg is None:
                out.append(f"{where}({arg_name}) missing")
            elif str(got_arg.type) != str(want_arg.type):
                out.append(f"{where}({arg_name}) retyped")
            elif _default(got_arg) != _default(want_arg):
                out.append(f"{where}({arg_name}) default changed")
        for arg_name, got_arg in got_field.args.items():
            if arg_name not in want_field.args and str(got_arg.type).endswith("!"):
                out.append(f"{where}({arg_name}) added as required")
    return out


CONTRACT_TYPES = sorted(
    n for n in CONTRACT.type_map if not n.startswith("__") and n not in BUILT_IN
)


@pytest.mark.parametrize("name", CONTRACT_TYPES)
def test_exported_schema_keeps_contract_type(exported_sdl: str, name: str) -> None:
    assert differences(CONTRACT, build_schema(exported_sdl), name) == []


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("radiusKm: Float", "radius: Float", "SlotFilter"),
        ("first: Int = 20, after", "first: Int = 10, after", "Query"),
        ("bookingUrl: String", "bookingUrl: String!", "Slot"),
        ("DISABLED", "OFF", "SourceStatus"),
        ("problems: [SourceProblem!]!", "problems: [SourceProblem!]", "Source"),
        ("diagnostics: String", "diagnostic: String", "SourceProblem"),
    ],
)
def test_contract_check_catches_a_break(exported_sdl: str, old: str, new: str, name: str) -> None:
    assert old in exported_sdl
    broken = build_schema(exported_sdl.replace(old, new))
    assert differences(CONTRACT, broken, name) != []
