"""A booking source as the registry stores it, and the validation every way in goes through.

The CLI, the config file (``sources.registry.config_file``) and ``SourceStore`` all build
definitions with ``parse_definition`` (untyped input) or ``validate_definition``
(a definition built in code), so one set of rules and messages applies to all.

    definition = parse_definition({"id": "clinique-a", "protocol": "REST_JSON",
                                   "url": "https://api.clinique-a.example/v1"})
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sources.errors import ConfigError
from sources.records import SourceProtocol

__all__ = ["SOURCE_KEYS", "SourceDefinition", "parse_definition", "validate_definition"]

DEFAULT_TIMEOUT_S = 2.0
MAX_TIMEOUT_S = 60.0
MAX_CONCURRENCY = 1000
# SMART Scheduling Links: clients poll the manifest every 1 to 5 minutes.
MIN_POLL_INTERVAL_S = 60
MAX_POLL_INTERVAL_S = 300

# Answers of live sources are cached this long (0: not cached), then served stale
# this much longer while one background call refreshes them.
MAX_CACHE_TTL_S = 3600
MAX_CACHE_STALE_S = 86400

SOURCE_KEYS = (
    "cache_stale_s",
    "cache_ttl_s",
    "connect_timeout_s",
    "credentials_env",
    "enabled",
    "id",
    "max_concurrency",
    "name",
    "options",
    "poll_interval_s",
    "protocol",
    "read_timeout_s",
    "timeout_s",
    "url",
)
"""Every key a source definition may hold (a config file's ``[[sources]]`` table)."""

_REQUIRED_KEYS = ("id", "protocol", "url")
_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SMART_MANIFEST_SUFFIX = "$bulk-publish"
# User info in a URL is a secret: refused, and masked in messages. The mask is
# wider than the refusal: a password holding '/' reads as host, bad port, path.
_USERINFO_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^@/?#]*@")
_MASK_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^@]*@")

_Fail = Callable[[str], ConfigError]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDefinition:
    """A booking source as the registry stores it: no secret, only the name of
    the environment variable holding it. An empty ``name`` defaults to ``id``.

        SourceDefinition(id="clinique-a", protocol=SourceProtocol.REST_JSON,
                         url="https://api.clinique-a.example/v1",
                         credentials_env="CLINIQUE_A_API_KEY")
    """

    id: str
    name: str = ""
    protocol: SourceProtocol
    url: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    enabled: bool = True
    credentials_env: str | None = None
    # Protocol-specific settings, validated by the adapter that reads them.
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)


def parse_definition(raw: Mapping[str, object], *, where: str | None = None) -> SourceDefinition:
    """Check untyped input (a TOML table, CLI arguments) and build a definition.

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
    url = _parse_url(raw["url"], protocol, fail)

    name = raw.get("name", source_id)
    if not isinstance(name, str) or not name.strip():
        raise fail(f"name must be a non-empty string, got {name!r}")

    timeout_s = raw.get("timeout_s", DEFAULT_TIMEOUT_S)
    if (
        not isinstance(timeout_s, int | float)
        or isinstance(timeout_s, bool)
        or not math.isfinite(timeout_s)
        or not 0 < timeout_s <= MAX_TIMEOUT_S
    ):
        raise fail(f"timeout_s must be a number between 0 and {MAX_TIMEOUT_S:g}, got {timeout_s!r}")

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
    concurrency = raw.get("max_concurrency", options.get("max_concurrency"))
    if concurrency is not None:
        if (
            not isinstance(concurrency, int)
            or isinstance(concurrency, bool)
            or not 1 <= concurrency <= MAX_CONCURRENCY
        ):
            raise fail(
                f"max_concurrency must be a whole number between 1 and {MAX_CONCURRENCY}, "
                f"got {concurrency!r}"
            )
        options["max_concurrency"] = concurrency
    poll = raw.get("poll_interval_s", options.get("poll_interval_s"))
    if poll is not None:
        if protocol is not SourceProtocol.SMART_SCHEDULING_LINKS:
            raise fail("poll_interval_s applies to SMART_SCHEDULING_LINKS sources only")
        if (
            not isinstance(poll, int | float)
            or isinstance(poll, bool)
            or not MIN_POLL_INTERVAL_S <= poll <= MAX_POLL_INTERVAL_S
        ):
            raise fail(
                f"poll_interval_s must be a number of seconds between {MIN_POLL_INTERVAL_S} "
                f"and {MAX_POLL_INTERVAL_S} (the feed's publishers expect 1 to 5 minutes), "
                f"got {poll!r}"
            )
        options["poll_interval_s"] = float(poll)
    for key, low, high in (
        ("connect_timeout_s", 0.0, float(timeout_s)),
        ("read_timeout_s", 0.0, float(timeout_s)),
    ):
        _number_option(
            raw,
            options,
            key,
            low,
            high,
            fail,
            what="a number of seconds above 0 and at most timeout_s",
        )
    for key, high in (("cache_ttl_s", MAX_CACHE_TTL_S), ("cache_stale_s", MAX_CACHE_STALE_S)):
        if _number_option(
            raw,
            options,
            key,
            -1.0,
            float(high),
            fail,
            what=f"a number of seconds between 0 and {high}",
        ) and (protocol is SourceProtocol.SMART_SCHEDULING_LINKS):
            raise fail(
                f"{key} does not apply to SMART_SCHEDULING_LINKS sources "
                "(they answer from their own copy of the feed, refreshed by poll_interval_s)"
            )
    return SourceDefinition(
        id=source_id,
        name=name,
        protocol=protocol,
        url=url,
        timeout_s=float(timeout_s),
        enabled=enabled,
        credentials_env=credentials_env,
        options=options,
    )


def validate_definition(definition: SourceDefinition) -> SourceDefinition:
    """Check a definition built in code; returns it normalized (name, float timeout,
    options as plain JSON values). Same rules and messages as ``parse_definition``."""
    raw: dict[str, object] = {
        "id": definition.id,
        "protocol": definition.protocol,
        "url": definition.url,
        "timeout_s": definition.timeout_s,
        "enabled": definition.enabled,
        "credentials_env": definition.credentials_env,
        "options": definition.options,
    }
    if definition.name:
        raw["name"] = definition.name
    return parse_definition(raw)


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


def _parse_url(value: object, protocol: SourceProtocol, fail: _Fail) -> str:
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
    if protocol is SourceProtocol.SMART_SCHEDULING_LINKS and not parts.path.endswith(
        _SMART_MANIFEST_SUFFIX
    ):
        raise fail(
            f"url of a SMART_SCHEDULING_LINKS source must end with "
            f"{_SMART_MANIFEST_SUFFIX!r} (the manifest), got {shown!r}"
        )
    return value


def _number_option(
    raw: Mapping[str, object],
    options: dict[str, Any],
    key: str,
    above: float,
    high: float,
    fail: _Fail,
    *,
    what: str,
) -> bool:
    """Check a numeric key given at the top level or in ``options`` (strictly above
    ``above``, at most ``high``) and keep it in ``options``; False when absent."""
    value = raw.get(key, options.get(key))
    if value is None:
        return False
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not above < value <= high
    ):
        raise fail(f"{key} must be {what}, got {value!r}")
    options[key] = float(value)
    return True


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
