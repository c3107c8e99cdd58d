"""Freezing a clinic's slots, as a builder gathered them, into ``ClinicSlots``.

``SlotColumns`` collects one clinic's slots in arrival order (lists first,
packed into arrays every ``FLUSH`` values: appending to a list is a few times
faster); ``freeze`` sorts them into clinic order, serves slots sharing an
identity as one (the first, with the seats of all) and packs the columns
described in ``sources.slot_index.columns``.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from itertools import compress, islice
from operator import eq, itemgetter, sub

from sources.records import AppointmentType
from sources.slot_index.columns import (
    MAX_CAPACITY,
    NO_FOLDS,
    Attribute,
    ClinicSlots,
    Identity,
    Languages,
    PartitionKey,
    escape_id,
    index_typecode,
    part_column,
    partition_tables,
)
from sources.slot_index.texts import PackedTexts

# Values (five per slot) a clinic buffers in a list before packing them into arrays:
# appending to a list is a few times faster than to an array.
FLUSH = 5 * 256


class SlotColumns:
    """One clinic's slots in arrival order, as the builder gathers them (mutable).

    Booking URLs and phones are interned in ``strings`` (0 is None); capacities
    other than 1 are kept sparsely by arrival position. Call ``flush()`` before
    reading the arrays.
    """

    __slots__ = (
        "capacities",
        "ends",
        "part_keys",
        "parts",
        "pending",
        "phones",
        "starts",
        "string_ids",
        "strings",
        "urls",
    )

    def __init__(self) -> None:
        self.starts = array("q")
        self.ends = array("q")
        self.parts = array("I")
        self.urls = array("I")
        self.phones = array("I")
        self.pending: list[int] = []  # start, end, part, url, phone of the latest slots
        # Keyed by the type's value: hashing an enum member runs Python code.
        self.part_keys: dict[tuple[str | None, str], int] = {}
        self.strings: list[str | None] = [None]
        self.string_ids: dict[str | None, int] = {None: 0}
        self.capacities: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.starts) + len(self.pending) // 5

    @property
    def partition_keys(self) -> list[PartitionKey]:
        """The partitions' keys, by partition number."""
        return [(physician, AppointmentType(kind)) for physician, kind in self.part_keys]

    def append(
        self,
        physician_local_id: str | None,
        start: int,
        end: int,
        appointment_type: AppointmentType,
        booking_url: str | None,
        booking_phone: str | None,
        capacity: int,
    ) -> None:
        """Add one valid slot (see ``SlotChange.valid``).

        ``SlotIndexBuilder.add_slot`` does the same inline, once per slot of a feed.
        """
        key = (physician_local_id, appointment_type._value_)
        part = self.part_keys.get(key)
        if part is None:
            part = self.part_keys[key] = len(self.part_keys)
        url, phone = self.intern(booking_url), self.intern(booking_phone)
        if capacity != 1:
            self.capacities[len(self)] = capacity
        pending = self.pending
        pending += (start, end, part, url, phone)
        if len(pending) >= FLUSH:
            self.flush()

    def intern(self, text: str | None) -> int:
        """The number of a booking URL or phone in ``strings``."""
        sid = self.string_ids.get(text)
        if sid is None:
            sid = self.string_ids[text] = len(self.strings)
            self.strings.append(text)
        return sid

    def flush(self) -> None:
        """Pack the buffered slots into the arrays."""
        pending = self.pending
        if pending:
            self.starts.fromlist(pending[0::5])  # fromlist: twice as fast as extend
            self.ends.fromlist(pending[1::5])
            self.parts.fromlist(pending[2::5])
            self.urls.fromlist(pending[3::5])
            self.phones.fromlist(pending[4::5])
            pending.clear()


def _attribute(
    values: Sequence[int], parts: Sequence[int], nparts: int, typecode: str
) -> Attribute:
    """``values`` (in clinic order) by partition if each partition has one, else by slot."""
    pairs = set(zip(parts, values, strict=True))
    if len(pairs) != len({p for p, _ in pairs}):  # some partition has two values
        return array(typecode, values)
    by_part = [0] * nparts
    for part, value in pairs:
        by_part[part] = value
    return tuple(by_part)


def _taker(order: Sequence[int]) -> Callable[[list[int] | array[int]], Sequence[int]]:
    """A function taking a column's items in ``order``: ``itemgetter`` over a list is
    several times faster than a comprehension or ``map`` over an array."""
    if len(order) == 1:
        only = order[0]
        return lambda column: (column[only],)
    getter = itemgetter(*order)

    def take(column: list[int] | array[int]) -> Sequence[int]:
        items: Sequence[int] = getter(column if isinstance(column, list) else column.tolist())
        return items

    return take


def _settle_ties(
    order: list[int], keys: list[int], ends: Sequence[int]
) -> tuple[list[int], dict[int, list[int]]]:
    """Order runs of equal ``keys`` (one start, one partition) by end as a string,
    keeping the first arrival of each identity; with, by its position in the new
    order, the arrivals of every identity that had several."""
    ranked = _taker(order)(keys)
    tied = list(compress(range(len(order) - 1), map(eq, ranked, islice(ranked, 1, None))))
    out: list[int] = []
    groups: dict[int, list[int]] = {}
    done = 0
    t = 0
    while t < len(tied):
        first = last = tied[t]
        while t + 1 < len(tied) and tied[t + 1] == last + 1:
            t += 1
            last = tied[t]
        t += 1
        out += order[done:first]
        run = sorted(order[first : last + 2], key=lambda i: str(ends[i]))  # stable
        for k, i in enumerate(run):
            if k and ends[run[k - 1]] == ends[i]:
                groups.setdefault(len(out) - 1, [run[k - 1]]).append(i)
            else:
                out.append(i)
        done = last + 2
    out += order[done:]
    return out, groups


def freeze(
    clinic_local_id: str, columns: SlotColumns, languages_of: Languages
) -> ClinicSlots | None:
    """Sort, fold and pack ``columns``; None when there is no slot.

    Slots with the same identity (physician, start, end, type) are served as one:
    the first added, its capacity the sum of theirs (``ClinicSlots.folds``).
    ``languages_of`` gives the languages a partition's physician (None: the clinic
    itself) answers a ``languages`` filter with.
    """
    columns.flush()
    n = len(columns)
    if n == 0:
        return None
    keys = columns.partition_keys
    slots = ClinicSlots()
    slots.sort_key = escape_id(clinic_local_id) + "|"
    partition_tables(slots, keys, languages_of)
    nparts, rank = len(keys), slots.part_rank
    starts, ends, parts = columns.starts, columns.ends, columns.parts
    sort_keys = [s * nparts + r for s, r in zip(starts, map(rank.__getitem__, parts), strict=True)]
    # Stable: slots of one identity stay in arrival order, and the first one is kept.
    order = sorted(range(n), key=sort_keys.__getitem__)
    groups: dict[int, list[int]] = {}
    if len(set(sort_keys)) != n:
        order, groups = _settle_ties(order, sort_keys, ends)
    take = _taker(order)
    ordered_starts = take(starts)
    try:
        slots.starts = array("i", ordered_starts)  # 32 bits while times fit (until 2038)
    except OverflowError:
        slots.starts = array("q", ordered_starts)
    slots.durations = array("I", map(sub, take(ends), ordered_starts))
    part_of = take(parts)
    slots.part_of = part_column(part_of, nparts)
    slots.strings = PackedTexts.of(columns.strings)
    typecode = index_typecode(len(columns.strings))
    slots.url_ids = _attribute(take(columns.urls), part_of, nparts, typecode)
    slots.phone_ids = _attribute(take(columns.phones), part_of, nparts, typecode)
    slots.folds = NO_FOLDS
    if columns.capacities or groups:
        seats = columns.capacities
        capacities = [seats.get(i, 1) for i in order]
        folds: dict[Identity, int] = {}
        for pos, group in groups.items():
            capacities[pos] = min(sum(seats.get(i, 1) for i in group), MAX_CAPACITY)
            physician, kind = keys[part_of[pos]]
            folds[(physician, ordered_starts[pos], ends[order[pos]], kind)] = len(group)
        slots.folds = folds or NO_FOLDS
        slots.capacities = _attribute(capacities, part_of, nparts, "I")
    else:
        slots.capacities = (1,) * nparts
    return slots
