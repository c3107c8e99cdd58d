"""Compact, time-sorted storage of one clinic's free slots, for ``sources.slot_index.index``.

A clinic's slots fall into *partitions*, one per (physician, appointment type):
every slot filter of a ``SlotQuery`` other than the clinic's own criteria and
the time window holds or fails for a whole partition. ``ClinicSlots`` keeps
the slots in flat columns sorted by ``(start, local_id)``, with no Python
object per slot: ``starts`` (``array('i')``, 4 bytes, while every start fits 32
bits, until 2038; else ``array('q')``, 8 bytes), ``durations``
(``array('I')``, 4 bytes) and ``part_of``, each slot's partition, as ``bytes``
(1 byte) while the clinic has at most 256 partitions (``array('H')`` beyond).
A time window is two bisections of ``starts``; a filter is a 256-byte table
of the wanted partitions, and ``part_of.translate(table)`` marks the matching
slots, counted and found with the C-speed ``bytes.count``/``bytes.find``
(``sources.slot_index.query``).

That is 9 bytes per slot (13 with 64-bit starts). Booking URLs, phones and
capacities are kept per partition while every slot of a partition has the same
(a schedule's booking link, a walk-in line's phone): nothing per slot. Otherwise they take a column
of string numbers (2 bytes per slot) or capacities (4 bytes); see ``Attribute``.
The clinic's distinct URLs and phones are one ``PackedTexts`` (what its links
share kept once: a link a slot costs about its distinctive end plus 3 bytes).

Slot local ids are ``CLINIC|PHYSICIAN|START|TYPE|END`` with ``%`` and ``|``
escaped in the ids, so they are unique per slot identity, and clinic order
sorts ties at one start the way those strings sort (see ``tie_key``). Slots
sharing an identity (two Schedules of one place, one per doctor without a
role) are served as one whose capacity is the sum of theirs, with the first
one's booking details; ``folds`` says which, and how many slots each holds.
``sources.slot_index.build`` makes a ``ClinicSlots`` from a builder's columns,
``sources.slot_index.splice`` a changed copy of one.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import TypeAlias

from sources.records import AppointmentType, SlotRecord
from sources.slot_index.texts import PackedTexts

MAX_DURATION_S = 0xFFFFFFFF  # durations are stored as 32-bit unsigned seconds
MAX_CAPACITY = 0xFFFFFFFF

# (physician local id or None, appointment type): what a partition holds.
PartitionKey = tuple[str | None, AppointmentType]
# (physician, start, end, type): what tells two slots of one clinic apart.
Identity = tuple[str | None, int, int, AppointmentType]
Languages = Callable[[str | None], tuple[str, ...]]
# A slot as a search tells it: start, duration, physician, type, URL, phone, capacity.
SlotFact = tuple[int, int, str | None, AppointmentType, str | None, str | None, int]
# Identities served as one for several slots, and how many: rare, so kept apart.
Folds = Mapping[Identity, int]
NO_FOLDS: Folds = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SlotChange:
    """One slot of an incremental update, with the fields of ``SlotIndexBuilder.add_slot``."""

    clinic_local_id: str
    physician_local_id: str | None
    start: int
    end: int
    appointment_type: AppointmentType
    booking_url: str | None = None
    booking_phone: str | None = None
    capacity: int = 1

    @property
    def identity(self) -> Identity:
        return (self.physician_local_id or None, self.start, self.end, self.appointment_type)

    @property
    def valid(self) -> bool:
        """A free slot ends after it starts and has at least one seat."""
        return 0 < self.end - self.start <= MAX_DURATION_S and 1 <= self.capacity <= MAX_CAPACITY

    def folded_with(self, other: SlotChange) -> SlotChange:
        """This slot and ``other`` (same identity) served as one: this one's booking
        details, both capacities."""
        return replace(self, capacity=min(self.capacity + other.capacity, MAX_CAPACITY))


@lru_cache(maxsize=8192)
def utc(epoch: int) -> datetime:
    """The aware UTC datetime of an epoch second; slots share few distinct times."""
    return datetime.fromtimestamp(epoch, UTC)


def escape_id(local_id: str) -> str:
    """A local id without ``|``, injectively, so ids can be joined with ``|``."""
    return local_id.replace("%", "%25").replace("|", "%7C")


def slot_local_id(
    clinic_local_id: str,
    physician_local_id: str | None,
    start: int,
    end: int,
    appointment_type: AppointmentType,
) -> str:
    """The stable local id of a slot: one per (clinic, physician, start, end, type)."""
    return (
        f"{escape_id(clinic_local_id)}|{escape_id(physician_local_id or '')}"
        f"|{start}|{appointment_type.value}|{end}"
    )


def tie_key(key: PartitionKey) -> tuple[str, str]:
    """How a partition's local ids compare with another's at one start.

    Each component ends with "|", which no escaped id contains, so the first
    differing component decides, even when one id is a prefix of the other;
    within a partition, the end (the last component) decides as a string.
    """
    return (escape_id(key[0] or "") + "|", key[1].value + "|")


def index_typecode(size: int) -> str:
    """The narrowest unsigned typecode indexing ``size`` items."""
    return "H" if size <= 0xFFFF else "I"


# A per-slot attribute (booking URL or phone number in ``strings``, capacity):
# a tuple by partition while each partition has one value, else an array by slot.
Attribute: TypeAlias = "tuple[int, ...] | array[int]"


class ClinicSlots:
    """One clinic's slots, frozen: see the module docstring for the layout.

    Never mutated once built, so indexes share it freely.
    """

    __slots__ = (
        "by_language",
        "by_physician",
        "by_type",
        "capacities",
        "durations",
        "folds",
        "part_escaped",
        "part_of",
        "part_physicians",
        "part_rank",
        "part_type_values",
        "part_types",
        "phone_ids",
        "sort_key",
        "starts",
        "strings",
        "url_ids",
    )

    sort_key: str  # the escaped clinic id and "|": how the clinic's local ids begin
    starts: array[int]
    durations: array[int]
    part_of: bytes | array[int]
    part_rank: tuple[int, ...]  # each partition's rank in local id order
    part_physicians: tuple[str | None, ...]
    part_types: tuple[AppointmentType, ...]
    part_escaped: tuple[str, ...]
    part_type_values: tuple[str, ...]
    strings: PackedTexts  # the clinic's booking URLs and phones, each once; 0 is None
    url_ids: Attribute
    phone_ids: Attribute
    capacities: Attribute
    by_type: dict[AppointmentType, tuple[int, ...]]
    by_physician: dict[str, tuple[int, ...]]
    by_language: dict[str, tuple[int, ...]]
    folds: Folds

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def folded(self) -> int:
        """Slots served as part of another (each identity's slots but one)."""
        return sum(self.folds.values()) - len(self.folds)

    @property
    def partition_count(self) -> int:
        return len(self.part_rank)

    def record(self, pos: int, source_id: str, clinic_local_id: str) -> SlotRecord:
        """The ``SlotRecord`` of the slot at clinic position ``pos``."""
        start = self.starts[pos]
        end = start + self.durations[pos]
        part = self.part_of[pos]
        urls, phones, capacities = self.url_ids, self.phone_ids, self.capacities
        capacity = capacities[part] if type(capacities) is tuple else capacities[pos]
        return SlotRecord(
            source_id=source_id,
            local_id=(
                f"{self.sort_key}{self.part_escaped[part]}|{start}"
                f"|{self.part_type_values[part]}|{end}"
            ),
            start=utc(start),
            end=utc(end),
            appointment_type=self.part_types[part],
            clinic_local_id=clinic_local_id,
            physician_local_id=self.part_physicians[part],
            booking_url=self.strings[urls[part] if type(urls) is tuple else urls[pos]],
            booking_phone=self.strings[phones[part] if type(phones) is tuple else phones[pos]],
            capacity=capacity if capacity != 1 else None,
        )

    def facts(self) -> frozenset[SlotFact]:
        """Every slot as what a search tells of it: (start, duration, physician, type,
        booking URL, phone, capacity); equal sets mean the same slots, however built."""
        urls, phones, capacities = self.url_ids, self.phone_ids, self.capacities
        by_part = type(urls) is tuple, type(phones) is tuple, type(capacities) is tuple
        strings, physicians, kinds = list(self.strings), self.part_physicians, self.part_types
        facts: set[SlotFact] = set()
        for pos, (start, duration, part) in enumerate(
            zip(self.starts, self.durations, self.part_of, strict=True)
        ):
            facts.add(
                (
                    start,
                    duration,
                    physicians[part],
                    kinds[part],
                    strings[urls[part] if by_part[0] else urls[pos]],
                    strings[phones[part] if by_part[1] else phones[pos]],
                    capacities[part] if by_part[2] else capacities[pos],
                )
            )
        return frozenset(facts)

    def folded_records(self, source_id: str, clinic_local_id: str) -> list[tuple[SlotRecord, int]]:
        """The slots served for several (``folds``), each with how many it holds."""
        found = ((self.find(identity), count) for identity, count in self.folds.items())
        return [(self.record(p, source_id, clinic_local_id), n) for p, n in found if p is not None]

    @property
    def part_ids(self) -> dict[PartitionKey, int]:
        """Each partition's number by its key; made when asked (changes and checks ask
        it, searches never), so that no clinic keeps a dict of its partitions."""
        keys = zip(self.part_physicians, self.part_types, strict=True)
        return {key: n for n, key in enumerate(keys)}

    def part_number(self, key: PartitionKey) -> int | None:
        """The number of the partition of this key, if the clinic has one."""
        physician, kind = key
        for n, (p, t) in enumerate(zip(self.part_physicians, self.part_types, strict=True)):
            if p == physician and t is kind:
                return n
        return None

    def find(self, identity: Identity) -> int | None:
        """The clinic position of the slot with this identity, if there is one."""
        physician, start, end, kind = identity
        part = self.part_number((physician, kind))
        if part is None:
            return None
        starts, part_of, durations = self.starts, self.part_of, self.durations
        at = bisect_left(starts, start)
        while at < len(starts) and starts[at] == start:
            if part_of[at] == part and durations[at] == end - start:
                return at
            at += 1
        return None


def partition_tables(slots: ClinicSlots, keys: list[PartitionKey], languages_of: Languages) -> None:
    """Fill the per-partition tables of ``slots`` from its partitions' keys."""
    order = sorted(range(len(keys)), key=lambda p: tie_key(keys[p]))
    rank = [0] * len(keys)
    for r, p in enumerate(order):
        rank[p] = r
    slots.part_rank = tuple(rank)
    slots.part_physicians = tuple(k[0] for k in keys)
    slots.part_types = tuple(k[1] for k in keys)
    slots.part_escaped = tuple(escape_id(k[0] or "") for k in keys)
    slots.part_type_values = tuple(k[1].value for k in keys)
    by_type: dict[AppointmentType, list[int]] = {}
    by_physician: dict[str, list[int]] = {}
    by_language: dict[str, list[int]] = {}
    for p, (physician, kind) in enumerate(keys):
        by_type.setdefault(kind, []).append(p)
        if physician is not None:
            by_physician.setdefault(physician, []).append(p)
        for language in dict.fromkeys(languages_of(physician)):
            by_language.setdefault(language, []).append(p)
    slots.by_type = {k: tuple(v) for k, v in by_type.items()}
    slots.by_physician = {k: tuple(v) for k, v in by_physician.items()}
    slots.by_language = {k: tuple(v) for k, v in by_language.items()}


PARTITION_TABLES = (
    "part_rank",
    "part_physicians",
    "part_types",
    "part_escaped",
    "part_type_values",
    "by_type",
    "by_physician",
    "by_language",
)


def part_kind(nparts: int) -> str:
    return "bytes" if nparts <= 256 else "H" if nparts <= 0x10000 else "I"


def part_column(parts: Iterable[int], nparts: int) -> bytes | array[int]:
    """Each slot's partition: bytes while every partition number fits in one."""
    kind = part_kind(nparts)
    if kind == "bytes":
        return bytes(parts)
    return array(kind, list(parts))  # from bytes, array() would copy raw memory
