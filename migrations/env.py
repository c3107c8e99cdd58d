"""Alembic's environment: migrate the connection handed over by ``migrations.upgrade``,
else the registry at ``$PASSERELLE_DATABASE_URL`` (or the default one)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

connection = context.config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(
        os.environ.get("PASSERELLE_DATABASE_URL") or "sqlite:///data/passerelle.sqlite3"
    )
    try:
        with engine.connect() as connection:
            context.configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
