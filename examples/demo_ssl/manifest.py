"""The manifest of the demo SMART Scheduling Links feed, and what the feed's files hold.

``Feed.manifest(base_url)`` is the ``$bulk-publish`` JSON: ``transactionTime`` (UTC, to the
millisecond, as the specification's example), ``request``, ``output`` (``type``, ``url`` and,
for ``Slot`` files, ``extension.state``) and ``error``. A feed written with deviations says
``state`` as a string and adds top-level fields, as publishers in the wild do.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

MANIFEST_NAME = "$bulk-publish"
DATA_PATH = "/data/"
STATE = "QC"


def format_transaction_time(value: datetime) -> str:
    """``2026-11-20T18:50:51.388Z``, as the specification's example manifest has it."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class SlotCounts:
    """Slot resources and the seats they stand for (a ``slot-capacity`` of N is N seats)."""

    free: int = 0
    busy: int = 0
    free_seats: int = 0
    busy_seats: int = 0
    grouped: int = 0  # resources with a slot-capacity extension

    def __add__(self, other: SlotCounts) -> SlotCounts:
        return SlotCounts(
            self.free + other.free,
            self.busy + other.busy,
            self.free_seats + other.free_seats,
            self.busy_seats + other.busy_seats,
            self.grouped + other.grouped,
        )


@dataclass(frozen=True, slots=True)
class FeedFile:
    """One NDJSON file of the feed: ``resources`` good lines plus the ``malformed`` ones."""

    name: str
    type: str
    resources: int
    malformed: Mapping[str, int] = field(default_factory=dict)
    slots: SlotCounts = SlotCounts()

    @property
    def lines(self) -> int:
        return self.resources + sum(self.malformed.values())


@dataclass(frozen=True, slots=True)
class Feed:
    """What :func:`write_feed` wrote: the files, their counts and the publication time.

    ``feed.manifest("http://host:port")`` is the ``$bulk-publish`` JSON for that base URL.
    """

    directory: Path
    transaction_time: datetime
    files: tuple[FeedFile, ...]
    deviations: bool = False

    def file(self, name: str) -> FeedFile:
        return next(f for f in self.files if f.name == name)

    def of_type(self, resource_type: str) -> list[FeedFile]:
        return [f for f in self.files if f.type == resource_type]

    @property
    def slots(self) -> SlotCounts:
        return sum((f.slots for f in self.files), SlotCounts())

    @property
    def malformed(self) -> dict[str, int]:
        """Malformed lines of the whole feed, by kind."""
        total: dict[str, int] = defaultdict(int)
        for f in self.files:
            for kind, count in f.malformed.items():
                total[kind] += count
        return dict(total)

    def manifest(
        self,
        base_url: str,
        request_url: str | None = None,
        files: Iterable[FeedFile] | None = None,
    ) -> dict[str, Any]:
        """The manifest listing ``files`` (default: every file) under ``base_url/data/``."""
        base = base_url.rstrip("/")
        state: str | list[str] = STATE if self.deviations else [STATE]
        output = []
        for f in self.files if files is None else files:
            item: dict[str, Any] = {"type": f.type, "url": f"{base}{DATA_PATH}{f.name}"}
            if f.type == "Slot":
                item["extension"] = {"state": state}
            output.append(item)
        stamp = format_transaction_time(self.transaction_time)
        manifest: dict[str, Any] = {
            "transactionTime": stamp,
            "request": request_url or f"{base}/{MANIFEST_NAME}",
            "output": output,
            "error": [],
        }
        if self.deviations:
            manifest["currentAsOf"] = stamp
            manifest["publisher"] = "Passerelle SSL demo"
        return manifest


__all__ = [
    "DATA_PATH",
    "MANIFEST_NAME",
    "STATE",
    "Feed",
    "FeedFile",
    "SlotCounts",
    "format_transaction_time",
]
