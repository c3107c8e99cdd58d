"""Slot alerts at scale: 10,000 WebSocket subscriptions on one gateway, in 200 groups.

    python benchmarks/subscriptions.py            # 10,000 subscriptions, about 4 minutes
    python benchmarks/subscriptions.py --quick    # 1,000 subscriptions in 20 groups
    python benchmarks/subscriptions.py --profile prof/   # py-spy (PyPI): idle, changes

Run by hand, not by CI. What it starts, on free loopback ports:

- a SMART Scheduling Links feed in this process: the demo publisher
  (``examples.demo_ssl``) of the world's bulk-feed clinics within 20 km of downtown
  Montreal, whose delta-file requests it timestamps;
- ``python app.py --no-demo`` with only that feed (a throw-away registry, its TOML
  config), ``--subscriptions-per-ip`` raised above the run's count (every client is
  127.0.0.1), log level warning. The feed is polled every second rather than every
  minute (the bulk adapter's floor is lowered for this run only, in the launching
  command), so that each change is read at once;
- ``--clients`` (2) client processes of plain aiohttp WebSockets (not Node), each
  holding its share of the sockets: one ``graphql-transport-ws`` connection and one
  ``slotAlerts`` subscription per socket, as a citizen's browser has. The
  subscriptions are spread over ``--groups`` (200) points 6 km apart on a grid around
  Montreal (a group each: the watch groups by 5 km cells), all with a 100 km radius
  and the same explicit 20-day window, so that a slot opened near downtown concerns
  every subscription.

Then it measures:

1. memory per subscription: the gateway's RSS (``/proc``) with every subscription
   open and the gateway settled, less its RSS before the first socket, divided by
   the count;
2. CPU while idle: the gateway's CPU seconds (user + system) over ``--idle-seconds``
   (60) with every subscription open and nothing changing, per minute (its own
   pings every 30 s, uvicorn's WebSocket pings every 20 s and the feed's polling
   included);
3. the time from a change to the subscribers' messages: ``--changes`` (5) times, the
   publisher opens three slots near downtown; from the moment the gateway fetched
   the delta file (the feed's own timestamp, ``CLOCK_MONOTONIC`` shared by the
   processes) to each subscriber's ``next`` message (every subscriber must hear each
   change once): p50, p99 and the last subscriber, per change, then p50/p99 of the
   last subscriber over the changes;
4. the goodbye: SIGTERM to the gateway, and how many sockets were closed with 1001.

Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOWNTOWN = (45.5017, -73.5673)
FEED_RADIUS_KM = 20
RADIUS_KM = 100
GRID_STEP = 0.054  # degrees: 6 km of latitude, about 4.2 km of longitude here
PROTOCOL = "graphql-transport-ws"
ALERTS = (
    "subscription Alerts($filter: SlotFilter!) "
    "{ slotAlerts(filter: $filter) { opened { id start } goneIds seenAt } }"
)
# The gateway, its bulk feeds polled every second for this run (the adapter's floor is
# a minute, the specification's rule for publishers' servers).
LAUNCHER = """
import sys
from sources.smart_scheduling.adapter import SmartSchedulingSource as S
S.MIN_POLL_INTERVAL_S = S.DEFAULT_POLL_INTERVAL_S = 1.0
S.MIN_FILE_INTERVAL_S = 0.0
import app
sys.exit(app.main(sys.argv[1:]))
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def points(groups: int) -> list[tuple[float, float]]:
    """``groups`` points on a grid around downtown Montreal, each in a 5 km cell of its own."""
    columns = max(1, round((groups * 2) ** 0.5))
    rows = -(-groups // columns)
    lat0 = DOWNTOWN[0] - GRID_STEP * (rows - 1) / 2
    lon0 = DOWNTOWN[1] - GRID_STEP * (columns - 1) / 2
    grid = [
        (round(lat0 + r * GRID_STEP, 5), round(lon0 + c * GRID_STEP, 5))
        for r in range(rows)
        for c in range(columns)
    ]
    return grid[:groups]


# -- the client processes -------------------------------------------------------------


async def client_main(spec: dict[str, Any]) -> None:
    """One client process: ``count`` sockets from ``first``, a subscription each; prints
    ``ready``, then its progress (messages heard), and on ``stop`` every arrival time."""
    url, first, count = spec["url"], spec["first"], spec["count"]
    grid = [tuple(p) for p in spec["points"]]
    arrivals: list[list[float]] = [[] for _ in range(count)]
    closes: list[int | None] = [None] * count
    acked = 0
    all_acked = asyncio.Event()
    gate = asyncio.Semaphore(100)  # handshakes in flight
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)

    async def one(n: int) -> None:
        nonlocal acked
        latitude, longitude = grid[(first + n) % len(grid)]
        if spec["own_points"]:
            # Each subscriber a point of its own (within about 50 m of its group's):
            # no two alerts alike, so no execution is shared.
            latitude += ((first + n) % 97 - 48) * 1e-5
            longitude += ((first + n) // 97 % 89 - 44) * 1e-5
        variables = {
            "filter": {
                "near": {"latitude": latitude, "longitude": longitude},
                "radiusKm": RADIUS_KM,
                "startsAfter": spec["starts_after"],
                "startsBefore": spec["starts_before"],
            }
        }
        async with gate:
            ws = await session.ws_connect(url, protocols=[PROTOCOL], autoping=True, heartbeat=None)
            await ws.send_str('{"type":"connection_init"}')
            ack = await ws.receive(timeout=60)
            assert "connection_ack" in ack.data, ack
            payload = {"query": ALERTS, "variables": variables}
            await ws.send_str(
                orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode()
            )
        acked += 1
        if acked == count:
            all_acked.set()
        mine = arrivals[n]
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = message.data
            if '"next"' in data:
                mine.append(time.monotonic())
            elif '"ping"' in data:
                await ws.send_str('{"type":"pong"}')
            elif '"error"' in data or '"complete"' in data:
                print(json.dumps({"unexpected": data[:300]}), flush=True)
        closes[n] = ws.close_code

    tasks = [asyncio.create_task(one(n)) for n in range(count)]
    await all_acked.wait()
    print(json.dumps({"ready": count}), flush=True)

    async def progress() -> None:
        shown: tuple[int, int] | None = None
        while True:
            now = (sum(len(a) for a in arrivals), sum(c is not None for c in closes))
            if now != shown:
                print(json.dumps({"heard": now[0], "closed": now[1]}), flush=True)
                shown = now
            await asyncio.sleep(0.1)

    reporter = asyncio.create_task(progress())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (line := await reader.readline()) and line.strip() != b"stop":
        pass
    # The gateway was stopped: give the sockets a moment to hear its goodbye.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
    reporter.cancel()
    print(json.dumps({"arrivals": arrivals, "closes": closes}), flush=True)
    await session.close()


@dataclass
class ClientProcess:
    process: asyncio.subprocess.Process
    ready: bool = False
    heard: int = 0
    closed: int = 0  # sockets the gateway closed
    report: dict[str, Any] | None = None
    _reader: asyncio.Task[None] | None = field(default=None, repr=False)

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            data = json.loads(line)
            if "ready" in data:
                self.ready = True
            elif "heard" in data:
                self.heard, self.closed = data["heard"], data["closed"]
            elif "arrivals" in data:
                self.report = data
            else:
                say(f"  client: {data}")

    async def stop(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        self.process.stdin.close()
        assert self._reader is not None
        await asyncio.wait_for(self._reader, 60)
        await self.process.wait()
        assert self.report is not None, "a client process gave no report"
        return self.report


# -- the gateway ------------------------------------------------------------------------


def proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


async def settle(pid: int, quiet_cpu_s: float = 0.03, window_s: float = 1.0) -> None:
    """Until the gateway spends less than ``quiet_cpu_s`` of CPU in ``window_s``."""
    for _ in range(120):
        before = proc_cpu_s(pid)
        await asyncio.sleep(window_s)
        if proc_cpu_s(pid) - before < quiet_cpu_s:
            return
    say("  (the gateway never settled: measuring anyway)")


@contextlib.asynccontextmanager
async def feed_server(scale: float, workdir: Path) -> AsyncIterator[tuple[Any, str, list[float]]]:
    """The demo publisher of the clinics near downtown, served here; its delta-file
    requests' times (monotonic) listed as they come."""
    from examples.demo_ssl import build_app
    from examples.demo_ssl.publisher import Publisher
    from examples.world import World
    from sources.geo import GeoPoint, distance_km

    world = World(scale)
    here = GeoPoint(*DOWNTOWN)
    nearby = [
        c
        for c in world.clinics_for("ssl")
        if distance_km(here, GeoPoint(c.latitude, c.longitude)) <= FEED_RADIUS_KM
    ]
    publisher = Publisher(world, workdir / "feed", clinics=nearby)
    fetched: list[float] = []

    @web.middleware
    async def timestamps(request: web.Request, handler: Any) -> web.StreamResponse:
        if "delta" in request.path:
            fetched.append(time.monotonic())
        response: web.StreamResponse = await handler(request)
        return response

    app = build_app(publisher, max_age_s=0)
    app.middlewares.append(timestamps)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    say(f"  feed: {len(nearby)} clinics within {FEED_RADIUS_KM} km of downtown, port {port}")
    try:
        yield publisher, f"http://127.0.0.1:{port}/$bulk-publish", fetched
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def gateway(
    feed_url: str, workdir: Path, per_ip: int
) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    config = workdir / "sources.toml"
    config.write_text(
        f'[[sources]]\nid = "bench-feed"\nprotocol = "SMART_SCHEDULING_LINKS"\nurl = "{feed_url}"\n'
    )
    port = free_port()
    argv = [sys.executable, "-c", LAUNCHER, "--no-demo", "--config", str(config)]
    argv += ["--database-url", f"sqlite:///{workdir / 'registry.sqlite3'}", "--port", str(port)]
    argv += ["--subscriptions-per-ip", str(per_ip), "--log-level", "warning"]
    log = (workdir / "gateway.log").open("wb")
    process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if process.poll() is not None:
                    raise SystemExit((workdir / "gateway.log").read_text())
                with contextlib.suppress(aiohttp.ClientError):
                    query = {"query": "{ sources { id status } }"}
                    async with session.post(url, json=query) as response:
                        sources = (await response.json())["data"]["sources"]
                        if sources and sources[0]["status"] == "UP":
                            break
                await asyncio.sleep(0.2)
            else:
                raise SystemExit("the feed never came UP")
        yield process, url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


# -- the run ----------------------------------------------------------------------------


def profile(pid: int, directory: Path | None, phase: str) -> subprocess.Popen[bytes] | None:
    """py-spy (PyPI) recording the gateway's stacks into ``directory/phase.txt``."""
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / f"{phase}.txt"
    say(f"  profiling ({phase}) into {output}: py-spy's collapsed stacks")
    return subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "100",
         "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def stop_profile(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        await asyncio.to_thread(profiler.wait, 60)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, args.subscriptions + 1000)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    grid = points(args.groups)
    now = datetime.now().astimezone()
    window = {
        "starts_after": now.isoformat(timespec="seconds"),
        "starts_before": (now + timedelta(days=20)).isoformat(timespec="seconds"),
    }
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="passerelle-subs-") as tmp:
        workdir = Path(tmp)
        async with (
            feed_server(args.scale, workdir) as (publisher, feed_url, fetched),
            gateway(feed_url, workdir, args.subscriptions + 100) as (process, url),
        ):
            pid = process.pid
            await settle(pid)
            rss_before = proc_rss_kb(pid)
            say(f"  gateway up, RSS {rss_before / 1024:.0f} MiB; opening {args.subscriptions} "
                f"subscriptions in {args.groups} groups from {args.clients} processes")  # fmt: skip
            started = time.monotonic()
            share = -(-args.subscriptions // args.clients)
            clients = []
            for i in range(args.clients):
                count = min(share, args.subscriptions - i * share)
                spec = {"url": url.replace("http", "ws", 1), "first": i * share, "count": count,
                        "points": grid, "own_points": args.own_points, **window}  # fmt: skip
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--client-spec", json.dumps(spec),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=1 << 26,
                )  # fmt: skip
                client = ClientProcess(proc)
                client.start_reading()
                clients.append(client)
            while not all(c.ready for c in clients):  # noqa: ASYNC110  (other processes)
                await asyncio.sleep(0.2)
            opened_s = time.monotonic() - started
            say(f"  {args.subscriptions} subscribed in {opened_s:.1f} s; settling")
            await settle(pid)
            rss_after = proc_rss_kb(pid)
            per_sub = (rss_after - rss_before) * 1024 / args.subscriptions
            say(f"  RSS {rss_after / 1024:.0f} MiB: {per_sub / 1024:.1f} KiB a subscription")

            say(f"  idle for {args.idle_seconds:g} s")
            profiler = profile(pid, args.profile, "idle")
            cpu0, t0 = proc_cpu_s(pid), time.monotonic()
            await asyncio.sleep(args.idle_seconds)
            idle_cpu = (proc_cpu_s(pid) - cpu0) / (time.monotonic() - t0) * 60
            await stop_profile(profiler)

            profiler = profile(pid, args.profile, "changes")
            changes: list[tuple[float, int]] = []  # (delta fetched at, messages before)
            for k in range(args.changes):
                before = sum(c.heard for c in clients)
                seen = len(fetched)
                publisher.add(3)
                deadline = time.monotonic() + args.change_timeout
                while len(fetched) == seen and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                if len(fetched) == seen:
                    raise SystemExit("the gateway never fetched the change")
                changes.append((fetched[seen], before))
                while sum(c.heard for c in clients) < before + args.subscriptions:
                    if time.monotonic() > deadline:
                        raise SystemExit(
                            f"change {k}: {sum(c.heard for c in clients) - before} of "
                            f"{args.subscriptions} subscribers heard it within "
                            f"{args.change_timeout:g} s "
                            f"({sum(c.closed for c in clients)} sockets closed meanwhile)"
                        )
                    await asyncio.sleep(0.05)
                took = time.monotonic() - fetched[seen]
                say(f"  change {k + 1}: every subscriber heard it, {took:.1f} s after the reload")
                await asyncio.sleep(1.5)
            cpu_busy = proc_cpu_s(pid) - cpu0
            await stop_profile(profiler)

            say("  stopping the gateway (SIGTERM)")
            process.send_signal(signal.SIGTERM)
            stop_started = time.monotonic()
            reports = await asyncio.gather(*(c.stop() for c in clients))
            await asyncio.to_thread(process.wait, 30)
            stop_s = time.monotonic() - stop_started

    arrivals = [times for report in reports for times in report["arrivals"]]
    closes = [code for report in reports for code in report["closes"]]
    lasts, p50s, p99s = [], [], []
    for k, (fetched_at, _) in enumerate(changes):
        latencies = [(times[k] - fetched_at) * 1000 for times in arrivals if len(times) > k]
        assert len(latencies) == args.subscriptions, (k, len(latencies))
        p50s.append(percentile(latencies, 0.5))
        p99s.append(percentile(latencies, 0.99))
        lasts.append(max(latencies))
    extra = sum(max(0, len(times) - args.changes) for times in arrivals)
    rows += [
        ("subscriptions (sockets), groups, client processes",
         f"{args.subscriptions:,}, {args.groups}, {args.clients}"),
        ("all subscribed in", f"{opened_s:.1f} s"),
        ("gateway RSS before / with every subscription open",
         f"{rss_before / 1024:.0f} / {rss_after / 1024:.0f} MiB"),
        ("memory per subscription", f"{per_sub / 1024:.1f} KiB"),
        ("CPU while idle", f"{idle_cpu:.2f} s a minute ({idle_cpu / 60 * 100:.1f} % of a core)"),
        ("change to subscribers' messages, per change: p50", _ms(p50s)),
        ("  p99", _ms(p99s)),
        ("  last subscriber", _ms(lasts)),
        ("last subscriber over the changes: p50 / p99",
         f"{statistics.median(lasts):.0f} / {percentile(lasts, 0.99):.0f} ms"),
        ("messages beyond one per change and subscriber", f"{extra}"),
        ("gateway CPU from idle to the last change", f"{cpu_busy:.1f} s"),
        ("sockets closed with 1001 on SIGTERM", f"{sum(c == 1001 for c in closes):,} "
         f"of {len(closes):,} (gateway exited in {stop_s:.1f} s)"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}} | value")
    print(f"{'-' * width} | -----")
    for name, value in rows:
        print(f"{name:<{width}} | {value}")


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values) + " ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 subscriptions, 20 groups")
    parser.add_argument("--subscriptions", type=int, default=None)
    parser.add_argument("--groups", type=int, default=None)
    parser.add_argument("--clients", type=int, default=2, help="client processes (2)")
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=None)
    parser.add_argument(
        "--change-timeout", type=float, default=180.0, help="for every subscriber to hear one"
    )
    parser.add_argument("--scale", type=float, default=0.05, help="the demo world's (0.05)")
    parser.add_argument(
        "--own-points",
        action="store_true",
        help="each subscriber a point of its own (default: those of a group share one)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy's collapsed stacks of the gateway while idle and during the changes",
    )
    parser.add_argument("--client-spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_spec:
        asyncio.run(client_main(json.loads(args.client_spec)))
        return
    args.subscriptions = args.subscriptions or (1000 if args.quick else 10_000)
    args.groups = args.groups or (20 if args.quick else 200)
    args.idle_seconds = args.idle_seconds or (10.0 if args.quick else 60.0)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
