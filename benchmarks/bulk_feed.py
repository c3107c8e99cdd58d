"""Benchmark: a whole province as one SMART Scheduling Links feed, through the gateway.

    python benchmarks/bulk_feed.py               # Quebec scale (about 4 minutes)
    python benchmarks/bulk_feed.py --quick       # a tenth of Quebec (seconds)
    python benchmarks/bulk_feed.py --check-only  # the sources check alone

It starts the demo publisher (``examples.demo_ssl --all``, its own process)
with a dense world (two sessions a day, 75 % free: about 1.5 million free
slots over 14 days at full scale), then ``python app.py --no-demo`` with only
that source registered, and measures from outside:

- ingestion: from the source's registration (the config file is written while
  the gateway runs; the registry watcher polls it every second) to its first
  load done (``Source.dataAsOf`` set and status UP);
- peak RSS of the gateway process (``VmHWM``);
- end-to-end latency of "next 20 slots within 10 km of downtown Montreal in
  the next 3 days" over GraphQL/HTTP, sequential requests, p50 and p99;
- then, the gateway stopped, ``python app.py sources check`` of the same feed as
  a vendor would run it: its wall time, its peak RSS (its own ``ru_maxrss``, from
  ``os.wait4``), its exit status and the free slots it says would be served.

Figures go to stdout as one table. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def check_feed(feed_url: str, work: Path) -> dict[str, float]:
    """``python app.py sources check`` of the feed, in its own process, as the command
    line runs it: wall time, the process's own peak RSS, exit status, slots served."""
    argv = [sys.executable, str(ROOT / "app.py"), "--log-level", "warning", "sources", "check"]
    argv += ["--protocol", "SMART_SCHEDULING_LINKS", "--url", feed_url, "--json"]
    out = work / "check.json"
    started = time.perf_counter()
    with out.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=work, stdout=sink)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix in the others).
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    report = json.loads(out.read_text() or "{}")
    served = (report.get("slots") or {}).get("served")
    return {
        "check_s": wall,
        "check_cpu_s": usage.ru_utime + usage.ru_stime,
        "check_rss_mb": usage.ru_maxrss / 1024,
        "check_exit": float(process.returncode),
        "check_served": float(served if served is not None else -1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of Quebec")
    parser.add_argument("--scale", type=float, help="world scale (1.0; --quick: 0.1)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument(
        "--check-only", action="store_true", help="measure sources check only, not the gateway"
    )
    args = parser.parse_args()
    scale = args.scale or (0.1 if args.quick else 1.0)
    figures: dict[str, float] = {}
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
        feed_url = f"http://127.0.0.1:{feed_port}/$bulk-publish"
        try:
            wait_port(feed_port, publisher, 600)
            feed_s = time.perf_counter() - t0
            feed_mb = sum(f.stat().st_size for f in (work / "feed").rglob("*") if f.is_file()) / 1e6
            if not args.check_only:
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
                    f'url = "{feed_url}"\ntimeout_s = 10\n'
                )
                url = f"http://127.0.0.1:{gateway_port}/graphql"
                figures = asyncio.run(measure(url, args.requests, 600))
                figures["rss"] = rss_mb(gateway.pid)
                figures["steady"] = rss_mb(gateway.pid, "VmRSS")
                stop(gateway)
            figures.update(check_feed(feed_url, work))
        finally:
            if gateway is not None:
                stop(gateway)
            stop(publisher)
    rows = [
        ("world scale", f"{scale:g}", ""),
        ("feed written (publisher start)", f"{feed_s:.1f} s", f"{feed_mb:.0f} MB on disk"),
    ]
    if not args.check_only:
        rows += [
            ("full ingestion", f"{figures['ingest_s']:.1f} s", "target < 60 s"),
            ("peak RSS of the gateway", f"{figures['rss']:.0f} MB", "target < 600 MB"),
            ("RSS after the load and queries", f"{figures['steady']:.0f} MB", ""),
            ("next 20 within 10 km, 3 days: p50", f"{figures['p50_ms']:.2f} ms", "target < 10 ms"),
            ("same query: p99", f"{figures['p99_ms']:.2f} ms", f"{args.requests} requests"),
            ("records skipped", f"{figures['skipped']:.0f}", ""),
        ]
    rows += [
        ("sources check: wall time", f"{figures['check_s']:.1f} s", "target < 120 s"),
        ("sources check: CPU time", f"{figures['check_cpu_s']:.1f} s", ""),
        ("sources check: peak RSS", f"{figures['check_rss_mb']:.0f} MB", "target < 1,000 MB"),
        (
            "sources check: exit status",
            f"{figures['check_exit']:.0f}",
            f"{figures['check_served']:.0f} free slots served",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
