"""Benchmark: a whole province as one SMART Scheduling Links feed, through the gateway.

    python benchmarks/bulk_feed.py               # Quebec scale (about 5 minutes)
    python benchmarks/bulk_feed.py --quick       # a tenth of Quebec
    python benchmarks/bulk_feed.py --check-only  # the sources check alone
    python benchmarks/bulk_feed.py --bare        # without the operator's settings
    python benchmarks/bulk_feed.py --profile DIR # py-spy of the near-me requests

The demo publisher (``examples.demo_ssl --all``, its own process) writes a dense world
(two sessions a day, 75 % free: about 1.5 million free slots over 14 days at full
scale); the gateway reads those files from a plain static server over the same
directory (``examples.demo_ssl.server.build_app`` of a directory: ``_since`` ignored,
``max-age=0``), so that a republished feed is a full reload. The gateway is
``python app.py --no-demo`` with only that source, run as an operator runs it (issue
17, item 7): ``--env production``, an anonymous rate high enough for the load,
``/metrics`` on its own port, JSON request logs (``--log-level info``) to a file,
traces off (``--bare``: development, warning logs, no metrics). Its bulk feeds are
polled every 2 s for this run rather than every minute (the adapter's floor is lowered
in the launching command), so that a republication is read at once. Measured from
outside:

1. the first load: from the source's registration (the config file is written while
   the gateway runs) to its first load done (``Source.dataAsOf`` set, status UP), and
   the gateway's peak RSS until then (``VmHWM``);
2. end-to-end latency of "next 20 slots within 10 km of downtown Montreal in the next
   3 days" over GraphQL/HTTP, sequential requests, p50 and p99, and the gateway's CPU
   per request (``/proc``); then its RSS (steady);
3. ``--subscriptions`` (1,000) ``slotAlerts`` subscriptions opened over
   graphql-transport-ws by a client process (20 points 6 km apart around downtown,
   10 km, the next 3 days: citizens near their homes), then the feed republished:
   every file rewritten (one free slot in 100 booked), the manifest's time moved; the
   peak RSS from the republication (``VmHWM`` reset through ``/proc/PID/clear_refs``)
   to the reload done (``dataAsOf`` moved), the alerts heard, and the RSS once settled;
4. then, the gateway stopped, ``python app.py sources check`` of the feed as a vendor
   would run it: wall time, peak RSS (its own ``ru_maxrss``), exit status, free slots
   it says would be served.

Figures go to stdout as one table, progress to stderr. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
QUERY = """query Next($before: DateTime!) {
  slots(filter: {near: {latitude: 45.5017, longitude: -73.5673}, radiusKm: 10,
                 startsBefore: $before}, first: 20) {
    edges { node { id start clinic { name } } }
  }
}"""
STATUS = "{ sources { id status dataAsOf skippedRecords } }"
ALERTS = "subscription A($f: SlotFilter!) { slotAlerts(filter: $f) { opened { id } goneIds } }"
DOWNTOWN = (45.5017, -73.5673)
LAUNCHER = """
import sys
from sources.smart_scheduling.adapter import SmartSchedulingSource as S
S.MIN_POLL_INTERVAL_S = S.DEFAULT_POLL_INTERVAL_S = 2.0
S.MIN_FILE_INTERVAL_S = 0.0
import app
sys.exit(app.main(sys.argv[1:]))
"""
STATIC = """
import sys
from pathlib import Path
from aiohttp import web
from examples.demo_ssl.server import build_app
web.run_app(build_app(Path(sys.argv[1]), max_age_s=0), host="127.0.0.1",
            port=int(sys.argv[2]), print=None)
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


def proc_field(pid: int, field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> None:
    """Start ``VmHWM`` again from the current RSS (Linux: ``clear_refs`` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def graphql(session: aiohttp.ClientSession, url: str, query: str, **values: Any) -> Any:
    body = orjson.dumps({"query": query, "variables": values})
    headers = {"content-type": "application/json"}
    async with session.post(url, data=body, headers=headers) as response:
        return orjson.loads(await response.read())


async def loaded(
    session: aiohttp.ClientSession, url: str, after: str | None, limit_s: float
) -> Any:
    """The source once UP with a ``dataAsOf`` other than ``after``."""
    started = time.perf_counter()
    while True:
        sources = (await graphql(session, url, STATUS))["data"]["sources"]
        source = sources[0] if sources else {}
        if source.get("dataAsOf") not in (None, after) and source.get("status") == "UP":
            return source
        if time.perf_counter() - started > limit_s:
            raise SystemExit(f"feed not loaded within {limit_s:g} s: {source}")
        await asyncio.sleep(0.1)


async def settle(pid: int, quiet_cpu_s: float = 0.05, window_s: float = 1.0) -> None:
    for _ in range(60):
        before = cpu_s(pid)
        await asyncio.sleep(window_s)
        if cpu_s(pid) - before < quiet_cpu_s:
            return


async def queries(session: aiohttp.ClientSession, url: str, n: int, pid: int) -> dict[str, float]:
    before = (datetime.now().astimezone() + timedelta(days=3)).isoformat()
    for _ in range(20):  # warm-up: parser and validation caches, connections
        await graphql(session, url, QUERY, before=before)
    timings, cpu0 = [], cpu_s(pid)
    for _ in range(n):
        t0 = time.perf_counter()
        result = await graphql(session, url, QUERY, before=before)
        timings.append((time.perf_counter() - t0) * 1000)
        assert "errors" not in result, result["errors"]
        assert len(result["data"]["slots"]["edges"]) == 20, result
    timings.sort()
    return {
        "p50_ms": statistics.median(timings),
        "p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        "cpu_ms": (cpu_s(pid) - cpu0) * 1000 / n,
    }


def republish(feed: Path) -> None:
    """Every file rewritten (one free slot in 100 booked), then swapped in at once, and
    the manifest's transaction time moved: a full reload of every file."""
    staging = feed.parent / "staging"
    staging.mkdir(exist_ok=True)
    for path in sorted(feed.glob("*.ndjson")):
        free = 0
        with path.open("rb") as source, (staging / path.name).open("wb") as out:
            for line in source:
                if b'"status":"free"' in line:
                    free += 1
                    if free % 100 == 0:
                        line = line.replace(b'"status":"free"', b'"status":"busy"', 1)
                out.write(line)
    manifest = orjson.loads((feed / "$bulk-publish").read_bytes())
    manifest["transactionTime"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    (staging / "$bulk-publish").write_bytes(orjson.dumps(manifest))
    for path in staging.iterdir():
        os.replace(path, feed / path.name)


# -- the subscribers' process ----------------------------------------------------------


async def client_main(spec: dict[str, Any]) -> None:
    """``count`` sockets, a subscription each; prints ``ready``, then ``heard`` counts
    until ``stop`` comes on stdin."""
    heard, acked, all_acked = [0], [0], asyncio.Event()
    gate = asyncio.Semaphore(50)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def one(n: int) -> None:
        latitude, longitude = spec["points"][n % len(spec["points"])]
        window = {"startsAfter": spec["after"], "startsBefore": spec["before"]}
        near = {"near": {"latitude": latitude, "longitude": longitude}, "radiusKm": 10}
        payload = {"query": ALERTS, "variables": {"f": {**near, **window}}}
        async with gate:
            ws = await session.ws_connect(spec["url"], protocols=["graphql-transport-ws"])
            await ws.send_str('{"type":"connection_init"}')
            assert "connection_ack" in (await ws.receive(timeout=60)).data
            await ws.send_str(
                orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode()
            )
        acked[0] += 1
        if acked[0] == spec["count"]:
            all_acked.set()
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            if '"next"' in message.data:
                heard[0] += 1
            elif '"ping"' in message.data:
                await ws.send_str('{"type":"pong"}')
            elif '"error"' in message.data:
                print(json.dumps({"error": message.data[:300]}), flush=True)

    tasks = [asyncio.create_task(one(n)) for n in range(spec["count"])]
    await all_acked.wait()
    print(json.dumps({"ready": spec["count"]}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (line := await reader.readline()) and line.strip() != b"stop":
        print(json.dumps({"heard": heard[0]}), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()


async def subscribers(url: str, count: int, hours: float) -> asyncio.subprocess.Process:
    now = datetime.now().astimezone()
    step = 0.054  # degrees of latitude: 6 km
    points = [
        (DOWNTOWN[0] + step * (k // 5 - 2), DOWNTOWN[1] + step * (k % 5 - 2)) for k in range(20)
    ]
    spec = {"url": url.replace("http", "ws", 1), "count": count, "points": points,
            "after": now.isoformat(timespec="seconds"),
            "before": (now + timedelta(hours=hours)).isoformat(timespec="seconds")}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client-spec", json.dumps(spec),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 300)
        if not line:
            raise SystemExit("the subscribers' process ended")
        if b"ready" in line:
            return process
        say(f"  subscribers: {line.decode().strip()}")


async def heard(process: asyncio.subprocess.Process) -> int:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"count\n")
    await process.stdin.drain()
    while b"heard" not in (line := await process.stdout.readline()):
        say(f"  subscribers: {line.decode().strip()}")
    return int(json.loads(line)["heard"])


# -- the run -----------------------------------------------------------------------------


def profile(pid: int, directory: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy (PyPI) recording the gateway's stacks into ``directory/near-me.txt``."""
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    argv = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
    argv += ["--output", str(directory / "near-me.txt")]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def measure(
    args: argparse.Namespace, gateway: subprocess.Popen[bytes], url: str, feed: Path
) -> dict[str, float]:
    out: dict[str, float] = {}
    pid = gateway.pid
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        source = await loaded(session, url, None, 900)
        out["ingest_s"] = time.perf_counter() - started
        out["first_peak"] = proc_field(pid, "VmHWM")
        out["skipped"] = float(source["skippedRecords"] or 0)
        say(f"  loaded in {out['ingest_s']:.1f} s, peak {out['first_peak']:.0f} MB; querying")
        profiler = profile(pid, args.profile)
        out |= await queries(session, url, args.requests, pid)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
        await settle(pid)
        out["steady"] = proc_field(pid, "VmRSS")
        if not args.no_reload:
            clients = None
            if args.subscriptions:
                say(f"  RSS {out['steady']:.0f} MB; opening {args.subscriptions} subscriptions")
                clients = await subscribers(url, args.subscriptions, args.alert_hours)
                await settle(pid)
            out["with_subs"] = proc_field(pid, "VmRSS")
            say(f"  RSS {out['with_subs']:.0f} MB; republishing the feed")
            reset_peak(pid)
            t0 = time.perf_counter()
            await asyncio.to_thread(republish, feed)
            out["republish_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            await loaded(session, url, source["dataAsOf"], 900)
            out["reload_s"] = time.perf_counter() - t0
            out["reload_peak"] = proc_field(pid, "VmHWM")
            await settle(pid)
            out["after_reload"] = proc_field(pid, "VmRSS")
            out["alerts"] = float(await heard(clients)) if clients else 0.0
            out |= {f"again_{k}": v for k, v in (await queries(session, url, 100, pid)).items()}
            if clients is not None and clients.stdin is not None:
                clients.stdin.write(b"stop\n")
                await clients.stdin.drain()
                await clients.wait()
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


def start_gateway(args: argparse.Namespace, work: Path, port: int) -> subprocess.Popen[bytes]:
    config = work / "bench.toml"
    config.write_text("")  # no source yet: the gateway starts empty
    argv = [sys.executable, "-c", LAUNCHER, "--no-demo", "--config", str(config)]
    argv += ["--port", str(port), "--database-url", f"sqlite:///{work / 'r.sqlite3'}"]
    argv += ["--subscriptions-per-ip", str(args.subscriptions + 100)]
    if args.bare:
        argv += ["--log-level", "warning"]
    else:
        argv += ["--env", "production", "--anonymous-rate", "1000000", "--log-level", "info"]
        argv += ["--metrics-port", str(free_port())]
    log = (work / "gateway.log").open("wb")
    gateway = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, gateway, 60)
    return gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of Quebec")
    parser.add_argument("--scale", type=float, help="world scale (1.0; --quick: 0.1)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--subscriptions", type=int, default=1000, help="open at the reload")
    parser.add_argument("--no-reload", action="store_true", help="no republication")
    parser.add_argument(
        "--alert-hours", type=float, default=72.0, help="the subscriptions' window (72)"
    )
    parser.add_argument("--bare", action="store_true", help="no production settings")
    parser.add_argument("--no-check", action="store_true", help="skip the sources check")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy of the queries")
    parser.add_argument("--check-only", action="store_true", help="the sources check only")
    parser.add_argument("--client-spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile and shutil.which("py-spy") is None:
        raise SystemExit("--profile needs py-spy on the PATH: pip install py-spy (into the venv)")
    if args.client_spec:
        asyncio.run(client_main(json.loads(args.client_spec)))
        return
    scale = args.scale or (0.1 if args.quick else 1.0)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="passerelle-bench-") as tmp:
        work = Path(tmp)
        feed, feed_port, static_port = work / "feed", free_port(), free_port()
        t0 = time.perf_counter()
        publisher = subprocess.Popen(
            [sys.executable, "-m", "examples.demo_ssl", "--all", "--port", str(feed_port),
             "--scale", str(scale), "--sessions-per-day", "2", "--free-share", "0.75",
             "--data-dir", str(feed)],
            cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        processes = [publisher]
        feed_url = f"http://127.0.0.1:{feed_port}/$bulk-publish"
        try:
            wait_port(feed_port, publisher, 600)
            feed_s = time.perf_counter() - t0
            feed_mb = sum(f.stat().st_size for f in feed.rglob("*") if f.is_file()) / 1e6
            say(f"feed written in {feed_s:.1f} s ({feed_mb:.0f} MB)")
            if not args.check_only:
                static = subprocess.Popen(
                    [sys.executable, "-c", STATIC, str(feed), str(static_port)], cwd=ROOT
                )
                processes.append(static)
                wait_port(static_port, static, 60)
                gateway_port = free_port()
                gateway = start_gateway(args, work, gateway_port)
                processes.append(gateway)
                (work / "bench.toml").write_text(
                    '[[sources]]\nid = "province"\nname = "Province feed"\n'
                    'protocol = "SMART_SCHEDULING_LINKS"\n'
                    f'url = "http://127.0.0.1:{static_port}/$bulk-publish"\ntimeout_s = 10\n'
                )
                url = f"http://127.0.0.1:{gateway_port}/graphql"
                figures = asyncio.run(measure(args, gateway, url, feed))
                stop(gateway)
            if not args.no_check:
                figures.update(check_feed(feed_url, work))
        finally:
            for process in reversed(processes):
                stop(process)
    table(args, scale, feed_s, feed_mb, figures)


def table(
    args: argparse.Namespace, scale: float, feed_s: float, feed_mb: float, f: dict[str, float]
) -> None:
    rows = [
        ("world scale", f"{scale:g}", "bare" if args.bare else "production settings"),
        ("feed written (publisher start)", f"{feed_s:.1f} s", f"{feed_mb:.0f} MB on disk"),
    ]
    if not args.check_only:
        rows += [
            ("first load (registration to UP)", f"{f['ingest_s']:.1f} s", "target < 60 s"),
            ("peak RSS, first load", f"{f['first_peak']:.0f} MB", "target <= 400 MB"),
            ("RSS after the load and queries", f"{f['steady']:.0f} MB", "steady"),
            ("near me, 20 slots: p50", f"{f['p50_ms']:.2f} ms", "target < 5 ms"),
            ("near me: p99", f"{f['p99_ms']:.2f} ms", f"{args.requests} requests"),
            ("near me: gateway CPU a request", f"{f['cpu_ms']:.2f} ms", ""),
            ("records skipped", f"{f['skipped']:.0f}", ""),
        ]
    if "reload_peak" in f:
        rows += [
            (f"RSS with {args.subscriptions} subscriptions", f"{f['with_subs']:.0f} MB", ""),
            ("full reload (republished to UP)", f"{f['reload_s']:.1f} s", "every file"),
            ("peak RSS, reload with subscriptions", f"{f['reload_peak']:.0f} MB", "<= 400 MB"),
            ("RSS after the reload", f"{f['after_reload']:.0f} MB", "steady"),
            ("alerts heard by the subscribers", f"{f['alerts']:.0f}", ""),
            ("near me after: p50 / p99",
             f"{f['again_p50_ms']:.2f} / {f['again_p99_ms']:.2f} ms", ""),
        ]  # fmt: skip
    if "check_s" in f:
        rows += [
            ("sources check: wall time", f"{f['check_s']:.1f} s", "target < 120 s"),
            ("sources check: CPU time", f"{f['check_cpu_s']:.1f} s", ""),
            ("sources check: peak RSS", f"{f['check_rss_mb']:.0f} MB", "target < 1,000 MB"),
            ("sources check: exit status", f"{f['check_exit']:.0f}",
             f"{f['check_served']:.0f} free slots served"),
        ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>16}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>16}  {note}")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
