"""One slot search over a ``SlotIndex``'s candidate clinics: exact count, first slots.

``SlotSearch.add_all`` finds each candidate clinic's time window with two
bisections. Without a slot filter (type, physician, language) every slot of the
window matches; with one, the clinic's matching partitions make a 256-byte
table, and ``part_of.translate(table)`` marks the matching slots: counted with
``bytes.count`` and walked with ``bytes.find``, both in C. Each clinic then
queues a *head*, its first match; ``first`` keeps the heads that can give one of
the first ``limit`` slots (those starting no later than the ``limit``-th earliest
head: any other clinic's matches all come later, ties included), gives them their
order key (the clinic's, after its distance when a point is given: distances are
computed for those clinics only), and merges them with a heap to take the first
``limit`` slots in (start, local id) order, so a search never visits slots
beyond those it returns, and its count is exact.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from sources.geo import Prepared, distances_km
from sources.records import AppointmentType, GeoPoint
from sources.slot_index.columns import ClinicSlots

K = TypeVar("K")

# A clinic's first match, as add_all finds it: (start, clinic number, position, window
# end, marks). ``marks`` is None when every slot of the window matches, else a bytes
# string holding 1 at the positions of matching slots.
_Found = tuple[int, int, int, int, bytes | None]
# The same in first()'s heap: (start, clinic sort key, clinic position, clinic number,
# window end, marks). One head per clinic, so the clinic sort key (the escaped clinic
# id, which begins the clinic's local ids) orders ties at one start and heads never
# compare past the position.
_Head = tuple[int, str | tuple[float, str], int, int, int, bytes | None]
# The distances from the query's point of the clinics numbered.
Distances = Callable[[list[int]], Mapping[int, float]]


def measuring(
    near: GeoPoint, points: Mapping[int, Prepared], measured: dict[int, float]
) -> Distances:
    """Distances from ``near``: those in ``measured`` (the grid's, for the clinics of a
    radius), the others computed from ``points`` and added to it."""

    def distances(wanted: list[int]) -> dict[int, float]:
        missing = [n for n in wanted if n not in measured]
        if missing:
            found = distances_km(near, [points[n] for n in missing])
            measured.update(zip(missing, found, strict=True))
        return measured

    return distances


class SlotSearch:
    """Counts and queues the matches of one query, clinic by clinic."""

    __slots__ = (
        "after",
        "before",
        "distances",
        "filtered",
        "heads",
        "languages",
        "physicians",
        "ties_cut",
        "total",
        "types",
    )

    def __init__(
        self,
        after: int,
        before: int,
        types: frozenset[AppointmentType] | None,
        languages: frozenset[str] | None,
        physicians: Sequence[str] | None,
        distances: Distances | None = None,
    ) -> None:
        self.after, self.before = after, before
        # With a point to measure from, slots of one start come nearest first.
        self.distances = distances
        self.types, self.languages, self.physicians = types, languages, physicians
        self.filtered = types is not None or languages is not None or physicians is not None
        self.total = 0
        self.heads: list[_Found] = []
        self.ties_cut = False  # set by first(): its cap stopped it inside a tie group

    def add_all(self, slots: Sequence[ClinicSlots | None], numbers: Iterable[int]) -> None:
        """Count and queue the matches of these clinics."""
        after, before, heads, filtered = self.after, self.before, self.heads, self.filtered
        total = 0
        for number in numbers:
            clinic = slots[number]
            if clinic is None:
                continue
            starts = clinic.starts
            lo = bisect_left(starts, after)
            hi = bisect_left(starts, before, lo)
            if lo == hi:
                continue
            if filtered:
                chosen = self._partitions(clinic)
                if chosen is not None:
                    if not chosen:
                        continue
                    marks = _marks(clinic, chosen, lo, hi)
                    count = marks.count(1, lo, hi)
                    if count == 0:
                        continue
                    if count < hi - lo:
                        total += count
                        lo = marks.find(1, lo, hi)
                        heads.append((starts[lo], number, lo, hi, marks))
                        continue
            total += hi - lo
            heads.append((starts[lo], number, lo, hi, None))
        self.total += total

    def _partitions(self, clinic: ClinicSlots) -> set[int] | None:
        """The clinic's partitions that meet the filters; None when all of them do."""
        chosen: set[int] | None = None
        for matching in (
            None if self.types is None else _union(clinic.by_type, self.types),
            None if self.physicians is None else _union(clinic.by_physician, self.physicians),
            None if self.languages is None else _union(clinic.by_language, self.languages),
        ):
            if matching is None:
                continue
            chosen = matching if chosen is None else chosen & matching
            if not chosen:
                return chosen
        if chosen is None or len(chosen) == clinic.partition_count:
            return None
        return chosen

    def first(self, slots: Sequence[ClinicSlots | None], limit: int) -> list[tuple[int, int]]:
        """The first ``limit`` matches as (clinic number, clinic position), plus every
        further match tied with the last one (at most ``MAX_TIE_EXTRA`` more), so a
        truncated answer never splits a tie group: the slots of one start or, ordered
        by distance, of one start and one distance (one clinic, mostly)."""
        heads = self._heads(slots, limit)
        heapq.heapify(heads)
        found: list[tuple[int, int]] = []
        by_distance = self.distances is not None
        tie: object = None
        cap = limit + MAX_TIE_EXTRA
        while heads and (
            len(found) < limit or (_tie(heads[0], by_distance) == tie and len(found) < cap)
        ):
            head = heads[0]
            tie = _tie(head, by_distance)
            _start, sort_key, pos, number, hi, marks = head
            found.append((number, pos))
            pos = pos + 1 if marks is None else marks.find(1, pos + 1, hi)
            if 0 <= pos < hi:
                starts = slots[number].starts  # type: ignore[union-attr]
                heapq.heapreplace(heads, (starts[pos], sort_key, pos, number, hi, marks))
            else:
                heapq.heappop(heads)
        self.ties_cut = bool(heads) and _tie(heads[0], by_distance) == tie
        return found

    def _heads(self, slots: Sequence[ClinicSlots | None], limit: int) -> list[_Head]:
        """The heads of the clinics that can give one of the first ``limit`` matches,
        with their order keys."""
        kept = self.heads
        if 0 < limit < len(kept):
            kept.sort()  # by start (then clinic number: unique)
            last = kept[limit - 1][0]
            end = limit
            while end < len(kept) and kept[end][0] == last:
                end += 1
            kept = kept[:end]
        if self.distances is None:
            return [
                (start, slots[n].sort_key, lo, n, hi, marks)  # type: ignore[union-attr]
                for start, n, lo, hi, marks in kept
            ]
        distance = self.distances([h[1] for h in kept])
        return [
            (start, (distance[n], slots[n].sort_key), lo, n, hi, marks)  # type: ignore[union-attr]
            for start, n, lo, hi, marks in kept
        ]


def _tie(head: _Head, by_distance: bool) -> object:
    """What a head shares with the slots it is tied with."""
    return (head[0], head[1][0]) if by_distance else head[0]


# A truncated answer completes the tie group of its last start up to this many extra slots.
MAX_TIE_EXTRA = 1000


def _marks(clinic: ClinicSlots, chosen: set[int], lo: int, hi: int) -> bytes:
    """Bytes marking with 1 the slots of ``chosen`` partitions (at least up to ``hi``)."""
    part_of = clinic.part_of
    if isinstance(part_of, bytes):
        table = bytearray(256)
        for part in chosen:
            table[part] = 1
        return part_of.translate(table)
    # More than 256 partitions: mark the window only, one slot at a time.
    return bytes(lo) + bytes(map(chosen.__contains__, part_of[lo:hi]))


def _union(by_value: Mapping[K, tuple[int, ...]], wanted: Iterable[K]) -> set[int]:
    matching: set[int] = set()
    for value in wanted:
        matching.update(by_value.get(value, ()))
    return matching
