"""Typed source settings: each protocol's options checked once, when a definition is
read (file, CLI, registry row), and handed to the adapter typed."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy
from sqlalchemy import text

from sources.adapters import adapter_for, options_for
from sources.base import SourceConfig, SourceContext
from sources.errors import ConfigError
from sources.fhir.options import FhirOptions
from sources.records import SourceProtocol
from sources.registry.config_file import load_config
from sources.registry.definition import definition_table, parse_definition
from sources.registry.store import SourceStore
from sources.rest_json.options import RestJsonOptions
from sources.settings import DEFAULT_MAX_CONCURRENCY, ProtocolOptions
from sources.smart_scheduling.options import SmartSchedulingOptions

ROOT = Path(__file__).resolve().parents[2]

URLS = {
    SourceProtocol.FHIR_R4: "https://fhir.example/r4",
    SourceProtocol.REST_JSON: "https://api.example/v1",
    SourceProtocol.SMART_SCHEDULING_LINKS: "https://feed.example/$bulk-publish",
}

# One bad option per protocol, and the message naming it.
BAD_OPTIONS = [
    (
        SourceProtocol.FHIR_R4,
        "page_size = 0",
        "options.page_size must be a whole number between 1 and 1000, got 0",
    ),
    (
        SourceProtocol.REST_JSON,
        'page_size = "big"',
        "options.page_size must be a whole number between 1 and 500, got 'big'",
    ),
    (
        SourceProtocol.REST_JSON,
        'api_key_header = ""',
        "options.api_key_header must be a non-empty string, got ''",
    ),
    (
        SourceProtocol.SMART_SCHEDULING_LINKS,
        "max_file_bytes = 1.5",
        "options.max_file_bytes must be a whole number of bytes greater than 0, got 1.5",
    ),
    (
        SourceProtocol.SMART_SCHEDULING_LINKS,
        "poll_interval_s = 10",
        "poll_interval_s must be a number of seconds between 60 and 300 "
        "(the feed's publishers expect 1 to 5 minutes), got 10",
    ),
    (
        SourceProtocol.FHIR_R4,
        "watch_calls_per_minute = 0",
        "watch_calls_per_minute must be a number of calls per minute greater than 0 and at "
        "most 600, got 0",
    ),
    (
        SourceProtocol.REST_JSON,
        'watch_calls_per_minute = "fast"',
        "watch_calls_per_minute must be a number of calls per minute greater than 0 and at "
        "most 600, got 'fast'",
    ),
    (
        SourceProtocol.SMART_SCHEDULING_LINKS,
        "watch_calls_per_minute = 10",
        "watch_calls_per_minute applies to FHIR_R4 and REST_JSON sources only",
    ),
]

# One good option per protocol, and how the adapter sees it.
GOOD_OPTIONS = [
    (SourceProtocol.FHIR_R4, "page_size = 200", FhirOptions, "page_size", 200),
    (SourceProtocol.REST_JSON, "page_size = 100", RestJsonOptions, "page_size", 100),
    (
        SourceProtocol.REST_JSON,
        "watch_calls_per_minute = 12",
        RestJsonOptions,
        "watch_calls_per_minute",
        12.0,
    ),
    (
        SourceProtocol.SMART_SCHEDULING_LINKS,
        "poll_interval_s = 120",
        SmartSchedulingOptions,
        "poll_interval_s",
        120.0,
    ),
]


def table(protocol: SourceProtocol, options: str) -> str:
    return (
        f'[[sources]]\nid = "x"\nprotocol = "{protocol.value}"\nurl = "{URLS[protocol]}"\n\n'
        f"[sources.options]\n{options}\n"
    )


@pytest.mark.parametrize(("protocol", "option", "problem"), BAD_OPTIONS)
def test_a_bad_option_is_refused_in_one_line_naming_key_source_and_file(
    tmp_path: Path, protocol: SourceProtocol, option: str, problem: str
) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(table(protocol, option), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value) == f"{path}: source #1 (id 'x'): {problem}"


@pytest.mark.parametrize(("protocol", "option", "problem"), BAD_OPTIONS)
def test_a_bad_option_on_the_command_line_is_refused_the_same_way(
    protocol: SourceProtocol, option: str, problem: str
) -> None:
    key, value = (part.strip() for part in option.split("=", 1))
    raw = {"id": "x", "protocol": protocol.value, "url": URLS[protocol]}
    raw["options"] = {key: ast.literal_eval(value)}  # type: ignore[assignment]

    with pytest.raises(ConfigError) as caught:
        parse_definition(raw, where="command line")

    assert str(caught.value) == f"command line: {problem}"


@pytest.mark.parametrize(("protocol", "option", "model", "attribute", "value"), GOOD_OPTIONS)
async def test_the_options_arrive_typed_at_the_adapter(
    tmp_path: Path,
    protocol: SourceProtocol,
    option: str,
    model: type[ProtocolOptions],
    attribute: str,
    value: object,
) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(table(protocol, option), encoding="utf-8")
    (config,) = load_config(path)

    async with aiohttp.ClientSession() as session:
        adapter: Any = adapter_for(protocol)(config, SourceContext(session, logging.getLogger()))

    assert type(adapter.options) is model
    assert getattr(adapter.options, attribute) == value
    assert type(getattr(adapter.options, attribute)) is type(value)


def test_an_adapter_refuses_the_options_of_another_protocol() -> None:
    with pytest.raises(ConfigError, match="options of a FHIR_R4 source are FhirOptions"):
        SourceConfig(
            id="x", protocol=SourceProtocol.FHIR_R4, url=URLS[SourceProtocol.FHIR_R4],
            options=RestJsonOptions(),
        )  # fmt: skip


def test_omitted_options_are_the_protocols_defaults() -> None:
    for protocol, url in URLS.items():
        config = SourceConfig(id="x", protocol=protocol, url=url)
        assert config.options == options_for(protocol)()
        assert config.max_concurrency == DEFAULT_MAX_CONCURRENCY


def test_common_settings_are_typed_fields_written_back_under_options() -> None:
    definition = parse_definition(
        {
            "id": "x",
            "protocol": "REST_JSON",
            "url": URLS[SourceProtocol.REST_JSON],
            "timeout_s": 5,
            "max_concurrency": 4,
            "options": {"cache_ttl_s": 0, "read_timeout_s": 3, "page_size": 50, "later": [1]},
        }
    )

    assert (definition.max_concurrency, definition.cache_ttl_s) == (4, 0.0)
    assert (definition.read_timeout_s, definition.effective_read_timeout_s) == (3.0, 3.0)
    assert definition.effective_connect_timeout_s == 1.0
    assert definition_table(definition)["options"] == {
        "page_size": 50,
        "later": [1],  # an option this gateway does not know is kept as written
        "max_concurrency": 4,
        "cache_ttl_s": 0.0,
        "read_timeout_s": 3.0,
    }
    assert parse_definition(definition_table(definition)) == definition


def test_a_registry_row_is_stored_as_written_and_checked_when_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    with SourceStore(url) as store:
        store.add(
            parse_definition(
                {
                    "id": "x",
                    "protocol": "SMART_SCHEDULING_LINKS",
                    "url": URLS[SourceProtocol.SMART_SCHEDULING_LINKS],
                    "poll_interval_s": 120,
                }
            )
        )
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            stored = connection.execute(text("SELECT options FROM source_registry")).scalar()
            assert stored == '{"poll_interval_s": 120.0}'
            connection.execute(
                text("UPDATE source_registry SET options = '{\"max_file_bytes\": -1}'")
            )
    finally:
        engine.dispose()

    with SourceStore(url) as store, pytest.raises(ConfigError) as caught:
        store.list()

    assert str(caught.value) == (
        "source 'x' in the registry: options.max_file_bytes must be a whole number "
        "of bytes greater than 0, got -1"
    )


def test_the_pool_does_not_import_the_registry() -> None:
    offenders = []
    for path in sorted((ROOT / "sources" / "pool").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "sources.registry"
            ):
                offenders.append(f"{path.name} imports {node.module}")
    assert offenders == []
