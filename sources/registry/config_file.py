"""The TOML file that declares booking sources, and its validation.

    # sources.toml
    [[sources]]
    id = "clinique-a"
    name = "Clinique A"
    protocol = "REST_JSON"
    url = "https://api.clinique-a.example/v1"
    timeout_s = 3
    credentials_env = "CLINIQUE_A_API_KEY"   # the variable's NAME, never the key

    [sources.options]                        # the protocol's own, typed: RestJsonOptions
    page_size = 100

Keys of a ``[[sources]]`` table are ``sources.registry.definition.SOURCE_KEYS``; anything else
is refused, as is any top-level key but ``sources``, and any option its protocol's
model (``sources.adapters.options_for``) refuses. Every error is a one-line
``ConfigError`` naming the file, the source (number and id) and the key.

The gateway polls ``config_fingerprint`` and, when it moves, applies the file:

    store.apply_config(load_config(path), config_origin(path))
"""

from __future__ import annotations

import os
import tomllib
from typing import TYPE_CHECKING

from sources.errors import ConfigError
from sources.registry.definition import parse_definition

if TYPE_CHECKING:
    from sources.base import SourceConfig

__all__ = ["config_fingerprint", "load_config"]


def load_config(path: str | os.PathLike[str]) -> list[SourceConfig]:
    """The sources a config file declares, in file order, validated.

    A file without any ``[[sources]]`` declares no source (applying it removes
    the sources it declared before).
    """
    shown = os.path.abspath(path)
    document = _read_toml(path, shown)

    extra = sorted(key for key in document if key != "sources")
    if extra:
        raise ConfigError(
            f"{shown}: unknown top-level key {extra[0]!r} "
            "(only [[sources]] tables are allowed at the top level)"
        )
    tables = document.get("sources", [])
    if not isinstance(tables, list):
        raise ConfigError(
            f"{shown}: 'sources' must be an array of tables: write each source "
            "under its own [[sources]] header"
        )

    definitions: list[SourceConfig] = []
    first_seen: dict[str, int] = {}
    for number, table in enumerate(tables, start=1):
        if not isinstance(table, dict):
            raise ConfigError(
                f"{shown}: source #{number} must be a table ([[sources]]), got {table!r}"
            )
        raw_id = table.get("id")
        label = f"source #{number}"
        if isinstance(raw_id, str):
            label += f" (id {raw_id!r})"
        definition = parse_definition(table, where=f"{shown}: {label}")
        if definition.id in first_seen:
            raise ConfigError(
                f"{shown}: {label}: id {definition.id!r} is already used by "
                f"source #{first_seen[definition.id]}; ids must be unique"
            )
        first_seen[definition.id] = number
        definitions.append(definition)
    return definitions


def config_fingerprint(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """``(mtime_ns, size, inode)`` of the file, ``None`` if it does not exist: one
    ``stat`` call, cheap enough to poll every second. Any change means "reload".

    The inode catches editors and ConfigMaps that replace the file by a rename.
    An editor may still be writing when the fingerprint moves; compare it again
    after ``load_config`` and reload if it moved meanwhile.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _read_toml(path: str | os.PathLike[str], shown: str) -> dict[str, object]:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError as exc:
        raise ConfigError(f"{shown}: config file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read config file: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{shown}: line {line}: the file is not UTF-8 text") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line L, column C)".
        raise ConfigError(f"{shown}: invalid TOML: {exc}") from exc
