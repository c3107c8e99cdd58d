"""Feed files written as a static host publishes them: whole, and dated by publication.

Each file is written under a temporary name and moved in place when finished, so that a
reader never sees half of one; :class:`NdjsonFile` also counts what it writes (resources,
free and busy slots and seats, malformed lines by kind) into the manifest's ``FeedFile``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import orjson

from examples.demo_ssl.manifest import FeedFile, SlotCounts

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import BinaryIO

    from examples.demo_ssl.manifest import Feed


class NdjsonFile:
    """An NDJSON file being written under a temporary name, counted as it goes."""

    def __init__(self, directory: Path, name: str, resource_type: str) -> None:
        self.path = directory / name
        self.tmp = directory / f".{name}.tmp"
        self.name = name
        self.type = resource_type
        self.resources = 0
        self.bad: dict[str, int] = defaultdict(int)
        self.counts = [0, 0, 0, 0, 0]  # free, busy, free seats, busy seats, grouped
        self.file: BinaryIO = self.tmp.open("wb", buffering=1 << 18)

    def __enter__(self) -> NdjsonFile:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abandon()

    def resource(self, resource: dict[str, Any]) -> None:
        self.file.write(orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE))
        self.resources += 1

    def slot(self, line: bytes, free: bool, seats: int) -> None:
        self.file.write(line)
        self.resources += 1
        counts = self.counts
        counts[0 if free else 1] += 1
        counts[2 if free else 3] += seats
        if seats > 1:
            counts[4] += 1

    def malformed(self, kind: str, resource: dict[str, Any]) -> None:
        self.malformed_text(kind, orjson.dumps(resource))

    def malformed_text(self, kind: str, line: bytes) -> None:
        self.file.write(line + b"\n")
        self.bad[kind] += 1

    def finish(self, transaction_time: datetime) -> FeedFile:
        self.file.close()
        publish(self.tmp, self.path, transaction_time)
        counts = SlotCounts(*self.counts)
        return FeedFile(self.name, self.type, self.resources, dict(self.bad), counts)

    def abandon(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def replace_file(path: Path, body: bytes, feed: Feed) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(body)
    publish(tmp, path, feed.transaction_time)


def publish(tmp: Path, path: Path, transaction_time: datetime) -> None:
    """Move a finished file in place, dated by its publication.

    Readers never see half a file, and as a static server's ETag is the file's time and
    size, it changes with every publication that rewrites the file and with no other.
    """
    seconds = int(transaction_time.timestamp())
    ns = seconds * 1_000_000_000 + transaction_time.microsecond * 1000
    os.utime(tmp, ns=(ns, ns))
    os.replace(tmp, path)


__all__ = ["NdjsonFile", "publish", "replace_file"]
