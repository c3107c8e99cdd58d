"""The partner registry: clients with their API keys, and their trusted documents.

It lives in the registry database next to the booking sources (tables made by
``migrations``; opening the store upgrades the database).

    with PartnerStore("sqlite:///data/passerelle.sqlite3") as store:
        client, key = store.create_client("rendezvous-app", persisted_only=True)
        store.push_documents("rendezvous-app", read_manifest(Path("manifest.json")))

A key is shown once, by ``create_client``, and stored only as
HMAC-SHA256(pepper, key): a fast keyed hash, since it is checked on every
request, and enough for 256-bit random keys (no dictionary to guess from). The
pepper comes from ``PASSERELLE_KEY_PEPPER`` when set (production: then a copy
of the database alone cannot be used to check guessed keys); otherwise one is
generated once and kept in the database's ``gateway_setting`` table. Every
client records which pepper made its hash (``pepper_id``, a fingerprint), so a
gateway started with another pepper says why the keys no longer work.

Every change bumps ``partner_registry_revision`` in the same transaction; a
gateway polls that one row and reloads its snapshot when it moves.

It stays one module past 400 lines because :class:`PartnerStore` is one set of
transactions over one database, each bumping the same revision row; its records are
small frozen dataclasses beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import (
    IntegrityError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.pool import StaticPool

import migrations
from sources.errors import ConfigError
from sources.registry.store import create_registry_engine

__all__ = [
    "KEY_PEPPER_ENV",
    "KEY_PREFIX",
    "Client",
    "Document",
    "ManifestDocument",
    "PartnerStore",
    "PushSummary",
    "Snapshot",
    "metadata",
    "sha256_hex",
    "validate_client_name",
    "validate_rate_limit",
]

KEY_PEPPER_ENV = "PASSERELLE_KEY_PEPPER"
KEY_PREFIX = "psk_"
MIN_PEPPER_LENGTH = 32
_PEPPER_SETTING = "key_pepper"
_REVISION_ID = 1
# As source ids (sources/registry/definition.py): safe in logs, URLs and metric labels.
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

# -- the tables (created by migrations/versions/0002_partners.py; a test compares) ----

metadata = MetaData()

settings_table = Table(
    "gateway_setting",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("value", Text, nullable=False),
)
clients_table = Table(
    "partner_client",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("pepper_id", String(16), nullable=False),
    Column("persisted_only", Boolean, nullable=False),
    Column("log_only", Boolean, nullable=False),
    Column("allow_introspection", Boolean, nullable=False),
    Column("rate_limit_rps", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
documents_table = Table(
    "partner_document",
    metadata,
    Column(
        "client_name",
        String(63),
        ForeignKey("partner_client.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("document_id", String(256), primary_key=True),
    Column("body", Text, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("operation_name", String(256), nullable=True),
    Column("operation_type", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
revision_table = Table(
    "partner_registry_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", Integer, nullable=False),
)


# -- what the store returns --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestDocument:
    """One document of a manifest, checked: its id, text, and its (first) operation."""

    id: str
    body: str
    operation_name: str | None
    operation_type: str

    @property
    def body_sha256(self) -> str:
        return sha256_hex(self.body)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Client:
    """A partner client. Its key is never kept: only ``key_hash``."""

    name: str
    persisted_only: bool = False
    log_only: bool = False
    allow_introspection: bool = False
    rate_limit_rps: float | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    revoked_at: datetime | None = None
    key_hash: str = field(default="", repr=False)
    pepper_id: str = field(default="", repr=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def flags(self) -> tuple[str, ...]:
        """Its options as the command line spells them, e.g. ``("persisted-only",)``."""
        named = (
            ("persisted-only", self.persisted_only),
            ("log-only", self.log_only),
            ("allow-introspection", self.allow_introspection),
        )
        return tuple(name for name, on in named if on)


@dataclass(frozen=True, slots=True)
class Document:
    """A trusted document registered for one client."""

    client_name: str
    id: str
    body: str
    body_sha256: str
    operation_name: str | None
    operation_type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PushSummary:
    added: tuple[str, ...]
    unchanged: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a gateway checks requests against, read at one revision."""

    revision: int
    pepper: bytes = field(repr=False)
    pepper_id: str
    clients_by_key_hash: dict[str, Client]
    # client name -> document id -> document, and client name -> body SHA-256 -> document.
    documents: dict[str, dict[str, Document]]
    documents_by_body: dict[str, dict[str, Document]]

    def client_for_key(self, key: str) -> Client | None:
        """The client whose key this is (revoked or not), or None."""
        return self.clients_by_key_hash.get(_key_hash(self.pepper, key))


def validate_client_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            "a client name must be 1 to 63 characters of lowercase letters, digits, '_' or '-', "
            f"starting with a letter or digit, got {name!r}"
        )
    return name


MIN_RATE_LIMIT = 0.01  # one request every 100 s


def validate_rate_limit(value: float | None) -> float | None:
    if value is not None and not (MIN_RATE_LIMIT <= value < float("inf")):
        raise ConfigError(
            f"a rate limit must be a number of requests/s of at least {MIN_RATE_LIMIT}, "
            f"got {value!r}"
        )
    return value


def _key_hash(pepper: bytes, key: str) -> str:
    return hmac.new(pepper, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _pepper_id(pepper: bytes) -> str:
    return hmac.new(pepper, b"passerelle key pepper id", hashlib.sha256).hexdigest()[:16]


def _aware(value: datetime | None) -> datetime | None:
    # SQLite keeps no offset: what it returns was written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _client(row: Row[Any]) -> Client:
    created = _aware(row.created_at)
    assert created is not None
    return Client(
        name=row.name,
        persisted_only=row.persisted_only,
        log_only=row.log_only,
        allow_introspection=row.allow_introspection,
        rate_limit_rps=row.rate_limit_rps,
        created_at=created,
        revoked_at=_aware(row.revoked_at),
        key_hash=row.key_hash,
        pepper_id=row.pepper_id,
    )


def _document(row: Row[Any]) -> Document:
    created = _aware(row.created_at)
    assert created is not None
    return Document(
        client_name=row.client_name,
        id=row.document_id,
        body=row.body,
        body_sha256=row.body_sha256,
        operation_name=row.operation_name,
        operation_type=row.operation_type,
        created_at=created,
    )


# -- the store -----------------------------------------------------------------------


class PartnerStore:
    """Partner clients and their documents. Synchronous and thread-safe: call it from
    async code through ``asyncio.to_thread``. Upgrades the database when opened.

    ``pepper``: the value of ``PASSERELLE_KEY_PEPPER`` (at least 32 characters), or
    None to use the one kept in the database.
    """

    def __init__(self, database_url: str, *, pepper: str | None = None) -> None:
        if pepper is not None and len(pepper) < MIN_PEPPER_LENGTH:
            raise ConfigError(
                f"{KEY_PEPPER_ENV} must be at least {MIN_PEPPER_LENGTH} characters "
                "(e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        self._engine, shown_url = create_registry_engine(database_url, "partner registry")
        self._lock: contextlib.AbstractContextManager[object] = (
            threading.Lock()
            if isinstance(self._engine.pool, StaticPool)
            else contextlib.nullcontext()
        )
        try:
            migrations.upgrade(self._engine)
            self._pepper = pepper.encode() if pepper is not None else self._stored_pepper()
        except (OperationalError, ProgrammingError, RuntimeError) as exc:
            self._engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ConfigError(f"cannot open the partner registry at {shown_url}: {reason}") from exc
        self.pepper_from_environment = pepper is not None
        self.pepper_id = _pepper_id(self._pepper)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> PartnerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- clients ------------------------------------------------------------------------

    def create_client(
        self,
        name: str,
        *,
        persisted_only: bool = False,
        log_only: bool = False,
        allow_introspection: bool = False,
        rate_limit_rps: float | None = None,
    ) -> tuple[Client, str]:
        """A new client and its key (shown once: only its hash is stored).

        ``log_only`` implies ``persisted_only``: it reports what that would refuse."""
        client = Client(
            name=validate_client_name(name),
            persisted_only=persisted_only or log_only,
            log_only=log_only,
            allow_introspection=allow_introspection,
            rate_limit_rps=validate_rate_limit(rate_limit_rps),
        )
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._change() as connection:
            existing = self._client_row(connection, name)
            if existing is not None:
                state = (
                    f"revoked {existing.revoked_at:%Y-%m-%d}" if existing.revoked_at else "active"
                )
                raise ConfigError(f"client {name!r} already exists ({state}); pick another name")
            values = {
                "name": client.name,
                "key_hash": _key_hash(self._pepper, key),
                "pepper_id": self.pepper_id,
                "persisted_only": client.persisted_only,
                "log_only": client.log_only,
                "allow_introspection": client.allow_introspection,
                "rate_limit_rps": client.rate_limit_rps,
                "created_at": client.created_at,
                "revoked_at": None,
            }
            connection.execute(insert(clients_table).values(**values))
        return _client_from(values), key

    def update_client(self, name: str, **changes: Any) -> Client:
        """Change a client's options (``persisted_only``, ``log_only``,
        ``allow_introspection``, ``rate_limit_rps``); its key stays."""
        allowed = {"persisted_only", "log_only", "allow_introspection", "rate_limit_rps"}
        unknown = set(changes) - allowed
        if unknown:
            raise ConfigError(f"unknown client options: {', '.join(sorted(unknown))}")
        if "rate_limit_rps" in changes:
            validate_rate_limit(changes["rate_limit_rps"])
        if changes.get("log_only"):
            changes["persisted_only"] = True
        elif changes.get("persisted_only") is False:
            changes["log_only"] = False
        with self._change() as connection:
            row = self._client_row(connection, name)
            if row is None:
                raise _unknown(name)
            if changes:
                connection.execute(
                    update(clients_table).where(clients_table.c.name == name).values(**changes)
                )
            updated = self._client_row(connection, name)
            assert updated is not None
            return _client(updated)

    def revoke_client(self, name: str) -> bool:
        """Revoke a client's key for good; False if it already was."""
        with self._change() as connection:
            row = self._client_row(connection, name)
            if row is None:
                raise _unknown(name)
            if row.revoked_at is not None:
                return False
            connection.execute(
                update(clients_table)
                .where(clients_table.c.name == name)
                .values(revoked_at=datetime.now(UTC))
            )
            return True

    def clients(self) -> list[Client]:
        """Every client, revoked or not, by name."""
        with self._lock, self._engine.connect() as connection:
            rows = connection.execute(select(clients_table).order_by(clients_table.c.name))
            return [_client(row) for row in rows]

    def client(self, name: str) -> Client:
        with self._lock, self._engine.connect() as connection:
            row = self._client_row(connection, name)
        if row is None:
            raise _unknown(name)
        return _client(row)

    # -- documents ----------------------------------------------------------------------

    def push_documents(
        self, client_name: str, documents: Iterable[ManifestDocument]
    ) -> PushSummary:
        """Register checked documents for a client (``edge.partners_documents``), all or
        nothing. A document already registered with the same text is left as it is;
        an id already registered with another text is refused."""
        wanted = list(documents)
        now = datetime.now(UTC)
        added: list[str] = []
        unchanged: list[str] = []
        with self._change() as connection:
            row = self._client_row(connection, client_name)
            if row is None:
                raise _unknown(client_name)
            if row.revoked_at is not None:
                raise ConfigError(f"client {client_name!r} is revoked")
            existing = {
                r.document_id: r.body_sha256
                for r in connection.execute(
                    select(documents_table.c.document_id, documents_table.c.body_sha256).where(
                        documents_table.c.client_name == client_name
                    )
                )
            }
            clashes = [d.id for d in wanted if existing.get(d.id, d.body_sha256) != d.body_sha256]
            if clashes:
                raise ConfigError(
                    f"client {client_name!r} already has documents with the ids "
                    f"{', '.join(repr(i) for i in clashes[:5])} and other texts: "
                    "a document id must not be reused for another text"
                )
            rows = []
            for document in wanted:
                if document.id in existing:
                    unchanged.append(document.id)
                    continue
                added.append(document.id)
                rows.append(
                    {
                        "client_name": client_name,
                        "document_id": document.id,
                        "body": document.body,
                        "body_sha256": document.body_sha256,
                        "operation_name": document.operation_name,
                        "operation_type": document.operation_type,
                        "created_at": now,
                    }
                )
            if rows:
                connection.execute(insert(documents_table), rows)
        return PushSummary(tuple(added), tuple(unchanged))

    def documents(self, client_name: str) -> list[Document]:
        """A client's documents, by operation name then id."""
        with self._lock, self._engine.connect() as connection:
            if self._client_row(connection, client_name) is None:
                raise _unknown(client_name)
            rows = connection.execute(
                select(documents_table)
                .where(documents_table.c.client_name == client_name)
                .order_by(documents_table.c.operation_name, documents_table.c.document_id)
            )
            return [_document(row) for row in rows]

    # -- what a gateway reads ---------------------------------------------------------

    def revision(self) -> int:
        """A number that moves with every change; cheap to poll."""
        with self._lock, self._engine.connect() as connection:
            value = connection.execute(
                select(revision_table.c.value).where(revision_table.c.id == _REVISION_ID)
            ).scalar()
            return int(value or 0)

    def snapshot(self) -> Snapshot:
        """Every client and document, read in one transaction."""
        with self._lock, self._engine.connect() as connection, connection.begin():
            revision = connection.execute(
                select(revision_table.c.value).where(revision_table.c.id == _REVISION_ID)
            ).scalar()
            clients = [_client(row) for row in connection.execute(select(clients_table))]
            documents = [_document(row) for row in connection.execute(select(documents_table))]
        by_id: dict[str, dict[str, Document]] = {}
        by_body: dict[str, dict[str, Document]] = {}
        for document in documents:
            by_id.setdefault(document.client_name, {})[document.id] = document
            by_body.setdefault(document.client_name, {})[document.body_sha256] = document
        return Snapshot(
            revision=int(revision or 0),
            pepper=self._pepper,
            pepper_id=self.pepper_id,
            clients_by_key_hash={c.key_hash: c for c in clients},
            documents=by_id,
            documents_by_body=by_body,
        )

    # -- internals ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _change(self) -> Iterator[Connection]:
        """A write transaction that first bumps the revision (the registry's write lock);
        an exception rolls it all back."""
        with self._lock, self._engine.begin() as connection:
            connection.execute(
                update(revision_table)
                .where(revision_table.c.id == _REVISION_ID)
                .values(value=revision_table.c.value + 1)
            )
            yield connection

    @staticmethod
    def _client_row(connection: Connection, name: str) -> Row[Any] | None:
        return connection.execute(select(clients_table).where(clients_table.c.name == name)).first()

    def _stored_pepper(self) -> bytes:
        """The database's own pepper, made the first time one is needed."""
        query = select(settings_table.c.value).where(settings_table.c.name == _PEPPER_SETTING)
        with self._lock:
            try:
                with self._engine.begin() as connection:
                    value = connection.execute(query).scalar()
                    if value is None:
                        value = secrets.token_hex(32)
                        connection.execute(
                            insert(settings_table).values(name=_PEPPER_SETTING, value=value)
                        )
            except IntegrityError:
                # Another process made it at the same moment: use theirs.
                with self._engine.connect() as connection:
                    value = connection.execute(query).scalar_one()
        return str(value).encode()


def _client_from(values: dict[str, Any]) -> Client:
    return Client(**values)


def _unknown(name: str) -> ConfigError:
    return ConfigError(f"no client named {name!r}")
