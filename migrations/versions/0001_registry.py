"""The booking-source registry, as ``sources/registry/store.py`` made it with ``create_all``.

A database that predates migrations holds exactly these tables and is stamped
with this revision instead of running it.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_registry",
        sa.Column("id", sa.String(length=63), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("protocol", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("credentials_env", sa.String(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
    )
    op.create_index("ix_source_registry_position", "source_registry", ["position"])
    revision_table = op.create_table(
        "source_registry_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    # The row SourceStore bumps on every change (it would add it itself otherwise).
    op.bulk_insert(revision_table, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("source_registry_revision")
    op.drop_index("ix_source_registry_position", table_name="source_registry")
    op.drop_table("source_registry")
