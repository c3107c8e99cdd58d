"""The source registry, run against SQLite and the real PostgreSQL of this machine.

PostgreSQL is not optional: if it cannot be reached the tests fail. Each
PostgreSQL test works in a schema of its own (via ``search_path`` in the URL),
dropped afterwards.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import text

from sources.adapters import options_for
from sources.base import SourceConfig
from sources.errors import ConfigError
from sources.fhir.options import FhirOptions
from sources.records import SourceProtocol
from sources.registry.definition import parse_definition, validate_definition
from sources.registry.store import CLI_ORIGIN, ApplySummary, SourceStore

ORIGIN = "config:/etc/passerelle/sources.toml"
OTHER_ORIGIN = "config:/etc/passerelle/other.toml"


def source(source_id: str, **changes: Any) -> SourceConfig:
    fields: dict[str, Any] = {
        "id": source_id,
        "protocol": SourceProtocol.REST_JSON,
        "url": f"https://{source_id}.example/api",
    }
    fields.update(changes)
    if isinstance(fields.get("options"), dict):
        fields["options"] = options_for(fields["protocol"])(**fields["options"])
    return SourceConfig(**fields)


@pytest.fixture
def store(database_url: str) -> Iterator[SourceStore]:
    with SourceStore(database_url) as store:
        yield store


def raw_rows(database_url: str) -> list[dict[str, Any]]:
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            result = connection.execute(text("SELECT * FROM source_registry ORDER BY position"))
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


# -- add, list, get, enable, remove --------------------------------------------------


def test_sources_are_listed_in_the_order_first_added(store: SourceStore) -> None:
    for source_id in ("zeta", "alpha", "mid"):
        store.add(source(source_id))

    assert [d.id for d in store.list()] == ["zeta", "alpha", "mid"]


def test_add_returns_and_stores_the_normalized_definition(store: SourceStore) -> None:
    added = store.add(
        source(
            "clinique-a",
            protocol=SourceProtocol.FHIR_R4,
            url="https://fhir.clinique-a.example/r4",
            timeout_s=5,
            credentials_env="CLINIQUE_A_TOKEN",
            options={"page_size": 50, "filters": {"types": ["ROUTINE", "URGENT"]}, "on": True},
        )
    )

    expected = SourceConfig(
        id="clinique-a",
        name="clinique-a",
        protocol=SourceProtocol.FHIR_R4,
        url="https://fhir.clinique-a.example/r4",
        timeout_s=5.0,
        enabled=True,
        credentials_env="CLINIQUE_A_TOKEN",
        options=FhirOptions(page_size=50, filters={"types": ["ROUTINE", "URGENT"]}, on=True),
    )
    assert added == expected
    assert store.get("clinique-a") == expected
    assert store.list() == [expected]
    assert store.origins() == {"clinique-a": CLI_ORIGIN}


def test_adding_an_existing_id_is_refused_and_changes_nothing(store: SourceStore) -> None:
    store.add(source("a", name="First"))
    revision = store.revision()

    with pytest.raises(ConfigError, match=r"source 'a' already exists \(origin: cli\)"):
        store.add(source("a", name="Second"))

    assert store.get("a").name == "First"
    assert store.revision() == revision


def test_disable_and_enable_a_source(store: SourceStore) -> None:
    store.add(source("a"))
    store.add(source("b"))

    store.set_enabled("a", False)
    assert [(d.id, d.enabled) for d in store.list()] == [("a", False), ("b", True)]

    store.set_enabled("a", True)
    assert store.get("a").enabled is True


def test_remove_a_source(store: SourceStore) -> None:
    store.add(source("a"))
    store.add(source("b"))

    store.remove("a")

    assert [d.id for d in store.list()] == ["b"]
    with pytest.raises(ConfigError):
        store.get("a")


def test_a_removed_id_can_be_added_again_at_the_end(store: SourceStore) -> None:
    store.add(source("a"))
    store.add(source("b"))
    store.remove("a")

    store.add(source("a"))

    assert [d.id for d in store.list()] == ["b", "a"]


@pytest.mark.parametrize(
    "operation",
    [
        lambda store: store.get("ghost"),
        lambda store: store.set_enabled("ghost", False),
        lambda store: store.remove("ghost"),
    ],
    ids=["get", "set_enabled", "remove"],
)
def test_an_unknown_id_is_a_config_error(store: SourceStore, operation: Any) -> None:
    store.add(source("a"))
    revision = store.revision()

    with pytest.raises(ConfigError, match=r"^no source with id 'ghost' in the registry$"):
        operation(store)

    assert store.revision() == revision


def test_add_validates_the_definition(store: SourceStore) -> None:
    with pytest.raises(ConfigError, match=r"^source 'x': timeout_s must be a number"):
        store.add(source("x", timeout_s=0))

    assert store.list() == []
    assert store.revision() == 0


# -- revision ------------------------------------------------------------------------


def test_revision_moves_on_every_change_and_only_then(store: SourceStore) -> None:
    seen = [store.revision()]

    def changes(expected: bool) -> None:
        now = store.revision()
        assert (now != seen[-1]) is expected
        seen.append(now)

    store.add(source("a"))
    changes(True)
    store.add(source("b"))
    changes(True)
    store.set_enabled("a", False)
    changes(True)
    store.set_enabled("a", False)  # already disabled
    changes(False)
    store.set_enabled("a", True)
    changes(True)
    store.remove("b")
    changes(True)
    store.list()
    store.configs({})
    changes(False)
    store.apply_config([source("c")], ORIGIN)
    changes(True)
    store.apply_config([source("c")], ORIGIN)
    changes(False)
    assert seen == sorted(seen)


def test_a_change_through_another_store_moves_the_revision(database_url: str) -> None:
    # The gateway and the CLI are two processes with two stores on one database.
    with SourceStore(database_url) as gateway, SourceStore(database_url) as cli:
        seen = gateway.revision()

        cli.add(source("a"))

        assert gateway.revision() != seen
        assert [d.id for d in gateway.list()] == ["a"]


def test_the_registry_survives_reopening(database_url: str) -> None:
    with SourceStore(database_url) as first:
        first.add(source("a"))
        first.add(source("b"))
        revision = first.revision()

    with SourceStore(database_url) as second:
        assert [d.id for d in second.list()] == ["a", "b"]
        assert second.revision() == revision
        second.add(source("c"))
        assert [d.id for d in second.list()] == ["a", "b", "c"]


def test_concurrent_writers_queue_and_keep_distinct_positions(database_url: str) -> None:
    with SourceStore(database_url) as store:
        errors: list[BaseException] = []

        def writer(thread: int) -> None:
            try:
                for n in range(4):
                    store.add(source(f"t{thread}-{n}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert len(store.list()) == 20
        assert store.revision() == 20
    positions = [row["position"] for row in raw_rows(database_url)]
    assert len(set(positions)) == 20


# -- apply_config --------------------------------------------------------------------


def test_apply_config_adds_updates_and_removes_only_its_own_sources(store: SourceStore) -> None:
    store.add(source("by-hand"))
    assert store.apply_config([source("other")], OTHER_ORIGIN) == ApplySummary(added=("other",))

    first = store.apply_config([source("a1"), source("a2")], ORIGIN)
    assert first == ApplySummary(added=("a1", "a2"))

    second = store.apply_config(
        [source("a3"), source("a2", url="https://moved.example/api", timeout_s=4.5)], ORIGIN
    )

    assert second == ApplySummary(added=("a3",), updated=("a2",), removed=("a1",))
    assert [d.id for d in store.list()] == ["by-hand", "other", "a2", "a3"]
    assert store.get("a2").url == "https://moved.example/api"
    assert store.get("a2").timeout_s == 4.5
    assert store.origins() == {
        "by-hand": CLI_ORIGIN,
        "other": OTHER_ORIGIN,
        "a2": ORIGIN,
        "a3": ORIGIN,
    }

    assert store.apply_config([], ORIGIN) == ApplySummary(removed=("a2", "a3"))
    assert [d.id for d in store.list()] == ["by-hand", "other"]


def test_an_unchanged_config_changes_nothing_not_even_the_revision(store: SourceStore) -> None:
    config = [
        source("a", options={"nested": {"list": [1, 2.5, "x", None]}}, credentials_env="A_KEY"),
        source("b", enabled=False, timeout_s=3),
    ]
    store.apply_config(config, ORIGIN)
    revision = store.revision()

    summary = store.apply_config(config, ORIGIN)

    assert summary == ApplySummary()
    assert not summary.changed
    assert store.revision() == revision


def test_apply_config_keeps_registry_order_when_the_file_reorders(store: SourceStore) -> None:
    store.apply_config([source("a"), source("b"), source("c")], ORIGIN)

    summary = store.apply_config([source("c"), source("new"), source("b"), source("a")], ORIGIN)

    assert summary == ApplySummary(added=("new",))
    assert [d.id for d in store.list()] == ["a", "b", "c", "new"]


def test_the_config_file_takes_over_a_colliding_id(store: SourceStore) -> None:
    store.add(source("shared", name="Added by hand", credentials_env="OLD_KEY"))
    store.add(source("kept"))

    summary = store.apply_config([source("shared", name="From the file")], ORIGIN)

    assert summary == ApplySummary(updated=("shared",), adopted=("shared",))
    assert store.get("shared") == validate_definition(source("shared", name="From the file"))
    assert store.origins()["shared"] == ORIGIN
    # Owned by the file now: dropping it from the file removes it.
    assert store.apply_config([], ORIGIN) == ApplySummary(removed=("shared",))
    assert [d.id for d in store.list()] == ["kept"]


def test_apply_config_is_all_or_nothing(store: SourceStore) -> None:
    store.apply_config([source("a")], ORIGIN)
    revision = store.revision()

    with pytest.raises(ConfigError, match="url must be"):
        store.apply_config([source("b"), source("c", url="ftp://c.example")], ORIGIN)
    with pytest.raises(ConfigError, match="source id 'b' is listed twice"):
        store.apply_config([source("b"), source("b")], ORIGIN)

    assert [d.id for d in store.list()] == ["a"]
    assert store.revision() == revision


def test_apply_config_refuses_the_cli_origin(store: SourceStore) -> None:
    store.add(source("a"))

    with pytest.raises(ConfigError, match="needs a config origin"):
        store.apply_config([], CLI_ORIGIN)

    assert [d.id for d in store.list()] == ["a"]


# -- configs and secrets -------------------------------------------------------------


def test_configs_resolve_credentials_from_the_environment(store: SourceStore) -> None:
    store.add(source("with-key", credentials_env="WITH_KEY_TOKEN", options={"page_size": 20}))
    store.add(source("unset-var", credentials_env="NOT_SET_TOKEN"))
    store.add(source("empty-var", credentials_env="EMPTY_TOKEN"))
    store.add(source("no-credentials", enabled=False, timeout_s=7))

    configs = store.configs({"WITH_KEY_TOKEN": "s3cr3t-value", "EMPTY_TOKEN": ""})

    assert [(c.id, c.credentials, c.enabled) for c in configs] == [
        ("with-key", "s3cr3t-value", True),
        ("unset-var", None, True),
        ("empty-var", None, True),
        ("no-credentials", None, False),
    ]
    first = configs[0]
    assert (first.name, first.protocol, first.url, first.timeout_s) == (
        "with-key",
        SourceProtocol.REST_JSON,
        "https://with-key.example/api",
        2.0,
    )
    assert first.options.as_table() == {"page_size": 20}
    with pytest.raises(TypeError):
        first.options["page_size"] = 1  # type: ignore[index]
    assert configs[3].timeout_s == 7.0


def test_the_secret_never_reaches_the_database(store: SourceStore, database_url: str) -> None:
    secret = "tok_live_9f8e7d6c5b4a"
    environ = {"CLINIQUE_TOKEN": secret}
    store.add(source("clinique", credentials_env="CLINIQUE_TOKEN"))
    store.apply_config([source("from-file", credentials_env="CLINIQUE_TOKEN")], ORIGIN)

    assert [c.credentials for c in store.configs(environ)] == [secret, secret]

    rows = raw_rows(database_url)
    assert [row["credentials_env"] for row in rows] == ["CLINIQUE_TOKEN", "CLINIQUE_TOKEN"]
    assert secret not in repr(rows)
    if database_url.startswith("sqlite"):
        database_file = sqlalchemy.make_url(database_url).database
        assert database_file is not None
        assert secret.encode() not in Path(database_file).read_bytes()


# -- validation ----------------------------------------------------------------------

VALID: dict[str, object] = {"id": "x", "protocol": "REST_JSON", "url": "https://x.example/api"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"timeout_s": "abc"},
            "source 'x': timeout_s must be a number greater than 0 and at most 60, got 'abc'",
        ),
        (
            {"timeout_s": 0},
            "source 'x': timeout_s must be a number greater than 0 and at most 60, got 0",
        ),
        # 0 is refused, so "between 0 and 60" would be wrong (issue 11).
        (
            {"timeout_s": 0.0},
            "source 'x': timeout_s must be a number greater than 0 and at most 60, got 0.0",
        ),
        (
            {"timeout_s": 60.5},
            "source 'x': timeout_s must be a number greater than 0 and at most 60, got 60.5",
        ),
        (
            {"timeout_s": True},
            "source 'x': timeout_s must be a number greater than 0 and at most 60, got True",
        ),
        (
            {"timeout_s": float("nan")},
            "source 'x': timeout_s must be a number greater than 0 and at most 60, got nan",
        ),
        (
            {"id": "Clinique A"},
            "source 'Clinique A': id must be 1 to 63 characters of lowercase letters, digits, "
            "'_' or '-', starting with a letter or digit, got 'Clinique A'",
        ),
        ({"id": "-x"}, "source '-x': id must be"),
        ({"id": "x\n"}, "id must be"),
        ({"id": "x" * 64}, "id must be 1 to 63 characters"),
        ({"id": 7}, "source: id must be"),
        (
            {"protocol": "SOAP"},
            "source 'x': protocol must be one of FHIR_R4, SMART_SCHEDULING_LINKS, REST_JSON, "
            "got 'SOAP'",
        ),
        ({"protocol": "rest_json"}, "protocol must be one of"),
        (
            {"url": "ftp://x.example/"},
            "source 'x': url must be an http:// or https:// URL with a host, got 'ftp://x.example/'",
        ),
        ({"url": "https://"}, "url must be an http:// or https:// URL with a host"),
        ({"url": "x.example/api"}, "url must be an http:// or https:// URL with a host"),
        ({"url": "https://x.example:99999/"}, "url must be an http:// or https:// URL"),
        ({"url": "https://x.example/a b"}, "url must be an http:// or https:// URL"),
        ({"url": "http://[::1/x"}, "url must be an http:// or https:// URL"),
        ({"url": 42}, "source 'x': url must be a string, got 42"),
        (
            {"url": "https://x.example/fhir", "protocol": "SMART_SCHEDULING_LINKS"},
            "source 'x': url of a SMART_SCHEDULING_LINKS source must end with '$bulk-publish'",
        ),
        ({"name": ""}, "source 'x': name must be a non-empty string, got ''"),
        ({"name": "   "}, "name must be a non-empty string"),
        ({"name": 3}, "name must be a non-empty string, got 3"),
        ({"enabled": "yes"}, "source 'x': enabled must be true or false, got 'yes'"),
        ({"credentials_env": "MY-KEY"}, "source 'x': credentials_env must be the NAME"),
        ({"options": ["a"]}, "source 'x': options must be a table of settings, got ['a']"),
        ({"options": {"since": object()}}, "source 'x': options must hold only strings"),
        ({"options": {"ratio": float("inf")}}, "options must hold only strings"),
        (
            {"timout_s": 3},
            "source 'x': unknown key 'timout_s' (allowed: cache_stale_s, cache_ttl_s, "
            "connect_timeout_s, credentials_env, enabled, id, max_concurrency, name, options, "
            "poll_interval_s, protocol, read_timeout_s, timeout_s, url, watch_calls_per_minute); "
            "did you mean 'timeout_s'?",
        ),
        (
            {"cache_ttl_s": -1},
            "source 'x': cache_ttl_s must be a number of seconds between 0 and 3600, got -1",
        ),
        (
            {"options": {"cache_stale_s": "long"}},
            "source 'x': cache_stale_s must be a number of seconds between 0 and 86400",
        ),
        (
            {"connect_timeout_s": 5, "timeout_s": 2},
            "source 'x': connect_timeout_s must be a number of seconds greater than 0 and at "
            "most timeout_s (2), got 5",
        ),
        ({"read_timeout_s": 0}, "source 'x': read_timeout_s must be a number of seconds"),
        (
            {
                "protocol": "SMART_SCHEDULING_LINKS",
                "url": "https://x/$bulk-publish",
                "cache_ttl_s": 5,
            },
            "source 'x': cache_ttl_s does not apply to SMART_SCHEDULING_LINKS sources",
        ),
        ({"url": None}, "source 'x': missing required key 'url' (required: id, protocol, url)"),
    ],
)
def test_each_invalid_field_gets_a_message_saying_what_to_fix(
    changes: dict[str, object], message: str
) -> None:
    raw = {**VALID, **changes}

    with pytest.raises(ConfigError) as caught:
        parse_definition(raw)

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"credentials_env": "sk_live_abc123+="},
        {"url": "https://user:sk_live_abc123+=@x.example/api"},
        {"url": "https://sk_live_abc123+=@x.example/api"},
        # A '/' in the password makes the parser see a bad port, not a password.
        {"url": "https://user:sk_live_abc123/+=@x.example/api"},
        {"url": "ftp://user:sk_live_abc123@x.example/api"},
    ],
)
def test_messages_never_echo_a_secret_put_in_the_wrong_place(changes: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_definition({**VALID, **changes})

    assert "sk_live_abc123" not in str(caught.value)


def test_a_url_with_credentials_is_refused() -> None:
    with pytest.raises(ConfigError, match="url must not contain credentials; name the environment"):
        parse_definition({**VALID, "url": "https://user:pw@x.example/api"})


def test_valid_edge_values_are_accepted_and_normalized() -> None:
    definition = parse_definition(
        {
            "id": "a" * 63,
            "protocol": "SMART_SCHEDULING_LINKS",
            "url": "http://publisher.example:8080/$bulk-publish",
            "timeout_s": 60,
        }
    )

    assert definition.protocol is SourceProtocol.SMART_SCHEDULING_LINKS
    assert definition.name == "a" * 63
    assert definition.timeout_s == 60.0
    assert isinstance(definition.timeout_s, float)
    assert definition.enabled is True
    assert definition.options.as_table() == {}


def test_an_at_sign_in_the_url_path_is_no_credential() -> None:
    url = "https://x.example/api/users/someone@clinic.example"

    assert parse_definition({**VALID, "url": url}).url == url


def test_validate_definition_defaults_an_empty_name_to_the_id() -> None:
    definition = validate_definition(source("a", name="", options={"pages": (1, 2)}))

    assert definition.name == "a"
    assert definition.options.as_table() == {"pages": [1, 2]}  # stored as JSON gives it back


def test_a_definition_with_options_is_hashable() -> None:
    assert hash(source("a", options={"k": [1]})) == hash(source("a", options={"k": [2]}))


# -- the database URL ----------------------------------------------------------------


def test_a_bad_database_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="is not a database URL"):
        SourceStore("not a url")
    with pytest.raises(ConfigError, match="cannot use the source registry URL"):
        SourceStore("nosuchdb://host/db")


def test_an_unreachable_database_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        SourceStore("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test")

    assert "cannot open the source registry at postgresql+psycopg://postgres:***@" in str(
        caught.value
    )
    assert "hunter2" not in str(caught.value)


async def test_an_in_memory_sqlite_store_is_one_database_for_every_thread() -> None:
    with SourceStore("sqlite://") as store:
        await asyncio.to_thread(store.add, source("a"))
        added_elsewhere = threading.Thread(target=store.add, args=(source("b"),))
        added_elsewhere.start()
        added_elsewhere.join()

        assert [d.id for d in await asyncio.to_thread(store.list)] == ["a", "b"]
        assert store.revision() == 2


def test_a_sqlite_registry_in_a_folder_that_does_not_exist_yet_creates_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new" / "folder" / "registry.sqlite3"
    with SourceStore(f"sqlite:///{path}") as store:
        assert store.list() == []
    assert path.exists()


def test_a_row_that_no_longer_validates_is_logged_and_left_out_of_the_served_sources(
    store: SourceStore, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store.add(source("good"))
    store.add(source("bad"))
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.begin() as connection:  # as an older gateway or a hand edit left it
            connection.execute(
                text("UPDATE source_registry SET options = :o WHERE id = 'bad'"),
                {"o": '{"page_size": 1000}'},
            )
    finally:
        engine.dispose()

    assert [c.id for c in store.configs({})] == ["good"]
    assert "source not served: " in caplog.text and "'bad'" in caplog.text
    assert "page_size" in caplog.text
    with pytest.raises(ConfigError, match="page_size"):
        store.list()
