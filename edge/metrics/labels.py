"""A label whose values are bounded: the first ``limit`` distinct values pass, the
rest are folded into ``other``, so that no client can grow the scrape without end.

    operations = BoundedLabel(limit=200)
    operations("SlotsNearMe")  # "SlotsNearMe", or "other" once 200 others were seen
"""

from __future__ import annotations

__all__ = ["MAX_VALUES", "OTHER", "BoundedLabel"]

MAX_VALUES = 200
OTHER = "other"


class BoundedLabel:
    """At most ``limit`` distinct values (``other`` itself counted among them)."""

    def __init__(self, limit: int = MAX_VALUES, other: str = OTHER) -> None:
        if limit < 1:
            raise ValueError("a bounded label needs room for at least one value")
        self.limit = limit
        self.other = other
        self._seen: set[str] = {other}

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self.limit:
            self._seen.add(value)
            return value
        return self.other

    def __len__(self) -> int:
        return len(self._seen)
