"""The options of a SMART Scheduling Links source, checked when its definition is read.

    [[sources]]
    protocol = "SMART_SCHEDULING_LINKS"
    url = "https://publisher.example/fhir/$bulk-publish"
    poll_interval_s = 120        # also accepted under [sources.options]

Such a source answers from its own copy of the feed: the gateway's answer cache
does not apply to it (``cache_ttl_s`` and ``cache_stale_s`` are refused).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar, Final
from urllib.parse import urlsplit

from pydantic import Field

from sources.settings import ProtocolOptions

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "MANIFEST_SUFFIX",
    "MAX_POLL_INTERVAL_S",
    "MIN_POLL_INTERVAL_S",
    "SmartSchedulingOptions",
]

# Clients poll the manifest every 1 to 5 minutes.
MIN_POLL_INTERVAL_S: Final = 60
MAX_POLL_INTERVAL_S: Final = 300
DEFAULT_MAX_FILE_BYTES: Final = 2 * 1024**3
MANIFEST_SUFFIX: Final = "$bulk-publish"
_CACHE_KEYS = ("cache_ttl_s", "cache_stale_s")


class SmartSchedulingOptions(ProtocolOptions):
    """What a SMART Scheduling Links source may set beyond the common settings.

    SmartSchedulingOptions(poll_interval_s=120).max_file_bytes  # 2 GiB
    """

    TOP_LEVEL_KEYS: ClassVar[frozenset[str]] = frozenset({"poll_interval_s"})

    poll_interval_s: float | None = Field(
        None,
        ge=MIN_POLL_INTERVAL_S,
        le=MAX_POLL_INTERVAL_S,
        description=(
            f"a number of seconds between {MIN_POLL_INTERVAL_S} and {MAX_POLL_INTERVAL_S} "
            "(the feed's publishers expect 1 to 5 minutes)"
        ),
    )
    """How often the manifest is fetched; None: the adapter's default (60 s)."""
    max_file_bytes: int = Field(
        DEFAULT_MAX_FILE_BYTES, gt=0, description="a whole number of bytes greater than 0"
    )
    """A larger file of the feed is refused (skipped, the source DEGRADED)."""

    @classmethod
    def source_problem(cls, url: str, given: Collection[str]) -> str | None:
        if not urlsplit(url).path.endswith(MANIFEST_SUFFIX):
            return (
                f"url of a SMART_SCHEDULING_LINKS source must end with {MANIFEST_SUFFIX!r} "
                f"(the manifest), got {url!r}"
            )
        for key in _CACHE_KEYS:
            if key in given:
                return (
                    f"{key} does not apply to SMART_SCHEDULING_LINKS sources "
                    "(they answer from their own copy of the feed, refreshed by poll_interval_s)"
                )
        return None
