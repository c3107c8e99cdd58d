"""``Bulkhead``: at most ``max_concurrency`` calls in flight to one source, and the
watch's background calls never in a request's way.

A request waits for a free slot, as with a semaphore. A background call (the
watch's, ``sources.watch``) takes a slot only when one is free at once, else it
waits for its next turn; and a request that finds every slot taken while a
background call holds one takes that one: the background call finishes outside
the count. So a request never waits for a background call, and the source sees at
most the background calls under way over its limit, only while requests fill it.

    bulkhead = Bulkhead(10)
    async with bulkhead.request():
        ...  # a client's call
    async with bulkhead.background() as admitted:
        if admitted:
            ...  # the watch's call
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

__all__ = ["Bulkhead"]


class _Hold:
    """A background call's slot, until a request takes it over."""

    __slots__ = ("counted",)

    def __init__(self) -> None:
        self.counted = True


class Bulkhead:
    """See the module docstring."""

    def __init__(self, size: int, on_wait: Callable[[float], None] | None = None) -> None:
        self.size = size
        self._slots = asyncio.Semaphore(size)
        self._background: list[_Hold] = []
        # Told how long each request that found every slot taken waited (the metrics').
        self._on_wait = on_wait

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        if self._slots.locked():
            for hold in self._background:
                if hold.counted:
                    # That call goes on outside the count; its slot is free for us.
                    hold.counted = False
                    self._slots.release()
                    break
        if not self._slots.locked():
            async with self._slots:
                yield
            return
        started = time.perf_counter()
        try:
            await self._slots.acquire()
        finally:
            # Counted whether it got its slot or gave up (its deadline, a cancellation).
            if self._on_wait is not None:
                self._on_wait(time.perf_counter() - started)
        try:
            yield
        finally:
            self._slots.release()

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[bool]:
        """Yields whether the call may go (a slot was free at once)."""
        if self._slots.locked():
            yield False
            return
        await self._slots.acquire()  # free: taken without waiting
        hold = _Hold()
        self._background.append(hold)
        try:
            yield True
        finally:
            self._background.remove(hold)
            if hold.counted:
                self._slots.release()
