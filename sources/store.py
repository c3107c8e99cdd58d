"""The registry of booking sources, stored with sqlmodel in SQLite or any SQLAlchemy database.

Sources are added, listed, disabled and removed at run time, by the CLI or by a
config file (``sources.config_file``), without code changes. A running gateway
polls ``revision()``, one tiny row read, about once a second, and rebuilds its
sources from ``configs(os.environ)`` when the number moves.

    store = SourceStore("sqlite:///data/passerelle.sqlite3")
    store.add(SourceDefinition(id="clinique-a", protocol=SourceProtocol.FHIR_R4,
                               url="https://fhir.clinique-a.example/r4",
                               credentials_env="CLINIQUE_A_TOKEN"))
    seen = store.revision()
    ...
    if store.revision() != seen:
        configs = store.configs(os.environ)

Secrets never reach the database: a row holds the *name* of the environment
variable (``credentials_env``), resolved by ``configs`` each time it is called.

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
import difflib
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import JSON, Engine, func, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, Session, SQLModel, col, create_engine, select
from sqlmodel.sql.expression import SelectOfScalar

from sources.base import SourceConfig
from sources.errors import ConfigError
from sources.records import SourceProtocol

__all__ = [
    "CLI_ORIGIN",
    "DEFAULT_DATABASE_URL",
    "SOURCE_KEYS",
    "ApplySummary",
    "SourceDefinition",
    "SourceStore",
    "config_origin",
    "parse_definition",
    "validate_definition",
]

DEFAULT_DATABASE_URL = "sqlite:///data/passerelle.sqlite3"
"""Used when ``PASSERELLE_DATABASE_URL`` is unset; relative to the working directory."""

CLI_ORIGIN = "cli"
DEFAULT_TIMEOUT_S = 2.0
MAX_TIMEOUT_S = 60.0

SOURCE_KEYS = (
    "credentials_env",
    "enabled",
    "id",
    "name",
    "options",
    "protocol",
    "timeout_s",
    "url",
)
"""Every key a source definition may hold (a config file's ``[[sources]]`` table)."""

_REQUIRED_KEYS = ("id", "protocol", "url")
_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SMART_MANIFEST_SUFFIX = "$bulk-publish"
# User info in a URL is a secret: refused, and masked in messages. The mask is
# wider than the refusal: a password holding '/' reads as host, bad port, path.
_USERINFO_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^@/?#]*@")
_MASK_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^@]*@")

_Fail = Callable[[str], ConfigError]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDefinition:
    """A booking source as the registry stores it: no secret, only the name of
    the environment variable holding it. An empty ``name`` defaults to ``id``.

        SourceDefinition(id="clinique-a", protocol=SourceProtocol.REST_JSON,
                         url="https://api.clinique-a.example/v1",
                         credentials_env="CLINIQUE_A_API_KEY")
    """

    id: str
    name: str = ""
    protocol: SourceProtocol
    url: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    enabled: bool = True
    credentials_env: str | None = None
    # Protocol-specific settings, validated by the adapter that reads them.
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)


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


# -- validation: the one place both the CLI and the config file go through ---------


def parse_definition(raw: Mapping[str, object], *, where: str | None = None) -> SourceDefinition:
    """Check untyped input (a TOML table, CLI arguments) and build a definition.

    Raises ``ConfigError`` with a one-line message prefixed by ``where``
    (default ``source '<id>'``) that says what to fix.
    """
    raw_id = raw.get("id")
    if where is None:
        where = f"source {raw_id!r}" if isinstance(raw_id, str) and raw_id else "source"

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {problem}")

    unknown = sorted(str(key) for key in raw if key not in SOURCE_KEYS)
    if unknown:
        raise fail(_unknown_key_problem(unknown[0]))
    missing = [key for key in _REQUIRED_KEYS if raw.get(key) is None]
    if missing:
        raise fail(f"missing required key {missing[0]!r} (required: {', '.join(_REQUIRED_KEYS)})")

    source_id = raw["id"]
    if not isinstance(source_id, str) or not _ID_RE.fullmatch(source_id):
        raise fail(
            "id must be 1 to 63 characters of lowercase letters, digits, '_' or '-', "
            f"starting with a letter or digit, got {source_id!r}"
        )

    protocol = _parse_protocol(raw["protocol"], fail)
    url = _parse_url(raw["url"], protocol, fail)

    name = raw.get("name", source_id)
    if not isinstance(name, str) or not name.strip():
        raise fail(f"name must be a non-empty string, got {name!r}")

    timeout_s = raw.get("timeout_s", DEFAULT_TIMEOUT_S)
    if (
        not isinstance(timeout_s, int | float)
        or isinstance(timeout_s, bool)
        or not math.isfinite(timeout_s)
        or not 0 < timeout_s <= MAX_TIMEOUT_S
    ):
        raise fail(f"timeout_s must be a number between 0 and {MAX_TIMEOUT_S:g}, got {timeout_s!r}")

    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail(f"enabled must be true or false, got {enabled!r}")

    credentials_env = raw.get("credentials_env")
    if credentials_env is not None and (
        not isinstance(credentials_env, str) or not _ENV_NAME_RE.fullmatch(credentials_env)
    ):
        # A value that is no variable name is most likely the secret itself:
        # do not echo it into a log line.
        raise fail(
            "credentials_env must be the NAME of an environment variable "
            "(letters, digits and '_'), not the secret itself"
        )

    options = _parse_options(raw.get("options", {}), fail)
    return SourceDefinition(
        id=source_id,
        name=name,
        protocol=protocol,
        url=url,
        timeout_s=float(timeout_s),
        enabled=enabled,
        credentials_env=credentials_env,
        options=options,
    )


def validate_definition(definition: SourceDefinition) -> SourceDefinition:
    """Check a definition built in code; returns it normalized (name, float timeout,
    options as plain JSON values). Same rules and messages as ``parse_definition``."""
    raw: dict[str, object] = {
        "id": definition.id,
        "protocol": definition.protocol,
        "url": definition.url,
        "timeout_s": definition.timeout_s,
        "enabled": definition.enabled,
        "credentials_env": definition.credentials_env,
        "options": definition.options,
    }
    if definition.name:
        raw["name"] = definition.name
    return parse_definition(raw)


def _unknown_key_problem(key: str) -> str:
    hint = difflib.get_close_matches(key, SOURCE_KEYS, n=1)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"unknown key {key!r} (allowed: {', '.join(SOURCE_KEYS)}){did_you_mean}"


def _parse_protocol(value: object, fail: _Fail) -> SourceProtocol:
    if isinstance(value, SourceProtocol):
        return value
    try:
        return SourceProtocol(value)
    except ValueError:
        known = ", ".join(p.value for p in SourceProtocol)
        raise fail(f"protocol must be one of {known}, got {value!r}") from None


def _parse_url(value: object, protocol: SourceProtocol, fail: _Fail) -> str:
    if not isinstance(value, str):
        raise fail(f"url must be a string, got {value!r}")
    shown = _MASK_RE.sub(r"\1***@", value)
    if _USERINFO_RE.match(value):
        raise fail(
            "url must not contain credentials; name the environment variable "
            f"holding the secret in credentials_env, got {shown!r}"
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
        raise fail(f"url must be an http:// or https:// URL with a host, got {shown!r}")
    if protocol is SourceProtocol.SMART_SCHEDULING_LINKS and not parts.path.endswith(
        _SMART_MANIFEST_SUFFIX
    ):
        raise fail(
            f"url of a SMART_SCHEDULING_LINKS source must end with "
            f"{_SMART_MANIFEST_SUFFIX!r} (the manifest), got {shown!r}"
        )
    return value


def _parse_options(value: object, fail: _Fail) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(f"options must be a table of settings, got {value!r}")
    try:
        # Round-trip through JSON: what is compared and stored is exactly what
        # the JSON column gives back (no tuples, no NaN PostgreSQL would refuse).
        normalized = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise fail(
            f"options must hold only strings, numbers, booleans, arrays and tables ({exc})"
        ) from None
    if not isinstance(normalized, dict):  # pragma: no cover - dict in, dict out
        raise fail("options must be a table of settings")
    return normalized


# -- the tables ---------------------------------------------------------------------


class _SourceRow(SQLModel, table=True):
    __tablename__ = "source_registry"

    id: str = Field(primary_key=True, max_length=63)
    # Registry order: the order sources were first added; updates keep it.
    position: int = Field(index=True)
    name: str
    # The enum's value, not a database enum: a new protocol needs no migration.
    protocol: str = Field(max_length=64)
    url: str
    timeout_s: float
    enabled: bool
    credentials_env: str | None = Field(default=None)
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    origin: str


class _RevisionRow(SQLModel, table=True):
    __tablename__ = "source_registry_revision"

    id: int = Field(primary_key=True)
    value: int = 0


_REVISION_ID = 1
_TABLES = [_SourceRow.__table__, _RevisionRow.__table__]  # type: ignore[attr-defined]


def _definition_from_row(row: _SourceRow) -> SourceDefinition:
    try:
        protocol = SourceProtocol(row.protocol)
    except ValueError:
        raise ConfigError(
            f"source {row.id!r} in the registry has unknown protocol {row.protocol!r}; "
            "remove it or upgrade the gateway"
        ) from None
    return SourceDefinition(
        id=row.id,
        name=row.name,
        protocol=protocol,
        url=row.url,
        timeout_s=row.timeout_s,
        enabled=row.enabled,
        credentials_env=row.credentials_env,
        options=dict(row.options),
    )


def _row_values(definition: SourceDefinition, origin: str) -> dict[str, Any]:
    return {
        "name": definition.name,
        "protocol": definition.protocol.value,
        "url": definition.url,
        "timeout_s": definition.timeout_s,
        "enabled": definition.enabled,
        "credentials_env": definition.credentials_env,
        "options": dict(definition.options),
        "origin": origin,
    }


# -- the store ------------------------------------------------------------------------


class SourceStore:
    """The source registry. Methods are synchronous and thread-safe: call them from
    async code through ``asyncio.to_thread``. Creates its tables if missing.

        with SourceStore(os.environ.get("PASSERELLE_DATABASE_URL", DEFAULT_DATABASE_URL)) as s:
            s.set_enabled("clinique-a", False)
    """

    def __init__(self, database_url: str = DEFAULT_DATABASE_URL) -> None:
        self._engine, shown_url = _create_engine(database_url)
        self._lock: contextlib.AbstractContextManager[object] = (
            threading.Lock()
            if isinstance(self._engine.pool, StaticPool)
            else contextlib.nullcontext()
        )
        try:
            self._create_schema()
        except (OperationalError, ProgrammingError) as exc:
            self._engine.dispose()
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise ConfigError(f"cannot open the source registry at {shown_url}: {reason}") from exc

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SourceStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------

    def revision(self) -> int:
        """A number that changes with every change to the sources; cheap to poll."""
        with self._lock, Session(self._engine) as session:
            row = session.get(_RevisionRow, _REVISION_ID)
            return row.value if row is not None else 0

    def list(self) -> builtins.list[SourceDefinition]:
        """Every source, enabled or not, in registry order."""
        return [_definition_from_row(row) for row in self._rows()]

    def get(self, source_id: str) -> SourceDefinition:
        """One source; ``ConfigError`` if there is none with that id."""
        with self._lock, Session(self._engine) as session:
            row = session.get(_SourceRow, source_id)
            if row is None:
                raise _unknown(source_id)
            return _definition_from_row(row)

    def origins(self) -> dict[str, str]:
        """Source id -> origin (``"cli"`` or ``"config:<path>"``), e.g. for a listing."""
        return {row.id: row.origin for row in self._rows()}

    def configs(self, environ: Mapping[str, str]) -> builtins.list[SourceConfig]:
        """Every source, enabled or not, in registry order, with its credentials read
        from ``environ``. An unset or empty variable gives ``credentials=None``."""
        configs = []
        for definition in self.list():
            secret = environ.get(definition.credentials_env) if definition.credentials_env else None
            configs.append(
                SourceConfig(
                    id=definition.id,
                    name=definition.name,
                    protocol=definition.protocol,
                    url=definition.url,
                    timeout_s=definition.timeout_s,
                    enabled=definition.enabled,
                    credentials=secret or None,
                    options=MappingProxyType(dict(definition.options)),
                )
            )
        return configs

    # -- changing -------------------------------------------------------------------

    def add(self, definition: SourceDefinition) -> SourceDefinition:
        """Add a source at the end of the registry (origin ``"cli"``); returns it
        normalized. ``ConfigError`` if invalid or if the id exists."""
        definition = validate_definition(definition)
        with self._change() as session:
            existing = session.get(_SourceRow, definition.id)
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
            row = session.get(_SourceRow, source_id)
            if row is None:
                raise _unknown(source_id)
            if row.enabled != enabled:
                row.enabled = enabled
                session.commit()

    def remove(self, source_id: str) -> None:
        """Remove a source; ``ConfigError`` for an unknown id."""
        with self._change() as session:
            row = session.get(_SourceRow, source_id)
            if row is None:
                raise _unknown(source_id)
            session.delete(row)
            session.commit()

    def apply_config(self, definitions: Iterable[SourceDefinition], origin: str) -> ApplySummary:
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

    def _rows(self) -> builtins.list[_SourceRow]:
        with self._lock, Session(self._engine) as session:
            return builtins.list(session.exec(_in_registry_order()).all())

    @contextlib.contextmanager
    def _change(self) -> Iterator[Session]:
        """A write transaction that starts by bumping the revision (taking the
        registry's write lock). Whatever the body does not commit is rolled back,
        the bump included."""
        with self._lock, Session(self._engine, expire_on_commit=False) as session:
            session.execute(
                update(_RevisionRow)
                .where(col(_RevisionRow.id) == _REVISION_ID)
                .values(value=col(_RevisionRow.value) + 1)
            )
            yield session

    def _create_schema(self) -> None:
        for attempt in (1, 2):
            try:
                SQLModel.metadata.create_all(self._engine, tables=_TABLES)
                with Session(self._engine) as session:
                    if session.get(_RevisionRow, _REVISION_ID) is None:
                        session.add(_RevisionRow(id=_REVISION_ID, value=0))
                        session.commit()
                return
            except (IntegrityError, ProgrammingError):
                # Another process created the same tables or row at the same moment.
                if attempt == 2:
                    raise


def _create_engine(database_url: str) -> tuple[Engine, str]:
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            "the source registry URL is not a database URL "
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
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    try:
        return create_engine(url, **kwargs), shown
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"cannot use the source registry URL {shown}: {exc}") from None


def _in_registry_order() -> SelectOfScalar[_SourceRow]:
    return select(_SourceRow).order_by(col(_SourceRow.position), col(_SourceRow.id))


def _new_row(session: Session, definition: SourceDefinition, origin: str) -> _SourceRow:
    last = session.exec(select(func.max(_SourceRow.position))).one()
    position = (last or 0) + 1
    return _SourceRow(id=definition.id, position=position, **_row_values(definition, origin))


def _commit(session: Session, source_id: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        # Only reachable if a writer bypassed the revision lock.
        raise ConfigError(f"source {source_id!r} already exists") from None


def _unknown(source_id: str) -> ConfigError:
    return ConfigError(f"no source with id {source_id!r} in the registry")
