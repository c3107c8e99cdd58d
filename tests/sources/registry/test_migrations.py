"""The registry database's migrations (Alembic), on SQLite files and the real PostgreSQL.

Each PostgreSQL test works in a schema of its own (``search_path`` in the URL),
dropped afterwards, as in tests/sources/registry/test_store.py.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, insert, inspect, text
from sqlmodel import SQLModel

import migrations
from sources.base import SourceConfig
from sources.errors import ConfigError
from sources.records import SourceProtocol
from sources.registry.partners import PartnerStore
from sources.registry.store import SourceStore
from sources.registry.tables import TABLES

SOURCE_TABLES = {"source_registry", "source_registry_revision"}
SOURCE_ROWS = [t for t in TABLES if t.name in ("source_registry", "source_registry_revision")]
PARTNER_TABLES = {
    "gateway_setting",
    "partner_client",
    "partner_document",
    "partner_registry_revision",
}
WEBHOOK_TABLES = {"webhook_alert", "webhook_delivery"}


def query(database_url: str, sql: str) -> list[Any]:
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)))
    finally:
        engine.dispose()


def tables(database_url: str) -> set[str]:
    engine = sqlalchemy.create_engine(database_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def models() -> MetaData:
    """What the code expects: the rows of both registries (sources.registry.tables)."""
    expected = MetaData()
    for table in TABLES:
        table.to_metadata(expected)
    return expected


def source(source_id: str) -> SourceConfig:
    return SourceConfig(
        id=source_id, protocol=SourceProtocol.REST_JSON, url=f"https://{source_id}.example/api"
    )


def test_a_fresh_database_is_migrated_to_exactly_what_the_code_expects(database_url: str) -> None:
    with PartnerStore(database_url):
        pass
    assert tables(database_url) == SOURCE_TABLES | PARTNER_TABLES | WEBHOOK_TABLES | {
        "alembic_version"
    }
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(migrations.head(),)]
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), models())
    finally:
        engine.dispose()
    assert differences == []
    # The source registry then opens on it as on one it made itself.
    with SourceStore(database_url) as store:
        store.add(source("after"))
        assert [d.id for d in store.list()] == ["after"] and store.revision() == 1


def create_all(database_url: str, *source_ids: str) -> None:
    """A registry as ``SourceStore`` made it before migrations: ``create_all``, the
    revision row, and some sources."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.begin() as connection:
            SQLModel.metadata.create_all(connection, tables=SOURCE_ROWS)
            connection.execute(insert(SOURCE_ROWS[1]).values(id=1, value=len(source_ids)))
            for position, source_id in enumerate(source_ids, 1):
                connection.execute(
                    insert(SOURCE_ROWS[0]).values(
                        id=source_id,
                        position=position,
                        name=source_id,
                        protocol="REST_JSON",
                        url=f"https://{source_id}.example/api",
                        timeout_s=2.0,
                        enabled=True,
                        credentials_env=None,
                        options={"page_size": 50},
                        origin="cli",
                    )
                )
    finally:
        engine.dispose()


def test_revision_0001_is_what_create_all_made(database_url: str) -> None:
    """A database stamped 0001 without running it must look like one where it ran."""
    create_all(database_url)
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            made_by_create_all = _describe(connection, SOURCE_TABLES)
        with engine.begin() as connection:
            for name in ("source_registry_revision", "source_registry"):
                connection.execute(text(f"DROP TABLE {name}"))
        with engine.begin() as connection:
            command.upgrade(migrations.alembic_config(connection), migrations.BASELINE)
        with engine.connect() as connection:
            assert _describe(connection, SOURCE_TABLES) == made_by_create_all
    finally:
        engine.dispose()


def _describe(connection: sqlalchemy.Connection, names: set[str]) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        name: (
            [
                (c["name"], str(c["type"]), c["nullable"], bool(c.get("autoincrement")))
                for c in inspector.get_columns(name)
            ],
            inspector.get_pk_constraint(name)["constrained_columns"],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(name)),
        )
        for name in sorted(names)
    }


def test_an_old_create_all_database_upgrades_in_place_keeping_its_sources(
    database_url: str,
) -> None:
    create_all(database_url, "kept-a", "kept-b")
    assert "alembic_version" not in tables(database_url)

    with PartnerStore(database_url) as partners:
        partners.create_client("new-partner")
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(migrations.head(),)]
    assert tables(database_url) >= PARTNER_TABLES
    with SourceStore(database_url) as store:
        assert [d.id for d in store.list()] == ["kept-a", "kept-b"]
        assert store.get("kept-a").options.as_table() == {"page_size": 50}
        assert store.revision() == 2  # its revision row too
        store.remove("kept-a")
        assert store.revision() == 3
    with PartnerStore(database_url) as partners:  # again: nothing to do
        assert [c.name for c in partners.clients()] == ["new-partner"]


def test_the_source_registry_opens_an_old_database_then_partners_upgrade_it(
    database_url: str,
) -> None:
    """The gateway's order at start-up: the source registry first, then the partners."""
    create_all(database_url, "kept")
    with SourceStore(database_url) as store, PartnerStore(database_url) as partners:
        partners.create_client("p")
        assert [d.id for d in store.list()] == ["kept"]
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(migrations.head(),)]


def test_gateways_starting_together_migrate_once(database_url: str) -> None:
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            with PartnerStore(database_url):
                pass
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert query(database_url, "SELECT version_num FROM alembic_version") == [(migrations.head(),)]
    assert query(database_url, "SELECT count(*) FROM gateway_setting") == [(1,)]  # one pepper


def test_a_database_from_a_newer_version_is_refused_clearly(database_url: str) -> None:
    with PartnerStore(database_url):
        pass
    engine = sqlalchemy.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="revision '9999', which this version of Passerelle"):
        PartnerStore(database_url)


def test_an_in_memory_database_is_migrated_too() -> None:
    with PartnerStore("sqlite://") as store:
        store.create_client("a")
        assert [c.name for c in store.clients()] == ["a"]


def test_adding_the_operator_column_keeps_clients_and_their_documents(database_url: str) -> None:
    """0003 adds a column in place: a table rebuilt (SQLite's batch mode) would be
    dropped, and with foreign keys on that deletes every document of its clients."""
    engine = sqlalchemy.create_engine(database_url)
    if engine.dialect.name == "sqlite":

        @sqlalchemy.event.listens_for(engine, "connect")
        def _foreign_keys_on(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

    now = "2026-12-01 12:00:00+00:00"
    try:
        with engine.begin() as connection:
            command.upgrade(migrations.alembic_config(connection), "0002")
            connection.execute(
                text(
                    "INSERT INTO partner_client (name, key_hash, pepper_id, persisted_only, "
                    "log_only, allow_introspection, created_at) "
                    "VALUES ('p', :hash, 'pep', false, false, false, :now)"
                ),
                {"hash": "a" * 64, "now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO partner_document (client_name, document_id, body, "
                    "body_sha256, operation_type, created_at) "
                    "VALUES ('p', 'd1', '{ sources { id } }', :hash, 'query', :now)"
                ),
                {"hash": "b" * 64, "now": now},
            )
        # Up, down (the column dropped in place too) and up again.
        for step, target in ((command.upgrade, "head"), (command.downgrade, "0002")) * 2:
            with engine.begin() as connection:
                step(migrations.alembic_config(connection), target)
            documents = query(database_url, "SELECT client_name, document_id FROM partner_document")
            assert documents == [("p", "d1")], (step.__name__, target)
        with engine.begin() as connection:
            command.upgrade(migrations.alembic_config(connection), "head")
    finally:
        engine.dispose()
    assert query(database_url, "SELECT name, operator FROM partner_client") == [("p", False)]
