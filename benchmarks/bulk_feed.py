"""Benchmark: a whole province as one SMART Scheduling Links feed, through the gateway.

    python benchmarks/bulk_feed.py            # Quebec scale (about 2 minutes)
    python benchmarks/bulk_feed.py --quick    # a tenth of Quebec (seconds)

It starts the demo publisher (``examples.demo_ssl --all``, its own process)
with a dense world (two sessions a day, 75 % free: about 1.5 million free
slots over 14 days at full scale), then ``python app.py --no-demo`` with only
that source registered, and measures from outside:

- ingestion: from the source's registration (the config file is written while
  the gateway runs; the registry watcher polls it every second) to its first
  load done (``Source.dataAsOf`` set and status UP);
- peak RSS of the gateway process (``VmHWM``);
- end-to-end latency of "next 20 slots within 10 km of downtown Montreal in
  the next 3 days" over GraphQL/HTTP, sequential requests, p50 and p99.

Figures go to stdout as one table. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
QUERY = """query Next($before: DateTime!) {
  slots(filter: {near: {latitude: 45.5017, longitude: -73.5673}, radiusKm: 10,
                 startsBefore: $before}, first: 20) {
    edges { node { id start clinic { name } } }
  }
}"""
STATUS = "{ sources { id status dataAsOf skippedRecords } }"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"process exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"port {port} did not open within {timeout_s:g} s")


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def graphql(
    session: aiohttp.ClientSession, url: str, query: str, **variables: object
) -> dict:  # type: ignore[type-arg]
    async with session.post(url, json={"query": query, "variables": variables}) as response:
        return await response.json()  # type: ignore[no-any-return]


async def measure(url: str, requests: int, ingest_timeout_s: float) -> dict[str, float]:
    out: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        while True:
            status = await graphql(session, url, STATUS)
            sources = status["data"]["sources"]
            source = sources[0] if sources else {}
            if source.get("dataAsOf") and source.get("status") == "UP":
                break
            if time.perf_counter() - started > ingest_timeout_s:
                raise SystemExit(f"feed not ingested within {ingest_timeout_s:g} s: {source}")
            await asyncio.sleep(0.1)
        out["ingest_s"] = time.perf_counter() - started
        out["skipped"] = float(source["skippedRecords"] or 0)
        before = (datetime.now().astimezone() + timedelta(days=3)).isoformat()
        for _ in range(20):  # warm-up: parser and validation caches, connections
            await graphql(session, url, QUERY, before=before)
        timings = []
        edges = 0
        for _ in range(requests):
            t0 = time.perf_counter()
            result = await graphql(session, url, QUERY, before=before)
            timings.append((time.perf_counter() - t0) * 1000)
            edges = len(result["data"]["slots"]["edges"])
            assert "errors" not in result, result["errors"]
        timings.sort()
        out["p50_ms"] = statistics.median(timings)
        out["p99_ms"] = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        out["edges"] = float(edges)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of Quebec")
    parser.add_argument("--scale", type=float, help="world scale (1.0; --quick: 0.1)")
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    scale = args.scale or (0.1 if args.quick else 1.0)
    with tempfile.TemporaryDirectory(prefix="passerelle-bench-") as tmp:
        work = Path(tmp)
        feed_port, gateway_port = free_port(), free_port()
        t0 = time.perf_counter()
        publisher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.demo_ssl",
                "--all",
                "--port",
                str(feed_port),
                "--scale",
                str(scale),
                "--sessions-per-day",
                "2",
                "--free-share",
                "0.75",
                "--data-dir",
                str(work / "feed"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        gateway = None
        try:
            wait_port(feed_port, publisher, 600)
            feed_s = time.perf_counter() - t0
            feed_mb = sum(f.stat().st_size for f in (work / "feed").rglob("*") if f.is_file()) / 1e6
            config = work / "bench.toml"
            config.write_text("")  # no source yet: the gateway starts empty
            env = {**os.environ, "PASSERELLE_DATABASE_URL": f"sqlite:///{work / 'r.sqlite3'}"}
            gateway = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "app.py"),
                    "--no-demo",
                    "--config",
                    str(config),
                    "--port",
                    str(gateway_port),
                    "--log-level",
                    "warning",
                ],
                cwd=work,
                env=env,
            )
            wait_port(gateway_port, gateway, 60)
            config.write_text(
                '[[sources]]\nid = "province"\nname = "Province feed"\n'
                'protocol = "SMART_SCHEDULING_LINKS"\n'
                f'url = "http://127.0.0.1:{feed_port}/$bulk-publish"\ntimeout_s = 10\n'
            )
            url = f"http://127.0.0.1:{gateway_port}/graphql"
            figures = asyncio.run(measure(url, args.requests, 600))
            rss = rss_mb(gateway.pid)
            steady = rss_mb(gateway.pid, "VmRSS")
        finally:
            if gateway is not None:
                stop(gateway)
            stop(publisher)
    rows = [
        ("world scale", f"{scale:g}", ""),
        ("feed written (publisher start)", f"{feed_s:.1f} s", f"{feed_mb:.0f} MB on disk"),
        ("full ingestion", f"{figures['ingest_s']:.1f} s", "target < 60 s"),
        ("peak RSS of the gateway", f"{rss:.0f} MB", "target < 600 MB"),
        ("RSS after the load and queries", f"{steady:.0f} MB", ""),
        ("next 20 within 10 km, 3 days: p50", f"{figures['p50_ms']:.2f} ms", "target < 10 ms"),
        ("same query: p99", f"{figures['p99_ms']:.2f} ms", f"{args.requests} requests"),
        ("records skipped", f"{figures['skipped']:.0f}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
