"""Operator clients: a partner key that may see what is for operators only (a source
problem's samples and upstream diagnostics), in production too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on SQLite and PostgreSQL alike (sa.false() renders 0 or false):
    # batch mode would rebuild the table on SQLite, and dropping the old one deletes
    # every client's documents when foreign keys are on.
    op.add_column(
        "partner_client",
        sa.Column("operator", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place too.
    op.drop_column("partner_client", "operator")
