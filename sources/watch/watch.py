"""``SlotWatch``: slot alerts, the changes of free slots at the sources.

A first, plain version: each subscriber's search is read again every ``poll_s``
and compared with what the last read held.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sources.search import Federation
from sources.watch.member import Alert, WatchFilter

if TYPE_CHECKING:
    from sources.errors import SourceError
    from sources.pool import SourcePool
    from sources.search import FoundSlot

__all__ = ["SlotWatch"]

PAGE = 1000


def _now() -> datetime:
    return datetime.now(UTC)


class SlotWatch:
    """The app's one watch of the sources, for every subscription."""

    def __init__(
        self, pool: SourcePool, clock: Callable[[], datetime] = _now, poll_s: float = 2.0
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.poll_s = poll_s

    async def aclose(self) -> None:
        """Stop watching (the app is shutting down)."""

    async def alerts(self, wanted: WatchFilter) -> AsyncGenerator[Alert, None]:
        held: dict[str, FoundSlot] | None = None
        failing: tuple[str, ...] = ()
        while True:
            now = self.clock()
            if wanted.ended(now):
                return
            lower, upper = wanted.window(now)
            slots, errors = await self._read(
                replace(wanted.query, starts_after=lower, starts_before=upper, limit=PAGE)
            )
            failed = tuple(sorted(e.source_id for e in errors))
            if held is not None:
                opened = tuple(s for k, s in slots.items() if k not in held)
                gone = tuple(k for k, s in held.items() if k not in slots and s.record.start > now)
                if opened or gone or failed != failing:
                    yield Alert(now, opened, gone, tuple(errors))
            held, failing = slots, failed
            await asyncio.sleep(self.poll_s)

    async def _read(self, query: object) -> tuple[dict[str, FoundSlot], list[SourceError]]:
        from sources.records import SlotQuery

        assert isinstance(query, SlotQuery)
        federation = Federation(self.pool)
        page = await federation.search_slots(query)
        slots = {s.key: s for s in page.slots}
        errors = list(page.errors)
        while page.has_next:
            page = await federation.search_slots(query, page.end())
            slots.update((s.key, s) for s in page.slots)
            errors += page.errors
        return slots, errors
