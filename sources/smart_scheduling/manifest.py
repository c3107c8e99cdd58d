"""The SMART Scheduling Links manifest (``$bulk-publish``): which files to read, and as of when.

    manifest = read_manifest(source_id, "https://pub.example/$bulk-publish", decoded_json)
    manifest.outputs  # absolute URLs of the Location, Schedule, Slot (and role) files

Tolerant of what publishers add (``currentAsOf``, top-level or per file, the latter on the
output entry or in its ``extension``; an ``extension.state`` given as a string rather than
a list; unknown fields) and of outputs of types we do not read, which are
ignored. Strict on what the feed cannot do without: a JSON object with an ``output`` list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from yarl import URL

from sources.fhir.resources import text_value
from sources.timeutil import MONTREAL, parse_upstream_datetime
from sources.transport.failures import shape_error

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

# Resource types whose files are read; PractitionerRole and Practitioner are the
# successor draft's way of naming the physician behind a Schedule.
READ_TYPES = frozenset({"Location", "Schedule", "Slot", "PractitionerRole", "Practitioner"})
MAX_OUTPUTS = 1000


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a manifest says. ``since`` is the ``_since`` its ``request`` URL carries;
    ``files_as_of`` the ``currentAsOf`` of the outputs that give their own, by URL."""

    transaction_time: str | None
    as_of: datetime | None
    since: str | None
    outputs: tuple[str, ...]
    deleted: tuple[str, ...] = ()
    ignored: int = 0  # outputs of types we do not read, or with unusable URLs
    files_as_of: dict[str, datetime] = field(default_factory=dict)

    def as_of_for(self, urls: Iterable[str]) -> datetime | None:
        """When the data of these files was current: the oldest of their own
        ``currentAsOf`` and the manifest's (None when nothing says)."""
        known = [self.files_as_of[url] for url in urls if url in self.files_as_of]
        if self.as_of is not None:
            known.append(self.as_of)
        return min(known, default=None)


def read_manifest(source_id: str, manifest_url: str, body: Any) -> Manifest:
    """Read a decoded manifest; ``SourceBadResponse`` when it is not one.

    File URLs are resolved against the manifest's, and kept only when they are http(s)
    on the manifest's origin, or https anywhere (a CDN): a manifest cannot send the
    gateway to plain-http hosts of its choosing.
    """
    if not isinstance(body, dict) or not isinstance(body.get("output"), list):
        raise shape_error(source_id, "the manifest has no 'output' list")
    base = URL(manifest_url)
    outputs: dict[str, None] = {}
    deleted: dict[str, None] = {}
    ignored = 0
    files_as_of: dict[str, datetime] = {}
    for items, into, types in (
        (body["output"], outputs, READ_TYPES),
        (_as_list(body.get("deleted")), deleted, None),
    ):
        if len(items) > MAX_OUTPUTS:
            raise shape_error(source_id, f"the manifest lists more than {MAX_OUTPUTS} files")
        for item in items:
            url = _file_url(base, item, types)
            if url is None:
                ignored += 1
                continue
            into[url] = None
            as_of = _file_as_of(item)
            if as_of is not None:
                files_as_of[url] = as_of
    transaction_time = text_value(body.get("transactionTime"))
    return Manifest(
        transaction_time=transaction_time,
        as_of=_instant(body.get("currentAsOf")) or _instant(transaction_time),
        since=_echoed_since(body.get("request")),
        outputs=tuple(outputs),
        deleted=tuple(deleted),
        ignored=ignored,
        files_as_of=files_as_of,
    )


def file_name(url: str) -> str:
    """How logs name a file: its path, without the query (which may hold a signature)."""
    try:
        return URL(url).path or url
    except ValueError:
        return "?"


def covers_since(echoed: str, sent: str) -> bool:
    """Whether changes since ``echoed`` include every change since ``sent``: ``echoed``
    is at or before ``sent`` (False when either is unreadable)."""
    first, second = _instant(echoed), _instant(sent)
    return first is not None and second is not None and first <= second


def _file_url(base: URL, item: object, types: frozenset[str] | None) -> str | None:
    if not isinstance(item, dict) or (types is not None and item.get("type") not in types):
        return None
    raw = text_value(item.get("url"))
    if raw is None:
        return None
    try:
        url = base.join(URL(raw))
    except ValueError:
        return None
    if not url.host or url.scheme not in ("http", "https"):
        return None
    if url.scheme != "https" and url.origin() != base.origin():
        return None
    return str(url)


def _file_as_of(item: dict[str, Any]) -> datetime | None:
    extension = item.get("extension")
    nested = extension.get("currentAsOf") if isinstance(extension, dict) else None
    return _instant(item.get("currentAsOf")) or _instant(nested)


def _echoed_since(request: object) -> str | None:
    text = text_value(request)
    if text is None:
        return None
    try:
        return URL(text).query.get("_since")
    except ValueError:
        return None


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        # The feed's own time, not a clinic's: without an offset, the Montreal rule.
        return parse_upstream_datetime(value, MONTREAL)
    except (ValueError, OverflowError):
        return None


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


__all__ = ["MAX_OUTPUTS", "READ_TYPES", "Manifest", "covers_since", "file_name", "read_manifest"]
