"""What a group's watch sees change, as one value that can travel: ``GroupChange``.

A change names its group (``WatchKey``), when it was seen, the slots opened at a
source (whole ``FoundSlot``s: what a query gives for a slot), the slots gone (their
key, start and clinic position: what a subscriber's exact filter needs), and the
sources failing then. Every part is a msgspec ``Struct`` or one of the gateway's
frozen dataclasses, so ``encode_change``/``decode_change`` carry it through
MessagePack (e.g. through Redis between instances) and back unchanged::

    assert decode_change(encode_change(change)) == change
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec

from sources.errors import SourceBadResponse, SourceError, SourceTimeout, SourceUnavailable
from sources.records import GeoPoint
from sources.search import FoundSlot
from sources.watch.keys import WatchKey

__all__ = [
    "GoneSlot",
    "GroupChange",
    "SourceFailure",
    "decode_change",
    "decode_key",
    "encode_change",
    "encode_key",
]


class GoneSlot(msgspec.Struct, frozen=True, array_like=True):
    """A slot no longer free: its key (what its id encodes), its start and its clinic's
    position."""

    key: str
    start: datetime
    location: GeoPoint | None


class SourceFailure(msgspec.Struct, frozen=True, array_like=True):
    """A source failing while watched: which, what kind of failure, and what it said."""

    KINDS: ClassVar[dict[str, type[SourceError]]] = {
        "timeout": SourceTimeout,
        "bad_response": SourceBadResponse,
        "unavailable": SourceUnavailable,
    }

    source_id: str
    kind: str
    message: str

    @classmethod
    def of(cls, error: SourceError) -> SourceFailure:
        kind = next((k for k, c in cls.KINDS.items() if isinstance(error, c)), "unavailable")
        return cls(error.source_id, kind, error.message)

    def error(self) -> SourceError:
        """The failure as the error a query would have reported (the same code)."""
        return self.KINDS.get(self.kind, SourceUnavailable)(self.source_id, self.message)


class GroupChange(msgspec.Struct, frozen=True):
    """See the module docstring. ``failing``: every source of the group failing as of
    ``seen_at`` (empty: all answer)."""

    key: WatchKey
    seen_at: datetime
    opened: tuple[FoundSlot, ...] = ()
    gone: tuple[GoneSlot, ...] = ()
    failing: tuple[SourceFailure, ...] = ()


_ENCODER = msgspec.msgpack.Encoder()
_CHANGE = msgspec.msgpack.Decoder(GroupChange)
_KEY = msgspec.msgpack.Decoder(WatchKey)


def encode_change(change: GroupChange) -> bytes:
    return _ENCODER.encode(change)


def decode_change(data: bytes) -> GroupChange:
    """The change ``data`` encodes; ``msgspec.DecodeError`` for anything else."""
    return _CHANGE.decode(data)


def encode_key(key: WatchKey) -> bytes:
    return _ENCODER.encode(key)


def decode_key(data: bytes) -> WatchKey:
    return _KEY.decode(data)
