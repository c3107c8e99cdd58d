"""Opaque global ids and cursors.

A global id is ``base64url("Type:KEY")`` where KEY is the merged key from
``sources.merge``: stable whichever sources answer. Cursors are
``base64url(JSON)``; clients must treat both as opaque strings.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime

import orjson

from resolvers.errors import UserInputError
from sources.federation import SlotPosition

NODE_TYPES = ("Clinic", "Physician", "Slot")


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


def encode_slot_cursor(position: SlotPosition) -> str:
    payload = [
        "s",
        position.start.isoformat(),
        position.distance_km,
        position.key,
        position.offset,
    ]
    return _b64encode(orjson.dumps(payload))


def decode_slot_cursor(cursor: str) -> SlotPosition:
    try:
        tag, start, distance, key, offset = orjson.loads(_b64decode(cursor))
        if tag != "s" or not isinstance(key, str) or not isinstance(offset, int) or offset < 0:
            raise ValueError("not a slot cursor")
        when = datetime.fromisoformat(start)
        if when.tzinfo is None:
            raise ValueError("naive")
        if distance is not None and (
            not isinstance(distance, int | float) or not math.isfinite(distance)
        ):
            raise ValueError("distance")
        return SlotPosition(when, None if distance is None else float(distance), key, offset)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise UserInputError(
            "after is not a valid cursor; pass the endCursor of the previous page"
        ) from None


def encode_offset_cursor(kind: str, offset: int) -> str:
    return _b64encode(orjson.dumps([kind, offset]))


def decode_offset_cursor(kind: str, cursor: str) -> int:
    try:
        tag, offset = orjson.loads(_b64decode(cursor))
        if tag != kind or not isinstance(offset, int) or offset < 0:
            raise ValueError("not a cursor")
        return offset
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise UserInputError(
            "after is not a valid cursor; pass the endCursor of the previous page"
        ) from None
