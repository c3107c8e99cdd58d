"""One subscriber of a watch: its exact filter, applied in memory to its group's
changes, and the alerts waiting for it.

A subscriber's filter is a person's whereabouts: it lives here, in memory, for as
long as the subscription, and is never logged nor sent anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sources.errors import SourceError
    from sources.records import SlotQuery
    from sources.search import FoundSlot

__all__ = ["Alert", "WatchFilter"]


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

    def ended(self, now: datetime) -> bool:
        """Whether nothing can happen any more: an explicit window that has passed."""
        return self.starts_before is not None and self.starts_before <= now


@dataclass(frozen=True, slots=True)
class Alert:
    """What one subscriber hears at once: slots opened at the source (``distance_km``
    from its own point), the keys of slots gone (taken, or withdrawn), and the sources
    failing as of ``seen_at`` (empty once they all answer again)."""

    seen_at: datetime
    opened: tuple[FoundSlot, ...] = ()
    gone: tuple[str, ...] = ()
    failing: tuple[SourceError, ...] = ()
