"""Opaque global ids and cursors.

A global id is ``base64url("Type:KEY")`` where KEY is the merged key from
``sources.search.merge``: stable whichever sources answer. Cursors are
``base64url(JSON)``; clients must treat both as opaque strings.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime

import orjson

from resolvers.errors import UserInputError
from sources.search import CountKind, SlotCount, SlotIdentity, SlotPosition

NODE_TYPES = ("Clinic", "Physician", "Slot")
# Offsets count slots already paged through; totalCount is a GraphQL Int (32 bits).
MAX_OFFSET = 2**31 - 1
MIN_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not isinstance(text, str) or len(text) > 4096:
        raise ValueError("not an id")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def to_global_id(type_name: str, key: str) -> str:
    return _b64encode(f"{type_name}:{key}".encode())


def from_global_id(global_id: str) -> tuple[str, str]:
    """``(type name, key)``; ``UserInputError`` for anything that is not one of our ids."""
    try:
        type_name, sep, key = _b64decode(global_id).decode("utf-8").partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        type_name, sep, key = "", "", ""
    if not sep or type_name not in NODE_TYPES or not key:
        raise UserInputError(f"{global_id!r} is not a valid id; use an id returned by this API")
    return type_name, key


def expect_global_id(global_id: str, type_name: str, argument: str) -> str:
    """The key of a global id that must be of ``type_name``."""
    found, key = from_global_id(global_id)
    if found != type_name:
        raise UserInputError(f"{argument} expects {type_name} ids; {global_id!r} is a {found} id")
    return key


def encode_slot_cursor(position: SlotPosition, search: str, count: SlotCount | None = None) -> str:
    """A cursor of the search fingerprinted ``search`` (``resolvers.slots``), carrying
    the search's ``count`` as its first page made it (every page then shows it)."""
    identity = position.identity
    payload = [
        "s",
        # In UTC: the same position gives the same cursor whatever zone the
        # records came in (Redis-cached ones are decoded in UTC).
        position.start.astimezone(UTC).isoformat(),
        position.distance_km,
        identity.encode() if identity is not None else None,
        position.offset,
        search,
    ]
    if count is not None:
        payload += [count.value, count.kind.value if count.kind is not None else None]
    return _b64encode(orjson.dumps(payload))


def decode_slot_cursor(cursor: str, search: str) -> SlotPosition:
    """The position of a cursor of the search fingerprinted ``search``; a cursor of
    another search is refused (cursors from before fingerprints too: no search
    can tell they are its own)."""
    try:
        payload = orjson.loads(_b64decode(cursor))
        if not isinstance(payload, list) or not payload or payload[0] != "s":
            raise ValueError("not a slot cursor")
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _bad_cursor() from None
    if len(payload) == 5:  # written before cursors named their search
        raise UserInputError(
            "after is a cursor from an earlier version of the gateway; start again without after"
        )
    if len(payload) not in (6, 8) or payload[5] != search:
        raise UserInputError(
            "after is a cursor of a search with other filters; start again without after"
        )
    try:
        _, start, distance, identity, offset, _ = payload[:6]
        if not _valid_offset(offset):
            raise ValueError("offset")
        when = datetime.fromisoformat(start)
        if when.tzinfo is None or not MIN_INSTANT <= when <= MAX_INSTANT:
            raise ValueError("bad instant")
        if distance is not None and (
            isinstance(distance, bool)
            or not isinstance(distance, int | float)
            or not math.isfinite(distance)
        ):
            raise ValueError("distance")
        slot = None if identity is None else SlotIdentity.decode(identity)
        if identity is not None and slot is None:
            raise ValueError("identity")
        return SlotPosition(when, None if distance is None else float(distance), slot, offset)
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError):
        raise _bad_cursor() from None


def slot_cursor_count(cursor: str) -> SlotCount | None:
    """The count a cursor carries (``decode_slot_cursor`` has checked the cursor),
    or None when it carries none or a malformed one (the page's own count is then shown)."""
    try:
        payload = orjson.loads(_b64decode(cursor))
        value, kind = payload[6:8]
        if value is not None and not _valid_offset(value):
            return None
        return SlotCount(value, None if kind is None else CountKind(kind))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        return None


def _valid_offset(offset: object) -> bool:
    return isinstance(offset, int) and not isinstance(offset, bool) and 0 <= offset < MAX_OFFSET


def _bad_cursor() -> UserInputError:
    return UserInputError("after is not a valid cursor; pass the endCursor of the previous page")


def encode_offset_cursor(kind: str, offset: int) -> str:
    return _b64encode(orjson.dumps([kind, offset]))


def decode_offset_cursor(kind: str, cursor: str) -> int:
    try:
        tag, offset = orjson.loads(_b64decode(cursor))
        if tag != kind or not _valid_offset(offset):
            raise ValueError("not a cursor")
        return int(offset)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _bad_cursor() from None
