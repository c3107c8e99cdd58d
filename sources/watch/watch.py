"""``SlotWatch``: slot alerts, the changes of free slots at the sources, for every
subscription of the app.

``alerts(wanted)`` puts a subscriber in the group of its key (``WatchKey``),
starting the group's task with its first subscriber and stopping it after its
last; each group is read once for all its members (``sources.watch.group``), and
each member takes what its own filter matches (``sources.watch.member``). Live
sources are paced per source, for all groups together (``sources.watch.pace``);
bulk feeds are read again as soon as the pool says one has loaded its copy.

    watch = SlotWatch(pool, clock=settings.clock)
    async for alert in watch.alerts(wanted):
        ...  # alert.opened, alert.gone, alert.failing
    await watch.aclose()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sources.watch.group import Group, GroupSettings
from sources.watch.keys import WatchKey
from sources.watch.member import Alert, Member
from sources.watch.pace import Pace
from sources.watch.relay import DEFAULT_LEASE_S, GroupRelay, WatchRelay

if TYPE_CHECKING:
    from sources.base import CopyChanges, Source
    from sources.kv import RedisLink
    from sources.pool import SourcePool
    from sources.watch.keys import WatchFilter

__all__ = ["MAX_SLOTS", "SlotWatch"]

# Free slots a group holds per source at most (see sources/watch/README.md).
MAX_SLOTS = 10_000
# How often a subscriber waiting for an alert checks whether its window has passed.
ENDED_CHECK_S = 30.0
# Shutdown waits at most this long for the groups' tasks: one stuck in a read must not
# hold the app (or a test) open.
CLOSE_WAIT_S = 5.0

logger = logging.getLogger("passerelle.watch")


def _now() -> datetime:
    return datetime.now(UTC)


class SlotWatch:
    """The app's one watch of the sources (see the module docstring). ``clock`` is the
    app's "now" (tests pin it); ``max_slots`` bounds each group's slots per source;
    ``link``: Redis, to watch each group from one instance under a lease of
    ``lease_s`` seconds (``sources.watch.relay``)."""

    def __init__(
        self,
        pool: SourcePool,
        clock: Callable[[], datetime] = _now,
        *,
        max_slots: int = MAX_SLOTS,
        sync_s: float = 1.0,
        link: RedisLink | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.groups: dict[WatchKey, Group] = {}
        self.paces: dict[str, Pace] = {}
        self._settings = GroupSettings(pool, clock, self._pace_for, max_slots, sync_s)
        self._unlisten = pool.on_copy_loaded(self._copy_loaded)
        self.relay = WatchRelay(link, lease_s) if link is not None else None
        self._ending: set[asyncio.Task[None]] = set()
        if link is None:
            logger.info("no redis: this instance watches its own subscribers' slot alerts")

    async def alerts(self, wanted: WatchFilter) -> AsyncGenerator[Alert, None]:
        """The alerts of one subscriber, until it leaves, its explicit window passes or
        the watch closes. Nothing is sent before the first change."""
        key = WatchKey.of(wanted)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(key, self._settings)
            if self.relay is None:
                group.start()
            else:
                group.task = asyncio.create_task(GroupRelay(self.relay, group).run())
        member = Member(wanted)
        group.join(member)
        try:
            while not member.closed and not wanted.ended(self.clock()):
                alert = await member.next(ENDED_CHECK_S)
                if alert is not None:
                    yield alert
        finally:
            group.leave(member)
            if not group.members and self.groups.get(key) is group:
                del self.groups[key]
                if group.task is not None:
                    # Its end (releasing its lease) is waited for at shutdown.
                    group.task.cancel()
                    self._ending.add(group.task)
                    group.task.add_done_callback(self._ending.discard)

    def _pace_for(self, source: Source) -> Pace:
        pace = self.paces.get(source.id)
        if pace is None:
            pace = self.paces[source.id] = Pace(source.id)
        return pace

    def _copy_loaded(self, source_id: str, changes: CopyChanges | None) -> None:
        for group in self.groups.values():
            group.copy_loaded(source_id, changes)

    async def aclose(self) -> None:
        """Stop every group and end every subscription (the app is shutting down)."""
        self._unlisten()
        self._unlisten = _nothing
        groups, self.groups = list(self.groups.values()), {}
        for group in groups:
            for member in group.members:
                member.close()
        tasks = [g.task for g in groups if g.task is not None] + list(self._ending)
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
            if stuck:
                logger.warning(
                    "%d watch groups did not stop within %.0f s of being cancelled; left behind",
                    len(stuck),
                    CLOSE_WAIT_S,
                )
        if self.relay is not None:
            await self.relay.aclose()


def _nothing() -> None:
    """Nothing left to unregister."""
