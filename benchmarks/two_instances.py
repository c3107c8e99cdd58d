"""Two gateway instances behind nginx: a mixed load, a SIGTERM and a SIGKILL of one.

    python benchmarks/two_instances.py                 # 20 s per run, about 2 minutes
    python benchmarks/two_instances.py --seconds 10    # shorter runs

Run by hand, not by CI. What it starts, on free loopback ports:

- the demo booking systems (``examples/launcher.py``, ``--scale`` 0.05) with churn
  (``--churn``, 60 slots a minute each), so that subscriptions hear of changes;
- a registry in a fresh PostgreSQL schema (``--postgres-url``, dropped at the end)
  and a Redis database of its own (``--redis-url``; it is EMPTIED at the start and at
  the end: give it one nothing else uses), shared by both instances: source cache,
  APQ, response cache, rate limits;
- two instances, ``python app.py --no-demo --trusted-proxy 127.0.0.1 --drain-s 2``,
  and Debian's nginx in front with the site of ``examples/deploy/nginx/passerelle.conf``
  (``examples/deploy/cluster.py``).

Then it measures, through nginx unless said otherwise:

1. a source added with ``python app.py sources add`` (the registry CLI, on the shared
   registry) until each instance lists it, asked directly: seconds, three times;
2. shared rate limits: a partner key limited to 5 requests/s sends 60 requests at
   once; how many are accepted, and which instance refused the others;
3. run "SIGTERM": ``--workers`` loops of GET persisted queries (APQ hash only), POST
   queries and one loop of POST mutations (``createSlotAlertWebhook``, each with a
   callback URL of its own), plus ``--subscribers`` WebSocket subscriptions
   (graphql-transport-ws, ``slotAlerts``); a third of the way in, SIGTERM to one
   instance. All subscribers watch one group (``sources/watch/``): the first subscribes
   straight to the instance to be signalled, alone, so that this instance takes the
   group's Redis lease (``--watch-lease-s``, 5 s here) and reads for both; the others
   come through nginx. Counted: failures by kind; which instance held the lease at the
   signal and when the surviving one took it over (read in Redis); the close codes the
   signalled instance's subscribers got; how long they took to reconnect through nginx;
   whether they heard of changes after they subscribed again; whether the surviving
   instance's subscribers kept hearing of changes, how long after the signal their
   first alert came, and whether any change was told to them twice (the
   subscription-continuity check);
4. the instance restarted, run "SIGKILL": the same with SIGSTOP for ``--freeze-s``
   (0.5 s), then SIGKILL: what nginx sends it while it is frozen has been sent, and is
   in flight when it dies (a SIGKILL alone finds 0 to 4 requests running there, by
   chance). Counted: failures by kind, requests nginx passed on to the other instance
   (its access log lists both upstreams), and every mutation's effect in the registry:
   a mutation nginx sent twice would show as two webhooks with one callback URL.

Prints a Markdown report on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
import sqlalchemy  # noqa: E402

from examples.deploy.cluster import Cluster, Instance  # noqa: E402
from examples.launcher import PROVIDERS, DemoProviders  # noqa: E402
from sources.registry.definition import parse_definition  # noqa: E402
from sources.registry.partners import PartnerStore  # noqa: E402
from sources.registry.store import SourceStore  # noqa: E402
from sources.registry.webhooks import WebhookStore  # noqa: E402
from sources.watch.relay import PREFIX  # noqa: E402
from tests.ports import free_port  # noqa: E402

QUERY = (
    "query NearMe { slots(filter: {near: {latitude: 45.5017, longitude: -73.5673}, "
    "radiusKm: 15}, first: 10) { edges { node { id start clinic { name } } } } }"
)
POST_QUERY = (
    "query Region($first: Int!) { clinics(filter: {region: MONTREAL}, first: $first) "
    "{ edges { node { id name nextSlots(first: 2) { start } } } } }"
)
# A real mutation, whose effect is a row in the registry; its filter is a point where the
# demo world has no clinic, so that its alerts send no deliveries during the run.
MUTATION = """mutation Create($url: String!) {
  createSlotAlertWebhook(filter: {near: {latitude: 52.0, longitude: -70.0}, radiusKm: 1},
                         callbackUrl: $url) { webhook { id } } }"""
SUBSCRIPTION = (
    "subscription { slotAlerts(filter: {near: {latitude: 45.5017, longitude: -73.5673}, "
    "radiusKm: 25}) { goneIds seenAt opened { id } } }"
)
PROTOCOL = "graphql-transport-ws"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
APQ = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": HASH}}, separators=(",", ":"))


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the load -----------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # GET, POST, MUTATION
    started: float
    seconds: float
    status: int | str  # an HTTP status, or the client error's name
    rid: str = ""
    marker: str = ""  # a mutation's callback URL


@dataclass
class Subscriber:
    """One WebSocket subscriber that subscribes again, through nginx, when closed."""

    n: int
    # The first connection's URL (an instance's own), the next ones through nginx.
    first_url: str | None = None
    closes: list[tuple[float, object]] = field(default_factory=list)
    subscribed_at: list[float] = field(default_factory=list)
    events: list[float] = field(default_factory=list)
    reconnects: list[float] = field(default_factory=list)
    refused: list[object] = field(default_factory=list)
    # Each alert's opened ids and gone ids, with the time it was heard.
    alerts: list[tuple[float, list[str], list[str]]] = field(default_factory=list)

    async def run(self, session: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> None:
        closed_at: float | None = None
        first_url = self.first_url
        while not stop.is_set():
            ws_url = (first_url or url).replace("http://", "ws://", 1)
            first_url = None
            try:
                async with session.ws_connect(ws_url, protocols=[PROTOCOL], heartbeat=None) as ws:
                    await ws.send_json({"type": "connection_init", "payload": {}})
                    first = await ws.receive(timeout=5)
                    if first.type != aiohttp.WSMsgType.TEXT:
                        # Refused (closed) by an instance on its way out: try again.
                        code = first.data if first.type == aiohttp.WSMsgType.CLOSE else "dropped"
                        self.refused.append(code)
                        await asyncio.sleep(0.05)
                        continue
                    if json.loads(first.data).get("type") != "connection_ack":
                        raise ConnectionError(f"no ack: {first.data}")
                    payload = {"query": SUBSCRIPTION}
                    await ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
                    now = time.monotonic()
                    self.subscribed_at.append(now)
                    if closed_at is not None:
                        self.reconnects.append(now - closed_at)
                        closed_at = None
                    await self._listen(ws, stop)
                    if stop.is_set():
                        return
            except (aiohttp.ClientError, ConnectionError, TimeoutError, ValueError) as exc:
                self.closes.append((time.monotonic(), type(exc).__name__))
            closed_at = closed_at or time.monotonic()
            await asyncio.sleep(0.05)

    async def _listen(self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                message = await ws.receive(timeout=0.5)
            except TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(message.data)
                if data["type"] == "ping":
                    await ws.send_json({"type": "pong"})
                elif data["type"] == "next":
                    now = time.monotonic()
                    self.events.append(now)
                    alert = (data["payload"].get("data") or {}).get("slotAlerts") or {}
                    opened = [str(s["id"]) for s in alert.get("opened") or []]
                    self.alerts.append((now, opened, list(alert.get("goneIds") or [])))
                continue
            # The close frame's code (RFC 6455): nginx drops the TCP connection before
            # aiohttp answers it, so ws.close_code would say 1006 even after a 1001.
            code = message.data if message.type == aiohttp.WSMsgType.CLOSE else "dropped"
            self.closes.append((time.monotonic(), code))
            return


async def one(
    session: aiohttp.ClientSession, url: str, kind: str, keys: list[str], n: int
) -> Outcome:
    started = time.monotonic()
    marker = ""
    # The client's own request id, which nginx keeps, logs and passes on: a failure that
    # nginx answers itself (a 502) is found in its access log too.
    rid = uuid.uuid4().hex
    sent = {"X-Request-Id": rid}
    try:
        if kind == "GET":
            params = {"extensions": APQ, "variables": "{}"}
            request = session.get(url, params=params, headers=sent)
        elif kind == "POST":
            body = {"query": POST_QUERY, "variables": {"first": 3 + n % 5}}
            request = session.post(url, json=body, headers=sent)
        else:
            marker = f"https://127.0.0.1:9/bench/{uuid.uuid4().hex}"
            body = {"query": MUTATION, "variables": {"url": marker}}
            # Each partner keeps at most 100 webhook alerts: the keys take turns.
            key = keys[n % len(keys)]
            sent["Authorization"] = f"Bearer {key}"
            request = session.post(url, json=body, headers=sent)
        async with request as response:
            text = await response.text()
            status: int | str = response.status
            if status == 200 and json.loads(text).get("errors"):
                status = "graphql-error:" + json.loads(text)["errors"][0].get("extensions", {}).get(
                    "code", "?"
                )
    except (aiohttp.ClientError, TimeoutError) as exc:
        status = type(exc).__name__
    return Outcome(kind, started, time.monotonic() - started, status, rid, marker)


async def loop(
    session: aiohttp.ClientSession, url: str, kinds: list[str], keys: list[str],
    stop: asyncio.Event, out: list[Outcome], first: int = 0,
) -> None:  # fmt: skip
    # Kinds drawn at random (seeded), not in turn: in turn, the loops and nginx's
    # round-robin can fall into step, one instance getting all the GETs.
    draw = random.Random(first)
    n = first
    while not stop.is_set():
        out.append(await one(session, url, draw.choice(kinds), keys, n))
        n += 1


# -- the subscribers' group's lease, read in Redis --------------------------------------


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class GroupLease:
    """The lease of the subscribers' watch group (``sources/watch/relay.py``): its key,
    which instance holds it over time. Its token is ``<instance id>.<random>``; an
    instance id is also its field in the group's ``need`` hash, written when it has
    members, which is how an id is tied to a port here (see ``anchor``)."""

    client: aioredis.Redis
    key: str | None = None
    ports: dict[str, int] = field(default_factory=dict)  # instance id -> port
    changes: list[tuple[float, str | None]] = field(default_factory=list)  # (when, holder id)

    async def holder(self) -> str | None:
        assert self.key is not None
        token = _text(await self.client.get(self.key))
        return token.split(".", 1)[0] if token else None

    async def needs(self) -> set[str]:
        assert self.key is not None
        need = self.key.removesuffix(":lease") + ":need"
        return {str(_text(k)) for k in await self.client.hkeys(need)}

    async def anchor(self, victim: Instance, timeout_s: float) -> None:
        """Once the first subscriber, straight to ``victim``, has subscribed: the group's
        lease is the victim's (the only instance with members)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.key is None:
                found = [k async for k in self.client.scan_iter(match=f"{PREFIX}*:lease")]
                self.key = str(_text(found[0])) if len(found) == 1 else None
            if self.key is not None:
                holder, needs = await self.holder(), await self.needs()
                if holder is not None and needs == {holder}:
                    self.ports = {holder: victim.port}
                    self.changes = [(time.monotonic(), holder)]
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the signalled instance took no lease in {timeout_s:g} s")

    async def free(self, timeout_s: float) -> None:
        """Wait until no instance holds the lease nor has members (the last run's gone)."""
        deadline = time.monotonic() + timeout_s
        while self.key is not None and time.monotonic() < deadline:
            if await self.holder() is None and not await self.needs():
                return
            await asyncio.sleep(0.1)

    async def follow(self, other: Instance, stop: asyncio.Event) -> None:
        """Record each change of holder, and the other instance's id once it has members."""
        while not stop.is_set():
            holder = await self.holder()
            if holder != self.changes[-1][1]:
                self.changes.append((time.monotonic(), holder))
            if len(self.ports) < 2:
                for new in await self.needs() - set(self.ports):
                    self.ports[new] = other.port
            await asyncio.sleep(0.02)

    def port_at(self, moment: float) -> int | None:
        holder = [h for t, h in self.changes if t <= moment][-1]
        return self.ports.get(holder) if holder else None

    def taken_by(self, port: int, after: float) -> float | None:
        """When the instance on ``port`` held the lease first after ``after``."""
        for t, h in self.changes:
            if t > after and h is not None and self.ports.get(h) == port:
                return t
        return None


@dataclass
class Run:
    name: str
    outcomes: list[Outcome]
    subscribers: list[Subscriber]
    signal_at: float
    started: float
    ended: float
    exit_code: int | None
    error_log_from: int = 0
    lease: GroupLease | None = None
    survivor: int = 0  # the surviving instance's port


async def run_load(
    cluster: Cluster,
    victim: Instance,
    how: str,
    args: argparse.Namespace,
    keys: list[str],
    lease: GroupLease,
) -> Run:
    url = cluster.url
    [survivor] = [i for i in cluster.instances if i is not victim]
    assert cluster.nginx is not None
    error_log = cluster.nginx.prefix / "error.log"
    error_log_from = error_log.stat().st_size if error_log.exists() else 0
    stop = asyncio.Event()
    outcomes: list[Outcome] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        # The first subscriber straight to the instance to be signalled, alone, so that it
        # takes the group's lease: the run shows a take-over, not whoever came first.
        await lease.free(timeout_s=3 * args.watch_lease_s)
        subscribers = [Subscriber(0, first_url=f"{victim.base}/graphql")]
        sub_tasks = [asyncio.create_task(subscribers[0].run(session, url, stop))]
        await lease.anchor(victim, timeout_s=15.0)
        following = asyncio.create_task(lease.follow(survivor, stop))
        subscribers += [Subscriber(n) for n in range(1, args.subscribers)]
        sub_tasks += [asyncio.create_task(s.run(session, url, stop)) for s in subscribers[1:]]
        sub_tasks.append(following)
        await asyncio.sleep(1.0)  # all subscribed, spread over both instances
        started = time.monotonic()
        tasks = [
            asyncio.create_task(loop(session, url, ["GET", "POST"], keys, stop, outcomes, n))
            for n in range(args.workers)
        ]
        # Mutation loops, back to back, so that some are in flight at the signal.
        tasks += [
            asyncio.create_task(loop(session, url, ["MUTATION"], keys, stop, outcomes, n))
            for n in range(args.mutation_workers)
        ]
        await asyncio.sleep(args.seconds / 3)
        if how == "SIGKILL" and args.freeze_s > 0:
            # Frozen first, as a busy instance is: what nginx sends it meanwhile has been
            # sent, and is in flight when it dies.
            say(f"  SIGSTOP to the instance on port {victim.port} for {args.freeze_s:g} s")
            victim.signal(signal.SIGSTOP)
            await asyncio.sleep(args.freeze_s)
        signal_at = time.monotonic()
        say(f"  {how} to the instance on port {victim.port}")
        victim.kill() if how == "SIGKILL" else victim.terminate()
        await asyncio.sleep(args.seconds * 2 / 3)
        stop.set()
        ended = time.monotonic()
        await asyncio.gather(*tasks, *sub_tasks)
    exit_code = await asyncio.to_thread(victim.wait, 30)
    if exit_code is None:  # still running: killed, so that its restart gets its port
        say(f"  the instance on port {victim.port} did not exit: SIGKILL")
        victim.kill()
        await asyncio.to_thread(victim.wait, 30)
    await asyncio.sleep(0.5)  # nginx's last log lines
    return Run(
        how, outcomes, subscribers, signal_at, started, ended, exit_code, error_log_from,
        lease, survivor.port,
    )  # fmt: skip


def error_reasons(cluster: Cluster, offset: int) -> Counter[tuple[str, str]]:
    """nginx's error lines since ``offset``: (method, reason) counted, e.g. ("POST",
    "upstream prematurely closed connection")."""
    assert cluster.nginx is not None
    with (cluster.nginx.prefix / "error.log").open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    found: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        match = re.search(r"\*\d+ (.+?)(?: while |, client:).*request: \"(\w+) ", line)
        if match:
            found[(match.group(2), match.group(1))] += 1
    return found


# -- the report -----------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report_run(run: Run, cluster: Cluster, victim: Instance) -> list[str]:
    lines = [f"### Run {run.name}", ""]
    lines += ["| kind | requests | ok | req/s | p50 ms | p99 ms | failed (by kind of failure) |"]
    lines += ["| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    span = run.ended - run.started
    for kind in ("GET", "POST", "MUTATION"):
        mine = [o for o in run.outcomes if o.kind == kind]
        ok = [o.seconds * 1000 for o in mine if o.status == 200]
        failed = Counter(str(o.status) for o in mine if o.status != 200)
        lines.append(
            f"| {kind} | {len(mine)} | {len(ok)} | {len(ok) / span:.0f} | {pct(ok, 0.5):.1f} "
            f"| {pct(ok, 0.99):.1f} | {dict(failed) or 0} |"
        )
    total_ok = sum(o.status == 200 for o in run.outcomes)
    lines += ["", f"All kinds: {total_ok / span:.0f} req/s answered over {span:.1f} s."]
    lines.append(f"The signalled instance exited with {run.exit_code}.")
    # nginx's access log: which requests were passed on to the other instance.
    assert cluster.nginx is not None
    hops = cluster.nginx.upstreams()
    ours = {o.rid: o for o in run.outcomes if o.rid}
    retried = Counter(
        (ours[rid].kind, ours[rid].status)
        for rid, addrs in hops.items()
        if rid in ours and len(addrs) > 1
    )
    lines.append(
        "Passed on by nginx to the other instance (two upstreams in its log), by kind and "
        f"final status: {dict(retried) or 'none'}."
    )
    there = f"127.0.0.1:{victim.port}"
    in_flight = Counter(
        (o.kind, "ok" if o.status == 200 else str(o.status))
        for o in run.outcomes
        if o.started <= run.signal_at <= o.started + o.seconds and hops.get(o.rid, [""])[0] == there
    )
    lines.append(
        f"Sent to the signalled instance and in flight at the {run.name}, by kind and "
        f"outcome: {dict(in_flight) or 'none'}."
    )
    lines.append(
        "nginx's error log over the run, by method and reason: "
        f"{dict(error_reasons(cluster, run.error_log_from)) or 'nothing'}."
    )
    lines += subscriber_lines(run, victim)
    lines += mutation_lines(run, cluster)
    return [*lines, ""]


def subscriber_lines(run: Run, victim: Instance) -> list[str]:
    moved = [s for s in run.subscribers if any(t >= run.signal_at for t, _ in s.closes)]
    stayed = [s for s in run.subscribers if s not in moved]
    codes = Counter(str(c) for s in moved for t, c in s.closes if t >= run.signal_at)
    reconnects = [r * 1000 for s in moved for r in s.reconnects]
    heard_after = sum(
        any(e > max(s.subscribed_at) for e in s.events) for s in moved if s.subscribed_at
    )
    stayed_heard = sum(any(e > run.signal_at for e in s.events) for s in stayed)
    # From the signal to the first alert heard after it: by the survivor's subscribers,
    # and by the victim's once subscribed again (through nginx, on the survivor).
    stayed_first = [
        min(e for e in s.events if e > run.signal_at) - run.signal_at
        for s in stayed
        if any(e > run.signal_at for e in s.events)
    ]
    moved_first = [
        min(e for e in s.events if e > max(s.subscribed_at)) - run.signal_at
        for s in moved
        if s.subscribed_at and any(e > max(s.subscribed_at) for e in s.events)
    ]
    twice = sum(told_twice(s.alerts) for s in stayed)
    heard = sum(len(s.events) for s in run.subscribers)
    refused = Counter(str(c) for s in run.subscribers for c in s.refused)
    lines = [
        "",
        f"Alerts heard over the run: {heard} by {len(run.subscribers)} subscribers.",
        f"Subscribers: {len(run.subscribers)}; {len(moved)} were on the signalled instance, "
        f"closed with {dict(codes) or 'nothing'}; reconnected through nginx in "
        f"p50 {pct(reconnects, 0.5):.0f} ms, max {max(reconnects, default=float('nan')):.0f} ms "
        f"({len(reconnects)} reconnections; refused at connection_init on the way: "
        f"{dict(refused) or 'none'}).",
        f"Of those, {heard_after} of {len(moved)} heard of a change published after they "
        "had subscribed again.",
        f"Continuity: {stayed_heard} of {len(stayed)} subscribers of the surviving instance "
        f"heard of a change after the {run.name}; from the signal to the first alert heard "
        f"after it, p50 {pct(stayed_first, 0.5):.1f} s, max "
        f"{max(stayed_first, default=float('nan')):.1f} s (the victim's subscribers, once "
        f"subscribed again: p50 {pct(moved_first, 0.5):.1f} s, max "
        f"{max(moved_first, default=float('nan')):.1f} s). Changes told twice to a subscriber "
        f"of the surviving instance: {twice}.",
    ]
    return [*lease_lines(run), *lines]


def told_twice(alerts: list[tuple[float, list[str], list[str]]]) -> int:
    """Alerts that said again what the subscriber had been told: a slot opened while
    open, gone while gone (one subscription's alerts, in order)."""
    state: dict[str, bool] = {}
    twice = 0
    for _, opened, gone in alerts:
        for slot in opened:
            twice += state.get(slot) is True
            state[slot] = True
        for slot in gone:
            twice += state.get(slot) is False
            state[slot] = False
    return twice


def lease_lines(run: Run) -> list[str]:
    lease = run.lease
    if lease is None:
        return []
    holder = lease.port_at(run.signal_at)
    who = (
        "nobody" if holder is None
        else f"the signalled instance (port {holder})" if holder != run.survivor
        else f"the surviving instance (port {holder})"
    )  # fmt: skip
    taken = lease.taken_by(run.survivor, run.signal_at)
    took = f"at +{taken - run.signal_at:.2f} s" if taken is not None else "never during the run"
    return [
        "",
        f"Lease of the subscribers' group at the {run.name}: held by {who}; taken by the "
        f"surviving instance (port {run.survivor}) {took} after the signal "
        f"(holder changes over the run: {len(lease.changes) - 1}).",
    ]


def mutation_lines(run: Run, cluster: Cluster) -> list[str]:
    with WebhookStore(cluster.database_url) as store:
        created = Counter(a.callback_url for a in store.alerts())
    sent = [o for o in run.outcomes if o.kind == "MUTATION"]
    replayed = sum(created[o.marker] > 1 for o in sent)
    lost_answer = sum(o.status != 200 and created[o.marker] == 1 for o in sent)
    failed_no_effect = sum(o.status != 200 and created[o.marker] == 0 for o in sent)
    return [
        f"Mutations: {len(sent)} sent; {replayed} ran twice (replayed); {lost_answer} failed "
        f"at the client although they took effect; {failed_no_effect} failed without effect.",
    ]


# -- the set-up -----------------------------------------------------------------------


@contextlib.contextmanager
def postgres_schema(admin_url: str) -> Any:
    admin = sqlalchemy.create_engine(admin_url)
    schema = f"bench_two_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    url = sqlalchemy.make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


async def registry_reach(cluster: Cluster, fhir_url: str, n: int) -> list[float]:
    """Seconds from ``sources add`` returning to each instance listing the source."""
    source_id = f"extra-{n}"
    argv = [sys.executable, str(ROOT / "app.py"), "sources", "add", "--id", source_id,
            "--protocol", "FHIR_R4", "--url", fhir_url,
            "--database-url", cluster.database_url]  # fmt: skip
    added = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
    if added.returncode != 0:
        raise RuntimeError(f"sources add failed: {added.stderr}")
    done = time.monotonic()
    seen: dict[int, float] = {}
    async with aiohttp.ClientSession() as session:
        while len(seen) < len(cluster.instances) and time.monotonic() - done < 15:
            for instance in cluster.instances:
                if instance.port in seen:
                    continue
                body = {"query": "{ sources { id } }"}
                async with session.post(f"{instance.base}/graphql", json=body) as response:
                    ids = {s["id"] for s in (await response.json())["data"]["sources"]}
                if source_id in ids:
                    seen[instance.port] = time.monotonic() - done
            await asyncio.sleep(0.05)
    remove = [sys.executable, str(ROOT / "app.py"), "sources", "remove", source_id,
              "--database-url", cluster.database_url]  # fmt: skip
    await asyncio.to_thread(subprocess.run, remove, capture_output=True, check=True)
    return [seen.get(i.port, float("inf")) for i in cluster.instances]


async def shared_rate_limit(cluster: Cluster, key: str) -> list[str]:
    """60 requests at once with a key limited to 5/s (burst 10), through nginx."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def ask() -> tuple[int, str]:
            headers = {"Authorization": f"Bearer {key}"}
            body = {"query": "{ sources { id } }"}
            async with session.post(cluster.url, json=body, headers=headers) as response:
                await response.read()
                return response.status, response.headers.get("X-Request-Id", "")

        answers = await asyncio.gather(*(ask() for _ in range(60)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.5)  # nginx writes a request's log line once it has answered
    assert cluster.nginx is not None
    hops = cluster.nginx.upstreams()
    by = defaultdict(Counter)
    for status, rid in answers:
        by[status][hops.get(rid, ["?"])[-1]] += 1
    accepted = sum(by[200].values())
    return [
        "### Shared rate limits",
        "",
        f"A partner key limited to 5 requests/s (burst 10) sent 60 requests at once through "
        f"nginx ({elapsed:.2f} s): {accepted} accepted (one shared bucket allows about "
        f"{10 + 5 * elapsed:.0f}; a bucket per instance would allow about "
        f"{2 * (10 + 5 * elapsed):.0f}), by instance {dict(by[200])}; refused (429) by instance "
        f"{dict(by[429])}.",
        "",
    ]


async def back_in_rotation(cluster: Cluster, instance: Instance) -> None:
    """Wait until nginx passes queries to ``instance`` again: it tries a failed server
    once fail_timeout (5 s) has passed, and counts it back when that request ends."""
    assert cluster.nginx is not None
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            rids = []
            for _ in range(4):
                async with session.post(cluster.url, json={"query": "{ sources { id } }"}) as r:
                    rids.append(r.headers.get("X-Request-Id", ""))
            hops = cluster.nginx.upstreams()
            if sum(hops.get(rid, [""])[-1].endswith(f":{instance.port}") for rid in rids) >= 2:
                return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"nginx did not take the instance on port {instance.port} back")


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="two-instances-"))
    say(f"work directory: {work}")
    redis.Redis.from_url(args.redis_url).flushdb()
    demo = DemoProviders(
        scale=args.scale, base_port=free_port(3), churn=args.churn, log_dir=work / "demo"
    )
    demo.start()
    lines = ["## Two instances behind nginx", ""]
    try:
        with postgres_schema(args.postgres_url) as database_url:
            with SourceStore(database_url) as store:
                store.apply_config(
                    [parse_definition(d, where="demo") for d in demo.definitions()], "demo"
                )
            with PartnerStore(database_url) as partners:
                keys = {
                    run: [partners.create_client(f"{run}-{n}")[1] for n in range(20)]
                    for run in ("sigterm", "sigkill")
                }
                limited = partners.create_client("limited", rate_limit_rps=5)[1]
            ports = [free_port(), free_port()]
            extra = ["--webhook-allow-host", "127.0.0.1", "--subscriptions-per-ip", "1000",
                     "--watch-lease-s", f"{args.watch_lease_s:g}"]  # fmt: skip
            with Cluster(
                work, database_url, args.redis_url, ports, listen=free_port(), drain_s=5.0,
                extra=extra,
            ) as cluster:  # fmt: skip
                say(f"nginx on {cluster.url}, instances on {ports}")
                async with aiohttp.ClientSession() as session:  # the APQ hash, registered once
                    body = {"query": QUERY, "extensions": json.loads(APQ)}
                    async with session.post(cluster.url, json=body) as response:
                        assert response.status == 200, await response.text()
                fhir_url = demo.url(PROVIDERS[0])
                reach = [await registry_reach(cluster, fhir_url, n) for n in range(3)]
                lines += [
                    "### A source added on the shared registry",
                    "",
                    "`python app.py sources add` on the PostgreSQL registry, then each instance "
                    "asked directly until it lists the source (seconds, instance A / B): "
                    + "; ".join(f"{a:.2f} / {b:.2f}" for a, b in reach) + ".",
                    "",
                ]  # fmt: skip
                lines += await shared_rate_limit(cluster, limited)
                victim = cluster.instances[0]
                lease = GroupLease(aioredis.Redis.from_url(args.redis_url))
                say("run SIGTERM")
                run = await run_load(cluster, victim, "SIGTERM", args, keys["sigterm"], lease)
                lines += report_run(run, cluster, victim)
                say("restarting the instance")
                victim.start()
                await asyncio.to_thread(victim.wait_ready)
                await back_in_rotation(cluster, victim)
                say("run SIGKILL")
                run = await run_load(cluster, victim, "SIGKILL", args, keys["sigkill"], lease)
                lines += report_run(run, cluster, victim)
                await lease.client.aclose()
    finally:
        demo.stop()
        redis.Redis.from_url(args.redis_url).flushdb()
    print("\n".join(lines))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run (20)")
    parser.add_argument("--workers", type=int, default=8, help="query loops (8)")
    parser.add_argument("--mutation-workers", type=int, default=2, help="mutation loops (2)")
    parser.add_argument(
        "--freeze-s",
        type=float,
        default=0.5,
        help="SIGSTOP the instance this long before its SIGKILL, so that requests are in "
        "flight there when it dies (0.5; 0: SIGKILL alone)",
    )
    parser.add_argument("--subscribers", type=int, default=20, help="WebSocket subscribers (20)")
    parser.add_argument(
        "--watch-lease-s",
        type=float,
        default=5.0,
        help="the instances' --watch-lease-s: a dead holder's group is taken over within it (5)",
    )
    parser.add_argument("--scale", type=float, default=0.05, help="demo world's size (0.05)")
    parser.add_argument("--churn", type=float, default=120.0, help="demo slots changed a minute")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/15", help="a Redis database of its own"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "PASSERELLE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="a PostgreSQL database where the run makes (and drops) a schema",
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
