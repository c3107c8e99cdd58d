"""Alembic revisions of the registry database, oldest first (``migrations`` runs them)."""
