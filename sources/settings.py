"""The settings every source has, their defaults and bounds, and the base of each
protocol's typed options.

The common settings (timeouts, cache, concurrency) are fields of ``SourceConfig``;
what only one protocol understands is a ``ProtocolOptions`` model in that
protocol's package (``sources/rest_json/options.py``...), registered next to its
adapter in ``sources.adapters``. Both are checked once, when a definition is read
(``sources.registry.definition``); adapters then read typed attributes.

    class FeedOptions(ProtocolOptions):
        page_size: int = Field(100, ge=1, le=500, description="a whole number between 1 and 500")
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sources.errors import ConfigError

__all__ = [
    "DEFAULT_CACHE_STALE_S",
    "DEFAULT_CACHE_TTL_S",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_TIMEOUT_S",
    "MAX_CACHE_STALE_S",
    "MAX_CACHE_TTL_S",
    "MAX_CONCURRENCY",
    "MAX_TIMEOUT_S",
    "MAX_WATCH_CALLS_PER_MINUTE",
    "LiveOptions",
    "ProtocolOptions",
]

DEFAULT_TIMEOUT_S = 2.0
MAX_TIMEOUT_S = 60.0
# At most this long to connect (never above timeout_s) when a source does not say.
DEFAULT_CONNECT_TIMEOUT_S = 1.0
# Calls in flight to one source at once (a bulkhead: one slow source cannot take
# every connection); the default when a source does not say.
DEFAULT_MAX_CONCURRENCY = 10
MAX_CONCURRENCY = 1000
# Answers of live sources are cached this long (0: not cached), then served stale
# this much longer while one background call refreshes them.
DEFAULT_CACHE_TTL_S = 30.0
MAX_CACHE_TTL_S = 3600
DEFAULT_CACHE_STALE_S = 120.0
MAX_CACHE_STALE_S = 86400
# Calls a minute the watch of subscriptions (sources.watch) makes to a source asked
# live, shared by everything it watches there.
DEFAULT_WATCH_CALLS_PER_MINUTE = 30.0
MAX_WATCH_CALLS_PER_MINUTE = 600


class ProtocolOptions(BaseModel):
    """The options of one protocol: frozen, strictly typed, validated on construction.

    Each field's ``description`` completes the refusal message ("page_size must be
    <description>, got 0"). Keys a model does not know are kept as written (in
    ``model_extra``), so a row written by a newer gateway survives a rollback and is
    stored back unchanged.

    pydantic rather than msgspec: a model keeps unknown keys and knows which keys
    were set (``exclude_unset``), so what is stored is exactly what was written, and
    a model built in code is validated as one read from a file.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="allow")

    TOP_LEVEL_KEYS: ClassVar[frozenset[str]] = frozenset()
    """Options that may also be written at the top level of a source's table."""

    @classmethod
    def parse(cls, raw: Mapping[str, object], where: str) -> Self:
        """The options of ``raw`` (plain JSON values); ``ConfigError`` naming the key,
        prefixed by ``where``, for the first one that is wrong."""
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0]) if error["loc"] else "options"
            field = cls.model_fields.get(key)
            what = field.description if field is not None and field.description else None
            shown = key if key in cls.TOP_LEVEL_KEYS else f"options.{key}"
            problem = f"must be {what}" if what else f"is wrong: {error['msg'].lower()}"
            raise ConfigError(f"{where}: {shown} {problem}, got {error['input']!r}") from None

    @classmethod
    def source_problem(cls, url: str, given: Collection[str]) -> str | None:
        """What is wrong with a source of this protocol beyond its options (its url,
        common settings that do not apply: ``given`` are those its table set), or None."""
        del url, given
        return None

    def as_table(self) -> dict[str, Any]:
        """The options as written (set keys and unknown ones), as plain JSON values."""
        return self.model_dump(mode="json", exclude_unset=True)


class LiveOptions(ProtocolOptions):
    """The options of every protocol asked live (FHIR, REST), rather than served from
    the gateway's own copy: how often the watch of subscriptions may ask it.

        [[sources]]
        watch_calls_per_minute = 10      # also accepted under [sources.options]
    """

    TOP_LEVEL_KEYS: ClassVar[frozenset[str]] = frozenset({"watch_calls_per_minute"})

    watch_calls_per_minute: float = Field(
        DEFAULT_WATCH_CALLS_PER_MINUTE,
        gt=0,
        le=MAX_WATCH_CALLS_PER_MINUTE,
        description=(
            f"a number of calls per minute greater than 0 and at most {MAX_WATCH_CALLS_PER_MINUTE}"
        ),
    )
    """Searches a minute the watch of subscriptions may send this source, shared by all
    it watches there (a 429 halves it for an hour)."""
