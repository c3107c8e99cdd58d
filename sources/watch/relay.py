"""Slot alerts across instances: one instance reads a group's sources, under a Redis
lease, and publishes its changes; every instance with members in the group hears
them on the group's channel and hands them to its own members.

Per group (``GroupRelay``), every ``lease_s / 3`` seconds, an instance:

- takes the group's lease if it is free, or renews it if it holds it (a Lua
  check-and-renew: only the holder renews); the holder reads the sources and
  publishes each change, with its read's state of that source, atomically and
  only while it holds the lease (``sources.kv.lease``);
- otherwise follows: it reads nothing, hears the changes on the channel;
- writes the radius its members need, rounded up to ``RADIUS_STEP_KM`` (the holder
  reads for the largest);
- with Redis out, reads the group's sources itself, as without Redis (logged once
  per outage, without what is watched), until Redis answers again.

When the holder dies, its lease ends within ``lease_s``; the next instance to take
it restores the group's state as the holder last published it, with its last
change, and reads: its first read is compared with that state, so it publishes
what changed meanwhile (see the README, "Between instances").

A change travels as ``(id, GroupChange)`` in MessagePack; the id (the holder's
token and a sequence number) is stable, and each instance drops an id it has
already heard (the last ``SEEN_IDS``). Redis holds only a hash of the group's
coarse key in its key names, the key itself in the changes, the slots' and
clinics' public records, and radius bands: never a subscriber's point or filter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import msgspec

from sources.kv import CacheUnavailable
from sources.kv.lease import Channels, Leases
from sources.watch.changes import GroupChange, encode_key
from sources.watch.held import decode_held, encode_held

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from sources.kv import RedisLink
    from sources.watch.group import Group
    from sources.watch.held import Watched

__all__ = ["DEFAULT_LEASE_S", "PREFIX", "GroupRelay", "WatchRelay", "lease_problem"]

logger = logging.getLogger("passerelle.watch")

DEFAULT_LEASE_S = 10.0
# A lease shorter than this would be renewed more often than Redis' timeouts allow.
MIN_LEASE_S, MAX_LEASE_S = 1.0, 600.0
PREFIX = "passerelle:watch:"
# The ids of the changes heard last, per instance, to drop one heard again.
SEEN_IDS = 4096
# The radius an instance says its members need is rounded up to a multiple of this.
RADIUS_STEP_KM = 5.0
# A group's published state outlives its last renewal by this many leases (enough for a
# follower to take over; a group ended without a word leaves nothing behind for long).
STATE_LEASES = 3

LOCAL, HOLDER, FOLLOWER = "local", "holder", "follower"

_MESSAGE = msgspec.msgpack.Decoder(tuple[str, GroupChange])
_ENCODER = msgspec.msgpack.Encoder()


def lease_problem(value: float) -> str | None:
    """What is wrong with a lease length, or None."""
    if not (math.isfinite(value) and MIN_LEASE_S <= value <= MAX_LEASE_S):
        return f"must be between {MIN_LEASE_S:g} and {MAX_LEASE_S:g} seconds, got {value:g}"
    return None


class WatchRelay:
    """What the groups of one instance share: the link, one pub/sub connection, the
    ids heard, and whether Redis is out (said once per outage)."""

    def __init__(self, link: RedisLink, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.link = link
        self.lease_s = lease_s
        self.instance = secrets.token_hex(6)
        self.leases = Leases(link, lease_s * STATE_LEASES)
        self.channels = Channels(link)
        self.database = link.client.connection_pool.connection_kwargs.get("db", 0)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.down = False

    def first_time(self, change_id: str) -> bool:
        """Whether ``change_id`` is heard for the first time (and remember it)."""
        if change_id in self._seen:
            return False
        self._seen[change_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    def outage(self) -> None:
        if not self.down:
            self.down = True
            logger.warning(
                "redis unavailable: each instance watches its own subscribers' slot "
                "alerts until it answers again"
            )

    def recovered(self) -> None:
        if self.down:
            self.down = False
            logger.info("redis answers again: slot alerts are watched under leases again")

    async def aclose(self) -> None:
        await self.channels.aclose()


class GroupRelay:
    """One group's part in the scheme (see the module docstring); ``run`` is its task."""

    def __init__(self, relay: WatchRelay, group: Group) -> None:
        self.relay = relay
        self.group = group
        # Channels are not per database in Redis: the database's number keeps two
        # deployments sharing a server (each in its own database) apart.
        digest = hashlib.sha256(encode_key(group.key)).hexdigest()[:32]
        name = f"{PREFIX}{relay.database}:{digest}"
        self.channel, self.lease, self.state, self.needs = (
            name,
            f"{name}:lease",
            f"{name}:state",
            f"{name}:need",
        )
        self.token = f"{relay.instance}.{secrets.token_hex(4)}"
        self._mode: str | None = None
        self._sequence = 0
        self._reading: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        group.publisher = self.publish

    @property
    def mode(self) -> str | None:
        """LOCAL, HOLDER, FOLLOWER, or None before its first turn."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode != self._mode:
            logger.debug("a watch group turns %s (was %s)", mode, self._mode)  # never which
            self._mode = mode

    async def run(self) -> None:
        self.relay.channels.follow(self.channel, self.heard)
        try:
            while True:
                wait_s = await self.tick()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            self.relay.channels.leave(self.channel, self.heard)
            await self._stop_reading()
            with contextlib.suppress(CacheUnavailable):
                await self._leave()

    async def _leave(self) -> None:
        """The group ends here: its lease released, if held; its state deleted when no
        other instance has members in it (a later group starts from a baseline)."""
        link = self.relay.link
        await link.call(lambda redis: redis.hdel(self.needs, self.relay.instance))
        if self.mode == HOLDER:
            await self.relay.leases.release(self.lease, self.token)
        if not await self._live_needs():
            await link.call(lambda redis: redis.delete(self.state))

    async def tick(self) -> float:
        """One turn; how long to wait before the next (a third of a lease, or as soon as
        another holder's lease ends, if that comes first)."""
        relay = self.relay
        pace = relay.lease_s / 3
        try:
            await self._say_need()
            held = await relay.leases.hold(self.lease, self.state, self.token, relay.lease_s)
            if held is True or held is None:
                await self._read_needs()
        except CacheUnavailable:
            relay.outage()
            if self.mode != LOCAL:
                self.mode = LOCAL
                self._start_reading()  # what it holds, if it held the lease, still stands
            return pace
        relay.recovered()
        if isinstance(held, float):
            if self.mode == LOCAL and self.channel not in relay.channels.subscribed:
                return 0.1  # reading on until the changes can be heard on the channel
            if self._reading is not None:  # it read (held the lease, or Redis was out)
                await self._stop_reading()
                self.group.forget()
            self.mode = FOLLOWER
            return min(pace, held + 0.01) if held > 0 else pace
        if held is True or self.mode != HOLDER:
            await self._lead()
        return pace

    async def _lead(self) -> None:
        """Take over the group's reads: from the state its last holder published, or
        (this instance read them itself while Redis was out) from what it read."""
        if self.mode == LOCAL:
            try:
                for source_id in self.group.sources_held():
                    await self._write(source_id, None)
            except CacheUnavailable:
                return  # still local
        else:
            await self._stop_reading()
            try:
                published = await self.relay.leases.state(self.state)
            except CacheUnavailable:
                self.mode = LOCAL
                self._start_reading()
                return
            watched: dict[str, Watched] = {}
            for source_id, data in published.items():
                with contextlib.suppress(msgspec.DecodeError):
                    watched[source_id] = decode_held(data)
            self.group.restore(watched)
        self.mode = HOLDER
        self._start_reading()

    async def publish(self, source_id: str, change: GroupChange | None) -> bool:
        """The holder's change (None: a baseline), with its source's state; whether its
        members may hear it (not if this instance lost the lease meanwhile)."""
        if self.mode == FOLLOWER:
            return False  # its lease was lost: its reads stop at the next turn
        if self.mode != HOLDER:
            return True
        try:
            published = await self._write(source_id, change)
        except CacheUnavailable:
            self.relay.outage()
            self.mode = LOCAL
            return True
        if not published:
            # Another instance holds the lease: it will tell this change, from the state
            # last published. This one reads no more (at once: woken).
            self.mode = FOLLOWER
            self._wake.set()
        return published

    async def _write(self, source_id: str, change: GroupChange | None) -> bool:
        watched = self.group.state_of(source_id)
        value = encode_held(watched) if watched is not None else b""
        message = b""
        if change is not None:
            self._sequence += 1
            change_id = f"{self.token}:{self._sequence}"
            self.relay.first_time(change_id)
            message = _ENCODER.encode((change_id, change))
        return await self.relay.leases.publish(
            self.lease, self.token, self.state, source_id, value, self.channel, message
        )

    def heard(self, data: bytes) -> None:
        """A change published on the group's channel."""
        try:
            change_id, change = _MESSAGE.decode(data)
        except msgspec.DecodeError:
            return
        if change.key != self.group.key or not self.relay.first_time(change_id):
            return
        if self.mode != LOCAL:  # reading its sources itself, it tells what it reads
            self.group.deliver(change, self.group.settings.clock())

    async def _say_need(self) -> None:
        """Say that this instance has members in the group, and the radius they need."""
        radius = self.group.members_radius_km() or 0.0
        band = math.ceil(radius / RADIUS_STEP_KM) * RADIUS_STEP_KM
        until = time.time() + 3 * self.relay.lease_s
        value = f"{band:g} {until:.1f}"
        keep_ms = int(3 * self.relay.lease_s * 1000)

        async def say(redis: Redis) -> None:
            await redis.hset(self.needs, self.relay.instance, value)
            await redis.pexpire(self.needs, keep_ms)

        await self.relay.link.call(say)

    async def _live_needs(self) -> list[float]:
        """The radius bands of the instances with members in the group."""
        raw = await self.relay.link.call(lambda redis: redis.hgetall(self.needs))
        now, bands = time.time(), []
        for value in raw.values():
            with contextlib.suppress(ValueError, TypeError):
                text = value.decode() if isinstance(value, bytes) else value
                band, until = map(float, text.split())
                if until >= now:
                    bands.append(band)
        return bands

    async def _read_needs(self) -> None:
        self.group.extra_radius_km = max(await self._live_needs(), default=0.0)

    def _start_reading(self) -> None:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self.group.run(), name="watch group reads")

    async def _stop_reading(self) -> None:
        task, self._reading = self._reading, None
        if task is not None:
            task.cancel()
            # Waits for it without taking its CancelledError for this task's own (were
            # this task cancelled meanwhile, that would still stop it).
            await asyncio.wait([task])
