"""The registry of booking sources, stored with sqlmodel in SQLite or any SQLAlchemy database.

Sources are added, listed, disabled and removed at run time, by the CLI or by a
config file (``sources.registry.config_file``), without code changes. A running gateway
polls ``revision()``, one tiny row read, about once a second, and rebuilds its
sources from ``configs(os.environ)`` when the number moves.

    store = SourceStore("sqlite:///data/passerelle.sqlite3")
    store.add(SourceConfig(id="clinique-a", protocol=SourceProtocol.FHIR_R4,
                               url="https://fhir.clinique-a.example/r4",
                               credentials_env="CLINIQUE_A_TOKEN"))
    seen = store.revision()
    ...
    if store.revision() != seen:
        configs = store.configs(os.environ)

Secrets never reach the database: a row holds the *name* of the environment
variable (``credentials_env``), resolved by ``configs`` each time it is called.
Definitions are checked by ``sources.registry.definition`` before they are stored,
and again when their rows are read (a row holds what ``definition_table`` gives).

Every change runs in one transaction that first bumps the revision row. That
row is therefore also the registry's write lock: concurrent writers (the CLI, a
gateway applying its config file) queue on it, and a change that turns out to
be a no-op is rolled back together with its bump, so the revision only moves
when the sources really changed.

Each source records its ``origin``: ``"cli"`` or ``"config:<absolute path>"``.
``apply_config`` upserts a file's sources and removes those the same file
listed earlier but no longer does; it leaves other origins alone, except when
an id collides: the file wins, overwrites that source and takes ownership of it
(reported in ``ApplySummary.adopted``). A ``set_enabled`` or ``remove`` on a
file-owned source lasts until that file is applied again.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import (
    IntegrityError,
)
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from sources.base import SourceConfig
from sources.errors import ConfigError
from sources.records import SourceProtocol
from sources.registry.database import RegistryDatabase
from sources.registry.definition import (
    definition_table,
    parse_definition,
    validate_definition,
)
from sources.registry.tables import SourceRevisionRow, SourceRow

__all__ = [
    "CLI_ORIGIN",
    "DEFAULT_DATABASE_URL",
    "ApplySummary",
    "SourceStore",
    "config_origin",
]

logger = logging.getLogger("passerelle")

DEFAULT_DATABASE_URL = "sqlite:///data/passerelle.sqlite3"
"""Used when ``PASSERELLE_DATABASE_URL`` is unset; relative to the working directory."""

CLI_ORIGIN = "cli"


@dataclass(frozen=True, slots=True)
class ApplySummary:
    """What ``apply_config`` changed. ``adopted`` ids are also in ``updated``:
    sources of another origin that the file took over."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def config_origin(path: str | os.PathLike[str]) -> str:
    """The origin recorded for the sources of a config file: its absolute path.

    Symlinks are deliberately not resolved: a Kubernetes ConfigMap is a symlink
    into a directory renamed on every update, and the origin must not move."""
    return f"config:{os.path.abspath(path)}"


# A row is a definition's table (``definition_table``) plus its place and origin, and is
# read back, and checked, by ``parse_definition``: the one mapping between the two.


def _definition_from_row(row: SourceRow) -> SourceConfig:
    try:
        SourceProtocol(row.protocol)
    except ValueError:
        raise ConfigError(
            f"source {row.id!r} in the registry has unknown protocol {row.protocol!r}; "
            "remove it or upgrade the gateway"
        ) from None
    table = row.model_dump(exclude={"position", "origin"})
    return parse_definition(table, where=f"source {row.id!r} in the registry")


def _row_values(definition: SourceConfig, origin: str) -> dict[str, Any]:
    values = definition_table(definition)
    del values["id"]
    return {**values, "origin": origin}


# -- the store ------------------------------------------------------------------------


class SourceStore:
    """The source registry. Methods are synchronous and thread-safe: call them from
    async code through ``asyncio.to_thread``. Creates its tables if missing.

        with SourceStore(os.environ.get("PASSERELLE_DATABASE_URL", DEFAULT_DATABASE_URL)) as s:
            s.set_enabled("clinique-a", False)
    """

    def __init__(self, database_url: str = DEFAULT_DATABASE_URL) -> None:
        self._database = RegistryDatabase(database_url, "source registry")

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> SourceStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------

    def revision(self) -> int:
        """A number that changes with every change to the sources; cheap to poll."""
        return self._database.revision(SourceRevisionRow)

    def list(self) -> builtins.list[SourceConfig]:
        """Every source, enabled or not, in registry order."""
        return [_definition_from_row(row) for row in self._rows()]

    def get(self, source_id: str) -> SourceConfig:
        """One source; ``ConfigError`` if there is none with that id."""
        with self._database.reading() as session:
            row = session.get(SourceRow, source_id)
            if row is None:
                raise _unknown(source_id)
            return _definition_from_row(row)

    def origins(self) -> dict[str, str]:
        """Source id -> origin (``"cli"`` or ``"config:<path>"``), e.g. for a listing."""
        return {row.id: row.origin for row in self._rows()}

    def configs(self, environ: Mapping[str, str]) -> builtins.list[SourceConfig]:
        """Every source, enabled or not, in registry order, with its credentials read
        from ``environ``. An unset or empty variable gives ``credentials=None``; a row
        that does not validate is logged as an error naming it and what is wrong, and
        left out (``list`` and ``sources list`` refuse it with that message)."""
        configs = []
        for row in self._rows():
            try:
                definition = _definition_from_row(row)
            except ConfigError as exc:
                # One row this gateway cannot read (written by another version, or by
                # hand) must not take every other source down with it: said, and skipped.
                logger.error("source not served: %s", exc)
                continue
            secret = environ.get(definition.credentials_env) if definition.credentials_env else None
            configs.append(replace(definition, credentials=secret or None))
        return configs

    # -- changing -------------------------------------------------------------------

    def add(self, definition: SourceConfig) -> SourceConfig:
        """Add a source at the end of the registry (origin ``"cli"``); returns it
        normalized. ``ConfigError`` if invalid or if the id exists."""
        definition = validate_definition(definition)
        with self._change() as session:
            existing = session.get(SourceRow, definition.id)
            if existing is not None:
                raise ConfigError(
                    f"source {definition.id!r} already exists (origin: {existing.origin}); "
                    "remove it first or pick another id"
                )
            session.add(_new_row(session, definition, CLI_ORIGIN))
            _commit(session, definition.id)
        return definition

    def set_enabled(self, source_id: str, enabled: bool) -> None:
        """Enable or disable a source; ``ConfigError`` for an unknown id."""
        with self._change() as session:
            row = session.get(SourceRow, source_id)
            if row is None:
                raise _unknown(source_id)
            if row.enabled != enabled:
                row.enabled = enabled
                session.commit()

    def remove(self, source_id: str) -> None:
        """Remove a source; ``ConfigError`` for an unknown id."""
        with self._change() as session:
            row = session.get(SourceRow, source_id)
            if row is None:
                raise _unknown(source_id)
            session.delete(row)
            session.commit()

    def apply_config(self, definitions: Iterable[SourceConfig], origin: str) -> ApplySummary:
        """Make the registry hold exactly ``definitions`` for ``origin`` (see the module
        docstring for ownership). All or nothing; an unchanged file changes nothing,
        not even the revision."""
        if not origin or origin == CLI_ORIGIN:
            raise ConfigError(f"apply_config needs a config origin, got {origin!r}")
        wanted = [validate_definition(d) for d in definitions]
        seen: set[str] = set()
        for definition in wanted:
            if definition.id in seen:
                raise ConfigError(f"{origin}: source id {definition.id!r} is listed twice")
            seen.add(definition.id)

        added: builtins.list[str] = []
        updated: builtins.list[str] = []
        adopted: builtins.list[str] = []
        removed: builtins.list[str] = []
        with self._change() as session:
            rows = {row.id: row for row in session.exec(_in_registry_order()).all()}
            for definition in wanted:
                row = rows.get(definition.id)
                if row is None:
                    session.add(_new_row(session, definition, origin))
                    session.flush()  # the next _new_row must see this position
                    added.append(definition.id)
                elif _definition_from_row(row) != definition or row.origin != origin:
                    if row.origin != origin:
                        adopted.append(definition.id)
                    row.sqlmodel_update(_row_values(definition, origin))
                    updated.append(definition.id)
            for row in rows.values():
                if row.origin == origin and row.id not in seen:
                    session.delete(row)
                    removed.append(row.id)
            summary = ApplySummary(tuple(added), tuple(updated), tuple(removed), tuple(adopted))
            if summary.changed:
                session.commit()
        return summary

    # -- internals ------------------------------------------------------------------

    def _rows(self) -> builtins.list[SourceRow]:
        with self._database.reading() as session:
            return builtins.list(session.exec(_in_registry_order()).all())

    def _change(self) -> contextlib.AbstractContextManager[Session]:
        """A write transaction that starts by bumping the revision (see
        ``RegistryDatabase.changing``)."""
        return self._database.changing(SourceRevisionRow)


def _in_registry_order() -> SelectOfScalar[SourceRow]:
    return select(SourceRow).order_by(col(SourceRow.position), col(SourceRow.id))


def _new_row(session: Session, definition: SourceConfig, origin: str) -> SourceRow:
    last = session.exec(select(func.max(SourceRow.position))).one()
    position = (last or 0) + 1
    return SourceRow(id=definition.id, position=position, **_row_values(definition, origin))


def _commit(session: Session, source_id: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        # Only reachable if a writer bypassed the revision lock.
        raise ConfigError(f"source {source_id!r} already exists") from None


def _unknown(source_id: str) -> ConfigError:
    return ConfigError(f"no source with id {source_id!r} in the registry")
