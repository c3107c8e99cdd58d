"""The database plumbing both registries share: one engine per store, its lock, its
schema upgraded when opened, read sessions and write transactions that bump the
registry's revision.

    database = RegistryDatabase(url, "source registry")
    with database.changing(SourceRevisionRow) as session:  # bumps the revision first
        session.add(row)
        session.commit()

Failures to open it (a bad URL, an unreachable server, a folder it cannot create)
are one-line ``ConfigError``s naming what was opened, never tracebacks.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, col, create_engine

import migrations
from sources.errors import ConfigError
from sources.registry.tables import REVISION_ID, RevisionRow

__all__ = ["RegistryDatabase", "create_registry_engine"]

# What a database may raise while it is opened or read: said in one line.
DATABASE_ERRORS = (OperationalError, ProgrammingError, RuntimeError)


def create_registry_engine(database_url: str, what: str = "source registry") -> tuple[Engine, str]:
    """An engine for a registry database, and its URL without the password: a clear
    ``ConfigError`` naming ``what`` for a bad URL, the folder of a SQLite file made,
    one shared connection for an in-memory database."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            f"the {what} URL is not a database URL "
            "(e.g. sqlite:///data/passerelle.sqlite3 or postgresql+psycopg://user@host/db)"
        ) from None
    shown = url.render_as_string(hide_password=True)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            # One shared connection, or every thread of asyncio.to_thread would
            # see its own empty database; the store serializes access to it.
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        elif not database.startswith("file:"):
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the folder of the {what} {shown}: {exc.strerror}"
                ) from None
    try:
        return create_engine(url, **kwargs), shown
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"cannot use the {what} URL {shown}: {exc}") from None


class RegistryDatabase:
    """One store's connection to the registry database. Synchronous and thread-safe
    (an in-memory SQLite database, one shared connection, is used under a lock)."""

    def __init__(self, database_url: str, what: str) -> None:
        self.what = what
        self.engine, self.shown_url = create_registry_engine(database_url, what)
        self._lock: contextlib.AbstractContextManager[object] = (
            threading.Lock()
            if isinstance(self.engine.pool, StaticPool)
            else contextlib.nullcontext()
        )
        with self.opening():
            # Alembic's migrations create or upgrade the tables, once, under a lock,
            # so gateways starting together do not race.
            migrations.upgrade(self.engine)

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Map a failure while opening to one line naming the registry; the engine is
        released."""
        try:
            yield
        except DATABASE_ERRORS as exc:
            self.engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ConfigError(f"cannot open the {self.what} at {self.shown_url}: {reason}") from exc

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        """A session under the store's lock. What it commits does not move the
        registry's revision: reads, and the database's own settings (the pepper)."""
        with self._lock, Session(self.engine) as session:
            yield session

    @contextlib.contextmanager
    def changing(self, revision: type[RevisionRow]) -> Iterator[Session]:
        """A write transaction that starts by bumping the registry's revision (taking
        its write lock). Whatever the body does not commit is rolled back, the bump
        included."""
        with self._lock, Session(self.engine, expire_on_commit=False) as session:
            session.execute(
                update(revision)
                .where(col(revision.id) == REVISION_ID)
                .values(value=col(revision.value) + 1)
            )
            yield session

    def revision(self, revision: type[RevisionRow]) -> int:
        """The registry's revision: a number that moves with every change."""
        with self.reading() as session:
            row = session.get(revision, REVISION_ID)
            return row.value if row is not None else 0
