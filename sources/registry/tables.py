"""The registry database's tables, as SQLModel rows: one persistence style for both
registries (sources, and partner clients with their documents).

Alembic's revisions (``migrations/versions/``) create them; a test compares the
migrated database with :data:`TABLES`, so the two cannot drift. Each registry has a
revision row that every change bumps in the same transaction: gateways poll it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Table, Text, false
from sqlmodel import Field, SQLModel

__all__ = [
    "REVISION_ID",
    "TABLES",
    "ClientRow",
    "DocumentRow",
    "PartnerRevisionRow",
    "RevisionRow",
    "SettingRow",
    "SourceRevisionRow",
    "SourceRow",
    "WebhookAlertRow",
    "WebhookDeliveryRow",
]

# The id of each registry's one revision row.
REVISION_ID = 1


class SourceRow(SQLModel, table=True):
    """A booking source (``sources.registry.store``)."""

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


class RevisionRow(SQLModel):
    """A registry's one revision row (``REVISION_ID``): bumped by every change."""

    id: int = Field(primary_key=True)
    value: int = 0


class SourceRevisionRow(RevisionRow, table=True):
    __tablename__ = "source_registry_revision"


class SettingRow(SQLModel, table=True):
    """A gateway-wide setting kept in the database (the generated key pepper)."""

    __tablename__ = "gateway_setting"

    name: str = Field(primary_key=True, max_length=63)
    value: str = Field(sa_type=Text)


class ClientRow(SQLModel, table=True):
    """A partner client: its key's hash only, never the key."""

    __tablename__ = "partner_client"

    name: str = Field(primary_key=True, max_length=63)
    key_hash: str = Field(max_length=64, unique=True)
    pepper_id: str = Field(max_length=16)
    persisted_only: bool
    log_only: bool
    allow_introspection: bool
    # May see what is for operators only (problem samples, upstream diagnostics).
    operator: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    rate_limit_rps: float | None = None
    # Its own cap on open subscriptions (None: the gateway's per-key default).
    max_subscriptions: int | None = None
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class DocumentRow(SQLModel, table=True):
    """A trusted document of one client."""

    __tablename__ = "partner_document"

    client_name: str = Field(
        primary_key=True, max_length=63, foreign_key="partner_client.name", ondelete="CASCADE"
    )
    document_id: str = Field(primary_key=True, max_length=256)
    body: str = Field(sa_type=Text)
    body_sha256: str = Field(max_length=64)
    operation_name: str | None = Field(default=None, max_length=256)
    operation_type: str = Field(max_length=16)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class PartnerRevisionRow(RevisionRow, table=True):
    __tablename__ = "partner_registry_revision"


class WebhookAlertRow(SQLModel, table=True):
    """A partner's webhook alert (``sources.registry.webhooks``): its filter (the point
    rounded to about 1 km), its callback URL and its delivery state; deleted at expiry.
    Its signing secret is never stored (``sources.webhooks.signing``)."""

    __tablename__ = "webhook_alert"

    id: str = Field(primary_key=True, max_length=40)
    client_name: str = Field(
        index=True, max_length=63, foreign_key="partner_client.name", ondelete="CASCADE"
    )
    filter: dict[str, Any] = Field(sa_type=JSON)
    callback_url: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(index=True, sa_type=DateTime(timezone=True))
    paused_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Failed attempts since the last success; the alert is paused past a limit.
    failures: int = 0
    # No delivery of this alert is attempted before then (its backoff after a failure).
    retry_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_attempt_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_success_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # The last attempt's outcome: an HTTP status, or a short reason ("timeout").
    last_outcome: str | None = Field(default=None, max_length=200)
    delivered: int = 0
    # Pending deliveries dropped after 24 h without success.
    dropped: int = 0


class WebhookDeliveryRow(SQLModel, table=True):
    """An event to deliver to a webhook alert's callback, kept until it is delivered
    (at least once) or 24 h old. ``id`` is the ``webhook-id`` every attempt carries."""

    __tablename__ = "webhook_delivery"

    id: str = Field(primary_key=True, max_length=40)
    alert_id: str = Field(
        index=True, max_length=40, foreign_key="webhook_alert.id", ondelete="CASCADE"
    )
    payload: str = Field(sa_type=Text)
    created_at: datetime = Field(index=True, sa_type=DateTime(timezone=True))
    attempts: int = 0


TABLES: tuple[Table, ...] = tuple(
    model.__table__  # type: ignore[union-attr]
    for model in (
        SourceRow,
        SourceRevisionRow,
        SettingRow,
        ClientRow,
        DocumentRow,
        PartnerRevisionRow,
        WebhookAlertRow,
        WebhookDeliveryRow,
    )
)
