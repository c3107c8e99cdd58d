"""The upstream half of an executed query: one adapter's slot search, alone (issue 17 item 1).

    python benchmarks/adapter_calls.py                  # 400 searches per adapter
    python benchmarks/adapter_calls.py --searches 1000 --scale 0.05

Run by hand, not by CI. Starts the demo FHIR server and the demo REST API (each its own
process, as ``app.py`` does) and, in this process, the FHIR and REST JSON adapters on one
aiohttp session, then asks each, in turn, the near-me search the gateway sends it for
``benchmarks/executed.py``'s query (25 slots, 10 km, the next 7 days) at 50 points around
downtown Montreal, cycled. What it measures is this process's CPU per search (user +
system): the HTTP client, the decoding and the records, without the pool, the merge nor
GraphQL. The demo systems' own CPU is theirs (other processes). ``--profile FILE`` runs
the searches under py-spy (collapsed stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fanout import free_ports  # noqa: E402

from sources.base import SourceConfig, SourceContext  # noqa: E402
from sources.fhir.adapter import FhirSource  # noqa: E402
from sources.records import GeoPoint, SlotQuery, SourceProtocol  # noqa: E402
from sources.rest_json.adapter import RestJsonSource  # noqa: E402

MONTREAL = (45.5017, -73.5673)
KEY = "benchmark-key"


def points(count: int, seed: int = 17) -> list[GeoPoint]:
    """``count`` points within about 6 km of downtown Montreal (``executed.py``'s)."""
    rng = random.Random(seed)
    return [
        GeoPoint(
            round(MONTREAL[0] + rng.uniform(-0.05, 0.05), 5),
            round(MONTREAL[1] + rng.uniform(-0.07, 0.07), 5),
        )
        for _ in range(count)
    ]


def start_demos(scale: float, base: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PASSERELLE_DEMO_REST_KEY": KEY}
    argv = ["--host", "127.0.0.1", "--scale", f"{scale:g}"]
    fhir = [sys.executable, "-m", "examples.demo_fhir", "--port", str(base), *argv]
    rest = [sys.executable, "-m", "examples.demo_rest", "--port", str(base + 1), *argv]
    rest += ["--rate-limit-rps", "1000000"]
    return [
        subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        for cmd in (fhir, rest)
    ]


async def wait_up(session: aiohttp.ClientSession, urls: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for url in urls:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer in {timeout_s:.0f} s")
            await asyncio.sleep(0.2)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(args: argparse.Namespace, base: int) -> None:
    async with aiohttp.ClientSession(headers={"User-Agent": "Passerelle/0.1"}) as session:
        fhir_url = f"http://127.0.0.1:{base}/fhir"
        rest_url = f"http://127.0.0.1:{base + 1}/api/v1"
        await wait_up(session, [f"{fhir_url}/metadata", f"{rest_url}/cliniques"], 120)
        logger = logging.getLogger("passerelle.benchmark")
        fhir = FhirSource(
            SourceConfig(id="demo-fhir", protocol=SourceProtocol.FHIR_R4, url=fhir_url),
            SourceContext(session, logger.getChild("demo-fhir")),
        )
        rest = RestJsonSource(
            SourceConfig(
                id="demo-rest", protocol=SourceProtocol.REST_JSON, url=rest_url, credentials=KEY
            ),
            SourceContext(session, logger.getChild("demo-rest")),
        )
        await fhir.start()
        await fhir.ready()
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        where = points(50)

        def query(i: int) -> SlotQuery:
            return SlotQuery(
                starts_after=now,
                starts_before=now + timedelta(days=7),
                limit=25,
                near=where[i % len(where)],
                radius_km=10.0,
            )

        try:
            for source in (fhir, rest):
                for i in range(args.warmup):
                    await source.search_slots(query(i))
                began, wall = cpu(), time.perf_counter()
                for i in range(args.searches):
                    result = await source.search_slots(query(i))
                spent, wall = cpu() - began, time.perf_counter() - wall
                print(
                    f"{source.id}: {1000 * spent / args.searches:.3f} ms CPU a search "
                    f"({args.searches} searches, {1000 * wall / args.searches:.2f} ms wall; "
                    f"last: {len(result.slots)} slots)"
                )
        finally:
            await fhir.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--profile", default="", help="py-spy's collapsed stacks go there")
    args = parser.parse_args()
    if args.profile:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        argv = [py_spy, "record", "--rate", "1000", "--format", "raw", "-o", args.profile]
        argv += ["--", sys.executable, __file__, "--searches", str(args.searches)]
        argv += ["--warmup", str(args.warmup), "--scale", f"{args.scale:g}"]
        raise SystemExit(subprocess.call(argv))
    base = free_ports(2)
    demos = start_demos(args.scale, base)
    try:
        asyncio.run(measure(args, base))
    finally:
        for process in demos:
            process.terminate()
        for process in demos:
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
