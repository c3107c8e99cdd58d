"""Where sources and partner clients are defined and kept: a source's definition
and its validation (``definition``), the TOML config file (``config_file``), the
source registry (``store``) and the partner registry (``partners``) in one
database, made by the Alembic ``migrations``.

May import the contract and ``sources.adapters``; never ``pool`` or ``search``.
"""
