"""One subscriber of a group: its exact filter, applied in memory to the group's
changes, and what it has not heard yet.

A subscriber's filter is a person's whereabouts: it lives here, in memory, for as
long as the subscription, and is never logged nor sent anywhere. What waits for a
slow subscriber is folded together (a slot opened then gone before it heard of
either is neither), so it is bounded by its group's slots, however slow it reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sources.geo import distance_km
from sources.search import FoundSlot

if TYPE_CHECKING:
    from sources.errors import SourceError
    from sources.records import GeoPoint
    from sources.watch.changes import GroupChange, SourceFailure
    from sources.watch.keys import WatchFilter

__all__ = ["Alert", "Matched", "Member", "matched"]


@dataclass(frozen=True, slots=True)
class Alert:
    """What one subscriber hears at once: slots opened at a source (``distance_km`` from
    its own point), the keys of slots gone (taken, or withdrawn), and the sources
    failing as of ``seen_at`` (empty once they all answer again).

    ``same_as``: a value equal for alerts that say the same thing (subscribers of one
    group with the same filter hear the same slots, as the same objects), so that what
    is made of an alert can be made once for all of them; None: not shared."""

    seen_at: datetime
    opened: tuple[FoundSlot, ...] = ()
    gone: tuple[str, ...] = ()
    failing: tuple[SourceError, ...] = ()
    same_as: Hashable | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Matched:
    """What of a group's change one filter takes: opened slots (with their distance from
    its point) and the keys of gone ones."""

    opened: tuple[FoundSlot, ...]
    gone: tuple[str, ...]


def matched(change: GroupChange, wanted: WatchFilter, now: datetime) -> Matched:
    """What of ``change`` a subscriber with filter ``wanted`` takes at ``now``."""
    opened: list[FoundSlot] = []
    for slot in change.opened:
        mine, distance = _matches(wanted, slot.record.start, slot.clinic.location, now)
        if mine:
            opened.append(
                slot if slot.distance_km == distance else replace(slot, distance_km=distance)
            )
    gone = [g.key for g in change.gone if _matches(wanted, g.start, g.location, now)[0]]
    return Matched(tuple(opened), tuple(gone))


def _matches(
    wanted: WatchFilter, start: datetime, location: GeoPoint | None, now: datetime
) -> tuple[bool, float | None]:
    """Whether a slot is within ``wanted`` at ``now``, and its distance from its point
    (None without one)."""
    lower, upper = wanted.window(now)
    if not lower <= start < upper:
        return False, None
    near, radius = wanted.query.near, wanted.query.radius_km
    if near is None:
        return True, None
    if location is None:
        return False, None
    distance = distance_km(near, location)
    return radius is None or distance <= radius, distance


class Member:
    """A subscriber in its group. ``hear`` takes the group's changes that its filter
    matches; ``next`` waits for the next alert."""

    def __init__(self, wanted: WatchFilter) -> None:
        self.wanted = wanted
        self._opened: dict[str, FoundSlot] = {}
        self._gone: dict[str, None] = {}
        self._failing: tuple[SourceFailure, ...] = ()
        self._failing_told: frozenset[str] = frozenset()
        self._seen_at = datetime.min.replace(tzinfo=UTC)  # set by the first change heard
        self._news = asyncio.Event()
        self.closed = False

    def close(self) -> None:
        """The watch is stopping: ``next`` returns None at once, from now on."""
        self.closed = True
        self._news.set()

    def hear(self, change: GroupChange, now: datetime, taken: Matched | None = None) -> None:
        """Take what of ``change`` matches this subscriber's filter at ``now``
        (``taken``: that, already worked out for another subscriber with the same
        ``wanted.match_key``)."""
        if taken is None:
            taken = matched(change, self.wanted, now)
        for slot in taken.opened:
            key = slot.key
            if key in self._gone:
                del self._gone[key]  # gone then free again before it heard: nothing to tell
                continue
            self._opened[key] = slot
        for key in taken.gone:
            if key in self._opened:
                del self._opened[key]  # opened and gone before it heard: neither
            else:
                self._gone[key] = None
        self._failing = change.failing
        self._seen_at = change.seen_at
        if self._opened or self._gone or self._failing_ids() != self._failing_told:
            self._news.set()

    def _failing_ids(self) -> frozenset[str]:
        return frozenset(f.source_id for f in self._failing)

    async def next(self, timeout_s: float) -> Alert | None:
        """The next alert, or None after ``timeout_s`` without one (or once closed)."""
        try:
            # A timer, not a task a wait (asyncio.wait_for) would make: one per alert and
            # subscriber when thousands hear one change.
            async with asyncio.timeout(timeout_s):
                await self._news.wait()
        except TimeoutError:
            return None
        if self.closed:
            return None
        self._news.clear()
        opened = tuple(sorted(self._opened.values(), key=FoundSlot.sort_key))
        gone = tuple(self._gone)
        # Alike for subscribers that heard the same changes with the same filter: the
        # same slot objects (``Group`` works out a filter's share once per change).
        same_as = (self._seen_at, tuple(map(id, opened)), gone, self._failing)
        alert = Alert(self._seen_at, opened, gone, tuple(f.error() for f in self._failing), same_as)
        self._opened, self._gone = {}, {}
        self._failing_told = self._failing_ids()
        return alert
