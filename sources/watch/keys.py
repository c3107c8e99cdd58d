"""What is watched: one subscriber's exact filter (``WatchFilter``), and the coarse key
of the group it joins (``WatchKey``).

Subscriptions are grouped by what they watch, coarsely, so that the watch scales
with searches rather than subscribers. Two filters share a key when they have:

- the same cell of a grid of about ``CELL_KM`` (5 km) around their ``near`` point
  (no cell without ``near``); the key holds the cell's indices, never the point;
- the same window rounded to whole days (Montreal): the first day of an explicit
  ``startsAfter``, the day after an explicit ``startsBefore``; a bound left to its
  default moves with the clock and is kept as None;
- the same types, languages, region, clinics and physicians, as given.

A key is a frozen msgspec ``Struct``: hashable, and encoded as it is to travel
between instances (``sources.watch.changes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import msgspec

from sources.geo import EARTH_RADIUS_KM
from sources.records import AppointmentType, GeoPoint, Region, SlotQuery
from sources.timeutil import MONTREAL

__all__ = [
    "CELL_KM",
    "HALF_DIAGONAL_KM",
    "WatchFilter",
    "WatchKey",
    "cell_centre",
    "day_ceil",
    "day_of",
    "day_start",
]

CELL_KM = 5.0
_KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180
_CELL_DEGREES = CELL_KM / _KM_PER_DEGREE
# From a cell's centre to its corners, and a little more: a row's width in km varies
# with the latitude inside it (by far less than this margin at Quebec's latitudes).
HALF_DIAGONAL_KM = CELL_KM * math.sqrt(2) / 2 + 0.05


@dataclass(frozen=True, slots=True)
class WatchFilter:
    """What one subscriber watches: the slot search it asked for (checked, its defaults
    applied at subscribe time) and its window's bounds as it gave them.

    A bound left to its default moves with the clock: ``window(now)`` is the window
    at ``now``, as a query made then would have it (the default window slides, an
    explicit one stays put)::

        wanted = WatchFilter(query, starts_after=None, starts_before=None,
                             window_length=timedelta(days=7))
        lower, upper = wanted.window(now)  # now .. now + 7 days
    """

    query: SlotQuery
    starts_after: datetime | None
    starts_before: datetime | None
    window_length: timedelta

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        lower = now if self.starts_after is None else max(self.starts_after, now)
        upper = self.starts_before if self.starts_before is not None else lower + self.window_length
        return lower, upper

    @property
    def match_key(self) -> tuple[object, ...]:
        """What decides which of its group's changes a subscriber takes (the rest of its
        filter is its group's key): equal for subscribers that take the same."""
        return (
            self.starts_after,
            self.starts_before,
            self.window_length,
            self.query.near,
            self.query.radius_km,
        )

    def ended(self, now: datetime) -> bool:
        """Whether nothing can happen any more: an explicit window that has passed."""
        return self.starts_before is not None and self.starts_before <= now


class WatchKey(msgspec.Struct, frozen=True, kw_only=True):
    """What a group of subscriptions watches (see the module docstring).

    >>> WatchKey.of(wanted).cell  # doctest: +SKIP
    (1012, -1148)
    """

    cell: tuple[int, int] | None = None
    since: date | None = None
    until: date | None = None
    types: tuple[AppointmentType, ...] | None = None
    languages: tuple[str, ...] | None = None
    region: Region | None = None
    clinic_keys: tuple[str, ...] | None = None
    physician_keys: tuple[str, ...] | None = None

    @classmethod
    def of(cls, wanted: WatchFilter) -> WatchKey:
        query = wanted.query
        types = query.appointment_types
        return cls(
            cell=_cell_of(query.near) if query.near is not None else None,
            since=day_of(wanted.starts_after) if wanted.starts_after is not None else None,
            until=day_ceil(wanted.starts_before) if wanted.starts_before is not None else None,
            types=tuple(sorted(types, key=lambda t: t.value)) if types else None,
            languages=tuple(sorted(query.languages)) if query.languages else None,
            region=query.region,
            clinic_keys=tuple(sorted(query.clinic_keys)) if query.clinic_keys else None,
            physician_keys=tuple(sorted(query.physician_keys)) if query.physician_keys else None,
        )

    def centre(self) -> GeoPoint | None:
        return cell_centre(self.cell) if self.cell is not None else None


def _cell_of(point: GeoPoint) -> tuple[int, int]:
    row = math.floor(point.latitude / _CELL_DEGREES)
    return row, math.floor(point.longitude / _row_width(row))


def _row_width(row: int) -> float:
    """A cell's width in degrees of longitude on its row: CELL_KM at the row's middle."""
    latitude = (row + 0.5) * _CELL_DEGREES
    return min(360.0, _CELL_DEGREES / max(math.cos(math.radians(latitude)), 1e-6))


def cell_centre(cell: tuple[int, int]) -> GeoPoint:
    row, column = cell
    return GeoPoint((row + 0.5) * _CELL_DEGREES, (column + 0.5) * _row_width(row))


def day_of(moment: datetime) -> date:
    """The day (Montreal) of ``moment``."""
    return moment.astimezone(MONTREAL).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), MONTREAL)


def day_ceil(moment: datetime) -> date:
    """The first day (Montreal) starting at or after ``moment``."""
    day = day_of(moment)
    return day if day_start(day) == moment else day + timedelta(days=1)
