"""Benchmark of one executed near-me query (issue 17, item 1): CPU per request.

    python benchmarks/executed.py                       # cache off and on, 20 s each
    python benchmarks/executed.py --cache off --seconds 10 --profile prof/
    python benchmarks/executed.py --identical           # every request the same point

Run by hand, not by CI. Starts ``python app.py --no-response-cache`` with its demo
systems (scale 0.05, churn 0) and asks, from ``--connections`` concurrent aiohttp
clients, "the next 20 free slots within 10 km of a point in the next 3 days, with
clinic name and city and physician name" (``QUERY``), at points that vary with each
request (``--points N`` of them, drawn around Montreal and cycled: with the source
cache on, each point's upstream answers are cached after its first request). The
gateway's CPU per request (user + system of its own process, from ``/proc``, the demo
systems being other processes) is what this measures; requests/s is reported beside
it, but the clients share the machine's cores. ``--profile DIR`` runs py-spy over the
gateway during the load (``DIR/executed-<cache>.txt``, collapsed stacks). ``--extra``
passes options to ``app.py`` (``--extra=--no-compiled-plan``); ``--rounds`` alternates
the plain gateway and the one with ``--extra`` (A B A B), for ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from fanout import Gateway

ROOT = Path(__file__).resolve().parents[1]
QUERY = """query NearMe($near: GeoPointInput!) {
  slots(filter: {near: $near, radiusKm: 10}, first: 20) {
    edges { node {
      start
      clinic { name address { city } }
      physician { displayName }
    } }
  }
}"""
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
MONTREAL = (45.5017, -73.5673)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def points(count: int, seed: int = 17) -> list[dict[str, float]]:
    """``count`` points within about 6 km of downtown Montreal."""
    rng = random.Random(seed)
    return [
        {
            "latitude": round(MONTREAL[0] + rng.uniform(-0.05, 0.05), 5),
            "longitude": round(MONTREAL[1] + rng.uniform(-0.07, 0.07), 5),
        }
        for _ in range(count)
    ]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(
    session: aiohttp.ClientSession, url: str, where: list[dict[str, float]], seconds: float, c: int
) -> tuple[int, int, list[float]]:
    """``c`` clients asking in a loop for ``seconds``: (answers, failures, latencies ms)."""
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))
    latencies: list[float] = []
    failures = 0

    async def client() -> None:
        nonlocal failures
        while time.monotonic() < deadline:
            near = where[next(counter) % len(where)]
            body = orjson.dumps({"query": QUERY, "variables": {"near": near}})
            began = time.perf_counter()
            async with session.post(url, data=body, headers=HEADERS) as response:
                raw = await response.read()
            answer = orjson.loads(raw)
            if response.status != 200 or answer.get("errors") or not answer["data"]["slots"]:
                failures += 1
            latencies.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(client() for _ in range(c)))
    return len(latencies), failures, latencies


async def case(args: argparse.Namespace, cache: str, extra: list[str]) -> dict[str, Any]:
    gw = Gateway(
        faults={}, scale=args.scale, extra=["--no-response-cache", "--cache", cache, *extra]
    )
    # The demo REST server limits a key to 100 requests a second, which 8 clients with the
    # source cache off pass (429s, then retries after 1 s, in every round): raised, as
    # peer.py and filters.py do (examples.demo_rest.server.RATE_LIMIT_ENV).
    os.environ.setdefault("PASSERELLE_DEMO_REST_RPS", "1000000")
    label = f"cache {cache}{' ' + ' '.join(extra) if extra else ''}"
    async with aiohttp.ClientSession() as session:
        with tempfile.TemporaryDirectory(prefix="passerelle-executed-") as workdir:
            gw.start(Path(workdir))
            try:
                await gw.wait_ready(session, 180)
                assert gw.process is not None
                pid = gw.process.pid
                where = points(1 if args.identical else args.points)
                await load(session, gw.url, where, args.warmup, args.connections)
                spy = None
                if args.profile:
                    out = Path(args.profile) / f"executed-{cache}{'-'.join(['', *extra])}.txt"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
                    argv = [py_spy, "record", "--pid", str(pid), "--rate", "200", "--format"]
                    argv += ["raw", "--nonblocking", "--output", str(out)]
                    argv += ["--duration", str(int(args.seconds))]
                    spy = await asyncio.create_subprocess_exec(
                        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
                    )
                before, began = cpu_seconds(pid), time.monotonic()
                done, failed, latencies = await load(
                    session, gw.url, where, args.seconds, args.connections
                )
                cpu, wall = cpu_seconds(pid) - before, time.monotonic() - began
                if spy is not None:
                    await spy.wait()
            finally:
                gw.stop()
    latencies.sort()
    row = {
        "case": label,
        "requests": done,
        "failed": failed,
        "rps": done / wall,
        "cpu_ms": cpu * 1000 / max(done, 1),
        "p50_ms": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
    }
    say(
        f"  {label}: {row['requests']} requests ({failed} failed), {row['rps']:.0f} req/s, "
        f"{row['cpu_ms']:.2f} ms CPU/request, p50 {row['p50_ms']:.1f} p99 {row['p99_ms']:.1f} ms"
    )
    return row


async def main() -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", choices=("off", "memory", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--identical", action="store_true", help="one point for every request")
    parser.add_argument("--profile", default="", help="py-spy's collapsed stacks go there")
    parser.add_argument("--extra", action="append", default=[], help="an option for app.py")
    parser.add_argument("--rounds", type=int, default=1, help="A B rounds with and without --extra")
    args = parser.parse_args()
    caches = ("off", "memory") if args.cache == "both" else (args.cache,)
    rows = []
    for _ in range(args.rounds):
        for cache in caches:
            if args.rounds > 1 and args.extra:
                rows.append(await case(args, cache, []))
            rows.append(await case(args, cache, args.extra))
    print("| case | requests/s | CPU per request | p50 / p99 | failed |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['case']} | {row['rps']:.0f} | {row['cpu_ms']:.2f} ms | "
            f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f} ms | {row['failed']} |"
        )
    return rows


if __name__ == "__main__":
    asyncio.run(main())
