"""Slot alerts across instances with real processes: two gateways (``examples/deploy``'s
``Instance``: ``python app.py --no-demo --cache redis``) over one SQLite registry and the
real Redis, a demo FHIR system on loopback whose slots the test opens and takes itself.

A subscriber on A first, so that A takes the group's lease (read in Redis: the lease's
token starts with A's instance id, the field A wrote in the group's ``need`` hash);
then one on B with the same filter. While A holds the lease, B's subscriber hears a
change and B makes no call to the source (its ``/metrics``). Then SIGKILL to A: a
change made at once, while no one holds the lease, and one made after B took it over
within the lease (+ a margin) both reach B's subscriber, each exactly once.

The gateways run on the machine's clock (a subprocess cannot be given the suite's pinned
one), so the demo world starts today, as ``python app.py``'s own demo does: the test
reads which slots to open and take from that world, never from a calendar date.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import redis.asyncio as aioredis

from examples import demo_fhir
from examples.churn import SERVED
from examples.deploy import Instance
from examples.world import World, WorldSlot
from sources.registry.store import SourceStore
from sources.timeutil import MONTREAL
from sources.watch.relay import PREFIX
from tests.conftest import TEST_SCALE, fhir_definition, serve
from tests.ports import REDIS_URL, free_port

LEASE_S = 2.0
# Generous: two gateways, a demo system and the other workers' tests share 2 cores.
HEARD_S = 15.0
PROTOCOL = "graphql-transport-ws"
SUBSCRIPTION = """subscription Near($lat: Float!, $lon: Float!) {
  slotAlerts(filter: {near: {latitude: $lat, longitude: $lon}, radiusKm: 3}) {
    opened { id start } goneIds
  }
}"""
_CALLS = re.compile(r'^passerelle_source_calls_total\{source="demo-fhir"\} (\S+)$', re.M)
T = TypeVar("T")


@dataclass
class Listener:
    """One graphql-transport-ws subscriber: every alert it hears, in order."""

    name: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    heard: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                return
            data = json.loads(message.data)
            if data["type"] == "ping":
                await ws.send_json({"type": "pong"})
            elif data["type"] == "next":
                assert "errors" not in data["payload"], data["payload"]
                self.alerts.append(data["payload"]["data"]["slotAlerts"])
                self.heard.set()

    def opened(self) -> list[datetime]:
        return [datetime.fromisoformat(s["start"]) for a in self.alerts for s in a["opened"]]

    def gone(self) -> list[str]:
        return [i for a in self.alerts for i in a["goneIds"]]


async def poll(what: Callable[[], Awaitable[T | None]], timeout_s: float, about: str) -> T:
    """``what()`` until it gives something, for at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (found := await what()) is None:
        assert time.monotonic() < deadline, f"{about}: not within {timeout_s:g} s"
        await asyncio.sleep(0.05)
    return found


async def until_heard(listener: Listener, check: Callable[[Listener], bool], about: str) -> None:
    async def done() -> bool | None:
        return True if check(listener) else None

    await poll(done, HEARD_S, f"{listener.name} {about}")


@contextlib.asynccontextmanager
async def subscribed(
    session: aiohttp.ClientSession, instance: Instance, listener: Listener, point: Any
) -> AsyncIterator[None]:
    ws_url = instance.base.replace("http://", "ws://", 1) + "/graphql"
    async with session.ws_connect(ws_url, protocols=[PROTOCOL], heartbeat=None) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
        variables = {"lat": point[0], "lon": point[1]}
        payload = {"query": SUBSCRIPTION, "variables": variables}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        task = asyncio.create_task(listener.run(ws))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


async def source_calls(session: aiohttp.ClientSession, instance: Instance) -> float:
    async with session.get(f"{instance.base}/metrics") as response:
        text = await response.text()
    found = _CALLS.search(text)
    return float(found.group(1)) if found else 0.0


def the_slots(world: World, served: Any) -> tuple[tuple[float, float], list[WorldSlot]]:
    """A FHIR clinic's point and three of its busy slots to come, at three starts (the
    test opens them), a day or more after now, well inside alerts' default window."""
    now = datetime.now(MONTREAL)
    for clinic in world.clinics_for("fhir"):
        busy: dict[datetime, WorldSlot] = {}  # one a start: an alert names a slot's start
        for slot in served.slots_of(clinic.id):
            if not slot.free and now + timedelta(days=1) < slot.start < now + timedelta(days=4):
                busy.setdefault(slot.start, slot)
        if len(busy) >= 3:
            return (clinic.latitude, clinic.longitude), list(busy.values())[:3]
    raise AssertionError("the demo world has no FHIR clinic with three busy slots to come")


async def test_a_subscriber_on_the_surviving_instance_keeps_hearing_when_the_holder_dies(
    tmp_path: Path,
) -> None:
    world = World(TEST_SCALE)  # today's, as the gateways' clock (see the docstring)
    db = int(REDIS_URL.rsplit("/", 1)[1])
    client = aioredis.Redis.from_url(REDIS_URL)
    async for key in client.scan_iter(match=f"{PREFIX}{db}:*"):
        await client.delete(key)
    async with serve(demo_fhir.build_app(world)) as server:
        served = server.app[SERVED]
        point, (first, gap, later) = the_slots(world, served)
        registry = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        with SourceStore(registry) as store:
            store.add(fhir_definition(server))
        flags = ("--watch-lease-s", f"{LEASE_S:g}")
        a, b = (
            Instance(free_port(), registry, REDIS_URL, tmp_path / f"{n}.log", extra=flags)
            for n in "ab"
        )
        try:
            for instance in (a, b):
                instance.start()
            for instance in (a, b):
                await asyncio.to_thread(instance.wait_ready)
            await scenario(client, db, served, a, b, point, (first, gap, later))
        finally:
            for instance in (a, b):
                await asyncio.to_thread(instance.stop)
            await client.aclose()


async def scenario(
    client: aioredis.Redis,
    db: int,
    served: Any,
    a: Instance,
    b: Instance,
    point: tuple[float, float],
    slots: tuple[WorldSlot, WorldSlot, WorldSlot],
) -> None:
    first, gap, later = slots
    on_a, on_b = Listener("A's subscriber"), Listener("B's subscriber")
    async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(subscribed(session, a, on_a, point))

        async def lease() -> tuple[str, str] | None:
            keys = [k async for k in client.scan_iter(match=f"{PREFIX}{db}:*:lease")]
            if len(keys) != 1:
                return None
            token = _text(await client.get(keys[0]))
            return (str(_text(keys[0])), token) if token else None

        lease_key, a_token = await poll(lease, HEARD_S, "A taking the group's lease")
        group = lease_key.removesuffix(":lease")
        [a_id] = [_text(k) for k in await client.hkeys(f"{group}:need")]
        assert a_token.startswith(f"{a_id}."), (a_token, a_id)

        await stack.enter_async_context(subscribed(session, b, on_b, point))

        async def b_follows() -> str | None:
            needs = {_text(k) for k in await client.hkeys(f"{group}:need")} - {a_id}
            [(_, followers)] = await client.pubsub_numsub(group)  # A and B follow it
            return str(next(iter(needs))) if needs and followers == 2 else None

        b_id = await poll(b_follows, HEARD_S, "B joining the group and following its channel")
        b_calls = await source_calls(session, b)
        a_calls = await source_calls(session, a)

        # While A holds the lease, B's subscriber hears A's reads; B reads nothing.
        first = served.set_free(first, True)
        for listener in (on_a, on_b):
            await until_heard(listener, lambda n: first.start in n.opened(), "hearing it opened")
        assert _text(await client.get(lease_key)) == a_token
        assert await source_calls(session, b) == b_calls
        assert await source_calls(session, a) > a_calls
        [first_id] = [s["id"] for a_ in on_b.alerts for s in a_["opened"]]

        # A dies: a slot is taken while no one holds the lease, then B takes it over.
        a.signal(signal.SIGKILL)
        served.set_free(first, False)
        gap = served.set_free(gap, True)

        async def taken_over() -> str | None:
            token = _text(await client.get(lease_key))
            return token if token and token.startswith(f"{b_id}.") else None

        # Within the lease (A's last renewal was at most a lease before), plus a margin.
        await poll(taken_over, LEASE_S + 5.0, "B taking the lease over after A's death")
        await until_heard(
            on_b,
            lambda n: first_id in n.gone() and gap.start in n.opened(),
            "hearing what changed while no one held the lease",
        )
        assert await source_calls(session, b) > b_calls

        # A change made after the take-over is heard too.
        later = served.set_free(later, True)
        await until_heard(on_b, lambda n: later.start in n.opened(), "hearing a later change")
        await asyncio.sleep(LEASE_S)  # a change told twice would come meanwhile
        # Each change once: no slot opened twice, none gone twice, nothing else.
        assert sorted(on_b.opened()) == sorted(s.start for s in (first, gap, later)), on_b.alerts
        assert on_b.gone() == [first_id], on_b.alerts
        opened_ids = [s["id"] for a_ in on_b.alerts for s in a_["opened"]]
        assert len(set(opened_ids)) == 3, on_b.alerts
