"""The partner registry: clients with their API keys, and their trusted documents.

It lives in the registry database next to the booking sources, through the same
plumbing (``sources.registry.database``) and the same kind of rows
(``sources.registry.tables``); opening the store upgrades the database.

    with PartnerStore("sqlite:///data/passerelle.sqlite3") as store:
        client, key = store.create_client("rendezvous-app", persisted_only=True)
        store.push_documents("rendezvous-app", read_manifest(Path("manifest.json")))

A key is shown once, by ``create_client``, and stored only as its hash
(``sources.registry.clients``). The pepper comes from ``PASSERELLE_KEY_PEPPER``
when set (production: then a copy of the database alone cannot be used to check
guessed keys); otherwise one is generated once and kept in the database's
``gateway_setting`` table.

Every change bumps ``partner_registry_revision`` in the same transaction; a
gateway polls that one row and reloads its snapshot when it moves.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from sources.errors import ConfigError
from sources.registry.clients import (
    KEY_PEPPER_ENV,
    KEY_PREFIX,
    MIN_PEPPER_LENGTH,
    Client,
    Document,
    ManifestDocument,
    PushSummary,
    Snapshot,
    key_hash,
    pepper_id,
    sha256_hex,
    validate_client_name,
    validate_max_subscriptions,
    validate_rate_limit,
)
from sources.registry.database import RegistryDatabase
from sources.registry.tables import (
    REVISION_ID,
    ClientRow,
    DocumentRow,
    PartnerRevisionRow,
    SettingRow,
)

__all__ = [
    "KEY_PEPPER_ENV",
    "KEY_PREFIX",
    "Client",
    "Document",
    "ManifestDocument",
    "PartnerStore",
    "PushSummary",
    "Snapshot",
    "sha256_hex",
    "validate_client_name",
    "validate_max_subscriptions",
    "validate_rate_limit",
]

_PEPPER_SETTING = "key_pepper"
_CLIENT_OPTIONS = frozenset(
    {
        "persisted_only",
        "log_only",
        "allow_introspection",
        "operator",
        "rate_limit_rps",
        "max_subscriptions",
    }
)


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
        self._database = RegistryDatabase(database_url, "partner registry")
        with self._database.opening():
            self._pepper = pepper.encode() if pepper is not None else self._stored_pepper()
        self.pepper_from_environment = pepper is not None
        self.pepper_id = pepper_id(self._pepper)

    def close(self) -> None:
        self._database.close()

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
        operator: bool = False,
        rate_limit_rps: float | None = None,
        max_subscriptions: int | None = None,
    ) -> tuple[Client, str]:
        """A new client and its key (shown once: only its hash is stored).

        ``log_only`` implies ``persisted_only``: it reports what that would refuse."""
        client = Client(
            name=validate_client_name(name),
            persisted_only=persisted_only or log_only,
            log_only=log_only,
            allow_introspection=allow_introspection,
            operator=operator,
            rate_limit_rps=validate_rate_limit(rate_limit_rps),
            max_subscriptions=validate_max_subscriptions(max_subscriptions),
        )
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ClientRow(
            name=client.name,
            key_hash=key_hash(self._pepper, key),
            pepper_id=self.pepper_id,
            persisted_only=client.persisted_only,
            log_only=client.log_only,
            allow_introspection=client.allow_introspection,
            operator=client.operator,
            rate_limit_rps=client.rate_limit_rps,
            max_subscriptions=client.max_subscriptions,
            created_at=client.created_at,
            revoked_at=None,
        )
        with self._database.changing(PartnerRevisionRow) as session:
            existing = session.get(ClientRow, name)
            if existing is not None:
                state = (
                    f"revoked {existing.revoked_at:%Y-%m-%d}" if existing.revoked_at else "active"
                )
                raise ConfigError(f"client {name!r} already exists ({state}); pick another name")
            session.add(row)
            session.commit()
        return _client(row), key

    def update_client(self, name: str, **changes: Any) -> Client:
        """Change a client's options (``persisted_only``, ``log_only``,
        ``allow_introspection``, ``operator``, ``rate_limit_rps``, ``max_subscriptions``);
        its key stays."""
        unknown = set(changes) - _CLIENT_OPTIONS
        if unknown:
            raise ConfigError(f"unknown client options: {', '.join(sorted(unknown))}")
        if "rate_limit_rps" in changes:
            validate_rate_limit(changes["rate_limit_rps"])
        if "max_subscriptions" in changes:
            validate_max_subscriptions(changes["max_subscriptions"])
        if changes.get("log_only"):
            changes["persisted_only"] = True
        elif changes.get("persisted_only") is False:
            changes["log_only"] = False
        with self._database.changing(PartnerRevisionRow) as session:
            row = _client_row(session, name)
            if changes:
                row.sqlmodel_update(changes)
                session.add(row)
                session.commit()
            return _client(row)

    def revoke_client(self, name: str) -> bool:
        """Revoke a client's key for good; False if it already was."""
        with self._database.changing(PartnerRevisionRow) as session:
            row = _client_row(session, name)
            if row.revoked_at is not None:
                return False
            row.revoked_at = datetime.now(UTC)
            session.add(row)
            session.commit()
            return True

    def clients(self) -> list[Client]:
        """Every client, revoked or not, by name."""
        with self._database.reading() as session:
            rows = session.exec(select(ClientRow).order_by(col(ClientRow.name))).all()
            return [_client(row) for row in rows]

    def client(self, name: str) -> Client:
        with self._database.reading() as session:
            return _client(_client_row(session, name))

    # -- documents ----------------------------------------------------------------------

    def push_documents(
        self, client_name: str, documents: Iterable[ManifestDocument]
    ) -> PushSummary:
        """Register checked documents for a client (``edge.documents.trusted``), all or
        nothing. A document already registered with the same text is left as it is;
        an id already registered with another text is refused."""
        wanted = list(documents)
        now = datetime.now(UTC)
        added: list[str] = []
        unchanged: list[str] = []
        with self._database.changing(PartnerRevisionRow) as session:
            if _client_row(session, client_name).revoked_at is not None:
                raise ConfigError(f"client {client_name!r} is revoked")
            existing = {
                document_id: body_sha256
                for document_id, body_sha256 in session.exec(
                    select(DocumentRow.document_id, DocumentRow.body_sha256).where(
                        col(DocumentRow.client_name) == client_name
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
            for document in wanted:
                if document.id in existing:
                    unchanged.append(document.id)
                    continue
                added.append(document.id)
                session.add(
                    DocumentRow(
                        client_name=client_name,
                        document_id=document.id,
                        body=document.body,
                        body_sha256=document.body_sha256,
                        operation_name=document.operation_name,
                        operation_type=document.operation_type,
                        created_at=now,
                    )
                )
            if added:
                session.commit()
        return PushSummary(tuple(added), tuple(unchanged))

    def documents(self, client_name: str) -> list[Document]:
        """A client's documents, by operation name then id."""
        with self._database.reading() as session:
            _client_row(session, client_name)
            rows = session.exec(
                select(DocumentRow)
                .where(col(DocumentRow.client_name) == client_name)
                .order_by(col(DocumentRow.operation_name), col(DocumentRow.document_id))
            ).all()
            return [_document(row) for row in rows]

    # -- what a gateway reads ---------------------------------------------------------

    def revision(self) -> int:
        """A number that moves with every change; cheap to poll."""
        return self._database.revision(PartnerRevisionRow)

    def snapshot(self) -> Snapshot:
        """Every client and document, read in one transaction."""
        with self._database.reading() as session, session.begin():
            row = session.get(PartnerRevisionRow, REVISION_ID)
            revision = row.value if row is not None else 0
            clients = [_client(row) for row in session.exec(select(ClientRow)).all()]
            documents = [_document(row) for row in session.exec(select(DocumentRow)).all()]
        by_id: dict[str, dict[str, Document]] = {}
        by_body: dict[str, dict[str, Document]] = {}
        for document in documents:
            by_id.setdefault(document.client_name, {})[document.id] = document
            by_body.setdefault(document.client_name, {})[document.body_sha256] = document
        return Snapshot(
            revision=revision,
            pepper=self._pepper,
            pepper_id=self.pepper_id,
            clients_by_key_hash={c.key_hash: c for c in clients},
            documents=by_id,
            documents_by_body=by_body,
        )

    # -- internals ----------------------------------------------------------------------

    def _stored_pepper(self) -> bytes:
        """The database's own pepper, made the first time one is needed."""
        try:
            with self._database.reading() as session:
                setting = session.get(SettingRow, _PEPPER_SETTING)
                if setting is None:
                    setting = SettingRow(name=_PEPPER_SETTING, value=secrets.token_hex(32))
                    session.add(setting)
                    session.commit()
                return setting.value.encode()
        except IntegrityError:
            # Another process made it at the same moment: use theirs.
            with self._database.reading() as session:
                made = session.get(SettingRow, _PEPPER_SETTING)
                assert made is not None
                return made.value.encode()


def _client_row(session: Session, name: str) -> ClientRow:
    row = session.get(ClientRow, name)
    if row is None:
        raise ConfigError(f"no client named {name!r}")
    return row


def _aware(value: datetime) -> datetime:
    # SQLite keeps no offset: what it returns was written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _client(row: ClientRow) -> Client:
    return Client(
        name=row.name,
        persisted_only=row.persisted_only,
        log_only=row.log_only,
        allow_introspection=row.allow_introspection,
        operator=row.operator,
        rate_limit_rps=row.rate_limit_rps,
        max_subscriptions=row.max_subscriptions,
        created_at=_aware(row.created_at),
        revoked_at=_aware(row.revoked_at) if row.revoked_at is not None else None,
        key_hash=row.key_hash,
        pepper_id=row.pepper_id,
    )


def _document(row: DocumentRow) -> Document:
    return Document(
        client_name=row.client_name,
        id=row.document_id,
        body=row.body,
        body_sha256=row.body_sha256,
        operation_name=row.operation_name,
        operation_type=row.operation_type,
        created_at=_aware(row.created_at),
    )
