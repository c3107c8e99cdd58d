"""A partner client's own cap on open subscriptions (slot alerts), instead of the
gateway's per-key default.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable: the default cap), as 0003: batch mode would rebuild
    # the table on SQLite and lose the clients' documents.
    op.add_column("partner_client", sa.Column("max_subscriptions", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("partner_client", "max_subscriptions")
