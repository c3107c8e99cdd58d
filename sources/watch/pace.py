"""``Pace``: how often the watch may ask one live source, shared by all it watches there.

Each source asked live (FHIR, REST) is asked at most ``watch_calls_per_minute``
times a minute by the watch (its ``LiveOptions``; 30 by default), whatever the
number of groups watching it: every background call waits for a turn, and turns
are handed out in the order they were asked for (first come, first served), so
the groups of a source take turns, round-robin. A 429 from the source halves its
pace for an hour (again at each 429, down to one call every ``MAX_INTERVAL_S``),
said in one log line.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from sources.settings import DEFAULT_WATCH_CALLS_PER_MINUTE, LiveOptions

if TYPE_CHECKING:
    from sources.base import Source

__all__ = ["Pace", "calls_per_minute_of"]

logger = logging.getLogger("passerelle.watch")


def calls_per_minute_of(source: Source) -> float:
    """The calls a minute the watch may make to ``source`` (its option, or the default)."""
    options = source.config.options
    if isinstance(options, LiveOptions):
        return float(options.watch_calls_per_minute)
    return DEFAULT_WATCH_CALLS_PER_MINUTE


class Pace:
    """The turns of one live source (see the module docstring)::

    pace = Pace("clinique-a")
    await pace.turn(source)  # returns when the next call may be made
    """

    SLOWED_FOR_S: ClassVar[float] = 3600.0
    MAX_INTERVAL_S: ClassVar[float] = 600.0

    def __init__(self, source_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.source_id = source_id
        self.calls = 0  # turns handed out since start
        self._clock = clock
        self._lock = asyncio.Lock()  # hands turns out in the order they were asked for
        self._next_at = -math.inf
        self._halvings = 0
        self._slowed_until = -math.inf
        self._calls_per_minute = DEFAULT_WATCH_CALLS_PER_MINUTE

    @property
    def interval_s(self) -> float:
        """Seconds between two calls now."""
        self._forget_expired()
        interval = 60.0 / self._calls_per_minute * 2.0**self._halvings
        return min(interval, max(self.MAX_INTERVAL_S, 60.0 / self._calls_per_minute))

    async def turn(self, source: Source) -> None:
        """Wait for the next turn to call ``source`` (its option read at each turn)."""
        async with self._lock:
            self._calls_per_minute = calls_per_minute_of(source)
            wait = self._next_at - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_at = self._clock() + self.interval_s
            self.calls += 1

    def _forget_expired(self) -> None:
        if self._halvings and self._clock() >= self._slowed_until:
            self._halvings = 0

    def rate_limited(self) -> None:
        """The source answered 429: half the pace for an hour."""
        self._forget_expired()
        self._halvings += 1
        self._slowed_until = self._clock() + self.SLOWED_FOR_S
        self._next_at = max(self._next_at, self._clock() + self.interval_s)
        logger.warning(
            "source %s answered 429 to the watch of subscriptions: it is asked at most "
            "%.3g times a minute for an hour",
            self.source_id,
            60.0 / self.interval_s,
        )
