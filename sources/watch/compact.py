"""A held slot's identity as one int (``pack``), and back (``unpack``, ``start_of``).

A group holds, per source, up to ``MAX_SLOTS`` (10,000) slot identities for as long as it
is watched. As ``SlotIdentity`` objects (a frozen dataclass, two datetimes) each took
about 380 bytes with its dict entry; packed, a slot is one int of about 48 bytes:

    start (µs since the epoch, the top bits, any sign) | end - start (zigzag, 42 bits)
    | type (8 bits) | physician (24 bits, 0: none) | clinic (24 bits)

The clinic and physician keys are numbered by one table of this process (``_Names``),
shared by every group and source, so that the same identity packs to the same int
wherever it is held (a slot another source holds is compared by its int). Packing is
exact, not a hash: ``unpack(pack(i)) == i`` and two identities pack to the same int
only if they are equal, so there is nothing to collide. An identity that does not fit
(a slot longer than about 25 days, a type unknown to the table, past 16 million keys)
is kept as itself: a key is then an int or a ``SlotIdentity``, and an int never equals
a ``SlotIdentity``, so both forms stand side by side in one dict.

The tables keep every clinic and physician key seen while watching (public
identifiers of the sources' records, never a subscriber's filter): a few tens of
thousands of strings for a province.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from sources.records import AppointmentType
from sources.search import SlotIdentity

__all__ = ["HeldKey", "pack", "start_of", "unpack"]

HeldKey = int | SlotIdentity

_CLINIC_BITS: Final = 24
_PHYSICIAN_BITS: Final = 24
_TYPE_BITS: Final = 8
_LENGTH_BITS: Final = 42
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_TYPES: Final = tuple(AppointmentType)
_TYPE_AT: Final = {kind: at for at, kind in enumerate(_TYPES)}
_LOW_BITS: Final = _LENGTH_BITS + _TYPE_BITS + _PHYSICIAN_BITS + _CLINIC_BITS


class _Names:
    """Strings numbered from 0 in the order first seen, at most ``2**bits - 1`` of them."""

    __slots__ = ("at", "limit", "names")

    def __init__(self, bits: int) -> None:
        self.at: dict[str, int] = {}
        self.names: list[str] = []
        self.limit = (1 << bits) - 1

    def number(self, name: str) -> int | None:
        at = self.at.get(name)
        if at is None:
            if len(self.names) >= self.limit:
                return None
            at = self.at[name] = len(self.names)
            self.names.append(name)
        return at


_clinics = _Names(_CLINIC_BITS)
_physicians = _Names(_PHYSICIAN_BITS)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _US


def pack(identity: SlotIdentity) -> HeldKey:
    """``identity`` as an int, or itself if it does not fit (see the module docstring)."""
    clinic = _clinics.number(identity.clinic_key)
    physician = 0
    if identity.physician_key is not None:
        number = _physicians.number(identity.physician_key)
        physician = -1 if number is None else number + 1
    kind = _TYPE_AT.get(identity.appointment_type)
    start = _micros(identity.start)
    length = _micros(identity.end) - start
    zigzag = length << 1 if length >= 0 else (-length << 1) - 1
    if clinic is None or physician < 0 or kind is None or zigzag >> _LENGTH_BITS:
        return identity
    key = (start << _LENGTH_BITS) | zigzag
    key = (key << _TYPE_BITS) | kind
    key = (key << _PHYSICIAN_BITS) | physician
    return (key << _CLINIC_BITS) | clinic


def unpack(key: HeldKey) -> SlotIdentity:
    """The identity ``pack`` made ``key`` of."""
    if isinstance(key, SlotIdentity):
        return key
    clinic = key & ((1 << _CLINIC_BITS) - 1)
    key >>= _CLINIC_BITS
    physician = key & ((1 << _PHYSICIAN_BITS) - 1)
    key >>= _PHYSICIAN_BITS
    kind = key & ((1 << _TYPE_BITS) - 1)
    key >>= _TYPE_BITS
    zigzag = key & ((1 << _LENGTH_BITS) - 1)
    start = key >> _LENGTH_BITS
    length = zigzag >> 1 if not zigzag & 1 else -((zigzag + 1) >> 1)
    return SlotIdentity(
        _clinics.names[clinic],
        _physicians.names[physician - 1] if physician else None,
        _EPOCH + start * _US,
        _EPOCH + (start + length) * _US,
        _TYPES[kind],
    )


def start_of(key: HeldKey) -> datetime:
    """The start of the slot ``key`` stands for (UTC)."""
    if isinstance(key, SlotIdentity):
        return key.start
    return _EPOCH + (key >> _LOW_BITS) * _US
