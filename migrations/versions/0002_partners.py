"""Partner clients, their trusted documents, and the gateway's settings.

API keys are stored as keyed hashes (``sources/registry/partners.py``); the settings
table keeps the key pepper when ``PASSERELLE_KEY_PEPPER`` is unset.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_setting",
        sa.Column("name", sa.String(length=63), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "partner_client",
        sa.Column("name", sa.String(length=63), primary_key=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("pepper_id", sa.String(length=16), nullable=False),
        sa.Column("persisted_only", sa.Boolean(), nullable=False),
        sa.Column("log_only", sa.Boolean(), nullable=False),
        sa.Column("allow_introspection", sa.Boolean(), nullable=False),
        sa.Column("rate_limit_rps", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "partner_document",
        sa.Column(
            "client_name",
            sa.String(length=63),
            sa.ForeignKey("partner_client.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("document_id", sa.String(length=256), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("operation_name", sa.String(length=256), nullable=True),
        sa.Column("operation_type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    revision_table = op.create_table(
        "partner_registry_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("partner_registry_revision")
    op.drop_table("partner_document")
    op.drop_table("partner_client")
    op.drop_table("gateway_setting")
