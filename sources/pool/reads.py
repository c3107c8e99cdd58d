"""One read of one source, as a value: what to call, and what names it in the cache.

The federation describes every upstream call as a ``Read`` (a slot search, a
clinic search, a physician lookup) rather than as an opaque coroutine, so the
pool can answer it from the cache, collapse identical concurrent reads into
one, and refresh it in the background.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson

from sources.records import (
    ClinicQuery,
    ClinicRecord,
    PhysicianQuery,
    PhysicianRecord,
    SlotQuery,
    SlotResult,
)

if TYPE_CHECKING:
    from sources.base import Source

T = TypeVar("T")
Query = SlotQuery | ClinicQuery | PhysicianQuery


@dataclass(frozen=True, slots=True)
class Read(Generic[T]):
    """``kind`` and ``query`` identify the read; ``value_type`` types its answer."""

    kind: str
    query: Query
    value_type: Any
    run: Callable[[Source], Awaitable[T]] = field(compare=False, repr=False)

    def digest(self) -> str:
        """A stable name for the query, the same in every process and instance."""
        key = (self.kind, type(self.query), self.query)
        try:
            digest = _DIGESTS.get(key)
        except TypeError:  # a query holding an unhashable value: named each time
            return self._written()
        if digest is None:
            digest = self._written()
            if len(_DIGESTS) >= _MAX_DIGESTS:
                _DIGESTS.clear()
            _DIGESTS[key] = digest
        return digest

    def _written(self) -> str:
        data = orjson.dumps([self.kind, _canonical(self.query)])
        return hashlib.sha256(data).hexdigest()[:32]

    def weight(self, value: T) -> int:
        """How many records the answer holds (what it costs a cache to keep)."""
        if isinstance(value, SlotResult):
            return len(value.slots) + len(value.clinics) + len(value.physicians)
        return len(value) if isinstance(value, list) else 1


# The digests of the latest queries: the same searches come again and again (a query is
# a frozen value; an equal one names the same read), and writing one out costs more.
_DIGESTS: dict[tuple[str, type, Query], str] = {}
_MAX_DIGESTS = 4096


def slots_read(query: SlotQuery) -> Read[SlotResult]:
    return Read("slots", query, SlotResult, lambda source: source.search_slots(query))


def clinics_read(query: ClinicQuery) -> Read[list[ClinicRecord]]:
    return Read("clinics", query, list[ClinicRecord], lambda source: source.search_clinics(query))


def physicians_read(query: PhysicianQuery) -> Read[list[PhysicianRecord]]:
    return Read(
        "physicians", query, list[PhysicianRecord], lambda source: source.get_physicians(query)
    )


def _canonical(value: Any) -> Any:
    """Plain JSON values, independent of set order and of hash seeds."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, frozenset | set):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value
