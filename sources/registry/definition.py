"""Reading a booking source's definition: the one validation every way in goes through.

The CLI, the config file (``sources.registry.config_file``) and ``SourceStore`` (its
rows) all read definitions with ``parse_definition`` (untyped input, e.g. a TOML
table) or ``validate_definition`` (a ``SourceConfig`` built in code), so one set of
rules and messages applies to all. ``definition_table`` is the inverse: the table a
definition reads back from, which the store keeps as a row.

    definition = parse_definition({"id": "clinique-a", "protocol": "REST_JSON",
                                   "url": "https://api.clinique-a.example/v1"})
    definition.options.page_size  # 500: RestJsonOptions, typed

Common settings are checked here; each protocol's options by its own model
(``sources.adapters.options_for``), which may also refuse common settings that do
not apply to it. Either may be written at the top level or under ``options``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from sources.adapters import options_for, top_level_option_keys
from sources.base import SourceConfig
from sources.errors import ConfigError
from sources.records import SourceProtocol
from sources.settings import (
    DEFAULT_CACHE_STALE_S,
    DEFAULT_CACHE_TTL_S,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    MAX_CACHE_STALE_S,
    MAX_CACHE_TTL_S,
    MAX_CONCURRENCY,
    MAX_TIMEOUT_S,
)

__all__ = ["SOURCE_KEYS", "definition_table", "parse_definition", "validate_definition"]

# Common settings also accepted under ``options`` (where rows keep them), and their
# defaults: a setting at its default is not written back.
_SETTINGS: dict[str, object] = {
    "cache_stale_s": DEFAULT_CACHE_STALE_S,
    "cache_ttl_s": DEFAULT_CACHE_TTL_S,
    "connect_timeout_s": None,
    "max_concurrency": DEFAULT_MAX_CONCURRENCY,
    "read_timeout_s": None,
}
_PROTOCOL_KEYS = top_level_option_keys()

SOURCE_KEYS = tuple(
    sorted(
        {"credentials_env", "enabled", "id", "name", "options", "protocol", "timeout_s", "url"}
        | _SETTINGS.keys()
        | _PROTOCOL_KEYS.keys()
    )
)
"""Every key a source definition may hold (a config file's ``[[sources]]`` table)."""

_REQUIRED_KEYS = ("id", "protocol", "url")
_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# User info in a URL is a secret: refused, and masked in messages. The mask is
# wider than the refusal: a password holding '/' reads as host, bad port, path.
_USERINFO_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^@/?#]*@")
_MASK_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^@]*@")

_Fail = Callable[[str], ConfigError]


def parse_definition(raw: Mapping[str, object], *, where: str | None = None) -> SourceConfig:
    """Check untyped input (a TOML table, CLI arguments, a registry row) and build a
    definition, its options typed.

    Raises ``ConfigError`` with a one-line message prefixed by ``where``
    (default ``source '<id>'``) that says what to fix.
    """
    raw_id = raw.get("id")
    if where is None:
        where = f"source {raw_id!r}" if isinstance(raw_id, str) and raw_id else "source"

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {problem}")

    unknown = sorted(str(key) for key in raw if key not in SOURCE_KEYS)
    if unknown:
        raise fail(_unknown_key_problem(unknown[0]))
    missing = [key for key in _REQUIRED_KEYS if raw.get(key) is None]
    if missing:
        raise fail(f"missing required key {missing[0]!r} (required: {', '.join(_REQUIRED_KEYS)})")

    source_id = raw["id"]
    if not isinstance(source_id, str) or not _ID_RE.fullmatch(source_id):
        raise fail(
            "id must be 1 to 63 characters of lowercase letters, digits, '_' or '-', "
            f"starting with a letter or digit, got {source_id!r}"
        )

    protocol = _parse_protocol(raw["protocol"], fail)
    url = _parse_url(raw["url"], fail)

    name = raw.get("name", source_id)
    if not isinstance(name, str) or not name.strip():
        raise fail(f"name must be a non-empty string, got {name!r}")

    timeout_s = raw.get("timeout_s", DEFAULT_TIMEOUT_S)
    if not _number(timeout_s) or not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise fail(
            f"timeout_s must be a number greater than 0 and at most {MAX_TIMEOUT_S:g}, "
            f"got {timeout_s!r}"
        )

    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail(f"enabled must be true or false, got {enabled!r}")

    credentials_env = raw.get("credentials_env")
    if credentials_env is not None and (
        not isinstance(credentials_env, str) or not _ENV_NAME_RE.fullmatch(credentials_env)
    ):
        # A value that is no variable name is most likely the secret itself:
        # do not echo it into a log line.
        raise fail(
            "credentials_env must be the NAME of an environment variable "
            "(letters, digits and '_'), not the secret itself"
        )

    options = _parse_options(raw.get("options", {}), fail)
    settings = {key: raw.get(key, options.pop(key, None)) for key in _SETTINGS}
    given = {key for key, value in settings.items() if value is not None}
    concurrency = settings["max_concurrency"]
    if concurrency is not None and (
        not isinstance(concurrency, int)
        or isinstance(concurrency, bool)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise fail(
            f"max_concurrency must be a whole number between 1 and {MAX_CONCURRENCY}, "
            f"got {concurrency!r}"
        )
    for key in ("connect_timeout_s", "read_timeout_s"):
        value = settings[key]
        if value is not None and (not _number(value) or not 0 < value <= timeout_s):
            raise fail(
                f"{key} must be a number of seconds greater than 0 and at most timeout_s "
                f"({timeout_s:g}), got {value!r}"
            )
    for key, high in (("cache_ttl_s", MAX_CACHE_TTL_S), ("cache_stale_s", MAX_CACHE_STALE_S)):
        value = settings[key]
        if value is not None and (not _number(value) or not 0 <= value <= high):
            raise fail(f"{key} must be a number of seconds between 0 and {high}, got {value!r}")

    for key, protocols in _PROTOCOL_KEYS.items():
        value = raw.get(key, options.get(key))
        if value is None:
            continue
        if protocol not in protocols:
            raise fail(f"{key} applies to {' and '.join(p.value for p in protocols)} sources only")
        options[key] = value
    model = options_for(protocol)
    typed = model.parse(options, where)
    problem = model.source_problem(url, given)
    if problem:
        raise fail(problem)

    def setting(key: str) -> Any:
        value = settings[key]
        return _SETTINGS[key] if value is None else value

    return SourceConfig(
        id=source_id,
        name=name,
        protocol=protocol,
        url=url,
        timeout_s=float(timeout_s),
        enabled=enabled,
        credentials_env=credentials_env,
        connect_timeout_s=_seconds(setting("connect_timeout_s")),
        read_timeout_s=_seconds(setting("read_timeout_s")),
        max_concurrency=setting("max_concurrency"),
        cache_ttl_s=float(setting("cache_ttl_s")),
        cache_stale_s=float(setting("cache_stale_s")),
        options=typed,
    )


def definition_table(definition: SourceConfig) -> dict[str, Any]:
    """The table ``definition`` reads back from (what a registry row holds): common
    settings left at their defaults are not written; those set are kept under
    ``options``, with the protocol's options as written. Never the secret."""
    options = definition.options.as_table()
    for key, default in _SETTINGS.items():
        value = getattr(definition, key)
        if value != default:
            options[key] = value
    return {
        "id": definition.id,
        "name": definition.name or definition.id,
        "protocol": definition.protocol.value,
        "url": definition.url,
        "timeout_s": definition.timeout_s,
        "enabled": definition.enabled,
        "credentials_env": definition.credentials_env,
        "options": options,
    }


def validate_definition(definition: SourceConfig) -> SourceConfig:
    """Check a definition built in code; returns it normalized (name, float numbers,
    options as plain JSON gives them back). Same rules and messages as
    ``parse_definition``; the resolved ``credentials`` are dropped."""
    return parse_definition(definition_table(definition))


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(value: float | None) -> float | None:
    return None if value is None else float(value)


def _unknown_key_problem(key: str) -> str:
    hint = difflib.get_close_matches(key, SOURCE_KEYS, n=1)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"unknown key {key!r} (allowed: {', '.join(SOURCE_KEYS)}){did_you_mean}"


def _parse_protocol(value: object, fail: _Fail) -> SourceProtocol:
    if isinstance(value, SourceProtocol):
        return value
    try:
        return SourceProtocol(value)
    except ValueError:
        known = ", ".join(p.value for p in SourceProtocol)
        raise fail(f"protocol must be one of {known}, got {value!r}") from None


def _parse_url(value: object, fail: _Fail) -> str:
    if not isinstance(value, str):
        raise fail(f"url must be a string, got {value!r}")
    shown = _MASK_RE.sub(r"\1***@", value)
    if _USERINFO_RE.match(value):
        raise fail(
            "url must not contain credentials; name the environment variable "
            f"holding the secret in credentials_env, got {shown!r}"
        )
    problem = f"url must be an http:// or https:// URL with a host, got {shown!r}"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise fail(problem) from None
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
        raise fail(problem)
    return value


def _parse_options(value: object, fail: _Fail) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(f"options must be a table of settings, got {value!r}")
    try:
        # Round-trip through JSON: what is compared and stored is exactly what
        # the JSON column gives back (no tuples, no NaN PostgreSQL would refuse).
        normalized: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise fail(
            f"options must hold only strings, numbers, booleans, arrays and tables ({exc})"
        ) from None
    return normalized
