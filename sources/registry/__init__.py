"""Where sources and partner clients are defined and kept.

- ``definition``: a source's definition and its validation (the common settings;
  each protocol's own through its ``options`` model in ``sources.adapters``);
  ``config_file``: the TOML file of sources;
- ``database``: the plumbing both registries share (engine, lock, migrations run
  when opened, write transactions that bump a registry's revision); ``tables``:
  their rows, as SQLModel tables, made by the Alembic ``migrations``;
- ``store``: the source registry; ``partners``: the partner registry, over the
  records of ``clients`` (clients, key hashes, trusted documents);
- ``watcher``: keeps a running pool in step with the registry and the file.

May import the contract and ``sources.adapters``; never ``pool`` or ``search``
(the watcher takes any pool with an async ``sync``).
"""
