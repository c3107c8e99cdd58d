"""Partners' webhook alerts and their pending deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_alert",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column(
            "client_name",
            sa.String(length=63),
            sa.ForeignKey("partner_client.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=False),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        _when("paused_at"),
        sa.Column("failures", sa.Integer(), nullable=False),
        _when("retry_at"),
        _when("last_attempt_at"),
        _when("last_success_at"),
        sa.Column("last_outcome", sa.String(length=200), nullable=True),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
    )
    op.create_index("ix_webhook_alert_client_name", "webhook_alert", ["client_name"])
    op.create_index("ix_webhook_alert_expires_at", "webhook_alert", ["expires_at"])
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column(
            "alert_id",
            sa.String(length=40),
            sa.ForeignKey("webhook_alert.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("payload", sa.Text(), nullable=False),
        _when("created_at", nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
    )
    op.create_index("ix_webhook_delivery_alert_id", "webhook_delivery", ["alert_id"])
    op.create_index("ix_webhook_delivery_created_at", "webhook_delivery", ["created_at"])


def downgrade() -> None:
    op.drop_table("webhook_delivery")
    op.drop_table("webhook_alert")
