"""Where sources and partner clients are defined and kept: a source's definition
and its validation (``definition``: the common settings, each protocol's own
through its ``options`` model in ``sources.adapters``), the TOML config file
(``config_file``), the source registry (``store``) and the partner registry
(``partners``) in one database made by the Alembic ``migrations``, and the
``watcher`` that keeps a running pool in step with the registry and the file.

May import the contract and ``sources.adapters``; never ``pool`` or ``search``
(the watcher takes any pool with an async ``sync``).
"""
